//! Ops: one function per CLI verb, shared with the daemon. The edge where IO meets the pure
//! stages: open the repository, read and load each revision, run diff and plan, and hand back a
//! result the caller renders. Errors carry context (anyhow) and map to exit codes in the CLI.

pub mod apply;
mod apply_record;
pub mod drift;
pub mod executor;
pub mod loads;
pub mod plan;
pub mod pulls;
pub mod records;
pub mod render;
pub mod validate;
pub mod verified;

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::inventory::{self, Diagnostic, Inventory, InventoryFiles};
use crate::source::{Repo, SourceError};

/// Where the inventory lives, and whether its commits must be signed.
#[derive(Debug, Clone, Default)]
pub struct RepoOptions {
    pub repo: PathBuf,
    /// A file (`pigsty.yml`) or a directory in the Ansible split layout.
    pub inventory: String,
    /// Where apply state lives; default `<git dir>/pgitops`.
    pub state_dir: Option<PathBuf>,
    /// Commit signature verification (`[repository] verify`; off by default).
    pub verify: crate::source::verify::Settings,
}

impl RepoOptions {
    pub fn state_dir(&self, repo: &Repo) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| repo.git_dir().join("pgitops"))
    }

    pub fn open(&self) -> Result<Repo> {
        Repo::open(&self.repo)
            .with_context(|| format!("opening the repository at {}", self.repo.display()))
    }
}

/// One revision's inventory: loaded (possibly with validation errors), or the parse errors.
pub type Loaded = inventory::Loaded;

/// The errors that refuse a revision: parse errors, or validation errors.
pub fn errors(loaded: &Loaded) -> Vec<Diagnostic> {
    match loaded {
        Ok(inv) => inv.errors().cloned().collect(),
        Err(d) => d.clone(),
    }
}

/// Reads the inventory files of `commit`. `missing_is_empty` turns an absent inventory into
/// `None` (the base of the commit that first adds it) instead of an error.
pub fn read_revision(
    repo: &Repo,
    opts: &RepoOptions,
    commit: &str,
    missing_is_empty: bool,
) -> Result<Option<InventoryFiles>> {
    match repo.inventory(commit, &opts.inventory) {
        Ok(f) => Ok(Some(f)),
        Err(SourceError::NotFound { .. }) if missing_is_empty => Ok(None),
        Err(e) => Err(e).context("reading the inventory"),
    }
}

/// Loads files read by [`read_revision`] (pure; safe to run on another thread).
pub fn load_files(files: Option<&InventoryFiles>, commit: &str) -> Loaded {
    match files {
        Some(files) => inventory::load(files, commit),
        None => Ok(Inventory::empty(commit)),
    }
}

/// Reads and loads one revision.
pub fn load_revision(
    repo: &Repo,
    opts: &RepoOptions,
    commit: &str,
    missing_is_empty: bool,
) -> Result<Loaded> {
    Ok(load_files(
        read_revision(repo, opts, commit, missing_is_empty)?.as_ref(),
        commit,
    ))
}
