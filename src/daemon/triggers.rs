//! The service's triggers, each sending into the controller loop's channel: the poll interval,
//! the cron resync, SIGHUP and a file-system watch on a local-path remote's refs; and the
//! signals that shut it down (the first SIGTERM/SIGINT drains, a second exits).

use std::path::Path;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedSender;

use super::{Shutdown, Trigger};

pub async fn poll(tx: UnboundedSender<Trigger>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if tx.send(Trigger::Fetch).is_err() {
            return;
        }
    }
}

/// Sleeps until `schedule`'s next time in `tz` at which this instance leads (always, without
/// `[ha]`: a standby opens no SSH); false when `stop` fired first (or the schedule has no next
/// time).
pub async fn next_tick(
    schedule: &cron::Schedule,
    tz: chrono_tz::Tz,
    stop: &Shutdown,
    ha: Option<&super::ha::Ha>,
) -> bool {
    loop {
        let Some(next) = schedule.upcoming(tz).next() else {
            return false;
        };
        let wait = (next.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.wait() => return false,
        }
        if ha.is_none_or(|h| h.leading().is_some()) {
            return true;
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub async fn resync(tx: UnboundedSender<Trigger>, schedule: cron::Schedule, tz: chrono_tz::Tz) {
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

/// SIGHUP fetches now.
pub async fn hangup(tx: UnboundedSender<Trigger>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        if tx.send(Trigger::Fetch).is_err() {
            return;
        }
    }
}

/// The first SIGTERM or SIGINT triggers `shutdown` (running steps finish); a second exits now.
pub async fn on_signals(shutdown: Shutdown) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if !shutdown.triggered() {
            tracing::info!(
                "shutting down: no new work; running steps finish (send SIGTERM again to exit now)"
            );
            shutdown.trigger();
        } else {
            tracing::warn!("second signal: exiting now");
            std::process::exit(1);
        }
    }
}

/// Watches a local-path remote's refs so a push starts a fetch at once.
pub fn watch(remote: &str, tx: UnboundedSender<Trigger>) -> Option<notify::RecommendedWatcher> {
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
