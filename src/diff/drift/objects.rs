//! Drift of roles (pure): a declared role against its live catalog facts, and the helpers the
//! database comparison ([`super::databases`]) shares.
//!
//! In: the name, its inventory definition (a `pg_users` / `pg_default_roles` entry) and the
//! live [`LiveRole`] (`None` when it does not exist). Out: [`Item`]s. Compared, as the executor
//! converges them: the flags it declares (`login` true unless declared false), `connlimit`,
//! `expire_at` (a date; `expire_in` only as "set", since its date depends on the day of the
//! apply), memberships granted or revoked, per-role `parameters`, the comment (Pigsty's
//! `business user <name>` when none), and the password (see [`super::password`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use super::password::{self, Verdict};
use super::Item;
use crate::inventory::fields::ROLE_FLAGS;
use crate::render::sql::default_user_comment;

/// A role as the catalogs have it. `Debug` never shows the verifier.
#[derive(Clone, Default, Deserialize)]
pub struct LiveRole {
    pub name: String,
    #[serde(default)]
    pub flags: BTreeMap<String, bool>,
    pub connlimit: i64,
    /// `YYYY-MM-DD` of `rolvaliduntil` (UTC), `infinity`, or none.
    pub valid_until: Option<String>,
    pub password: Option<String>,
    pub comment: Option<String>,
    #[serde(default)]
    pub member_of: Vec<String>,
    /// `name=value` of `ALTER ROLE ... SET` (in every database).
    #[serde(default)]
    pub settings: Vec<String>,
}

impl std::fmt::Debug for LiveRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveRole({})", self.name)
    }
}

pub(super) fn bool_of(d: &Mapping, k: &str) -> Option<bool> {
    d.get(k).and_then(Value::as_bool)
}

pub(super) fn int_of(d: &Mapping, k: &str) -> Option<i64> {
    d.get(k).and_then(Value::as_i64)
}

pub(super) fn str_of<'a>(d: &'a Mapping, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str)
}

/// A list entry (`roles`, `schemas`, `extensions`): its name, state (default `first`) and map.
pub(super) fn entries<'a>(
    d: &'a Mapping,
    key: &str,
    first: &'a str,
) -> Vec<(String, &'a str, Option<&'a Mapping>)> {
    let Some(Value::Sequence(items)) = d.get(key) else {
        return vec![];
    };
    items
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some((s.clone(), first, None)),
            Value::Mapping(m) => {
                let name = str_of(m, "name")?.to_string();
                Some((name, str_of(m, "state").unwrap_or(first), Some(m)))
            }
            _ => None,
        })
        .collect()
}

/// A GUC value as `ALTER ... SET` stores it: strings as written, numbers in decimal, booleans
/// `on`/`off`, lists joined with `, `. `None`: `DEFAULT` (the setting is reset).
pub fn guc_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.eq_ignore_ascii_case("default") => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "on" } else { "off" }.into()),
        Value::Sequence(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => Some(String::new()),
    }
}

/// Compares GUC values the way they read: list separators and quotes ignored, booleans by sense.
pub fn same_guc(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        let s: String = s
            .split(',')
            .map(|p| p.trim().trim_matches('"').to_string())
            .collect::<Vec<_>>()
            .join(",");
        match s.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => "on".into(),
            "off" | "false" | "no" => "off".into(),
            _ => s,
        }
    };
    norm(a) == norm(b)
}

/// A declared `connlimit` against the live one.
pub(super) fn connlimit(object: &str, def: &Mapping, live: i64, out: &mut Vec<Item>) {
    if let Some(n) = int_of(def, "connlimit").filter(|n| *n != live) {
        out.push(Item::new(
            object,
            "connlimit",
            Some(n.to_string()),
            Some(live.to_string()),
        ));
    }
}

/// The declared `comment` (Pigsty's default when none is) against the live one.
pub(super) fn comment(
    object: &str,
    def: &Mapping,
    default: String,
    live: &Option<String>,
    out: &mut Vec<Item>,
) {
    let want = str_of(def, "comment").map_or(default, str::to_string);
    if live.as_deref() != Some(want.as_str()) {
        out.push(Item::new(object, "comment", Some(want), live.clone()));
    }
}

/// `parameters` (name to YAML value) against live `name=value` settings.
pub(super) fn settings(
    object: &str,
    declared: Option<&Value>,
    live: &[String],
    out: &mut Vec<Item>,
) {
    let Some(Value::Mapping(m)) = declared else {
        return;
    };
    let live: BTreeMap<&str, &str> = live.iter().filter_map(|s| s.split_once('=')).collect();
    for (k, v) in m {
        let Some(k) = k.as_str() else { continue };
        let want = guc_text(v);
        let have = live.get(k).map(|s| s.to_string());
        let same = match (&want, &have) {
            (Some(a), Some(b)) => same_guc(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.push(Item::new(object, &format!("parameter {k}"), want, have));
        }
    }
}

fn flag_items(object: &str, def: &Mapping, live: &LiveRole, out: &mut Vec<Item>) {
    for flag in ROLE_FLAGS {
        let want = match (flag, bool_of(def, flag)) {
            (_, Some(b)) => b,
            // Pigsty's users log in unless told otherwise.
            ("login", None) => true,
            _ => continue,
        };
        let have = live.flags.get(flag).copied();
        if have != Some(want) {
            out.push(Item::new(
                object,
                flag,
                Some(want.to_string()),
                have.map(|b| b.to_string()),
            ));
        }
    }
}

/// A declared role against the live one. `password`: the password is compared (users; the
/// default roles keep the credentials they were created with).
pub fn role(name: &str, def: &Mapping, live: Option<&LiveRole>, with_password: bool) -> Vec<Item> {
    let object = format!("user {name}");
    let mut out = Vec::new();
    let Some(live) = live else {
        return exists(object, true, false);
    };
    flag_items(&object, def, live, &mut out);
    connlimit(&object, def, live.connlimit, &mut out);
    let until = live.valid_until.clone();
    if let Some(at) = str_of(def, "expire_at") {
        let want = at.get(..10).unwrap_or(at).to_string();
        if until.as_deref() != Some(want.as_str()) {
            out.push(Item::new(&object, "valid until", Some(want), until));
        }
    } else if def.contains_key("expire_in") && until.is_none() {
        out.push(Item::new(
            &object,
            "valid until",
            Some("set (expire_in)".into()),
            None,
        ));
    }
    if with_password {
        if let Some(declared) = str_of(def, "password") {
            if password::check(name, declared, live.password.as_deref()) != Verdict::Same {
                out.push(Item::secret(&object, "password"));
            }
        }
    }
    settings(&object, def.get("parameters"), &live.settings, &mut out);
    comment(
        &object,
        def,
        default_user_comment(name),
        &live.comment,
        &mut out,
    );
    for (granted, state, _) in entries(def, "roles", "grant") {
        let member = live.member_of.contains(&granted);
        let want = state == "grant";
        if member != want {
            out.push(Item::new(
                &object,
                &format!("member of {granted}"),
                Some(want.to_string()),
                Some(member.to_string()),
            ));
        }
    }
    out
}

/// A declared role: name, definition, the live role, whether its password is compared.
pub type DeclaredRole<'a> = (&'a str, &'a Mapping, Option<&'a LiveRole>, bool);

/// [`role`] for each of `list`, in order. Checking a plaintext password recomputes its SCRAM
/// keys (4096 rounds of HMAC by default): the list is shared among the machine's cores.
pub fn roles(list: &[DeclaredRole]) -> Vec<Item> {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = list.len().div_ceil(cores).max(1);
    let one = |part: &[DeclaredRole]| -> Vec<Item> {
        part.iter()
            .flat_map(|(name, def, live, pw)| role(name, def, *live, *pw))
            .collect()
    };
    if cores == 1 || list.len() < 16 {
        return one(list);
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = list
            .chunks(chunk)
            .map(|p| s.spawn(move || one(p)))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("comparing roles"))
            .collect()
    })
}

/// An object (`user x`, `database y`) that exists where it should not, or is missing.
pub fn exists(object: String, declared: bool, live: bool) -> Vec<Item> {
    if declared == live {
        return vec![];
    }
    vec![Item::new(
        object,
        "exists",
        Some(declared.to_string()),
        Some(live.to_string()),
    )]
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) fn map(yaml: &str) -> Mapping {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn app() -> LiveRole {
        let flags = ROLE_FLAGS
            .iter()
            .map(|f| (f.to_string(), *f == "login" || *f == "inherit"));
        LiveRole {
            name: "app".into(),
            flags: flags.collect(),
            connlimit: 5,
            password: Some(postgres_protocol::password::scram_sha_256(b"App.Pass")),
            comment: Some("the app".into()),
            member_of: vec!["dbrole_readonly".into()],
            settings: vec!["work_mem=8MB".into()],
            ..LiveRole::default()
        }
    }

    #[test]
    fn a_role_as_declared_has_no_drift_and_each_change_is_one_field() {
        let def = map("{ name: app, password: App.Pass, connlimit: 5, roles: [ dbrole_readonly, { name: old, state: absent } ], parameters: { work_mem: 8MB }, comment: the app }");
        assert_eq!(role("app", &def, Some(&app()), true), vec![]);
        let mut live = app();
        live.connlimit = 7;
        live.flags.insert("createdb".into(), true); // not declared: not drift
        live.flags.insert("login".into(), false);
        live.member_of = vec!["old".into()];
        live.settings = vec!["work_mem=1GB".into()];
        live.password = Some(postgres_protocol::password::scram_sha_256(b"Hand.Made"));
        let items = role("app", &def, Some(&live), true);
        let fields: Vec<&str> = items.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "login",
                "connlimit",
                "password",
                "parameter work_mem",
                "member of dbrole_readonly",
                "member of old"
            ]
        );
        assert_eq!(items[1].expected.as_deref(), Some("5"));
        assert_eq!(items[1].live.as_deref(), Some("7"));
        let shown = format!(
            "{:?}{}",
            items,
            items.iter().map(|i| i.to_string()).collect::<String>()
        );
        assert!(
            !shown.contains("Hand.Made") && !shown.contains("SCRAM"),
            "{shown}"
        );
        assert!(items[2].redacted && items[2].to_string().ends_with("password differs"));
        let gone = role("app", &def, None, true);
        assert_eq!(
            (gone[0].field.as_str(), gone[0].live.as_deref()),
            ("exists", Some("false"))
        );
    }

    #[test]
    fn many_roles_are_compared_in_their_order() {
        let defs: Vec<(String, Mapping)> = (0..40)
            .map(|i| {
                (
                    format!("u{i}"),
                    map(&format!("{{ name: u{i}, connlimit: {i} }}")),
                )
            })
            .collect();
        let live = app();
        let list: Vec<DeclaredRole> = defs
            .iter()
            .map(|(n, d)| (n.as_str(), d, Some(&live), false))
            .collect();
        let items = roles(&list);
        let limits: Vec<&str> = items
            .iter()
            .filter(|i| i.field == "connlimit")
            .map(|i| i.expected.as_deref().unwrap())
            .collect();
        let want: Vec<String> = (0..40).filter(|i| *i != 5).map(|i| i.to_string()).collect();
        assert_eq!(limits, want);
    }

    #[test]
    fn guc_values_compare_as_they_read() {
        assert!(same_guc("\"$user\", public", "\"$user\",public"));
        assert!(same_guc("on", "true") && !same_guc("64MB", "1GB"));
        assert_eq!(guc_text(&Value::Bool(false)).as_deref(), Some("off"));
        assert_eq!(guc_text(&Value::String("DEFAULT".into())), None);
    }
}
