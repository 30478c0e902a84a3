//! Drift of databases (pure): a declared database against its live catalog facts.
//!
//! In: the name, its `pg_databases` entry and the live facts ([`LiveDatabase`] from
//! `pg_database`, [`LiveInner`] read inside it; `None` when it does not exist). Out: [`Item`]s.
//! Compared: its owner, the create-time options it declares (encoding, locale, collate, ctype,
//! tablespace: compared, never healed), `is_template`, `allowconn`, `revokeconn`, `connlimit`,
//! `parameters`, the comment (Pigsty's `business database <name>` when none), schemas and
//! extensions (present or absent as declared, the version when declared), and default
//! privileges for its owner when the cluster declares some. `template` is not compared: a
//! database does not remember the template it was copied from.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Mapping;

use super::objects::{bool_of, comment, connlimit, entries, guc_text, settings, str_of};
use super::Item;
use crate::render::sql::default_database_comment;

/// A database as `pg_database` has it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LiveDatabase {
    pub name: String,
    pub owner: String,
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    pub tablespace: String,
    pub is_template: bool,
    pub allowconn: bool,
    pub connlimit: i64,
    /// PUBLIC holds CONNECT (what `revokeconn: true` takes away).
    pub public_connect: bool,
    pub comment: Option<String>,
    /// `name=value` of `ALTER DATABASE ... SET`.
    #[serde(default)]
    pub settings: Vec<String>,
}

/// What is inside a database: schemas, extensions (name to version) and how many default
/// privilege entries its owner has.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LiveInner {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub extensions: BTreeMap<String, String>,
    #[serde(default)]
    pub owner_default_acl: i64,
}

/// A declared database against the live one; `inner` is read inside it (`None` when it does
/// not exist or refuses connections); `privileges`: the cluster declares default privileges.
pub fn database(
    name: &str,
    def: &Mapping,
    live: Option<&LiveDatabase>,
    inner: Option<&LiveInner>,
    privileges: bool,
) -> Vec<Item> {
    let object = format!("database {name}");
    let mut out = Vec::new();
    let Some(live) = live else {
        return super::objects::exists(object, true, false);
    };
    let mut text = |field: &str, want: Option<String>, have: &str| {
        if let Some(w) = want {
            if !w.eq_ignore_ascii_case(have) {
                out.push(Item::new(&object, field, Some(w), Some(have.to_string())));
            }
        }
    };
    let s = |k: &str| str_of(def, k).map(str::to_string);
    text("owner", s("owner"), &live.owner);
    text("encoding", s("encoding"), &live.encoding);
    text("lc_collate", s("lc_collate").or(s("locale")), &live.collate);
    text("lc_ctype", s("lc_ctype").or(s("locale")), &live.ctype);
    text("tablespace", s("tablespace"), &live.tablespace);
    let mut flag = |field: &str, want: Option<bool>, have: bool| {
        if want.is_some_and(|w| w != have) {
            out.push(Item::new(
                &object,
                field,
                want.map(|w| w.to_string()),
                Some(have.to_string()),
            ));
        }
    };
    flag("is_template", bool_of(def, "is_template"), live.is_template);
    flag("allowconn", bool_of(def, "allowconn"), live.allowconn);
    // `revokeconn: true` takes CONNECT from PUBLIC; false leaves it as it is.
    flag(
        "revokeconn",
        bool_of(def, "revokeconn").filter(|r| *r),
        !live.public_connect,
    );
    connlimit(&object, def, live.connlimit, &mut out);
    settings(&object, def.get("parameters"), &live.settings, &mut out);
    comment(
        &object,
        def,
        default_database_comment(name),
        &live.comment,
        &mut out,
    );
    let Some(inner) = inner else {
        return out;
    };
    for (schema, state, _) in entries(def, "schemas", "create") {
        let has = inner.schemas.contains(&schema);
        if has != (state == "create") {
            out.push(Item::new(
                format!("schema {name}.{schema}"),
                "exists",
                Some((state == "create").to_string()),
                Some(has.to_string()),
            ));
        }
    }
    for (ext, state, m) in entries(def, "extensions", "create") {
        let have = inner.extensions.get(&ext);
        let object = format!("extension {name}.{ext}");
        let want = state == "create";
        if have.is_some() != want {
            out.push(Item::new(
                object,
                "exists",
                Some(want.to_string()),
                Some(have.is_some().to_string()),
            ));
            continue;
        }
        let version = m.and_then(|m| m.get("version")).and_then(guc_text);
        if let (Some(v), Some(h)) = (version, have) {
            if &v != h {
                out.push(Item::new(object, "version", Some(v), Some(h.clone())));
            }
        }
    }
    if privileges && def.contains_key("owner") && inner.owner_default_acl == 0 {
        out.push(Item::new(
            &object,
            "default privileges for owner",
            Some("granted".into()),
            Some("none".into()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::objects::tests::map;
    use super::*;

    #[test]
    fn a_database_as_declared_has_no_drift_and_each_change_is_one_field() {
        let def = map("{ name: shop, owner: app, revokeconn: true, connlimit: 20, comment: the shop, schemas: [ app ], extensions: [ { name: pg_trgm, version: '1.6' }, { name: gone, state: absent } ] }");
        let live = LiveDatabase {
            name: "shop".into(),
            owner: "app".into(),
            encoding: "UTF8".into(),
            allowconn: true,
            connlimit: 20,
            comment: Some("the shop".into()),
            ..LiveDatabase::default()
        };
        let inner = LiveInner {
            schemas: vec!["public".into(), "app".into()],
            extensions: [("pg_trgm".to_string(), "1.6".to_string())].into(),
            owner_default_acl: 3,
        };
        assert_eq!(
            database("shop", &def, Some(&live), Some(&inner), true),
            vec![]
        );
        let mut l2 = live.clone();
        l2.connlimit = 1;
        l2.public_connect = true;
        let mut i2 = inner.clone();
        i2.schemas.retain(|s| s != "app");
        i2.extensions.insert("pg_trgm".into(), "1.5".into());
        i2.extensions.insert("gone".into(), "1.0".into());
        i2.owner_default_acl = 0;
        let items = database("shop", &def, Some(&l2), Some(&i2), true);
        let got: Vec<(String, String)> = items
            .iter()
            .map(|i| (i.object.clone(), i.field.clone()))
            .collect();
        let want = [
            ("database shop", "revokeconn"),
            ("database shop", "connlimit"),
            ("schema shop.app", "exists"),
            ("extension shop.pg_trgm", "version"),
            ("extension shop.gone", "exists"),
            ("database shop", "default privileges for owner"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
        assert_eq!(
            super::super::objects::exists("database shop".into(), false, true).len(),
            1
        );
    }
}
