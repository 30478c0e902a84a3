//! The journal of destructive actions, so that a crash (even `kill -9`) never makes one run
//! twice. Per applied commit and action: how many executions started and which steps finished,
//! each write atomic ([`crate::fsutil::write_atomic`]: a uniquely named temporary file, fsync,
//! rename, fsync of the directory) and made *before* the step it guards. Clusters run at the same
//! time, so entries of one commit are written concurrently: each write has its own temporary file.
//! With `[ha]`, the journal is shared: each record goes first to etcd in a transaction guarded
//! by the leader key ([`crate::report::shared_state::Fence::save_journal`]), so a deposed leader
//! records nothing (and so runs no step it guards), and a new leader reads the old one's entries.
//! In: the state directory, the commit, an action id. Out: its [`Entry`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub action: String,
    /// Executions that started (a crash can leave one unfinished).
    pub started: u32,
    /// Steps that finished: `dropped`, `done`.
    pub steps: Vec<String>,
}

impl Entry {
    pub fn has(&self, step: &str) -> bool {
        self.steps.iter().any(|s| s == step)
    }
}

#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    commit: String,
    /// Set with `[ha]`: every record is written to etcd first, guarded by the lease.
    fence: Option<crate::report::shared_state::Fence>,
}

impl Journal {
    pub fn new(state_dir: &std::path::Path, commit: &str) -> Journal {
        Journal {
            dir: state_dir.join("journal").join(commit),
            commit: commit.to_string(),
            fence: None,
        }
    }

    /// The shared journal of a leader's term (see [`crate::report::shared_state`]).
    pub fn shared(mut self, fence: Option<crate::report::shared_state::Fence>) -> Journal {
        self.fence = fence;
        self
    }

    fn path(&self, action: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.json",
            crate::report::shared_state::action_key(action)
        ))
    }

    pub fn get(&self, action: &str) -> Entry {
        std::fs::read_to_string(self.path(action))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| Entry {
                action: action.to_string(),
                ..Entry::default()
            })
    }

    /// Changes the entry of `action` and makes it durable before returning (shared first, when
    /// the journal is: a deposed leader's record fails).
    pub async fn record(
        &self,
        action: &str,
        change: impl FnOnce(&mut Entry),
    ) -> std::io::Result<Entry> {
        let mut e = self.get(action);
        change(&mut e);
        if let Some(f) = &self.fence {
            f.save_journal(&self.commit, &e)
                .await
                .map_err(std::io::Error::other)?;
        }
        let text = serde_json::to_string(&e).expect("entry serializes");
        crate::fsutil::write_atomic(&self.path(action), text.as_bytes())
            .map_err(|w| std::io::Error::new(w.source.kind(), w))?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_survive_and_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path(), "abc");
        assert_eq!(j.get("pg-t/database/x/drop").started, 0);
        j.record("pg-t/database/x/drop", |e| e.started += 1)
            .await
            .unwrap();
        let e = Journal::new(dir.path(), "abc")
            .record("pg-t/database/x/drop", |e| e.steps.push("done".into()))
            .await
            .unwrap();
        assert_eq!(
            (e.started, e.has("done"), e.has("dropped")),
            (1, true, false)
        );
        assert_eq!(
            Journal::new(dir.path(), "other")
                .get("pg-t/database/x/drop")
                .started,
            0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_of_concurrent_actions_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path(), "abc");
        let threads: Vec<_> = ["pg-a/database/x/drop", "pg-b/database/y/drop"]
            .into_iter()
            .map(|action| {
                let j = j.clone();
                tokio::spawn(async move {
                    for _ in 0..100 {
                        j.record(action, |e| e.started += 1).await.unwrap();
                    }
                    j.record(action, |e| e.steps.push("done".into()))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.await.unwrap();
        }
        for action in ["pg-a/database/x/drop", "pg-b/database/y/drop"] {
            let e = j.get(action);
            assert_eq!(
                (e.action.as_str(), e.started, e.has("done")),
                (action, 100, true)
            );
        }
        let files = std::fs::read_dir(dir.path().join("journal/abc")).unwrap();
        assert_eq!(files.count(), 2, "no temporary file left behind");
    }
}
