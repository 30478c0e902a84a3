//! Named entries of list variables (`pg_users`, `pg_databases`, `pg_services`): each entry by
//! its name, sharing the parsed list rather than copying it, with its location on demand.

use std::collections::HashSet;
use std::sync::Arc;

use serde_yaml_ng::Value;

use super::diag::{Diagnostic, Severity};
use super::positions::Seg;
use super::yaml::scalar_text;
use super::{HostVars, Origin};

/// A named entry of a list such as `pg_users`; `def` is the entry as written (a string entry
/// becomes `{name: <string>}`).
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    /// The list the entry is in (shared with the variable, not copied), and its index.
    values: Arc<Value>,
    index: usize,
    /// `{name: ...}` for an entry written as a plain string.
    expanded: Option<Value>,
    /// Where the list is written.
    list: Arc<Origin>,
}

impl PartialEq for Named {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.def() == other.def()
    }
}

impl Named {
    /// The entry's definition as a mapping value.
    pub fn def(&self) -> &Value {
        self.expanded.as_ref().unwrap_or(&self.values[self.index])
    }

    /// The entry's location (built on demand: only diagnostics need it).
    pub fn origin(&self) -> Origin {
        let mut path = self.list.path.clone();
        path.push(Seg::Index(self.index));
        Origin {
            file: self.list.file.clone(),
            path,
        }
    }
}

/// Reads list variables of named entries (`pg_users`, ...), concatenated; the first entry of a
/// name wins, as in Pigsty's lookups. A plain string entry is shorthand for `{name: ...}`.
pub fn named_list(vars: &HostVars, keys: &[&str], diags: &mut Vec<Diagnostic>) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for key in keys {
        let Some(var) = vars.get(key) else { continue };
        let items = match var.value.as_ref() {
            Value::Sequence(s) => s,
            Value::Null => continue,
            _ => {
                diags.push(Diagnostic::error_at(
                    &var.origin,
                    format!("`{key}` must be a list"),
                ));
                continue;
            }
        };
        for (i, item) in items.iter().enumerate() {
            let named = |name: String, expanded: Option<Value>| Named {
                name,
                values: var.value.clone(),
                index: i,
                expanded,
                list: var.origin.clone(),
            };
            let here = |msg: String| {
                let o = named(String::new(), None).origin();
                Diagnostic::new(Severity::Error, &o.file, o.path, msg)
            };
            let (name, expanded) = match item {
                Value::String(s) => (
                    s.clone(),
                    Some(Value::Mapping(
                        [(Value::from("name"), Value::from(s.as_str()))]
                            .into_iter()
                            .collect(),
                    )),
                ),
                Value::Mapping(m) => match m.get("name").map(|n| (n, scalar_text(n))) {
                    Some((_, Some(n))) => (n, None),
                    Some((n, None)) if !n.is_null() => {
                        let mut d = here(format!("`name` of a `{key}` entry must be a string"));
                        d.yaml_path.push(super::positions::Seg::Key("name".into()));
                        d.path = super::positions::display_path(&d.yaml_path);
                        diags.push(d);
                        continue;
                    }
                    _ => {
                        diags.push(here(format!("each `{key}` entry needs a `name`")));
                        continue;
                    }
                },
                _ => {
                    diags.push(here(format!(
                        "each `{key}` entry must be a mapping with a `name`"
                    )));
                    continue;
                }
            };
            if !seen.insert(name.clone()) {
                let mut d = here(format!("`{key}` lists {name:?} more than once; the first entry is used, as Pigsty does"));
                d.severity = Severity::Warning;
                diags.push(d);
                continue;
            }
            out.push(named(name, expanded));
        }
    }
    out
}
