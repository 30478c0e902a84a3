//! Diff of named lists (`pg_users`, `pg_databases`, `pg_services`) with Pigsty's `state` rules.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_yaml_ng::{Mapping, Value};

use super::{Change, Entity, Op};
use crate::inventory::module::Module;
use crate::inventory::named::Named;

pub fn state(def: &Value) -> &str {
    def.get("state").and_then(Value::as_str).unwrap_or("create")
}

/// Keys whose values differ between two mappings (`name` excluded), sorted.
pub fn changed_fields(old: &Value, new: &Value) -> Vec<String> {
    let empty = Mapping::new();
    let o = old.as_mapping().unwrap_or(&empty);
    let n = new.as_mapping().unwrap_or(&empty);
    let keys: BTreeSet<String> = o
        .keys()
        .chain(n.keys())
        .filter_map(crate::inventory::yaml::scalar_text)
        .collect();
    keys.into_iter()
        .filter(|k| k != "name" && o.get(k.as_str()) != n.get(k.as_str()))
        .collect()
}

/// How entries that disappear from the list are treated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Pigsty leaves the object in place (users, databases): reported as unmanaged.
    LeftInPlace,
    /// The whole set is re-rendered (services): the object goes away.
    Pruned,
}

pub struct Lists<'a> {
    pub module: Module,
    pub cluster: &'a str,
    pub entity: Entity,
    pub removal: Removal,
}

impl Lists<'_> {
    pub fn diff(&self, old: &[Named], new: &[Named], out: &mut Vec<Change>) {
        let change =
            |name: &str, op: Op| Change::new(self.module, self.cluster, self.entity, name, op);
        // The first entry of a name, as a scan would find it (named_list keeps names unique).
        let mut by_name: HashMap<&str, &Named> = HashMap::with_capacity(old.len());
        for o in old {
            by_name.entry(o.name.as_str()).or_insert(o);
        }
        for n in new {
            let o = by_name.get(n.name.as_str()).copied();
            let ns = state(n.def());
            let os = o.map(|o| state(o.def()));
            let c = match (os, ns) {
                (Some("absent"), "absent") => None,
                (_, "absent") => Some(change(&n.name, Op::Delete).fields(vec!["state".into()])),
                (None, _) | (Some("absent"), _) => {
                    Some(change(&n.name, Op::Create).fields(changed_fields(&Value::Null, n.def())))
                }
                (Some(_), _) => {
                    let fields = changed_fields(o.expect("matched Some").def(), n.def());
                    (!fields.is_empty()).then(|| change(&n.name, Op::Update).fields(fields))
                }
            };
            if let Some(c) = c {
                out.push(c.values(o.map(|o| o.def()), Some(n.def())));
            }
        }
        let kept: HashSet<&str> = new.iter().map(|n| n.name.as_str()).collect();
        for o in old.iter().filter(|o| !kept.contains(o.name.as_str())) {
            let op = match (self.removal, state(o.def())) {
                (_, "absent") => continue,
                (Removal::LeftInPlace, _) => Op::Unmanaged,
                (Removal::Pruned, _) => Op::Delete,
            };
            out.push(change(&o.name, op).values(Some(o.def()), None));
        }
    }
}
