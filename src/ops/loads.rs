//! Loaded revisions, shared between the two sides of a plan and kept between plans.
//!
//! A revision's inventory is a pure function of its files, so a loaded [`Inventory`] can be
//! shared: by both sides of a plan whose revisions hold the same inventory files, and, in the
//! service, from one reconcile to the next ([`LoadCache`], keyed by commit and inventory
//! location), so that a new commit costs one load instead of two. Only the revision named in
//! diagnostics differs between sharers; [`errors`] and [`warnings`] relabel them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::inventory::{Diagnostic, Inventory};

/// One revision, loaded (possibly with validation errors) and shareable, or its parse errors.
pub type Shared = Result<Arc<Inventory>, Vec<Diagnostic>>;

/// The errors that refuse `revision`: parse errors, or validation errors.
pub fn errors(loaded: &Shared, revision: &str) -> Vec<Diagnostic> {
    let found: Vec<&Diagnostic> = match loaded {
        Ok(inv) => inv.errors().collect(),
        Err(d) => d.iter().collect(),
    };
    relabel(found, revision)
}

/// The warnings of `revision`.
pub fn warnings(inv: &Inventory, revision: &str) -> Vec<Diagnostic> {
    relabel(inv.warnings().collect(), revision)
}

fn relabel(found: Vec<&Diagnostic>, revision: &str) -> Vec<Diagnostic> {
    found
        .into_iter()
        .map(|d| {
            let mut d = d.clone();
            d.revision = revision.to_string();
            d
        })
        .collect()
}

/// The most recently used loads, at most `capacity` of them (the service keeps two: the last
/// applied revision and the newest).
pub struct LoadCache {
    capacity: usize,
    /// Oldest first.
    entries: Mutex<VecDeque<(String, Shared)>>,
}

impl LoadCache {
    pub fn new(capacity: usize) -> Self {
        LoadCache {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn key(commit: &str, location: &str) -> String {
        format!("{commit}:{location}")
    }

    /// The load of `commit`'s inventory at `location`, if kept.
    pub fn get(&self, commit: &str, location: &str) -> Option<Shared> {
        let key = Self::key(commit, location);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = entries.iter().position(|(k, _)| *k == key)?;
        let hit = entries.remove(i).expect("found above");
        let loaded = hit.1.clone();
        entries.push_back(hit);
        Some(loaded)
    }

    /// Keeps a load, forgetting the least recently used beyond the capacity.
    pub fn put(&self, commit: &str, location: &str, loaded: &Shared) {
        let key = Self::key(commit, location);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != key);
        entries.push_back((key, loaded.clone()));
        while entries.len() > self.capacity {
            entries.pop_front();
        }
    }

    /// How many loads are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[path = "loads_tests.rs"]
mod tests;
