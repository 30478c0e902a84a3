//! The Ansible layer: groups, hosts and effective variables.
//!
//! In: parsed YAML of the inventory (one file, or `hosts.yml` plus `group_vars/` and `host_vars/`
//! files). Out: [`Tree`], with every group (own vars, hosts, children, depth) and every host with
//! its *effective* variables under Ansible precedence: `all.vars`, then the host's groups (direct
//! and ancestor) sorted by depth, `ansible_group_priority` and name, then host vars; later wins,
//! dicts and lists replace. Problems become diagnostics; nothing here does IO. A document joined
//! by `chunks` holds markers where mappings of variables were lifted out; they are read back as
//! the shared layers ([`Lifted`]).

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_yaml_ng::{Mapping, Value};

use super::diag::{Diagnostic, Severity};
use super::lifted::Lifted;
use super::positions::Seg;
use super::yaml::scalar_text;
use super::{HostVars, Origin, Var, Vars};

#[derive(Debug, Default, Clone)]
pub struct Group {
    pub name: String,
    pub vars: Arc<Vars>,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub parents: BTreeSet<String>,
    pub depth: usize,
    /// Where the group is first defined.
    pub origin: Option<Arc<Origin>>,
}

#[derive(Debug, Default, Clone)]
pub struct Host {
    pub name: String,
    /// Groups that list the host directly, in document order.
    pub groups: Vec<String>,
    /// Host-level variables (all occurrences merged, then `host_vars/` files).
    pub own: Arc<Vars>,
    /// Effective variables.
    pub vars: HostVars,
    pub origin: Option<Arc<Origin>>,
}

#[derive(Debug, Default)]
pub struct Tree {
    pub all_vars: Arc<Vars>,
    pub groups: BTreeMap<String, Group>,
    /// Hosts in first-seen order is not needed; sorted by key for determinism.
    pub hosts: BTreeMap<String, Host>,
    pub diags: Vec<Diagnostic>,
    /// Variable values parsed once for several revisions, while reading the document.
    shared: Arc<Lifted>,
}

fn key(s: &str) -> Seg {
    Seg::Key(s.to_string())
}

/// Builds a [`Vars`] layer from a mapping found at `path` in `file`.
pub fn vars_layer(file: &str, path: &[Seg], map: Mapping, diags: &mut Vec<Diagnostic>) -> Vars {
    layer_vars(
        file,
        path,
        map.into_iter().map(|(k, v)| (k, Arc::new(v))),
        diags,
    )
}

/// The variables of a mapping's entries (keys as parsed, values shared) found at `path` in
/// `file`; a key that is not a string is an error.
pub(super) fn layer_vars<K: Borrow<Value>>(
    file: &str,
    path: &[Seg],
    entries: impl IntoIterator<Item = (K, Arc<Value>)>,
    diags: &mut Vec<Diagnostic>,
) -> Vars {
    let mut out = Vars::new();
    for (k, value) in entries {
        let Some(name) = scalar_text(k.borrow()) else {
            diags.push(Diagnostic::new(
                Severity::Error,
                file,
                path.to_vec(),
                "variable names must be strings",
            ));
            continue;
        };
        let mut p = path.to_vec();
        p.push(Seg::Key(name.clone()));
        let origin = Arc::new(Origin {
            file: file.to_string(),
            path: p,
        });
        out.insert(name, Var { value, origin });
    }
    out
}

/// [`vars_layer`] for a mapping, or for a marker of one lifted out of the document into
/// `shared` (its variables as read when lifted, when that was at the same place); `None` for
/// anything else.
fn shared_vars_layer(
    shared: &Lifted,
    file: &str,
    path: &[Seg],
    v: Value,
    diags: &mut Vec<Diagnostic>,
) -> Option<Arc<Vars>> {
    if let Value::Mapping(map) = v {
        return Some(Arc::new(vars_layer(file, path, map, diags)));
    }
    let layer = shared.layer(&v)?;
    if layer.at.file == file && layer.at.path == path {
        diags.extend(layer.diags.iter().cloned());
        return Some(layer.vars.clone());
    }
    let entries = layer.entries.iter().map(|(k, v)| (k, v.clone()));
    Some(Arc::new(layer_vars(file, path, entries, diags)))
}

/// Adds `layer` to `target` (taking it whole when `target` is empty: revisions that share the
/// layer then share the map).
fn extend_vars(target: &mut Arc<Vars>, layer: Arc<Vars>) {
    if target.is_empty() {
        *target = layer;
    } else {
        let entries = layer.iter().map(|(k, v)| (k.clone(), v.clone()));
        Arc::make_mut(target).extend(entries);
    }
}

impl Tree {
    fn err(&mut self, file: &str, path: Vec<Seg>, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(Severity::Error, file, path, msg));
    }

    /// Reads the inventory document (`all:` plus, rarely, other top-level groups).
    pub fn from_document(file: &str, root: Value) -> Tree {
        Self::from_shared_document(file, root, Arc::default())
    }

    /// [`Tree::from_document`] for a document whose variable values were lifted into `shared`
    /// (by `chunks`, so that revisions share them).
    pub fn from_shared_document(file: &str, root: Value, shared: Arc<Lifted>) -> Tree {
        let mut tree = Tree {
            shared,
            ..Tree::default()
        };
        tree.read_document(file, root);
        tree.shared = Arc::default();
        tree
    }

    fn read_document(&mut self, file: &str, root: Value) {
        let tree = self;
        match root {
            Value::Mapping(mut m) => {
                // `all` first: other top-level keys are groups under it (as in Ansible), in
                // whatever order the file has them.
                let Some(all) = m.remove("all") else {
                    tree.err(file, vec![], "expected a mapping with the root key `all`");
                    return;
                };
                tree.read_group(file, vec![key("all")], "all", all, None);
                for (k, v) in m {
                    match scalar_text(&k).filter(|n| !n.is_empty()) {
                        Some(name) => {
                            let path = vec![Seg::Key(name.clone())];
                            tree.read_group(file, path, &name, v, Some("all"));
                        }
                        None => tree.err(
                            file,
                            vec![],
                            "a top-level key must be a group name (a plain string)",
                        ),
                    }
                }
            }
            Value::Null => tree.err(
                file,
                vec![],
                "the inventory is empty; expected a mapping with the root key `all`",
            ),
            _ => tree.err(file, vec![], "expected a mapping with the root key `all`"),
        }
    }

    fn read_group(
        &mut self,
        file: &str,
        path: Vec<Seg>,
        name: &str,
        v: Value,
        parent: Option<&str>,
    ) {
        let origin = Arc::new(Origin {
            file: file.to_string(),
            path: path.clone(),
        });
        let group = self
            .groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                origin: Some(origin.clone()),
                ..Group::default()
            });
        if let Some(p) = parent {
            group.parents.insert(p.to_string());
        }
        if let Some(p) = parent {
            let pg = self
                .groups
                .get_mut(p)
                .expect("parent group is created before its children");
            if !pg.children.iter().any(|c| c == name) {
                pg.children.push(name.to_string());
            }
        }
        let map = match v {
            Value::Null => return,
            Value::Mapping(m) => m,
            _ => {
                return self.err(
                    file,
                    path,
                    format!("group `{name}` must be a mapping with hosts, vars or children"),
                )
            }
        };
        for (k, sub) in map {
            let field = scalar_text(&k).unwrap_or_default();
            let mut p = path.clone();
            p.push(Seg::Key(field.clone()));
            match (field.as_str(), sub) {
                (_, Value::Null) => {}
                ("vars", vars @ (Value::Mapping(_) | Value::Tagged(_))) => {
                    let Some(layer) = shared_vars_layer(&self.shared, file, &p, vars, &mut self.diags) else {
                        self.err(file, p, format!("`vars` of group `{name}` must be a mapping"));
                        continue;
                    };
                    let target = if name == "all" {
                        &mut self.all_vars
                    } else {
                        &mut self.groups.get_mut(name).expect("created above").vars
                    };
                    extend_vars(target, layer);
                }
                ("hosts", Value::Mapping(hosts)) => self.read_hosts(file, &p, name, hosts),
                ("children", Value::Mapping(children)) => {
                    for (ck, cv) in children {
                        let Some(child) = scalar_text(&ck) else {
                            self.err(file, p.clone(), "group names must be strings");
                            continue;
                        };
                        if child == "all" || child == name {
                            self.err(file, p.clone(), format!("group `{child}` cannot be a child of `{name}`"));
                            continue;
                        }
                        let mut cp = p.clone();
                        cp.push(Seg::Key(child.clone()));
                        self.read_group(file, cp, &child, cv, Some(name));
                    }
                }
                ("vars" | "hosts" | "children", _) => self.err(file, p, format!("`{field}` of group `{name}` must be a mapping")),
                _ => self.err(file, p, format!("unexpected key `{field}` in group `{name}`; expected hosts, vars or children")),
            }
        }
    }

    fn read_hosts(&mut self, file: &str, path: &[Seg], group: &str, hosts: Mapping) {
        for (hk, hv) in hosts {
            let Some(host) = scalar_text(&hk) else {
                self.err(file, path.to_vec(), "host names must be strings");
                continue;
            };
            let mut hp = path.to_vec();
            hp.push(Seg::Key(host.clone()));
            let layer =
                match hv {
                    Value::Null => Arc::default(),
                    v => match shared_vars_layer(&self.shared, file, &hp, v, &mut self.diags) {
                        Some(layer) => layer,
                        None => {
                            self.err(
                        file,
                        hp,
                        format!("host `{host}` must map to its variables (a mapping) or nothing"),
                    );
                            continue;
                        }
                    },
                };
            let g = self.groups.get_mut(group).expect("group exists");
            if !g.hosts.contains(&host) {
                g.hosts.push(host.clone());
            }
            let entry = self.hosts.entry(host.clone()).or_insert_with(|| Host {
                name: host.clone(),
                origin: Some(Arc::new(Origin {
                    file: file.to_string(),
                    path: hp.clone(),
                })),
                ..Host::default()
            });
            if !entry.groups.iter().any(|g| g == group) {
                entry.groups.push(group.to_string());
            }
            if entry.own.is_empty() {
                entry.own = layer;
                continue;
            }
            for (name, var) in layer.iter() {
                if let Some(prev) = entry.own.get(name) {
                    if prev.value != var.value {
                        let first = super::positions::display_path(&prev.origin.path);
                        self.diags.push(Diagnostic::new(
                            Severity::Warning,
                            file,
                            var.origin.path.clone(),
                            format!("host `{host}` sets `{name}` differently in two groups (first at {first}); the later one wins, as in Ansible's parse order"),
                        ));
                    }
                }
                Arc::make_mut(&mut entry.own).insert(name.clone(), var.clone());
            }
        }
    }

    /// Overlays a `group_vars/<group>` file (it takes precedence over vars written inline).
    pub fn overlay_group_vars(&mut self, group: &str, layer: Vars) {
        if group == "all" {
            Arc::make_mut(&mut self.all_vars).extend(layer);
        } else if let Some(g) = self.groups.get_mut(group) {
            Arc::make_mut(&mut g.vars).extend(layer);
        }
    }

    /// Overlays a `host_vars/<host>` file.
    pub fn overlay_host_vars(&mut self, host: &str, layer: Vars) {
        if let Some(h) = self.hosts.get_mut(host) {
            Arc::make_mut(&mut h.own).extend(layer);
        }
    }

    /// Computes group depths and every host's effective variables.
    pub fn resolve(&mut self) {
        self.compute_depths();
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let mut groups: BTreeSet<String> = BTreeSet::new();
            let mut stack: Vec<String> = self.hosts[&name].groups.clone();
            while let Some(g) = stack.pop() {
                if g != "all" && groups.insert(g.clone()) {
                    stack.extend(self.groups[&g].parents.iter().cloned());
                }
            }
            let mut ordered: Vec<&Group> = groups.iter().map(|g| &self.groups[g]).collect();
            ordered.sort_by(|a, b| {
                (a.depth, priority(a), &a.name).cmp(&(b.depth, priority(b), &b.name))
            });
            let mut layers = vec![self.all_vars.clone()];
            layers.extend(
                ordered
                    .into_iter()
                    .filter(|g| !g.vars.is_empty())
                    .map(|g| g.vars.clone()),
            );
            let host = self.hosts.get_mut(&name).expect("listed above");
            layers.push(host.own.clone());
            host.vars = HostVars::new(layers);
        }
    }

    fn compute_depths(&mut self) {
        // Longest path from `all`; a cycle is reported and cut.
        let mut depth: BTreeMap<String, usize> = BTreeMap::new();
        let mut frontier = vec![("all".to_string(), 0usize)];
        let limit = self.groups.len() + 1;
        while let Some((g, d)) = frontier.pop() {
            if d > limit {
                let origin = self.groups[&g].origin.clone();
                let (file, path) = origin
                    .map(|o| (o.file.clone(), o.path.clone()))
                    .unwrap_or_default();
                self.err(
                    &file,
                    path,
                    format!("group `{g}` is its own ancestor (a cycle in children)"),
                );
                return;
            }
            if depth.get(&g).is_some_and(|&old| old >= d) && d > 0 {
                continue;
            }
            depth.insert(g.clone(), d);
            if let Some(group) = self.groups.get(&g) {
                frontier.extend(group.children.iter().map(|c| (c.clone(), d + 1)));
            }
        }
        for (g, d) in depth {
            if let Some(group) = self.groups.get_mut(&g) {
                group.depth = d;
            }
        }
    }
}

fn priority(g: &Group) -> i64 {
    g.vars
        .get("ansible_group_priority")
        .and_then(|v| v.value.as_i64())
        .unwrap_or(1)
}

#[cfg(test)]
#[path = "ansible_tests.rs"]
mod tests;
