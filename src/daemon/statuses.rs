//! Forge commit statuses from the service: `pending` when a commit's apply starts, the result
//! when it ends (contexts `pgitops` and `pgitops/<cluster>`), `success` with "superseded" on
//! intermediate commits. Each post runs on its own thread with retries, so a slow or failing
//! forge never delays an apply. No reporter configured: nothing happens.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::ops::apply::Applied;
use crate::report::forge::{Reporter, State, Status};

pub struct Statuses(Vec<Arc<Reporter>>);

impl Statuses {
    pub fn new(cfg: &Config) -> Statuses {
        let mut out = Vec::new();
        for r in &cfg.reporters {
            match Reporter::from_config(r) {
                Ok(rep) => out.push(Arc::new(rep)),
                Err(e) => tracing::warn!(error = %e, "forge reporter disabled"),
            }
        }
        Statuses(out)
    }

    fn post(&self, sha: &str, context: String, state: State, description: String) {
        for r in &self.0 {
            let (r, sha, context, description) = (
                r.clone(),
                sha.to_string(),
                context.clone(),
                description.clone(),
            );
            std::thread::spawn(move || {
                let status = Status {
                    sha: &sha,
                    context,
                    state,
                    description,
                    target_url: None,
                };
                if let Err(e) = r.post_with_retry(&status, 5, Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "forge status not posted");
                }
            });
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

    pub fn superseded(&self, sha: &str, by: &str) {
        self.post(
            sha,
            "pgitops".into(),
            State::Success,
            format!("superseded, applied in {}", &by[..12.min(by.len())]),
        );
    }

    pub fn finished(&self, sha: &str, done: &Applied) {
        let Some(note) = &done.note else { return };
        let state = |result: &str| {
            if matches!(result, "failure" | "invalid") {
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
            r => format!("{r}: {} actions", done.results.len()),
        };
        self.post(sha, "pgitops".into(), state(note.result), summary);
        for c in &note.clusters {
            let failed = c
                .actions
                .iter()
                .filter(|a| a.status == crate::execute::Status::Failed)
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
