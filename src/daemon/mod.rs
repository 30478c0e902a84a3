//! `pgitops serve`: the pull-based sync service, a per-cluster controller on the caller's runtime.
//!
//! Triggers (a poll interval, a file-system watch on a local-path remote's refs, SIGHUP, the
//! webhook, the resync schedule) reach the loop over a channel; the loop also wakes when a
//! cluster's requeue time comes ([`controller`]: a backoff after a failure, a window opening).
//! Each reconcile ([`reconcile`]) fetches the mirror and applies the clusters that are due, with
//! SSH master connections that live as long as the service. Beside the loop, the leader watch
//! ([`leaders`], on `[schedule] leaders`) reports a leader Patroni elected that the inventory
//! does not declare, between reconciles; the drift check ([`drift`], on `[schedule] drift`)
//! reports live state that differs from the applied inventory. With `[ha]`, only the instance
//! holding the etcd leader lease ([`ha`]) applies; the others keep the mirror warm. Shutdown is
//! passed in: once it fires, no new work starts; running steps finish and partial results are
//! recorded.

mod controller;
mod drift;
mod fds;
mod ha;
mod http;
mod leaders;
mod lock;
mod pulls;
mod reconcile;
mod statuses;
mod triggers;
mod window;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use http::Metrics;
use pgitops::config::Config;
use pgitops::fsutil::secret;
use pgitops::source::remote::{Credentials, Mirror};
pub use triggers::on_signals;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Fetch,
    Resync,
}

/// Asks the service to stop: no new work starts, running steps finish.
#[derive(Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            flag: Arc::default(),
            tx: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.send_replace(true);
    }

    pub fn triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once [`Shutdown::trigger`] was called.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Runs the service until `shutdown` fires.
pub async fn serve(config_path: &Path, shutdown: Shutdown) -> Result<()> {
    let cfg = Config::load(config_path)?;
    std::fs::create_dir_all(&cfg.state.dir)
        .with_context(|| format!("creating the state directory {}", cfg.state.dir.display()))?;
    let _lock = lock::Lock::acquire(&cfg.state.dir)?;
    let token = secret(
        cfg.repository.token_env.as_deref(),
        cfg.repository.token_file.as_deref(),
    );
    let mirror = Mirror::open(
        &cfg.state.dir,
        &cfg.repository.remote,
        &cfg.repository.branch,
        Credentials {
            ssh_key: cfg.repository.ssh_key.clone(),
            token,
        },
        pgitops::report::note::SYNC,
    )?;
    for stale in lock::clear_stale_git_locks(&mirror.path, &_lock) {
        tracing::warn!(path = %stale.display(), "removed a Git lock file left by a crash");
    }
    let (tx, rx) = unbounded_channel::<Trigger>();
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let open_files = fds::raise_nofile_limit();
    let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.http.listen))?;
    let endpoint = http_endpoint(&cfg, open_files, &metrics, &tx);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(http::serve(listener, Arc::new(endpoint)));
    tasks.spawn(triggers::hangup(tx.clone()));
    tasks.spawn(triggers::poll(
        tx.clone(),
        Duration::from_secs(cfg.repository.poll_seconds),
    ));
    if let Some(schedule) = cfg.schedule.resync.clone() {
        tasks.spawn(triggers::resync(
            tx.clone(),
            schedule,
            cfg.schedule.timezone,
        ));
    }
    let _watcher = triggers::watch(&cfg.repository.remote, tx.clone());
    tracing::info!(remote = %cfg.repository.remote, branch = %cfg.repository.branch, listen = %cfg.http.listen, "pgitops serving");
    let _ = tx.send(Trigger::Fetch);
    let ha = match &cfg.ha {
        Some(_) => Some(ha::Ha::start(&cfg, tx.clone()).await?),
        None => None,
    };
    let mut svc = reconcile::Service::new(&cfg, &mirror, &metrics, &shutdown, ha.clone());
    // Held by a reconcile while it runs; the leader watch ticks only while it is free.
    let busy = tokio::sync::Mutex::new(());
    let watch = cfg.schedule.leaders.clone().map(|every| {
        let parts = svc.watch_parts();
        let w = leaders::Watch::new(&cfg, &mirror, &metrics, &busy, parts).only_leading(ha.clone());
        w.run(every, cfg.schedule.timezone, &shutdown)
    });
    let drift = cfg.schedule.drift.clone().map(|every| {
        let c = drift::Check::new(&cfg, &mirror, &metrics, &busy, svc.watch_parts())
            .only_leading(ha.clone());
        c.run(every, cfg.schedule.timezone, &shutdown)
    });
    let watching = async {
        let drift = async {
            if let Some(d) = drift {
                d.await;
            }
        };
        let leaders = async {
            if let Some(w) = watch {
                w.await;
            }
        };
        tokio::join!(leaders, drift);
    };
    let mut pulls = pulls::Pulls::new(&cfg);
    tokio::join!(
        run(&mut svc, rx, &shutdown, &busy, pulls.as_mut()),
        watching
    );
    // A standby has nothing to push (and a deposed leader must not). The lease goes before the
    // SSH masters close, so a standby takes over at once.
    if ha.as_ref().is_none_or(|h| h.leading().is_some()) {
        if let Err(e) = mirror.push_notes() {
            tracing::warn!(error = %e, "pushing notes at shutdown");
        }
    }
    if let Some(h) = &ha {
        h.resign().await;
    }
    svc.close().await;
    tasks.abort_all();
    tracing::info!("pgitops stopped");
    Ok(())
}

/// The mirror as the ops take it. `verified`: with `[repository] verify` (applies and pull
/// request plans; the read-only watches read applied commits and need none). The trust file is
/// checked at load; one gone since refuses the caller (never "off").
pub(crate) fn mirror_options(
    cfg: &Config,
    mirror: &Mirror,
    verified: bool,
) -> Result<pgitops::ops::RepoOptions> {
    let verify = match verified {
        true => cfg.repository.verification().map_err(anyhow::Error::msg)?,
        false => Default::default(),
    };
    Ok(pgitops::ops::RepoOptions {
        repo: mirror.path.clone(),
        inventory: cfg.repository.inventory.clone(),
        state_dir: Some(cfg.state.dir.clone()),
        verify,
    })
}

/// The HTTP endpoint's settings, its connection cap kept under half of `open_files`.
fn http_endpoint(
    cfg: &Config,
    open_files: u64,
    metrics: &Arc<Mutex<Metrics>>,
    tx: &tokio::sync::mpsc::UnboundedSender<Trigger>,
) -> http::Endpoint {
    let h = &cfg.http;
    let max_connections = fds::connection_cap(h.max_connections, open_files);
    if max_connections < h.max_connections {
        tracing::warn!(
            configured = h.max_connections,
            open_files,
            max_connections,
            "`http.max_connections` lowered to half the open-files limit"
        );
    }
    // An empty secret would let anyone sign a hook: it counts as none.
    let hook_secret = secret(h.hook_secret_env.as_deref(), None).filter(|s| !s.is_empty());
    if let (Some(var), None) = (&h.hook_secret_env, &hook_secret) {
        tracing::warn!(%var, "the hook secret's variable is unset or empty: POST /hook is disabled");
    }
    http::Endpoint {
        metrics: metrics.clone(),
        triggers: tx.clone(),
        hook: http::Hook::new(hook_secret, h.hook_deliveries),
        limits: http::Limits {
            max_connections,
            header_timeout: Duration::from_secs(h.header_timeout_seconds),
            body_timeout: Duration::from_secs(h.body_timeout_seconds),
            connection_timeout: Duration::from_secs(h.connection_timeout_seconds),
            max_body: h.max_body_bytes,
        },
    }
}

/// The controller loop: wait for a trigger, the earliest requeue time or shutdown; reconcile.
async fn run(
    svc: &mut reconcile::Service<'_>,
    mut rx: UnboundedReceiver<Trigger>,
    stop: &Shutdown,
    busy: &tokio::sync::Mutex<()>,
    mut pulls: Option<&mut pulls::Pulls>,
) {
    loop {
        let wake = svc.wake_at();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut triggers = Vec::new();
        tokio::select! {
            t = rx.recv() => match t {
                Some(t) => triggers.push(t),
                None => return,
            },
            () = sleep => {}
            () = stop.wait() => return,
        }
        // Coalesce a burst of triggers into one reconcile.
        while let Ok(t) = rx.try_recv() {
            triggers.push(t);
        }
        if stop.triggered() {
            return;
        }
        tracing::debug!(?triggers, "woken");
        let _busy = busy.lock().await;
        if let Err(e) = svc.reconcile(triggers.contains(&Trigger::Resync)).await {
            tracing::error!(error = %format!("{e:#}"), "reconcile failed");
        }
        if let Some(p) = pulls.as_deref_mut() {
            // A trigger that arrives meanwhile (a push) is served before the other plans.
            let waiting = || !rx.is_empty() || stop.triggered();
            if let Err(e) = svc.plan_pulls(p, &waiting).await {
                tracing::warn!(error = %format!("{e:#}"), "plans on pull requests");
            }
        }
    }
}
