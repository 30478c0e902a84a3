//! Ops: one function per CLI verb, shared with the daemon. The edge where IO meets the pure
//! stages: open the repository, read and load each revision, run diff and plan, and hand back a
//! result the caller renders. Errors carry context (anyhow) and map to exit codes in the CLI.

pub mod plan;
pub mod validate;

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::inventory::{self, Diagnostic, Inventory};
use crate::source::{Repo, SourceError};

/// Where the inventory lives.
#[derive(Debug, Clone)]
pub struct RepoOptions {
    pub repo: PathBuf,
    /// A file (`pigsty.yml`) or a directory in the Ansible split layout.
    pub inventory: String,
}

impl RepoOptions {
    pub fn open(&self) -> Result<Repo> {
        Repo::open(&self.repo).with_context(|| format!("opening the repository at {}", self.repo.display()))
    }
}

/// One revision's inventory: loaded (possibly with validation errors) or refused at parse time.
pub enum Loaded {
    Inventory(Inventory),
    Unparsable(Vec<Diagnostic>),
}

impl Loaded {
    pub fn errors(&self) -> Vec<Diagnostic> {
        match self {
            Loaded::Inventory(inv) => inv.errors().cloned().collect(),
            Loaded::Unparsable(d) => d.clone(),
        }
    }
}

/// Reads and loads the inventory of `commit`. `missing_is_empty` treats an absent inventory as
/// an empty one (the base of the commit that first adds it).
pub fn load_revision(repo: &Repo, opts: &RepoOptions, commit: &str, missing_is_empty: bool) -> Result<Loaded> {
    let files = match repo.inventory(commit, &opts.inventory) {
        Ok(f) => f,
        Err(SourceError::NotFound { .. }) if missing_is_empty => return Ok(Loaded::Inventory(Inventory::empty(commit))),
        Err(e) => return Err(e).context("reading the inventory"),
    };
    Ok(match inventory::load(&files, commit) {
        Ok(inv) => Loaded::Inventory(inv),
        Err(diags) => Loaded::Unparsable(diags),
    })
}
