//! The git note of an apply run: JSON on the applied commit under `refs/notes/pgitops`, one
//! entry per run (`{"runs": [...]}`), so `git log --notes=pgitops` is the audit trail.

use git2::{Oid, Repository, Signature};
use serde::Serialize;

use crate::execute::ActionResult;

pub const NOTES_REF: &str = "refs/notes/pgitops";

#[derive(Debug, Clone, Serialize)]
pub struct ClusterRecord {
    pub name: String,
    pub module: String,
    pub result: &'static str,
    pub actions: Vec<ActionResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub pgitops: &'static str,
    pub commit: String,
    pub from: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub ms: u64,
    /// `success`, `no-change`, `pending` (actions await approval), or `failure`.
    pub result: &'static str,
    pub clusters: Vec<ClusterRecord>,
}

/// Appends `run` to the note on its commit.
pub fn append(repo: &Repository, run: &Run) -> Result<(), git2::Error> {
    let oid = Oid::from_str(&run.commit)?;
    let mut doc: serde_json::Value = repo
        .find_note(Some(NOTES_REF), oid)
        .ok()
        .and_then(|n| n.message().ok().and_then(|m| serde_json::from_str(m).ok()))
        .filter(|d: &serde_json::Value| d["runs"].is_array())
        .unwrap_or_else(|| serde_json::json!({ "runs": [] }));
    doc["runs"]
        .as_array_mut()
        .expect("checked above")
        .push(serde_json::to_value(run).expect("run serializes"));
    let sig = Signature::now("pgitops", "pgitops@localhost")?;
    let text = serde_json::to_string_pretty(&doc).expect("note serializes");
    repo.note(&sig, &sig, Some(NOTES_REF), oid, &text, true)?;
    Ok(())
}
