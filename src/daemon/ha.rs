//! `[ha]`: the leader election of several `pgitops serve` instances through an etcd lease.
//!
//! A campaign task per instance: while the leader key `<prefix>/leader` exists, the instance is
//! a standby (it logs "standby, leader is X" and watches the key: its deletion — the lease lapsed
//! or the leader resigned — wakes it at once; at worst it tries again every TTL); when the key
//! is gone it grants a lease of `ttl_seconds` and creates the key under it in a
//! transaction (only if it still does not exist). The key's create revision is the **term**.
//! The leader keeps the lease alive every TTL/3 and extends its [`Fence`] by each answer; when
//! an answer does not come in time (a pause, a partition) or says the lease is gone, it logs that
//! it lost the lease and campaigns again as a standby. On shutdown, once the running reconcile
//! has finished, it resigns (revokes the lease), so a standby takes over at once.
//!
//! The reconcile asks [`Ha::before_reconcile`]: a standby only fetches the mirror (kept warm;
//! no SSH opened, no note pushed); a leader gets its fence, and on a new term first reads the
//! shared state (see `pgitops::report::shared_state`) and drops notes it never pushed (written
//! by a fenced run). In: the `[ha]` table. Out: the role, as a [`Fence`] or none.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use etcd_client::{Client, Compare, CompareOp, EventType, PutOptions, Txn, TxnOp, WatchOptions};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use super::{Shutdown, Trigger};
use pgitops::config::Config;
use pgitops::report::note::NOTES_REF;
use pgitops::report::shared_state::{connect, leader_key, Access, Fence};
use pgitops::source::remote::Mirror;

#[derive(Clone)]
enum Role {
    Standby,
    Leader(Fence),
}

/// The instance's place in the election, shared by the reconciles and the leader watch.
#[derive(Clone)]
pub struct Ha {
    role: watch::Receiver<Role>,
    resign: Shutdown,
    task: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

struct Campaign {
    client: Arc<Client>,
    key: String,
    prefix: String,
    name: String,
    ttl: Duration,
    triggers: UnboundedSender<Trigger>,
    resign: Shutdown,
}

enum Tried {
    Won(Fence, i64),
    /// Someone else leads; the revision the key was read at.
    Other(String, i64),
}

/// How this instance reaches etcd: `[ha]`'s endpoints, TLS files and user, the password read
/// from its variable (an unset or empty one is an error, never "no password").
fn access(h: &pgitops::config::Ha) -> Result<Access> {
    let tls = h
        .ca_file
        .clone()
        .map(|ca| (ca, h.cert_file.clone().zip(h.key_file.clone())));
    let user = match (&h.user, &h.password_env) {
        (Some(user), Some(var)) => {
            let password = pgitops::fsutil::secret(Some(var), None)
                .filter(|p| !p.is_empty())
                .with_context(|| format!("`ha.password_env`: {var} is unset or empty"))?;
            Some((user.clone(), password))
        }
        _ => None,
    };
    Ok(Access {
        endpoints: h.etcd.clone(),
        tls,
        user,
    })
}

impl Ha {
    /// Connects to etcd and starts campaigning; a won election sends a [`Trigger::Fetch`].
    pub async fn start(cfg: &Config, triggers: UnboundedSender<Trigger>) -> Result<Ha> {
        let h = cfg.ha.as_ref().context("no [ha] table")?;
        let ttl = Duration::from_secs(h.ttl_seconds);
        let client = connect(&access(h)?, ttl)
            .await
            .with_context(|| format!("connecting to etcd at {}", h.etcd.join(", ")))?;
        let prefix = h.prefix_for(&cfg.repository.remote, &cfg.repository.branch);
        let name = h.name_or_host();
        tracing::info!(instance = %name, %prefix, ttl_seconds = h.ttl_seconds, "high availability through etcd");
        let (tx, role) = watch::channel(Role::Standby);
        let resign = Shutdown::new();
        let c = Campaign {
            client: Arc::new(client),
            key: leader_key(&prefix),
            prefix,
            name,
            ttl,
            triggers,
            resign: resign.clone(),
        };
        let task = tokio::spawn(c.run(tx));
        Ok(Ha {
            role,
            resign,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
        })
    }

    /// This instance's fence while it leads (its lease known to hold), else `None`.
    pub fn leading(&self) -> Option<Fence> {
        match &*self.role.borrow() {
            Role::Leader(f) if f.held_locally().is_ok() => Some(f.clone()),
            _ => None,
        }
    }

    /// Before a reconcile: `None` on a standby (the mirror fetched, nothing else); the fence on
    /// the leader, with `true` when its term is new to `seen` (the shared state was read).
    pub async fn before_reconcile(
        &self,
        mirror: &Mirror,
        state_dir: &Path,
        seen: &mut Option<i64>,
    ) -> Result<Option<(Fence, bool)>> {
        let Some(f) = self.leading() else {
            *seen = None;
            if let Err(e) = mirror.fetch() {
                tracing::warn!(error = %e, "standby: fetching the mirror");
            }
            return Ok(None);
        };
        if *seen == Some(f.term()) {
            return Ok(Some((f, false)));
        }
        let entries = f
            .take_over(state_dir)
            .await
            .context("reading the shared state")?;
        mirror.fetch()?;
        forget_unpushed_notes(mirror)?;
        tracing::info!(
            term = f.term(),
            journal_entries = entries,
            "took over: the shared state replaces the local one"
        );
        *seen = Some(f.term());
        Ok(Some((f, true)))
    }

    /// Gives the lease up (after the last reconcile): a standby takes over at once.
    pub async fn resign(&self) {
        self.resign.trigger();
        if let Some(task) = self.task.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Notes only a fenced run wrote locally are dropped: the remote's notes are the record.
fn forget_unpushed_notes(mirror: &Mirror) -> Result<()> {
    let repo = mirror.repo()?;
    let remote = format!("{NOTES_REF}-remote");
    match repo.find_reference(&remote).ok().and_then(|r| r.target()) {
        Some(tip) => {
            repo.reference(NOTES_REF, tip, true, "pgitops: takeover")?;
        }
        None => {
            if let Ok(mut r) = repo.find_reference(NOTES_REF) {
                r.delete()?;
            }
        }
    }
    Ok(())
}

impl Campaign {
    fn retry(&self) -> Duration {
        (self.ttl / 4).min(Duration::from_millis(500))
    }

    async fn run(self, role: watch::Sender<Role>) {
        let mut last: Option<String> = None;
        loop {
            if self.resign.triggered() {
                return;
            }
            match self.try_lead().await {
                Ok(Tried::Won(fence, lease)) => {
                    let term = fence.term();
                    tracing::info!(instance = %self.name, term, "leader (term {term})");
                    role.send_replace(Role::Leader(fence.clone()));
                    let _ = self.triggers.send(Trigger::Fetch);
                    let resigned = self.keep(&fence, lease).await;
                    fence.lose();
                    role.send_replace(Role::Standby);
                    last = None;
                    // Given up either way: if etcd still has it, the key goes with it at once.
                    let mut leases = self.client.lease_client();
                    let _ = tokio::time::timeout(self.ttl, leases.revoke(lease)).await;
                    if resigned {
                        tracing::info!(instance = %self.name, term, "resigned the leader lease (term {term})");
                        return;
                    }
                    tracing::warn!(instance = %self.name, term, "lost the leader lease (term {term}): standby");
                    continue;
                }
                Ok(Tried::Other(leader, revision)) => {
                    if last.as_deref() != Some(leader.as_str()) {
                        tracing::info!(instance = %self.name, %leader, "standby, leader is {leader}");
                        last = Some(leader);
                    }
                    if self.until_vacant(revision).await {
                        continue;
                    }
                }
                Err(e) => {
                    let why = format!("etcd: {e}");
                    if last.as_deref() != Some(why.as_str()) {
                        tracing::warn!(instance = %self.name, "standby: {why}");
                        last = Some(why);
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.retry()) => {}
                () = self.resign.wait() => return,
            }
        }
    }

    /// One try: the leader key if someone holds it, else a lease and the key created under it.
    async fn try_lead(&self) -> Result<Tried, etcd_client::Error> {
        let mut kv = self.client.kv_client();
        let holder = |kvs: &[etcd_client::KeyValue]| {
            kvs.first()
                .map(|k| String::from_utf8_lossy(k.value()).to_string())
        };
        let now = kv.get(self.key.clone(), None).await?;
        let revision = now.header().map(|h| h.revision()).unwrap_or_default();
        if let Some(leader) = holder(now.kvs()) {
            return Ok(Tried::Other(leader, revision));
        }
        let sent = Instant::now();
        let mut leases = self.client.lease_client();
        let lease = leases.grant(self.ttl.as_secs() as i64, None).await?;
        let put = PutOptions::new().with_lease(lease.id());
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(self.key.clone(), self.name.clone(), Some(put))])
            .or_else([TxnOp::get(self.key.clone(), None)]);
        let resp = kv.txn(txn).await?;
        if !resp.succeeded() {
            let _ = leases.revoke(lease.id()).await;
            let other = resp.op_responses().into_iter().find_map(|r| match r {
                etcd_client::TxnOpResponse::Get(g) => holder(g.kvs()),
                _ => None,
            });
            let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
            return Ok(Tried::Other(other.unwrap_or_default(), revision));
        }
        // The transaction's revision is the put's, i.e. the key's create revision.
        let term = resp.header().map(|h| h.revision()).unwrap_or_default();
        let until = sent + Duration::from_secs(lease.ttl().max(0) as u64);
        let fence = Fence::new(self.client.clone(), &self.prefix, &self.name, term, until);
        Ok(Tried::Won(fence, lease.id()))
    }

    /// Waits (at most one TTL) until the leader key is deleted after `revision` — its lease
    /// lapsed or its holder resigned; `true` when it was or the TTL passed quietly (campaign
    /// now), `false` on an error (campaign after the retry pause) and on resigning.
    async fn until_vacant(&self, revision: i64) -> bool {
        let watch = async {
            let mut watches = self.client.watch_client();
            let from = WatchOptions::new().with_start_revision(revision + 1);
            let mut stream = watches.watch(self.key.clone(), Some(from)).await?;
            while let Some(r) = stream.message().await? {
                if r.events()
                    .iter()
                    .any(|e| e.event_type() == EventType::Delete)
                {
                    return Ok(true);
                }
            }
            Ok::<bool, etcd_client::Error>(false)
        };
        tokio::select! {
            r = tokio::time::timeout(self.ttl, watch) => matches!(r, Ok(Ok(true)) | Err(_)),
            () = self.resign.wait() => false,
        }
    }

    /// Keeps the lease alive until it is lost (`false`) or the instance resigns (`true`).
    async fn keep(&self, fence: &Fence, lease: i64) -> bool {
        let every = self.ttl / 3;
        let mut stream = None;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.resign.wait() => return true,
            }
            // After a pause (SIGSTOP) the deadline has passed: the lease may be someone else's.
            if fence.held_locally().is_err() {
                return false;
            }
            let sent = Instant::now();
            let answer = tokio::time::timeout(every, async {
                if stream.is_none() {
                    stream = Some(self.client.lease_client().keep_alive(lease).await?);
                }
                let (keeper, answers) = stream.as_mut().expect("a keep-alive stream");
                keeper.keep_alive().await?;
                answers.message().await
            })
            .await;
            match answer {
                Ok(Ok(Some(a))) if a.ttl() > 0 => {
                    fence.extend(sent + Duration::from_secs(a.ttl() as u64));
                }
                Ok(Ok(Some(_))) => return false,
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    tracing::warn!(
                        term = fence.term(),
                        "the lease keep-alive was not answered; retrying until the lease runs out"
                    );
                    stream = None;
                }
            }
        }
    }
}
