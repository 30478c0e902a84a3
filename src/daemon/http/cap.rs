//! The listener's connection cap. In: each accepted connection asks [`Cap::admit`] for a place.
//! Out: an [`Admitted`] place, held as long as the connection is open.
//!
//! At most `max` connections are open at once. At the cap, a new connection takes the place of
//! the oldest one that is still waiting for its request head after [`GRACE`] (an idle or
//! half-sent connection: the kind a flood is made of), which is closed; a client that sends its request at once, as
//! `/healthz` probes, Prometheus and the forges do, gets served within a flood of idle
//! connections instead of queueing behind it. When every open connection is inside a request,
//! the new one waits for a place (the accept loop waits with it), so file descriptors stay
//! bounded by `max + 1`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long a new connection has to deliver its request head before it can be evicted: a real
/// client sends it with the handshake's last packet, so only idle connections grow older.
pub const GRACE: Duration = Duration::from_millis(200);

const WAITING: u8 = 0;
const STARTED: u8 = 1;
const EVICTED: u8 = 2;

/// One open connection's state, shared between the cap and the connection's task.
#[derive(Debug)]
struct Slot {
    state: AtomicU8,
    evict: Notify,
    since: Instant,
}

#[derive(Debug)]
pub struct Cap {
    permits: Arc<Semaphore>,
    open: Mutex<VecDeque<(u64, Arc<Slot>)>>,
    next: AtomicU64,
}

/// A connection's place under the cap; given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    cap: Arc<Cap>,
    id: u64,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Cap {
    pub fn new(max: usize) -> Arc<Cap> {
        Arc::new(Cap {
            permits: Arc::new(Semaphore::new(max.max(1))),
            open: Mutex::new(VecDeque::new()),
            next: AtomicU64::new(0),
        })
    }

    /// A place for a new connection: at once under the cap; at the cap, once the oldest
    /// connection still waiting for its request head is closed, or once any connection ends.
    pub async fn admit(self: &Arc<Self>) -> Admitted {
        let permit = loop {
            let acquire = self.permits.clone().acquire_owned();
            if let Ok(p) = self.permits.clone().try_acquire_owned() {
                break p;
            }
            if self.evict_oldest_waiting() {
                break acquire.await.expect("the semaphore is never closed");
            }
            // None is evictable yet: wait for a place, or for the youngest to age past GRACE.
            tokio::select! {
                p = acquire => break p.expect("the semaphore is never closed"),
                () = tokio::time::sleep(GRACE / 4) => {}
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            state: AtomicU8::new(WAITING),
            evict: Notify::new(),
            since: Instant::now(),
        });
        self.open
            .lock()
            .expect("open connections")
            .push_back((id, slot.clone()));
        Admitted {
            cap: self.clone(),
            id,
            slot,
            _permit: permit,
        }
    }

    /// Closes the oldest connection still waiting for its request head after [`GRACE`], if
    /// there is one.
    pub fn evict_oldest_waiting(&self) -> bool {
        let open = self.open.lock().expect("open connections");
        for (_, slot) in open.iter() {
            if slot.since.elapsed() < GRACE {
                return false;
            }
            let evicted = slot
                .state
                .compare_exchange(WAITING, EVICTED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if evicted {
                slot.evict.notify_one();
                return true;
            }
        }
        false
    }
}

impl Admitted {
    /// Marks the request head as arrived: the connection can no longer be evicted. False if it
    /// was evicted first.
    pub fn start(&self) -> bool {
        self.slot
            .state
            .compare_exchange(WAITING, STARTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            || self.slot.state.load(Ordering::SeqCst) == STARTED
    }

    /// Resolves once a newer connection took this one's place.
    pub async fn evicted(&self) {
        self.slot.evict.notified().await;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().expect("open connections");
        open.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn at_the_cap_the_oldest_waiting_connection_makes_room() {
        let cap = Cap::new(2);
        let a = cap.admit().await;
        let b = cap.admit().await;
        assert!(a.start(), "a's request arrived");
        assert!(!cap.evict_oldest_waiting(), "b is within its grace");
        tokio::time::sleep(GRACE).await;
        // the third evicts b (a is inside its request), and gets b's place once b is closed
        let third = tokio::spawn({
            let cap = cap.clone();
            async move { cap.admit().await }
        });
        tokio::time::timeout(Duration::from_secs(1), b.evicted())
            .await
            .expect("b was evicted");
        assert!(!b.start(), "an evicted connection cannot start");
        drop(b);
        let c = tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .expect("c admitted")
            .unwrap();
        // every open one is inside a request: the next waits until one ends
        assert!(c.start());
        let waiting = tokio::spawn({
            let cap = cap.clone();
            async move { cap.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("admitted once a ended")
            .unwrap();
    }
}
