//! Forge commit statuses from the service: `pending` when a commit's apply starts, the result
//! when it ends (contexts `pgitops` and `pgitops/<cluster>`), `success` with "superseded" on
//! intermediate commits, `failure` naming the commit and why when an unverified commit held the
//! range, and the drift check's verdict (`pgitops/drift/<cluster>`). Each reporter has one
//! [`StatusQueue`] worker that posts in order and
//! retries inside, so a slow or failing forge never delays an apply and a retried `pending` never
//! lands after the result. No reporter configured: nothing happens.
//! In: the configuration and apply outcomes. Out: statuses queued per reporter.

use pgitops::config::Config;
use pgitops::ops::apply::Applied;
use pgitops::plan::output::short;
use pgitops::report::forge::{Reporter, State};
use pgitops::report::status_queue::{Retry, StatusQueue};

pub struct Statuses(Vec<StatusQueue>);

impl Statuses {
    pub fn new(cfg: &Config) -> Statuses {
        let mut out = Vec::new();
        for r in &cfg.reporters {
            match Reporter::new(&r.settings()) {
                Ok(rep) => out.push(StatusQueue::start(rep, Retry::default())),
                Err(e) => tracing::warn!(error = %e, "forge reporter disabled"),
            }
        }
        Statuses(out)
    }

    fn post(&self, sha: &str, context: String, state: State, description: String) {
        for q in &self.0 {
            q.send(sha, &context, state, &description);
        }
    }

    pub fn pending(&self, sha: &str) {
        self.post(
            sha,
            "pgitops".into(),
            State::Pending,
            "pgitops is applying this commit".into(),
        );
    }

    /// The drift check's verdict on a cluster's applied commit (`pgitops/drift/<cluster>`):
    /// failure while objects drifted, success once none does.
    pub fn drift(&self, sha: &str, cluster: &str, drifted: bool, description: String) {
        let state = if drifted {
            State::Failure
        } else {
            State::Success
        };
        self.post(sha, format!("pgitops/drift/{cluster}"), state, description);
    }

    pub fn superseded(&self, sha: &str, by: &str) {
        self.post(
            sha,
            "pgitops".into(),
            State::Success,
            format!("superseded, applied in {}", short(by)),
        );
    }

    pub fn finished(&self, sha: &str, done: &Applied) {
        let Some(note) = &done.note else { return };
        let state = |result: &str| {
            if matches!(result, "failure" | "invalid" | "unverified") {
                State::Failure
            } else if result == "held" {
                State::Pending
            } else {
                State::Success
            }
        };
        let summary = match note.result {
            "invalid" => format!(
                "inventory refused: {}",
                note.errors.first().cloned().unwrap_or_default()
            ),
            "unverified" => match note.unverified.first() {
                Some(u) => format!("unverified: {}", u.message),
                None => "unverified".into(),
            },
            r => format!("{r}: {} actions", done.results.len()),
        };
        self.post(sha, "pgitops".into(), state(note.result), summary);
        for c in &note.clusters {
            if c.result == "unverified" {
                // Blocked by an unverified commit: which one, and why.
                let why = note
                    .unverified
                    .iter()
                    .find(|u| u.clusters.contains(&c.name));
                let text = why.map_or("an unverified commit in the range", |u| &u.message);
                self.post(
                    sha,
                    format!("pgitops/{}", c.name),
                    State::Failure,
                    format!("not applied: {text}"),
                );
                continue;
            }
            let failed = c
                .actions
                .iter()
                .filter(|a| a.status == pgitops::execute::Status::Failed)
                .count();
            self.post(
                sha,
                format!("pgitops/{}", c.name),
                state(c.result),
                format!("{}: {} actions, {failed} failed", c.result, c.actions.len()),
            );
        }
    }
}
