//! Typed, field-named access to one inventory mapping (a `pg_users` or `pg_databases` entry) and
//! to its name lists (`roles`, `schemas`, `extensions`).
//!
//! In: the YAML mapping and the path used to name its fields in errors (`pg_users[u].connlimit`).
//! Out: values of the expected YAML type (absent and null both mean "leave untouched"), names
//! already quoted as identifiers, or an `SqlError::Invalid` naming the field.

use serde_yaml_ng::{Mapping, Value};

use super::out::Out;
use super::quote::{ident, literal};
use super::{invalid, Result};

/// Typed access to one inventory mapping; `path` prefixes field names in errors.
pub(super) struct Def<'a> {
    map: &'a Mapping,
    path: String,
}

impl<'a> Def<'a> {
    pub(super) fn new(map: &'a Mapping, path: String, name: &str) -> Result<Self> {
        let def = Def { map, path };
        match def.str("name")? {
            Some(n) if n != name => Err(invalid(def.field("name"), "the entry's own name")),
            _ => Ok(def),
        }
    }
    /// The variables of a host (`pg_default_schemas`, ...): fields are named by their key.
    pub(super) fn vars(map: &'a Mapping) -> Self {
        Def {
            map,
            path: String::new(),
        }
    }
    pub(super) fn field(&self, key: &str) -> String {
        match self.path.is_empty() {
            true => key.to_string(),
            false => format!("{}.{key}", self.path),
        }
    }
    /// Absent and null are the same: "leave untouched".
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
    pub(super) fn typed<T>(
        &self,
        key: &str,
        want: &str,
        f: fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        let err = || invalid(self.field(key), want);
        self.get(key).map(|v| f(v).ok_or_else(err)).transpose()
    }
    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a YAML boolean (true/false, unquoted)", Value::as_bool)
    }
    pub(super) fn int(&self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "a YAML integer (unquoted)", Value::as_i64)
    }
    pub(super) fn str(&self, key: &str) -> Result<Option<&'a str>> {
        self.typed(key, "a string", Value::as_str)
    }
    pub(super) fn ident(&self, key: &str) -> Result<Option<String>> {
        self.str(key)?
            .map(|v| ident(&self.field(key), v))
            .transpose()
    }
    fn list(&self, key: &str) -> Result<&'a [Value]> {
        let list = self.typed(key, "a list", |v| v.as_sequence().map(Vec::as_slice))?;
        Ok(list.unwrap_or(&[]))
    }
    pub(super) fn connlimit(&self) -> Result<Option<i64>> {
        match self.int("connlimit")? {
            Some(n) if n < -1 || n > i64::from(i32::MAX) => {
                Err(invalid(self.field("connlimit"), "an integer >= -1"))
            }
            n => Ok(n),
        }
    }
    /// `COMMENT ON <target> IS ...`, falling back to `<default>` when absent.
    pub(super) fn comment(&self, out: &mut Out, target: &str, default: String) -> Result<()> {
        let text = self.str("comment")?.map_or(default, str::to_string);
        let text = literal(&self.field("comment"), &text)?;
        out.sql(format!("COMMENT ON {target} IS {text};"));
        Ok(())
    }
}

/// A list entry (`roles`, `schemas`, `extensions`): a bare name, or an object with `name` and an
/// optional `state` (default: the first of `states`).
pub(super) struct Entry<'a> {
    pub(super) ident: String,
    pub(super) state: &'a str,
    obj: Option<Def<'a>>,
}

impl<'a> Def<'a> {
    /// The list under `key`, each entry parsed; states are validated.
    pub(super) fn entries(&self, key: &str, states: &[&'static str]) -> Result<Vec<Entry<'a>>> {
        let parse = |(i, v): (usize, &'a Value)| {
            let field = format!("{}[{i}]", self.field(key));
            let obj = match v {
                Value::String(name) => {
                    let ident = ident(&format!("{field}.name"), name)?;
                    return Ok(Entry {
                        ident,
                        state: states[0],
                        obj: None,
                    });
                }
                Value::Mapping(map) => Def { map, path: field },
                _ => return Err(invalid(field, "a name or an object with `name`")),
            };
            let ident = obj
                .ident("name")?
                .ok_or_else(|| invalid(obj.field("name"), "a name"))?;
            let state = obj.str("state")?.unwrap_or(states[0]);
            if !states.contains(&state) {
                let want = format!("one of {}", states.join(", "));
                return Err(invalid(obj.field("state"), want));
            }
            Ok(Entry {
                ident,
                state,
                obj: Some(obj),
            })
        };
        self.list(key)?.iter().enumerate().map(parse).collect()
    }
}

impl<'a> Entry<'a> {
    /// A field of the object form; `None` for the bare-name form.
    pub(super) fn opt<T>(
        &self,
        f: impl FnOnce(&Def<'a>) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        self.obj.as_ref().map_or(Ok(None), f)
    }
}
