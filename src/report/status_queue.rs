//! Forge statuses in order: one worker thread per reporter reads a channel and posts the statuses
//! one after the other, retrying inside the worker, so a retried `pending` can never land after
//! the final status of the same commit. A status that is still queued (or being retried) when a
//! newer one for the same commit and context arrives is dropped: the forge only needs the newest.
//!
//! In: a [`Reporter`] and statuses ([`StatusQueue::send`], which never blocks). Out: HTTP posts
//! to the forge, in the order sent; failures are logged (never with the token), not returned.
//! Retries follow [`Retry`]: network errors, 5xx and 429 are retried with exponential backoff
//! (at least the forge's `Retry-After`, at most 60 s); other errors give up at once.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::forge::{Reporter, State, Status};

const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How often and how patiently one status is retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The first wait; it doubles after each failed attempt.
    pub first_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_backoff: Duration::from_secs(1),
        }
    }
}

/// One status, owned, on its way to the worker.
#[derive(Debug, Clone)]
struct Job {
    sha: String,
    context: String,
    state: State,
    description: String,
}

impl Job {
    fn status(&self) -> Status<'_> {
        Status {
            sha: &self.sha,
            context: self.context.clone(),
            state: self.state,
            description: self.description.clone(),
            target_url: None,
        }
    }

    /// True when a later job in `queue` is for the same commit and context.
    fn outdated_by(&self, queue: &VecDeque<Job>) -> bool {
        queue
            .iter()
            .any(|j| j.sha == self.sha && j.context == self.context)
    }
}

/// The sending side of one reporter's worker. Dropping it lets the worker post what is queued
/// for up to 10 seconds (use [`StatusQueue::close`] to choose the time).
pub struct StatusQueue {
    tx: Option<Sender<Job>>,
    /// Disconnected when the worker has finished.
    finished: Receiver<()>,
}

impl StatusQueue {
    /// Starts the worker of `reporter`.
    pub fn start(reporter: Reporter, retry: Retry) -> StatusQueue {
        let (tx, rx) = mpsc::channel();
        let (done, finished) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("pgitops-{}-statuses", reporter.forge()))
            .spawn(move || {
                work(&reporter, &rx, retry);
                drop(done);
            })
            .expect("starting a status worker thread");
        StatusQueue {
            tx: Some(tx),
            finished,
        }
    }

    /// Queues one status; returns at once.
    pub fn send(&self, sha: &str, context: &str, state: State, description: &str) {
        let job = Job {
            sha: sha.to_string(),
            context: context.to_string(),
            state,
            description: description.to_string(),
        };
        if let Some(tx) = &self.tx {
            if tx.send(job).is_err() {
                tracing::warn!(sha, context, "forge status worker gone; status dropped");
            }
        }
    }

    /// Takes no more statuses and waits until the queued ones are posted (or given up), at most
    /// `timeout`. True when the worker finished in time.
    pub fn close(mut self, timeout: Duration) -> bool {
        self.shut(timeout)
    }

    fn shut(&mut self, timeout: Duration) -> bool {
        self.tx.take();
        matches!(
            self.finished.recv_timeout(timeout),
            Err(RecvTimeoutError::Disconnected) | Ok(())
        )
    }
}

impl Drop for StatusQueue {
    fn drop(&mut self) {
        if self.tx.is_some() && !self.shut(Duration::from_secs(10)) {
            tracing::warn!("forge statuses still queued at shutdown were not all posted");
        }
    }
}

/// The worker: posts queued jobs in order until the channel closes and the queue is empty.
fn work(reporter: &Reporter, rx: &Receiver<Job>, retry: Retry) {
    let mut queue = VecDeque::new();
    let mut open = true;
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        queue.extend(rx.try_iter());
        let Some(job) = queue.pop_front() else {
            continue;
        };
        if job.outdated_by(&queue) {
            continue;
        }
        post(reporter, &job, retry, rx, &mut queue, &mut open);
    }
}

/// Posts `job`, retrying; statuses arriving meanwhile are queued, and a newer one for the same
/// commit and context ends the retries.
fn post(
    reporter: &Reporter,
    job: &Job,
    retry: Retry,
    rx: &Receiver<Job>,
    queue: &mut VecDeque<Job>,
    open: &mut bool,
) {
    let (forge, sha, context) = (reporter.forge(), job.sha.as_str(), job.context.as_str());
    let mut backoff = retry.first_backoff;
    for attempt in 1.. {
        let (e, retry_after) = match reporter.attempt(&job.status()) {
            Ok(()) => return,
            Err(failed) => failed,
        };
        if !e.is_retryable() || attempt >= retry.attempts.max(1) {
            tracing::warn!(forge, sha, context, error = %e, "forge status not posted");
            return;
        }
        tracing::warn!(forge, sha, context, attempt, error = %e, "commit status failed, retrying");
        let until = Instant::now()
            + backoff
                .max(retry_after.unwrap_or_default())
                .min(MAX_BACKOFF);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if !*open {
                std::thread::sleep(left);
                break;
            }
            match rx.recv_timeout(left) {
                Ok(next) => queue.push_back(next),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => *open = false,
            }
        }
        if job.outdated_by(queue) {
            tracing::debug!(
                forge,
                sha,
                context,
                "a newer status replaces the one being retried"
            );
            return;
        }
        backoff = backoff.saturating_mul(2);
    }
}
