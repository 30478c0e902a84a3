//! The service's triggers, each sending into the reconcile loop's channel: the poll interval,
//! the cron resync, signals (SIGHUP fetches; the first SIGTERM/SIGINT drains, a second exits) and
//! a file-system watch on a local-path remote's refs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::Trigger;

pub async fn poll(tx: mpsc::Sender<Trigger>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if tx.send(Trigger::Fetch).is_err() {
            return;
        }
    }
}

pub async fn resync(tx: mpsc::Sender<Trigger>, expr: String, tz: chrono_tz::Tz) {
    let Ok(schedule) = <cron::Schedule as std::str::FromStr>::from_str(&expr) else {
        return;
    };
    for next in schedule.upcoming(tz) {
        let wait = (next.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
        if tx.send(Trigger::Resync).is_err() {
            return;
        }
    }
}

pub async fn signals(tx: mpsc::Sender<Trigger>, stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let count = AtomicUsize::new(0);
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => { let _ = tx.send(Trigger::Fetch); continue; }
        }
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            tracing::info!(
                "shutting down: no new work; running steps finish (send SIGTERM again to exit now)"
            );
            stop.store(true, Ordering::SeqCst);
            let _ = tx.send(Trigger::Shutdown);
        } else {
            tracing::warn!("second signal: exiting now");
            std::process::exit(1);
        }
    }
}

/// Watches a local-path remote's refs so a push starts a fetch at once.
pub fn watch(remote: &str, tx: mpsc::Sender<Trigger>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let path = remote.strip_prefix("file://").unwrap_or(remote);
    let dir = Path::new(path);
    if !dir.is_absolute() || !dir.exists() {
        return None;
    }
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        // Reads (open, access, close-nowrite) are not changes: our own fetch makes them.
        if ev.is_ok_and(|e| {
            matches!(
                e.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Modify(_)
                    | notify::EventKind::Remove(_)
            )
        }) {
            let _ = tx.send(Trigger::Fetch);
        }
    })
    .ok()?;
    let refs = if dir.join("refs").exists() {
        dir.to_path_buf()
    } else {
        dir.join(".git")
    };
    w.watch(&refs.join("refs"), notify::RecursiveMode::Recursive)
        .ok()?;
    let _ = w.watch(&refs, notify::RecursiveMode::NonRecursive);
    Some(w)
}
