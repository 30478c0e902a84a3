//! `pgitops validate`: load one revision and report its errors and warnings.

use anyhow::Result;

use super::{load_revision, Loaded, RepoOptions};
use crate::inventory::Diagnostic;

pub struct Validation {
    pub commit: String,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Hosts and PGSQL clusters found, for the summary line.
    pub hosts: usize,
    pub clusters: usize,
}

pub fn validate(opts: &RepoOptions, rev: &str) -> Result<Validation> {
    let repo = opts.open()?;
    let commit = repo.commit(rev)?;
    let loaded = load_revision(&repo, opts, &commit.id, false)?;
    let errors = loaded.errors();
    let (warnings, hosts, clusters) = match &loaded {
        Loaded::Inventory(inv) => (inv.warnings().cloned().collect(), inv.tree.hosts.len(), inv.model.pgsql.len()),
        Loaded::Unparsable(_) => (vec![], 0, 0),
    };
    Ok(Validation { commit: commit.id, errors, warnings, hosts, clusters })
}
