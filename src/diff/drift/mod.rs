//! Drift (pure): what a cluster's live state contradicts in the inventory of its last applied
//! commit, field by field.
//!
//! In: what the inventory declares (users, databases and their definitions from the plan a
//! resync would run; the rendered HBA and pgbouncer files; `pg_parameters`) and what the nodes
//! have now (typed facts the native executor's `drift` observation reads). Out: a [`Drift`]
//! per cluster, a list of [`Item`]s `{object, host, field, expected, live}`. Only what the
//! inventory declares or pgitops manages is compared: a role the inventory does not name is no
//! drift. Secrets never reach an item: a password (or a pgbouncer userlist) that differs is an
//! item with `redacted: true` and neither value.
//!
//! The comparisons live in [`objects`] (roles), [`databases`] (databases, schemas, extensions,
//! default privileges), [`files`] (HBA files, pgbouncer files, `ALTER SYSTEM` parameters) and
//! [`password`] (a declared password against the stored verifier).

pub mod databases;
pub mod files;
pub mod objects;
pub mod password;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One difference: `object` (`user app`, `database shop`, `hba`, `parameter work_mem`, ...) on
/// `host` when it is per instance; `field` (`connlimit`, `line`, `value`, ...); what the
/// inventory expects and what is live (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub field: String,
    pub expected: Option<String>,
    pub live: Option<String>,
    /// A secret differs: neither value is shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl Item {
    pub fn new(
        object: impl Into<String>,
        field: &str,
        expected: Option<String>,
        live: Option<String>,
    ) -> Item {
        Item {
            object: object.into(),
            host: None,
            field: field.into(),
            expected,
            live,
            redacted: false,
        }
    }

    /// A secret that differs: named, never shown.
    pub fn secret(object: impl Into<String>, field: &str) -> Item {
        Item {
            redacted: true,
            ..Item::new(object, field, None, None)
        }
    }

    pub fn on(mut self, host: &str) -> Item {
        self.host = Some(host.into());
        self
    }

    /// `user app connlimit` / `hba 127.0.0.11`: the item in a summary.
    pub fn label(&self) -> String {
        match (&self.host, self.field.as_str()) {
            (Some(h), "line" | "file") => format!("{} {h}", self.object),
            (Some(h), _) => format!("{} {} on {h}", self.object, self.field),
            (None, _) => format!("{} {}", self.object, self.field),
        }
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = self
            .host
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        if self.redacted {
            return write!(f, "{}{on}: {} differs", self.object, self.field);
        }
        let show = |v: &Option<String>| {
            v.as_ref()
                .map_or("(absent)".to_string(), |v| format!("{v:?}"))
        };
        match (self.field.as_str(), &self.expected, &self.live) {
            ("line", None, Some(l)) => write!(f, "{}{on}: + {l}", self.object),
            ("line", Some(l), None) => write!(f, "{}{on}: - {l}", self.object),
            _ => write!(
                f,
                "{}{on}: {} expected {}, live {}",
                self.object,
                self.field,
                show(&self.expected),
                show(&self.live)
            ),
        }
    }
}

/// One cluster's drift against the inventory of `commit` (its last applied). `error`: the check
/// could not run (no primary answered, the inventory does not load, never applied).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub cluster: String,
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not checked, and no error: the cluster was never applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_applied: bool,
    pub items: Vec<Item>,
}

impl Drift {
    /// A cluster that was never applied: nothing to compare.
    pub fn never_applied(cluster: &str) -> Drift {
        Drift {
            cluster: cluster.into(),
            never_applied: true,
            ..Drift::default()
        }
    }

    /// The distinct drifted objects (an object per host counts once per host).
    pub fn objects(&self) -> usize {
        let set: BTreeSet<(&str, Option<&str>)> = self
            .items
            .iter()
            .map(|i| (i.object.as_str(), i.host.as_deref()))
            .collect();
        set.len()
    }

    /// A forge status description (at most 140 characters): `3 objects drifted: user app
    /// connlimit, hba 127.0.0.11, parameter work_mem`.
    pub fn summary(&self) -> String {
        if let Some(e) = &self.error {
            return clip(&format!("drift check failed: {e}"));
        }
        let n = self.objects();
        if n == 0 {
            return "no drift".into();
        }
        let mut labels: Vec<String> = Vec::new();
        for i in &self.items {
            let l = match (&i.host, i.object.starts_with("parameter ")) {
                (Some(_), true) => i.object.clone(),
                _ => i.label(),
            };
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        let noun = if n == 1 { "object" } else { "objects" };
        clip(&format!("{n} {noun} drifted: {}", labels.join(", ")))
    }

    /// The text report of this cluster.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let at = self
            .commit
            .as_deref()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        if self.never_applied {
            let _ = writeln!(t, "{}: never applied, nothing to compare", self.cluster);
            return t;
        }
        match (&self.error, self.items.is_empty()) {
            (Some(e), true) => {
                let _ = writeln!(t, "{} (applied {at}): not checked: {e}", self.cluster);
            }
            (None, true) => {
                let _ = writeln!(t, "{} (applied {at}): no drift", self.cluster);
            }
            (e, false) => {
                let n = self.objects();
                let noun = if n == 1 { "object" } else { "objects" };
                let _ = writeln!(t, "{} (applied {at}): {n} {noun} drifted", self.cluster);
                for i in &self.items {
                    let _ = writeln!(t, "  {i}");
                }
                if let Some(e) = e {
                    let _ = writeln!(t, "  not all checked: {e}");
                }
            }
        }
        t
    }
}

/// At most 140 characters (a forge's description limit), cut with an ellipsis.
fn clip(s: &str) -> String {
    if s.chars().count() <= 140 {
        return s.to_string();
    }
    let mut out: String = s.chars().take(139).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_names_each_object_once_and_fits_a_status() {
        let d = Drift {
            cluster: "pg-t".into(),
            commit: Some("a".repeat(40)),
            items: vec![
                Item::new("user app", "connlimit", Some("5".into()), Some("7".into())),
                Item::new(
                    "hba",
                    "line",
                    None,
                    Some("host all all 0.0.0.0/0 trust".into()),
                )
                .on("127.0.0.11"),
                Item::new("hba", "line", Some("local all postgres ident".into()), None)
                    .on("127.0.0.11"),
                Item::new(
                    "parameter work_mem",
                    "value",
                    Some("64MB".into()),
                    Some("1GB".into()),
                )
                .on("127.0.0.11"),
                Item::secret("user app", "password"),
            ],
            ..Drift::default()
        };
        assert_eq!(d.objects(), 3);
        assert_eq!(
            d.summary(),
            "3 objects drifted: user app connlimit, hba 127.0.0.11, parameter work_mem, user app password"
        );
        let text = d.text();
        assert!(
            text.contains("user app: connlimit expected \"5\", live \"7\""),
            "{text}"
        );
        assert!(
            text.contains("hba on 127.0.0.11: + host all all 0.0.0.0/0 trust"),
            "{text}"
        );
        assert!(text.contains("user app: password differs"), "{text}");
        let many = Drift {
            items: (0..50)
                .map(|i| Item::new(format!("user u{i}"), "login", None, None))
                .collect(),
            ..d
        };
        assert_eq!(many.summary().chars().count(), 140);
        let json = serde_json::to_value(&many.items[0]).unwrap();
        assert!(
            json.get("redacted").is_none() && json.get("host").is_none(),
            "{json}"
        );
    }
}
