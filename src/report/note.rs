//! The git note of an apply run: JSON on the applied commit under `refs/notes/pgitops`, one
//! entry per run (`{"runs": [...]}`), so `git log --notes=pgitops` is the audit trail.
//!
//! In: a repository, a commit, and what happened ([`Run`] built by the apply, an [`Approval`],
//! a status change, a remark). Out: the note on that commit, read and written as one typed
//! document, [`Note`]. On disk:
//!
//! ```json
//! {"runs": [{"pgitops": "0.1.0", "commit": "..", "from": "..", "started": 1700000000, "ms": 12,
//!            "result": "success", "clusters": [{"name": "pg-meta", "module": "pgsql",
//!            "result": "success", "actions": [..]}], "errors": [..]}],
//!  "approvals": [{"action": "pg-meta/database/x/drop", "by": "alice", "at": 1700000000}],
//!  "status": "success", "superseded_by": "..", "remark": "..", "unreadable": [".."],
//!  "observations": [{"cluster": "pg-test", "at": 1700000000, "leader": "10.0.0.12 (pg-test-2)",
//!                    "declared": "10.0.0.11 (pg-test-1)", "message": ".."}]}
//! ```
//!
//! Nothing is ever lost: fields this version does not know are kept as they are, and a note that
//! cannot be read at all (not JSON, or the wrong shape) is kept verbatim under `unreadable` by
//! the next write instead of being overwritten. [`SYNC`] tells the mirror in `source` which ref
//! to share and how two versions of one note merge ([`merge_docs`]).

use git2::{Oid, Repository, Signature};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::execute::ActionResult;
pub use crate::report::leaders::Observation;
use crate::source::remote::NotesSync;

pub const NOTES_REF: &str = "refs/notes/pgitops";

/// The notes the service shares with the remote, for [`crate::source::remote::Mirror::open`] and
/// [`crate::source::remote::sync_notes`].
pub const SYNC: NotesSync = NotesSync {
    notes_ref: NOTES_REF,
    merge: merge_docs,
};

/// One cluster of a run, as the apply builds it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterRecord {
    pub name: String,
    pub module: String,
    pub result: &'static str,
    pub actions: Vec<ActionResult>,
}

/// One apply run, as the apply builds it; stored in the note as a [`RunRecord`].
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub pgitops: &'static str,
    pub commit: String,
    pub from: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub ms: u64,
    /// `success`, `no-change`, `held` (actions await approval or a window), `failure`,
    /// `invalid` (the inventory was refused: nothing applied), or `unverified` (a commit of the
    /// range failed signature verification: see `unverified`).
    pub result: &'static str,
    pub clusters: Vec<ClusterRecord>,
    /// Why the inventory was refused: `file:line:column: message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Ranges held by a commit that failed signature verification (`[repository] verify`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<Unverified>,
    /// `pgitops approve` notes not counted (verification on, no allowed key signed them):
    /// `<action> on <sha> (<why>)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_approvals: Vec<String>,
    /// With `[ha]`: the instance that ran it and its leader term.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
}

/// A range held by an unverified commit: nothing of it applied to `clusters`, or (with
/// `unverified = "stop"`) applied only up to `stopped_at`.
#[derive(Debug, Clone, Serialize)]
pub struct Unverified {
    pub commit: String,
    /// `unsigned`, `unknown-key`, `bad-signature` or `tool-failed`.
    pub reason: String,
    /// `commit <sha> is not verified: <why>`.
    pub message: String,
    pub clusters: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
}

/// Which `pgitops serve` instance applied a run (`[ha]`), and in which leader term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub name: String,
    pub term: i64,
}

/// The note document on one commit. Every field has a default, so notes written by older
/// versions (or by hand) read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Note {
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// `pending`, `superseded` or the result of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// Earlier versions of this note that could not be read, verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
    /// What the service's leader watch saw while this was a cluster's last applied commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    /// Fields this version does not know, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A [`Run`] as stored in a note.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(default)]
    pub pgitops: String,
    #[serde(default)]
    pub commit: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub started: u64,
    #[serde(default)]
    pub ms: u64,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub clusters: Vec<ClusterRun>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A [`ClusterRecord`] as stored in a note; its actions are the executor's [`ActionResult`]s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterRun {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub module: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub actions: Vec<ActionResult>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl From<&Run> for RunRecord {
    fn from(run: &Run) -> RunRecord {
        // Through JSON, so the stored record is exactly what `Run` serializes to.
        let value = serde_json::to_value(run).expect("run serializes");
        serde_json::from_value(value).expect("a serialized run reads as a record")
    }
}

/// An approval given with `pgitops approve`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Approval {
    pub action: String,
    #[serde(default)]
    pub by: String,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub at: u64,
    /// An armored SSH or OpenPGP signature over the commit and the action
    /// ([`crate::source::approval::payload`]); with commit verification on, only a signed
    /// approval counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Note {
    /// Reads a note's text. Text that is not a note document is kept under `unreadable`.
    pub fn parse(text: &str) -> Note {
        if text.trim().is_empty() {
            return Note::default();
        }
        serde_json::from_str(text).unwrap_or_else(|_| Note {
            unreadable: vec![text.to_string()],
            ..Note::default()
        })
    }

    /// The note's text (pretty JSON).
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).expect("note serializes")
    }

    /// Adds what `theirs` lacks of `ours`: runs, approvals, observations and unreadable texts
    /// once each, in
    /// order; ours' status, superseded_by, remark and unknown fields where it has them.
    pub fn merge(mut self, ours: Note) -> Note {
        fn union<T: PartialEq>(list: &mut Vec<T>, more: Vec<T>) {
            for item in more {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
        union(&mut self.runs, ours.runs);
        union(&mut self.approvals, ours.approvals);
        union(&mut self.unreadable, ours.unreadable);
        union(&mut self.observations, ours.observations);
        self.status = ours.status.or(self.status);
        self.superseded_by = ours.superseded_by.or(self.superseded_by);
        self.remark = ours.remark.or(self.remark);
        self.other.extend(ours.other);
        self
    }
}

/// The note on `commit` (empty if there is none). An unreadable note comes back with its text
/// under `unreadable`, so writing the document back keeps it.
pub fn load(repo: &Repository, commit: Oid) -> Result<Note, git2::Error> {
    match repo.find_note(Some(NOTES_REF), commit) {
        Ok(n) => Ok(Note::parse(&String::from_utf8_lossy(n.message_bytes()))),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(Note::default()),
        Err(e) => Err(e),
    }
}

fn write(repo: &Repository, commit: Oid, note: &Note) -> Result<(), git2::Error> {
    let sig = Signature::now("pgitops", "pgitops@localhost")?;
    repo.note(&sig, &sig, Some(NOTES_REF), commit, &note.to_text(), true)?;
    Ok(())
}

/// Changes the note on `commit` and writes it back.
fn update(
    repo: &Repository,
    commit: Oid,
    change: impl FnOnce(&mut Note) -> bool,
) -> Result<bool, git2::Error> {
    let mut note = load(repo, commit)?;
    let changed = change(&mut note);
    if changed {
        write(repo, commit, &note)?;
    }
    Ok(changed)
}

/// Appends `run` to the note on its commit.
pub fn append(repo: &Repository, run: &Run) -> Result<(), git2::Error> {
    let oid = Oid::from_str(&run.commit)?;
    update(repo, oid, |n| {
        n.runs.push(RunRecord::from(run));
        n.status = Some(run.result.to_string());
        true
    })
    .map(drop)
}

/// Records an approval of `action` on `commit` (idempotent: another approval of the action is
/// added only when it carries a signature the note does not have yet).
pub fn approve(repo: &Repository, commit: Oid, approval: Approval) -> Result<bool, git2::Error> {
    update(repo, commit, |n| {
        let new = !n.approvals.iter().any(|a| {
            a.action == approval.action
                && (approval.signature.is_none() || a.signature == approval.signature)
        });
        if new {
            n.approvals.push(approval);
        }
        new
    })
}

/// Action ids approved in the note of `commit`.
pub fn approvals(repo: &Repository, commit: Oid) -> Vec<String> {
    approval_records(repo, commit)
        .into_iter()
        .map(|a| a.action)
        .collect()
}

/// The approvals in the note of `commit`, with who, when and their signatures.
pub fn approval_records(repo: &Repository, commit: Oid) -> Vec<Approval> {
    load(repo, commit).unwrap_or_default().approvals
}

/// Merges two versions of one note's text (see [`Note::merge`]); neither side's entries, nor an
/// unreadable text, are lost.
pub fn merge_docs(theirs: &str, ours: &str) -> String {
    Note::parse(theirs).merge(Note::parse(ours)).to_text()
}

/// Marks `commit` as being applied (`"status": "pending"`).
pub fn mark_pending(repo: &Repository, commit: Oid) -> Result<(), git2::Error> {
    update(repo, commit, |n| {
        n.status = Some("pending".into());
        true
    })
    .map(drop)
}

/// Marks an intermediate commit as superseded by the cumulative apply of `by`.
pub fn mark_superseded(repo: &Repository, commit: Oid, by: &str) -> Result<(), git2::Error> {
    update(repo, commit, |n| {
        n.status = Some("superseded".into());
        n.superseded_by = Some(by.to_string());
        true
    })
    .map(drop)
}

/// Adds a remark to the note of `commit` (e.g. a force push that rewrote applied history).
pub fn remark(repo: &Repository, commit: Oid, text: &str) -> Result<(), git2::Error> {
    update(repo, commit, |n| {
        n.remark = Some(text.to_string());
        true
    })
    .map(drop)
}

/// Adds the leader watch's `observation` to the note of `commit` (once: the same observation
/// twice is one).
pub fn observe(
    repo: &Repository,
    commit: Oid,
    observation: Observation,
) -> Result<(), git2::Error> {
    update(repo, commit, |n| {
        let new = !n.observations.contains(&observation);
        if new {
            n.observations.push(observation);
        }
        new
    })
    .map(drop)
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod tests;
