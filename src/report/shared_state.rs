//! Fencing and the shared state of several `pgitops serve` instances (`[ha]`), in etcd.
//!
//! The leader holds the key `<prefix>/leader` (value: its instance name) under a lease; the key's
//! create revision is its **term**, larger for every election. A [`Fence`] is what a leader
//! carries through an apply: [`Fence::held_locally`] (the lease's keep-alive was answered
//! within the TTL: no round trip, checked before each action) and [`Fence::held`] (the same,
//! then an etcd transaction comparing the leader key's value and create revision: before each
//! destructive action). Every write of shared state is such a transaction too
//! ([`Fence::save_state`], [`Fence::save_journal`]), so a deposed leader that wakes from a pause
//! can neither run a destructive step nor record anything.
//!
//! Shared under the prefix: `state` (the per-cluster [`State`]: last applied and attempted
//! commits, created objects) and `journal/<commit>/<sha256 of the action id>` (the destructive
//! steps' [`Entry`]s). Each instance keeps its local files as a working copy: a new leader
//! overwrites them from etcd on takeover ([`Fence::take_over`]); while it leads, every write
//! goes to etcd first (guarded), then to the local file. The first leader of a service that ran
//! alone before shares its local state and journal. Without `[ha]` none of this is used.

use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use sha2::{Digest, Sha256};

use crate::report::journal::Entry;
use crate::report::state::State;

#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("instance {name} lost the leader lease (term {term}): not run")]
    Lost { name: String, term: i64 },
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("the shared state under {key} is not valid: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("writing the local copy of the shared state: {0}")]
    Local(String),
    #[error("reading {file} for TLS to etcd: {source}")]
    TlsFile {
        file: String,
        source: std::io::Error,
    },
}

/// How to reach etcd: endpoints, TLS (PEM files) and authentication.
#[derive(Clone, Default)]
pub struct Access {
    pub endpoints: Vec<String>,
    /// The CA certificate file, and this client's certificate and key files if any.
    pub tls: Option<(PathBuf, Option<(PathBuf, PathBuf)>)>,
    /// User and password.
    pub user: Option<(String, String)>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls)
            .field("user", &self.user.as_ref().map(|(u, _)| (u, "<redacted>")))
            .finish()
    }
}

/// The leader key under `prefix`.
pub fn leader_key(prefix: &str) -> String {
    format!("{prefix}/leader")
}

/// A leader's proof of its lease, carried by every apply of its term.
#[derive(Clone)]
pub struct Fence {
    client: Arc<Client>,
    prefix: String,
    name: String,
    term: i64,
    /// Until when the lease is known to hold: the time a keep-alive answered with a positive
    /// TTL was *sent*, plus that TTL.
    valid_until: Arc<Mutex<Instant>>,
    lost: Arc<AtomicBool>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("name", &self.name)
            .field("term", &self.term)
            .finish()
    }
}

impl Fence {
    pub fn new(client: Arc<Client>, prefix: &str, name: &str, term: i64, until: Instant) -> Fence {
        Fence {
            client,
            prefix: prefix.to_string(),
            name: name.to_string(),
            term,
            valid_until: Arc::new(Mutex::new(until)),
            lost: Arc::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn term(&self) -> i64 {
        self.term
    }

    /// A keep-alive answered: the lease holds until `until` (never shortened).
    pub fn extend(&self, until: Instant) {
        let mut v = self.valid_until.lock().expect("fence");
        *v = (*v).max(until);
    }

    /// The lease is gone (expired, revoked, or the key belongs to someone else now).
    pub fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    fn lost_error(&self) -> FenceError {
        FenceError::Lost {
            name: self.name.clone(),
            term: self.term,
        }
    }

    /// The lease holds as far as this process knows (no round trip).
    pub fn held_locally(&self) -> Result<(), FenceError> {
        let until = *self.valid_until.lock().expect("fence");
        if self.lost.load(Ordering::SeqCst) || Instant::now() >= until {
            self.lose();
            return Err(self.lost_error());
        }
        Ok(())
    }

    fn guard(&self) -> Vec<Compare> {
        let key = leader_key(&self.prefix);
        vec![
            Compare::value(key.clone(), CompareOp::Equal, self.name.as_bytes()),
            Compare::create_revision(key, CompareOp::Equal, self.term),
        ]
    }

    /// A transaction guarded by the leader key: runs `ops` only while this term holds.
    async fn guarded(&self, ops: Vec<TxnOp>) -> Result<(), FenceError> {
        self.held_locally()?;
        let txn = Txn::new().when(self.guard()).and_then(ops);
        let mut kv = self.client.kv_client();
        let resp = kv.txn(txn).await?;
        if !resp.succeeded() {
            self.lose();
            return Err(self.lost_error());
        }
        // The answer may have come late (a pause while waiting): the local deadline too.
        self.held_locally()
    }

    /// The lease holds locally and the leader key is still this term's, in etcd.
    pub async fn held(&self) -> Result<(), FenceError> {
        self.guarded(vec![]).await
    }

    /// Writes the shared per-cluster state (guarded).
    pub async fn save_state(&self, state: &State) -> Result<(), FenceError> {
        let text = serde_json::to_string(state).expect("state serializes");
        let key = format!("{}/state", self.prefix);
        self.guarded(vec![TxnOp::put(key, text, None)]).await
    }

    /// Writes one journal entry of `commit` (guarded).
    pub async fn save_journal(&self, commit: &str, entry: &Entry) -> Result<(), FenceError> {
        let text = serde_json::to_string(entry).expect("entry serializes");
        let key = format!(
            "{}/journal/{commit}/{}",
            self.prefix,
            action_key(&entry.action)
        );
        self.guarded(vec![TxnOp::put(key, text, None)]).await
    }

    /// On takeover: the shared state and journal replace the local copies in `state_dir`. When
    /// etcd holds no state yet (the first leader of a service that ran alone before), the local
    /// state is shared instead. Returns the number of journal entries read.
    pub async fn take_over(&self, state_dir: &Path) -> Result<usize, FenceError> {
        self.held().await?;
        let mut kv = self.client.kv_client();
        let key = format!("{}/state", self.prefix);
        let resp = kv.get(key.clone(), None).await?;
        let local = |e: crate::report::state::StateError| FenceError::Local(format!("{e:#}"));
        match resp.kvs().first() {
            Some(kv) => {
                let state: State =
                    serde_json::from_slice(kv.value()).map_err(|e| FenceError::Corrupt {
                        key: key.clone(),
                        reason: e.to_string(),
                    })?;
                state.save(state_dir).map_err(local)?;
            }
            None => {
                let state = State::load(state_dir).map_err(local)?;
                self.share_local_journal(state_dir).await?;
                self.save_state(&state).await?;
            }
        }
        let jprefix = format!("{}/journal/", self.prefix);
        let resp = kv
            .get(jprefix.clone(), Some(GetOptions::new().with_prefix()))
            .await?;
        let journal = state_dir.join("journal");
        let _ = std::fs::remove_dir_all(&journal);
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).to_string();
            let rest = key.strip_prefix(&jprefix).unwrap_or_default();
            let Some((commit, file)) = rest.split_once('/') else {
                continue;
            };
            let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
            if !valid(commit) || !valid(file) {
                return Err(FenceError::Corrupt {
                    key,
                    reason: "not <commit>/<hash>".into(),
                });
            }
            let path = journal.join(commit).join(format!("{file}.json"));
            std::fs::create_dir_all(path.parent().expect("a parent"))
                .map_err(|e| FenceError::Local(e.to_string()))?;
            crate::fsutil::write_atomic(&path, kv.value())
                .map_err(|e| FenceError::Local(e.to_string()))?;
        }
        Ok(resp.kvs().len())
    }
}

impl Fence {
    /// The first leader of a service that ran alone: its local journal entries are shared.
    async fn share_local_journal(&self, state_dir: &Path) -> Result<(), FenceError> {
        let Ok(commits) = std::fs::read_dir(state_dir.join("journal")) else {
            return Ok(());
        };
        for commit in commits.flatten() {
            let name = commit.file_name().to_string_lossy().to_string();
            for file in std::fs::read_dir(commit.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = std::fs::read_to_string(file.path()).unwrap_or_default();
                if let Ok(entry) = serde_json::from_str::<Entry>(&text) {
                    self.save_journal(&name, &entry).await?;
                }
            }
        }
        Ok(())
    }
}

/// The journal's file and key name of an action id.
pub fn action_key(action: &str) -> String {
    hex::encode(Sha256::digest(action.as_bytes()))
}

/// Connects to etcd as `access` says; each request gives up after `timeout`.
pub async fn connect(access: &Access, timeout: Duration) -> Result<Client, FenceError> {
    let mut options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    if let Some((ca, client)) = &access.tls {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| FenceError::TlsFile {
                file: p.display().to_string(),
                source,
            })
        };
        let mut tls = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
        if let Some((cert, key)) = client {
            tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
        }
        options = options.with_tls(tls);
    }
    if let Some((user, password)) = &access.user {
        options = options.with_user(user.clone(), password.clone());
    }
    Ok(Client::connect(&access.endpoints, Some(options)).await?)
}
