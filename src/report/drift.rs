//! The drift check's record: per cluster what the service's last scheduled check found, kept in
//! `drift.json` in the state directory (written atomically by the service, read by `pgitops
//! status`).
//!
//! In: a [`Drift`] and when it was read. Out: a [`DriftView`] (counts and the summary, never an
//! item's values: the record says what drifted, `pgitops drift` shows how).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diff::drift::Drift;

/// The file, in the state directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("drift.json")
}

/// One cluster's last drift check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftView {
    /// The applied commit the live state was held against.
    pub commit: Option<String>,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Drifted objects (0: in sync).
    pub objects: usize,
    /// `3 objects drifted: user app connlimit, ...`, `no drift`, or why the check failed.
    pub summary: String,
    #[serde(default)]
    pub failed: bool,
}

impl DriftView {
    pub fn of(d: &Drift, at: u64) -> DriftView {
        DriftView {
            commit: d.commit.clone(),
            at,
            objects: d.objects(),
            summary: d.summary(),
            failed: d.error.is_some(),
        }
    }
}

/// The last check of every cluster the service checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftRecord {
    #[serde(default)]
    pub clusters: BTreeMap<String, DriftView>,
}

impl DriftRecord {
    /// The record in `dir` (empty when there is none or it does not read).
    pub fn load(dir: &Path) -> DriftRecord {
        crate::fsutil::read_json_or_default(&path(dir))
    }

    pub fn save(&self, dir: &Path) -> Result<(), crate::fsutil::AtomicWriteError> {
        crate::fsutil::write_json(&path(dir), self)
    }
}
