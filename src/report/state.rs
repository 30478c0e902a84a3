//! Per-cluster apply state, one JSON file in the state directory, written atomically through
//! [`crate::fsutil::write_atomic`] (a uniquely named temporary file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new state.
//! In: the state directory. Out: the [`State`] (last applied/attempted commit and created objects
//! per cluster), or a [`StateError`] naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading the state file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the state file {path} is not valid: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("writing the state file")]
    Write(#[from] crate::fsutil::AtomicWriteError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempted: Option<String>,
    /// Objects pgitops created, as `<entity>/<name>` (e.g. `user/dbuser_app`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub created: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterState>,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl State {
    pub fn load(dir: &Path) -> Result<State, StateError> {
        let path = path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        crate::fsutil::write_atomic(&path(dir), text.as_bytes())?;
        Ok(())
    }

    /// Objects created by pgitops, as plan object ids (`<cluster>/<entity>/<name>`).
    pub fn created_ids(&self) -> BTreeSet<String> {
        self.clusters
            .iter()
            .flat_map(|(c, s)| s.created.iter().map(move |o| format!("{c}/{o}")))
            .collect()
    }
}
