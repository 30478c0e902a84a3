//! Inventory: Pigsty/Ansible YAML to a typed model of the fleet.
//!
//! In: [`InventoryFiles`] (the text of one `pigsty.yml`, or of a split layout's `hosts.yml`,
//! `group_vars/*` and `host_vars/*`), read from a commit by `source`. Out: an [`Inventory`] with
//! the effective variables of every host ([`ansible`]), the typed per-module model ([`model`]) and
//! the diagnostics of [`validate`], each located at file, line and column. Pure: no IO.

pub mod ansible;
mod charset;
pub mod chunks;
pub mod default_privilege;
pub mod defaults;
pub mod diag;
pub mod fields;
pub mod hba_rule;
pub mod lifted;
pub mod model;
pub mod module;
pub mod named;
pub mod positions;
pub mod reuse;
pub mod secrets;
pub mod validate;
pub mod yaml;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_yaml_ng::Value;

pub use diag::{Diagnostic, Severity};
pub use model::Model;
pub use positions::Seg;

/// Where a variable's value is written: a file and the YAML path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub path: Vec<Seg>,
}

/// A variable's value and where it came from. Values are shared, never deep-copied per host.
#[derive(Debug, Clone)]
pub struct Var {
    pub value: Arc<Value>,
    pub origin: Arc<Origin>,
}

pub type Vars = BTreeMap<String, Var>;

/// Anything variables can be looked up in: one layer, or a host's effective variables.
pub trait VarSource {
    fn var(&self, key: &str) -> Option<&Var>;
}

impl VarSource for Vars {
    fn var(&self, key: &str) -> Option<&Var> {
        self.get(key)
    }
}

/// A host's effective variables: the layers that apply to it (`all.vars`, its groups in
/// precedence order, its own), shared with every other host, looked up from the top. Nothing is
/// copied per host.
#[derive(Debug, Clone, Default)]
pub struct HostVars {
    /// Lowest precedence first.
    layers: Vec<Arc<Vars>>,
}

impl HostVars {
    pub fn new(layers: Vec<Arc<Vars>>) -> Self {
        HostVars { layers }
    }

    /// The layers, lowest precedence first.
    pub fn layers(&self) -> &[Arc<Vars>] {
        &self.layers
    }

    pub fn get(&self, key: &str) -> Option<&Var> {
        self.layers.iter().rev().find_map(|l| l.get(key))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every variable name that is set, sorted.
    pub fn keys(&self) -> std::collections::BTreeSet<&str> {
        self.layers
            .iter()
            .flat_map(|l| l.keys().map(String::as_str))
            .collect()
    }
}

impl VarSource for HostVars {
    fn var(&self, key: &str) -> Option<&Var> {
        self.get(key)
    }
}

/// A file of the inventory as read from a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// All files that make one inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryFiles {
    /// `pigsty.yml`, or the split layout's `hosts.yml` / `inventory.yml`.
    pub main: SourceFile,
    /// `group_vars/<group>.yml` (or files of `group_vars/<group>/`, in name order).
    pub group_vars: Vec<(String, SourceFile)>,
    /// `host_vars/<host>.yml` (or files of `host_vars/<host>/`, in name order).
    pub host_vars: Vec<(String, SourceFile)>,
}

impl InventoryFiles {
    pub fn single(path: &str, text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        InventoryFiles {
            main: SourceFile {
                path: path.to_string(),
                text: text.to_string(),
            },
            group_vars: vec![],
            host_vars: vec![],
        }
    }

    pub fn all(&self) -> Vec<&SourceFile> {
        let mut out = vec![&self.main];
        out.extend(self.group_vars.iter().map(|(_, f)| f));
        out.extend(self.host_vars.iter().map(|(_, f)| f));
        out
    }
}

/// One revision of the inventory, loaded and validated.
#[derive(Debug)]
pub struct Inventory {
    pub revision: String,
    pub tree: ansible::Tree,
    pub model: Model,
    /// Errors and warnings, located and sorted (errors first).
    pub diagnostics: Vec<Diagnostic>,
}

impl Inventory {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The inventory before the first commit: no hosts, nothing to diff against.
    pub fn empty(revision: &str) -> Inventory {
        Inventory {
            revision: revision.to_string(),
            tree: ansible::Tree::default(),
            model: Model::default(),
            diagnostics: vec![],
        }
    }

    pub fn global(&self, name: &str) -> Option<&Value> {
        self.tree.all_vars.get(name).map(|v| v.value.as_ref())
    }
}

/// Loads one revision. A file that does not parse is an `Err` with its location; everything
/// else (including validation errors) comes back inside the [`Inventory`] as diagnostics.
pub fn load(files: &InventoryFiles, revision: &str) -> Result<Inventory, Vec<Diagnostic>> {
    let main = yaml::parse(&files.main.path, &files.main.text);
    load_parsed(files, main, Arc::default(), revision)
}

/// Loads two revisions (each as [`load`] would), parsing the parts their main files have in
/// common once ([`chunks`]), on two threads; the work of PGSQL clusters whose inputs are the
/// same in both is done once ([`reuse`]).
pub fn load_pair(
    (a, rev_a): (&InventoryFiles, &str),
    (b, rev_b): (&InventoryFiles, &str),
) -> (Loaded, Loaded) {
    let t = std::time::Instant::now();
    let parsed = chunks::parse_all(&[(&a.main.path, &a.main.text), (&b.main.path, &b.main.text)]);
    let shared = parsed.shared;
    let mut mains = parsed.files.into_iter();
    let (main_a, main_b) = (mains.next(), mains.next());
    let (main_a, main_b) = (main_a.expect("two files"), main_b.expect("two files"));
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        "parsed both main files"
    );
    // Trees first (both threads), then what is the same in both, then models and validation.
    let (tree_a, tree_b) = std::thread::scope(|s| {
        let old = s.spawn(|| resolve_tree(a, main_a, shared.clone(), rev_a));
        let new = resolve_tree(b, main_b, shared.clone(), rev_b);
        (old.join().expect("loading thread panicked"), new)
    });
    let t = std::time::Instant::now();
    let same = match (&tree_a, &tree_b) {
        (Ok((ta, _)), Ok((tb, _))) => Some(Arc::new(reuse::Same::new(ta, tb))),
        _ => None,
    };
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        shared = same.as_ref().map_or(0, |s| s.len()),
        "compared the PGSQL clusters of both revisions"
    );
    let reuse_a = reuse::Reuse::new(same.clone(), false);
    let reuse_b = reuse::Reuse::new(same, true);
    std::thread::scope(|s| {
        let old = s.spawn(|| tree_a.map(|t| finish(a, t, &reuse_a, rev_a)));
        let new = tree_b.map(|t| finish(b, t, &reuse_b, rev_b));
        (old.join().expect("loading thread panicked"), new)
    })
}

/// A loaded revision, or its parse errors.
pub type Loaded = Result<Inventory, Vec<Diagnostic>>;

/// [`load`] with the main file already parsed.
fn load_parsed(
    files: &InventoryFiles,
    main: Result<Value, yaml::ParseError>,
    shared: Arc<chunks::Lifted>,
    revision: &str,
) -> Loaded {
    let tree = resolve_tree(files, main, shared, revision)?;
    Ok(finish(files, tree, &reuse::Reuse::none(), revision))
}

/// The stage log of loading a revision.
fn lap(revision: &str, started: std::time::Instant, stage: &str) {
    tracing::debug!(
        revision,
        stage,
        ms = started.elapsed().as_secs_f64() * 1e3,
        rss_mb = rss_mb(),
        "inventory load"
    )
}

/// The first half of a load: the other files parsed, the tree read and resolved (and when
/// that started, for the stage log).
fn resolve_tree(
    files: &InventoryFiles,
    main: Result<Value, yaml::ParseError>,
    shared: Arc<chunks::Lifted>,
    revision: &str,
) -> Result<(ansible::Tree, std::time::Instant), Vec<Diagnostic>> {
    let t = std::time::Instant::now();
    let mut parse_errors = Vec::new();
    let mut located = |parsed: Result<Value, yaml::ParseError>| match parsed {
        Ok(v) => Some(v),
        Err(e) => {
            let mut d = Diagnostic::new(Severity::Error, &e.file, vec![], e.message.clone());
            d.line = e.line;
            d.column = e.column;
            d.revision = revision.to_string();
            parse_errors.push(d);
            None
        }
    };
    let main = located(main);
    let mut parse = |f: &SourceFile| located(yaml::parse(&f.path, &f.text));
    let groups: Vec<_> = files
        .group_vars
        .iter()
        .map(|(g, f)| (g, f, parse(f)))
        .collect();
    let hosts: Vec<_> = files
        .host_vars
        .iter()
        .map(|(h, f)| (h, f, parse(f)))
        .collect();
    if !parse_errors.is_empty() {
        return Err(parse_errors);
    }
    lap(revision, t, "parsed");
    let main = main.expect("parsed");
    let mut tree = ansible::Tree::from_shared_document(&files.main.path, main, shared);
    for (group, file, value) in groups {
        let layer = overlay_layer(file, value.expect("parsed"), &mut tree.diags);
        tree.overlay_group_vars(group, layer);
    }
    for (host, file, value) in hosts {
        let layer = overlay_layer(file, value.expect("parsed"), &mut tree.diags);
        tree.overlay_host_vars(host, layer);
    }
    tree.resolve();
    lap(revision, t, "resolved");
    Ok((tree, t))
}

/// The second half of a load: the model, validation and the located diagnostics.
fn finish(
    files: &InventoryFiles,
    (mut tree, t): (ansible::Tree, std::time::Instant),
    reuse: &reuse::Reuse,
    revision: &str,
) -> Inventory {
    let (model, mut diagnostics) = model::Model::build_with(&tree, reuse);
    lap(revision, t, "modelled");
    diagnostics.append(&mut tree.diags);
    diagnostics.extend(validate::validate_with(&tree, &model, reuse));
    lap(revision, t, "validated");
    diag::locate(&mut diagnostics, &files.all(), revision);
    lap(revision, t, "located");
    Inventory {
        revision: revision.to_string(),
        tree,
        model,
        diagnostics,
    }
}

fn overlay_layer(file: &SourceFile, value: Value, diags: &mut Vec<Diagnostic>) -> Vars {
    match value {
        Value::Mapping(m) => ansible::vars_layer(&file.path, &[], m, diags),
        Value::Null => Vars::new(),
        _ => {
            diags.push(Diagnostic::new(
                Severity::Error,
                &file.path,
                vec![],
                "a vars file must be a mapping of variables",
            ));
            Vars::new()
        }
    }
}

/// Resident memory in MiB, for debug logs (0 where /proc is unavailable).
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| (pages * 4096) >> 20)
        .unwrap_or(0)
}
