//! Work shared between two revisions loaded together ([`super::load_pair`]).
//!
//! In: both revisions' resolved trees. Out: which PGSQL clusters read exactly the same inputs in
//! both ([`Same`]), and for those, each cluster's users, databases, services and default
//! privileges (with the diagnostics of reading them) and its cluster checks, computed once for
//! both revisions. What that work reads is the cluster's name, its members' host names and
//! entries (origins), and every variable each member sees (every layer: `all.vars`, groups,
//! host). A cluster is the same when all of these are: the same members, and for each, the same
//! layers holding the same variable names with the same origins (file and YAML path) and the
//! same value *objects*. Values are one object in both revisions only where `chunks` lifted them
//! out of a part both revisions share (the same text), so any change in what a cluster reads,
//! `all.vars` included, means its work is done again for each revision. Shared results name
//! nodes by YAML path only; each revision locates them in its own text (`diag::locate`). The
//! second revision walks its clusters backwards, so that the two threads rarely wait for each
//! other. Pure: no IO.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use super::ansible::{Host, Tree};
use super::defaults::Privileges;
use super::diag::Diagnostic;
use super::named::Named;
use super::Vars;

/// What `Model::build` reads from a cluster's primary.
#[derive(Clone)]
pub struct PgParts {
    pub users: Vec<Named>,
    pub databases: Vec<Named>,
    pub services: Vec<Named>,
    pub default_privileges: Result<Privileges, String>,
    pub diags: Vec<Diagnostic>,
}

/// The PGSQL clusters whose work both revisions share, each with a place for its results.
#[derive(Default)]
pub struct Same {
    models: HashMap<String, OnceLock<PgParts>>,
    checks: HashMap<String, OnceLock<Vec<Diagnostic>>>,
}

/// Hosts by the PGSQL cluster they name (`pg_cluster`, when a string), in host order.
fn pg_members(tree: &Tree) -> BTreeMap<&str, Members<'_>> {
    let mut out: BTreeMap<&str, Members<'_>> = BTreeMap::new();
    for (name, host) in &tree.hosts {
        if let Some(c) = host.vars.get("pg_cluster").and_then(|v| v.value.as_str()) {
            out.entry(c).or_default().push((name, host));
        }
    }
    out
}

/// Members of a cluster in one revision: host names and hosts, in name order.
type Members<'a> = Vec<(&'a String, &'a Host)>;

/// The names of `clusters` (each with its members in both revisions) whose members are the same
/// hosts, each seeing the same variables.
fn same_clusters<'a>(clusters: &[(&'a str, &Members, &Members)]) -> Vec<&'a str> {
    let same_vars = |x: &Vars, y: &Vars| {
        std::ptr::eq(x, y)
            || x.len() == y.len()
                && x.iter().zip(y.iter()).all(|((kx, vx), (ky, vy))| {
                    kx == ky && Arc::ptr_eq(&vx.value, &vy.value) && vx.origin == vy.origin
                })
    };
    // Shared layers compared so far, by address (`all.vars`, groups' vars); a host's own layer
    // (the last) is its alone.
    let mut compared: HashMap<(*const Vars, *const Vars), bool> = HashMap::new();
    let mut same_host = |x: &Host, y: &Host| {
        let (lx, ly) = (x.vars.layers(), y.vars.layers());
        x.origin == y.origin
            && lx.len() == ly.len()
            && lx.iter().zip(ly).enumerate().all(|(i, (x, y))| {
                if i + 1 == lx.len() {
                    return same_vars(x, y);
                }
                *compared
                    .entry((Arc::as_ptr(x), Arc::as_ptr(y)))
                    .or_insert_with(|| same_vars(x, y))
            })
    };
    clusters
        .iter()
        .filter(|(_, xs, ys)| {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys.iter())
                    .all(|((hx, x), (hy, y))| hx == hy && same_host(x, y))
        })
        .map(|(name, _, _)| *name)
        .collect()
}

impl Same {
    /// The clusters of `a` and `b` whose work reads the same (on two threads: each indexes
    /// one tree, then compares half of the clusters).
    pub fn new(a: &Tree, b: &Tree) -> Same {
        let (ma, mb) = std::thread::scope(|s| {
            let ma = s.spawn(|| pg_members(a));
            let mb = pg_members(b);
            (ma.join().expect("indexing thread panicked"), mb)
        });
        let clusters: Vec<_> = ma
            .iter()
            .filter_map(|(name, xs)| Some((*name, xs, mb.get(name)?)))
            .collect();
        let (first, second) = clusters.split_at(clusters.len() / 2);
        let names: Vec<&str> = std::thread::scope(|s| {
            let other = s.spawn(|| same_clusters(second));
            let mut names = same_clusters(first);
            names.extend(other.join().expect("comparing thread panicked"));
            names
        });
        let mut same = Same::default();
        for name in names {
            same.models.insert(name.to_string(), OnceLock::new());
            same.checks.insert(name.to_string(), OnceLock::new());
        }
        same
    }

    /// How many clusters share their work.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

#[cfg(test)]
impl Same {
    /// The shared clusters, sorted.
    fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.models.keys().map(String::as_str).collect();
        n.sort();
        n
    }
}

/// One revision's view of [`Same`]: which work is shared, and its walking order.
#[derive(Default)]
pub struct Reuse {
    same: Option<Arc<Same>>,
    backwards: bool,
}

impl Reuse {
    /// Nothing shared: every cluster's work is done here.
    pub fn none() -> Self {
        Reuse::default()
    }

    pub fn new(same: Option<Arc<Same>>, backwards: bool) -> Self {
        Reuse { same, backwards }
    }

    /// `work(name)` for each of `names`, in that order; done once for both revisions where the
    /// cluster is the same in both.
    pub fn models(&self, names: &[&str], work: impl Fn(&str) -> PgParts) -> Vec<PgParts> {
        self.each(|s| &s.models, names, work)
    }

    /// As [`Reuse::models`], for the cluster checks of validation.
    pub fn checks(
        &self,
        names: &[&str],
        work: impl Fn(&str) -> Vec<Diagnostic>,
    ) -> Vec<Vec<Diagnostic>> {
        self.each(|s| &s.checks, names, work)
    }

    fn each<T: Clone>(
        &self,
        table: impl Fn(&Same) -> &HashMap<String, OnceLock<T>>,
        names: &[&str],
        work: impl Fn(&str) -> T,
    ) -> Vec<T> {
        let mut out: Vec<Option<T>> = names.iter().map(|_| None).collect();
        let mut order: Vec<usize> = (0..names.len()).collect();
        if self.backwards {
            order.reverse();
        }
        for i in order {
            let name = names[i];
            let cell = self.same.as_ref().and_then(|s| table(s).get(name));
            out[i] = Some(match cell {
                Some(cell) => cell.get_or_init(|| work(name)).clone(),
                None => work(name),
            });
        }
        out.into_iter().map(|v| v.expect("filled above")).collect()
    }
}

#[cfg(test)]
#[path = "reuse_tests.rs"]
mod tests;
