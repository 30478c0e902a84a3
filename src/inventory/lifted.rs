//! Variable values shared between revisions loaded together.
//!
//! In: a parsed part of an inventory (one entry of `all.children`, or the skeleton around them,
//! see `chunks`): a mapping of groups. Out: the part with every value that the Ansible layer
//! turns into a variable replaced by a marker, and the values themselves in `Arc`s; [`Lifted`]
//! turns markers back into those `Arc`s when `ansible::Tree` reads the document, so the
//! revisions that share a part share its values (memory) and the diff can compare them by
//! pointer. Pure: no IO.

use std::sync::Arc;

use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::Value;

/// Variable values lifted out of parsed chunks (see [`lift`]), shared by every revision that
/// has the chunk. In a joined document, a lifted value's place holds a marker: a tagged number
/// (YAML parsing here never yields a tagged value) naming the chunk and the index.
#[derive(Debug, Default)]
pub struct Lifted {
    parts: Vec<Vec<Arc<Value>>>,
}

const MARK: &str = "pgitops-lifted";

impl Lifted {
    /// The value to keep for `v`: the shared one if `v` is a marker, else `v` itself.
    pub fn value(&self, v: Value) -> Arc<Value> {
        match v {
            Value::Tagged(t) if t.tag == MARK => t
                .value
                .as_u64()
                .and_then(|n| self.parts.get((n >> 32) as usize)?.get(n as u32 as usize))
                .cloned()
                .unwrap_or_else(|| Arc::new(Value::Tagged(t))),
            v => Arc::new(v),
        }
    }

    /// `v` with every marker replaced by a copy of its value (for comparisons in tests).
    pub fn resolve(&self, v: Value) -> Value {
        match v {
            Value::Tagged(t) if t.tag == MARK => Value::clone(&self.value(Value::Tagged(t))),
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

/// Moves the values that the Ansible layer turns into variables (the places where
/// `ansible::Tree` builds a vars layer: a group's `vars`, its hosts' mappings, and the same in
/// its `children`) out of a part's groups into `out`, leaving markers.
pub(super) fn lift(chunk: &mut Value, part: usize, out: &mut Vec<Arc<Value>>) {
    fn mark(v: &mut Value, part: usize, out: &mut Vec<Arc<Value>>) {
        let at = ((part as u64) << 32) | out.len() as u64;
        let marker = Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(MARK),
            value: Value::from(at),
        }));
        out.push(Arc::new(std::mem::replace(v, marker)));
    }
    fn group(g: &mut Value, part: usize, out: &mut Vec<Arc<Value>>) {
        let Value::Mapping(m) = g else { return };
        for (k, sub) in m.iter_mut() {
            match (k.as_str(), sub) {
                (Some("vars"), Value::Mapping(vars)) => {
                    vars.values_mut().for_each(|v| mark(v, part, out))
                }
                (Some("hosts"), Value::Mapping(hosts)) => {
                    for h in hosts.values_mut() {
                        if let Value::Mapping(vars) = h {
                            vars.values_mut().for_each(|v| mark(v, part, out))
                        }
                    }
                }
                (Some("children"), Value::Mapping(children)) => {
                    children.values_mut().for_each(|c| group(c, part, out))
                }
                _ => {}
            }
        }
    }
    if let Value::Mapping(m) = chunk {
        m.values_mut().for_each(|g| group(g, part, out));
    }
}

/// The values lifted from each part, by part index (the marker's upper half).
pub(super) fn lifted(parts: Vec<Vec<Arc<Value>>>) -> Lifted {
    Lifted { parts }
}
