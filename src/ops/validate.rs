//! `pgitops validate`: load one revision and report its errors and warnings.

use anyhow::Result;

use super::{errors, load_revision, Loaded, RepoOptions};
use crate::inventory::Diagnostic;

pub struct Validation {
    pub commit: String,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Hosts and PGSQL clusters found, for the summary line.
    pub hosts: usize,
    pub clusters: usize,
    /// The loaded revision, for a caller that wants more than the summary (or to skip freeing
    /// it before the process exits).
    pub loaded: Loaded,
}

pub fn validate(opts: &RepoOptions, rev: &str) -> Result<Validation> {
    let repo = opts.open()?;
    let commit = repo.commit(rev)?;
    let loaded = load_revision(&repo, opts, &commit.id, false)?;
    let errors = errors(&loaded);
    let (warnings, hosts, clusters) = match &loaded {
        Ok(inv) => (
            inv.warnings().cloned().collect(),
            inv.tree.hosts.len(),
            inv.model.pgsql.len(),
        ),
        Err(_) => (vec![], 0, 0),
    };
    Ok(Validation {
        commit: commit.id,
        errors,
        warnings,
        hosts,
        clusters,
        loaded,
    })
}
