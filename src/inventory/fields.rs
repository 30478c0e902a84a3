//! The fields Pigsty reads in `pg_users` and `pg_databases` entries, and their types: one
//! list, used by validation, the plan and the SQL renderer.

/// How a field's value must be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    /// A string (passwords must be quoted if they look like numbers).
    Text,
    /// Lists, mappings, or strings Pigsty accepts in several forms.
    Any,
}

/// Role attributes rendered as `KEYWORD` / `NOKEYWORD` (tri-state: absent leaves them alone).
pub const ROLE_FLAGS: [&str; 7] = [
    "login",
    "superuser",
    "createdb",
    "createrole",
    "inherit",
    "replication",
    "bypassrls",
];

/// Database options only `CREATE DATABASE` sets; changing them needs a recreate.
pub const DB_CREATE_ONLY: [&str; 10] = [
    "template",
    "encoding",
    "locale",
    "lc_collate",
    "lc_ctype",
    "locale_provider",
    "icu_locale",
    "icu_rules",
    "builtin_locale",
    "strategy",
];

pub fn user_field(key: &str) -> Option<Kind> {
    Some(match key {
        k if ROLE_FLAGS.contains(&k) => Kind::Bool,
        "pgbouncer" => Kind::Bool,
        "connlimit" | "expire_in" | "pool_connlimit" => Kind::Int,
        "password" => Kind::Text,
        "name" | "state" | "expire_at" | "comment" | "roles" | "parameters" | "pool_mode"
        | "search_path" | "admin" => Kind::Any,
        _ => return None,
    })
}

pub fn database_field(key: &str) -> Option<Kind> {
    Some(match key {
        "is_template" | "allowconn" | "revokeconn" | "pgbouncer" | "register_datasource" => {
            Kind::Bool
        }
        "connlimit" | "pool_size" | "pool_size_min" | "pool_reserve" | "pool_connlimit" => {
            Kind::Int
        }
        k if DB_CREATE_ONLY.contains(&k) => Kind::Any,
        "name" | "state" | "owner" | "tablespace" | "parameters" | "comment" | "schemas"
        | "extensions" | "baseline" | "pool_mode" | "pool_auth_user" => Kind::Any,
        _ => return None,
    })
}
