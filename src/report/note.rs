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
    /// `success`, `no-change`, `held` (actions await approval or a window), `failure`, or
    /// `invalid` (the inventory was refused: nothing applied).
    pub result: &'static str,
    pub clusters: Vec<ClusterRecord>,
    /// Why the inventory was refused: `file:line:column: message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The note document on `commit` (`{"runs": [...], "approvals": [...]}`), empty if none.
pub fn read(repo: &Repository, commit: Oid) -> serde_json::Value {
    let mut doc: serde_json::Value = repo
        .find_note(Some(NOTES_REF), commit)
        .ok()
        .and_then(|n| n.message().ok().and_then(|m| serde_json::from_str(m).ok()))
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    for key in ["runs", "approvals"] {
        if !doc[key].is_array() {
            doc[key] = serde_json::json!([]);
        }
    }
    doc
}

fn write(repo: &Repository, commit: Oid, doc: &serde_json::Value) -> Result<(), git2::Error> {
    let sig = Signature::now("pgitops", "pgitops@localhost")?;
    let text = serde_json::to_string_pretty(doc).expect("note serializes");
    repo.note(&sig, &sig, Some(NOTES_REF), commit, &text, true)?;
    Ok(())
}

/// Appends `run` to the note on its commit.
pub fn append(repo: &Repository, run: &Run) -> Result<(), git2::Error> {
    let oid = Oid::from_str(&run.commit)?;
    let mut doc = read(repo, oid);
    doc["runs"]
        .as_array_mut()
        .expect("read() makes it a list")
        .push(serde_json::to_value(run).expect("run serializes"));
    doc["status"] = serde_json::json!(run.result);
    write(repo, oid, &doc)
}

/// An approval given with `pgitops approve`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Approval {
    pub action: String,
    pub by: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// Records an approval of `action` on `commit` (idempotent).
pub fn approve(repo: &Repository, commit: Oid, approval: Approval) -> Result<bool, git2::Error> {
    let mut doc = read(repo, commit);
    let list = doc["approvals"]
        .as_array_mut()
        .expect("read() makes it a list");
    if list.iter().any(|a| a["action"] == approval.action.as_str()) {
        return Ok(false);
    }
    list.push(serde_json::to_value(&approval).expect("approval serializes"));
    write(repo, commit, &doc)?;
    Ok(true)
}

/// Action ids approved in the note of `commit`.
pub fn approvals(repo: &Repository, commit: Oid) -> Vec<String> {
    read(repo, commit)["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["action"].as_str().map(str::to_string))
        .collect()
}

/// Merges two note documents: runs and approvals of both, each once, in order.
pub fn merge_docs(theirs: &str, ours: &str) -> String {
    let parse = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t).unwrap_or_else(|_| serde_json::json!({}))
    };
    let (mut a, b) = (parse(theirs), parse(ours));
    for key in ["runs", "approvals"] {
        let mut list = a[key].as_array().cloned().unwrap_or_default();
        for item in b[key].as_array().into_iter().flatten() {
            if !list.contains(item) {
                list.push(item.clone());
            }
        }
        a[key] = serde_json::Value::Array(list);
    }
    if let Some(status) = b.get("status") {
        a["status"] = status.clone();
    }
    serde_json::to_string_pretty(&a).expect("note serializes")
}

/// Marks `commit` as being applied (`"status": "pending"`).
pub fn mark_pending(repo: &Repository, commit: Oid) -> Result<(), git2::Error> {
    let mut doc = read(repo, commit);
    doc["status"] = serde_json::json!("pending");
    write(repo, commit, &doc)
}

/// Marks an intermediate commit as superseded by the cumulative apply of `by`.
pub fn mark_superseded(repo: &Repository, commit: Oid, by: &str) -> Result<(), git2::Error> {
    let mut doc = read(repo, commit);
    doc["status"] = serde_json::json!("superseded");
    doc["superseded_by"] = serde_json::json!(by);
    write(repo, commit, &doc)
}

/// Adds a remark to the note of `commit` (e.g. a force push that rewrote applied history).
pub fn remark(repo: &Repository, commit: Oid, text: &str) -> Result<(), git2::Error> {
    let mut doc = read(repo, commit);
    doc["remark"] = serde_json::json!(text);
    write(repo, commit, &doc)
}
