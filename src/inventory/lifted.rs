//! Variable mappings shared between revisions loaded together.
//!
//! In: a parsed part of an inventory (one entry of `all.children`, or the skeleton around them,
//! see `chunks`): a mapping of groups, the file it is in and where it sits. Out: the part with
//! every mapping that the Ansible layer turns into a layer of variables (a group's `vars`, each
//! host's mapping) replaced by a marker, and those mappings already read as variables, in
//! `Arc`s ([`Layer`]); [`Lifted`] gives the layer back when `ansible::Tree` reads the document.
//! So the revisions that share a part share its variables (built once, on the parsing threads;
//! memory), the comparisons of later stages can tell them by pointer, and a part copied for a
//! second revision copies only its few markers. Pure: no IO.

use std::sync::Arc;

use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::Value;

use super::ansible::layer_vars;
use super::yaml::scalar_text;
use super::{Diagnostic, Origin, Seg, Vars};

/// A lifted mapping of variables.
#[derive(Debug)]
pub struct Layer {
    /// Each key (as parsed) and its shared value, in file order.
    pub entries: Vec<(Value, Arc<Value>)>,
    /// Where the mapping is (file, YAML path), and the entries read as variables there, with
    /// the diagnostics of reading them.
    pub at: Origin,
    pub vars: Arc<Vars>,
    pub diags: Vec<Diagnostic>,
}

/// Variable mappings lifted out of parsed chunks (see [`lift`]), shared by every revision that
/// has the chunk. In a joined document, a lifted mapping's place holds a marker: a tagged number
/// (YAML parsing here never yields a tagged value) naming the chunk and the index.
#[derive(Debug, Default)]
pub struct Lifted {
    parts: Vec<Vec<Arc<Layer>>>,
}

const MARK: &str = "pgitops-lifted";

impl Lifted {
    /// The layer `v` stands for, when `v` is a marker.
    pub fn layer(&self, v: &Value) -> Option<&Arc<Layer>> {
        match v {
            Value::Tagged(t) if t.tag == MARK => {
                let n = t.value.as_u64()?;
                self.parts.get((n >> 32) as usize)?.get(n as u32 as usize)
            }
            _ => None,
        }
    }

    /// `v` with every marker replaced by a copy of its mapping (for comparisons in tests).
    pub fn resolve(&self, v: Value) -> Value {
        if let Some(layer) = self.layer(&v) {
            return Value::Mapping(
                layer
                    .entries
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::clone(v)))
                    .collect(),
            );
        }
        match v {
            Value::Sequence(items) => {
                Value::Sequence(items.into_iter().map(|i| self.resolve(i)).collect())
            }
            Value::Mapping(m) => Value::Mapping(
                m.into_iter()
                    .map(|(k, v)| (self.resolve(k), self.resolve(v)))
                    .collect(),
            ),
            v => v,
        }
    }
}

/// Moves the mappings that the Ansible layer turns into variables (a group's `vars`, its hosts'
/// mappings, and the same in its `children`) out of a part's groups into `out`, leaving markers.
/// `at` names the part's place: `file`, and the YAML path of the mapping of groups (`[]` for a
/// whole document or a skeleton, `[all, children]` for a chunk).
pub(super) fn lift(chunk: &mut Value, part: usize, at: &Origin, out: &mut Vec<Arc<Layer>>) {
    struct Lift<'a> {
        part: usize,
        file: &'a str,
        out: &'a mut Vec<Arc<Layer>>,
    }
    impl Lift<'_> {
        fn mark(&mut self, v: &mut Value, path: Vec<Seg>) {
            let at = ((self.part as u64) << 32) | self.out.len() as u64;
            let marker = Value::Tagged(Box::new(TaggedValue {
                tag: Tag::new(MARK),
                value: Value::from(at),
            }));
            let Value::Mapping(m) = std::mem::replace(v, marker) else {
                return;
            };
            let entries: Vec<(Value, Arc<Value>)> =
                m.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
            let mut diags = Vec::new();
            let vars = layer_vars(
                self.file,
                &path,
                entries.iter().map(|(k, v)| (k, v.clone())),
                &mut diags,
            );
            let at = Origin {
                file: self.file.to_string(),
                path,
            };
            self.out.push(Arc::new(Layer {
                entries,
                at,
                vars: Arc::new(vars),
                diags,
            }));
        }
        fn group(&mut self, g: &mut Value, path: &[Seg]) {
            let Value::Mapping(m) = g else { return };
            for (k, sub) in m.iter_mut() {
                let Some(field) = k.as_str() else { continue };
                let within = |more: &[&str]| {
                    let mut p = path.to_vec();
                    p.push(Seg::Key(field.to_string()));
                    p.extend(more.iter().map(|s| Seg::Key(s.to_string())));
                    p
                };
                match (field, sub) {
                    ("vars", vars @ Value::Mapping(_)) => self.mark(vars, within(&[])),
                    ("hosts", Value::Mapping(hosts)) => {
                        for (h, v) in hosts.iter_mut() {
                            match scalar_text(h) {
                                Some(name) if v.is_mapping() => self.mark(v, within(&[&name])),
                                _ => {}
                            }
                        }
                    }
                    ("children", Value::Mapping(children)) => {
                        for (c, v) in children.iter_mut() {
                            if let Some(name) = scalar_text(c) {
                                self.group(v, &within(&[&name]));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let mut l = Lift {
        part,
        file: &at.file,
        out,
    };
    if let Value::Mapping(m) = chunk {
        for (name, g) in m.iter_mut() {
            if let Some(name) = scalar_text(name) {
                let mut path = at.path.clone();
                path.push(Seg::Key(name));
                l.group(g, &path);
            }
        }
    }
}

/// The layers lifted from each part, by part index (the marker's upper half).
pub(super) fn lifted(parts: Vec<Vec<Arc<Layer>>>) -> Lifted {
    Lifted { parts }
}
