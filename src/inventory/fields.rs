//! The fields Pigsty reads in `pg_users` and `pg_databases` entries, and their types: one
//! list, used by validation, the plan and the SQL renderer. Also the rules for the values that
//! reach PostgreSQL through them (GUC names, list-valued GUCs, names), shared by validation and
//! the renderer so that what `validate` accepts is what the renderer can render.

/// How a field's value must be written.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// An integer from `min` to `max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A string without NUL (passwords must be quoted if they look like numbers).
    Text,
    /// One line of text: a string without control characters (locales, file names, versions).
    Line,
    /// An SQL name: 1 to 63 bytes, no control characters (PostgreSQL truncates longer names).
    Name,
    /// A date `YYYY-MM-DD`.
    Date,
    /// One of these strings, exactly.
    OneOf(&'static [&'static str]),
    /// One of these keywords, in any case (PostgreSQL's own option values).
    Keyword(&'static [&'static str]),
    /// A mapping of GUC names to values; the list-valued GUCs of the target.
    Params(&'static [&'static str]),
    /// A list of names, or of mappings with a `name` and the fields this function types.
    Entries(fn(&str) -> Option<Kind>),
    /// Strings Pigsty accepts in several forms, or fields checked elsewhere (`name`, `state`).
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

/// List-valued GUCs: `ALTER ROLE ... SET` takes the first four, `ALTER DATABASE` all five,
/// `ALTER SYSTEM` these and `shared_preload_libraries`.
pub const LIST_GUCS: [&str; 6] = [
    "search_path",
    "temp_tablespaces",
    "local_preload_libraries",
    "session_preload_libraries",
    "log_destination",
    "shared_preload_libraries",
];

/// `CONNECTION LIMIT`: -1 (no limit) up to PostgreSQL's int4 maximum.
pub const CONNLIMIT: Kind = Kind::Int {
    min: -1,
    max: i32::MAX as i64,
};
const POOL_MODES: &[&str] = &["transaction", "session", "statement"];
const COUNT: Kind = Kind::Int {
    min: 0,
    max: i32::MAX as i64,
};

/// The minimum PostgreSQL major version of a create-only database option.
pub fn database_min_version(key: &str) -> u32 {
    match key {
        "locale" => 13,
        "locale_provider" | "icu_locale" | "strategy" => 15,
        "icu_rules" => 16,
        "builtin_locale" => 17,
        _ => 0,
    }
}

pub fn user_field(key: &str) -> Option<Kind> {
    Some(match key {
        k if ROLE_FLAGS.contains(&k) => Kind::Bool,
        "pgbouncer" => Kind::Bool,
        "connlimit" => CONNLIMIT,
        "pool_connlimit" => CONNLIMIT,
        "expire_in" => Kind::Int {
            min: -100_000,
            max: 100_000,
        },
        "expire_at" => Kind::Date,
        "password" | "comment" => Kind::Text,
        "roles" => Kind::Entries(role_entry_field),
        "parameters" => Kind::Params(&LIST_GUCS_ROLE),
        "pool_mode" => Kind::OneOf(POOL_MODES),
        "name" | "state" | "search_path" | "admin" => Kind::Any,
        _ => return None,
    })
}

const LIST_GUCS_ROLE: [&str; 4] = [LIST_GUCS[0], LIST_GUCS[1], LIST_GUCS[2], LIST_GUCS[3]];
const LIST_GUCS_DB: [&str; 5] = [
    LIST_GUCS[0],
    LIST_GUCS[1],
    LIST_GUCS[2],
    LIST_GUCS[3],
    LIST_GUCS[4],
];

pub fn database_field(key: &str) -> Option<Kind> {
    Some(match key {
        "is_template" | "allowconn" | "revokeconn" | "pgbouncer" | "register_datasource" => {
            Kind::Bool
        }
        "connlimit" | "pool_connlimit" => CONNLIMIT,
        "pool_size" | "pool_size_min" | "pool_reserve" => COUNT,
        "template" | "owner" | "tablespace" | "pool_auth_user" => Kind::Name,
        "locale_provider" => Kind::Keyword(&["libc", "icu", "builtin"]),
        "strategy" => Kind::Keyword(&["wal_log", "file_copy"]),
        k if DB_CREATE_ONLY.contains(&k) => Kind::Line,
        "comment" => Kind::Text,
        "baseline" => Kind::Line,
        "parameters" => Kind::Params(&LIST_GUCS_DB),
        "schemas" => Kind::Entries(schema_entry_field),
        "extensions" => Kind::Entries(extension_entry_field),
        "pool_mode" => Kind::OneOf(POOL_MODES),
        "name" | "state" => Kind::Any,
        _ => return None,
    })
}

/// `pg_services` / `pg_default_services` entries: what Pigsty writes into HAProxy's files.
/// `dest` (`default`, `postgres`, `pgbouncer` or a port number) is checked on its own.
pub fn service_field(key: &str) -> Option<Kind> {
    Some(match key {
        "port" => Kind::Int { min: 1, max: 65535 },
        "maxconn" => COUNT,
        "ip" | "selector" | "backup" | "check" | "options" | "balance" => Kind::Line,
        "name" | "dest" => Kind::Any,
        _ => return None,
    })
}

/// Fields of a `roles` entry given as a mapping.
pub fn role_entry_field(key: &str) -> Option<Kind> {
    Some(match key {
        "name" => Kind::Name,
        "state" => Kind::OneOf(&["grant", "revoke", "absent"]),
        "admin" | "set" | "inherit" => Kind::Bool,
        _ => return None,
    })
}

fn schema_entry_field(key: &str) -> Option<Kind> {
    Some(match key {
        "name" | "owner" => Kind::Name,
        "state" => Kind::OneOf(&["create", "absent"]),
        _ => return None,
    })
}

fn extension_entry_field(key: &str) -> Option<Kind> {
    Some(match key {
        "name" | "schema" => Kind::Name,
        "version" => Kind::Line,
        "state" => Kind::OneOf(&["create", "absent"]),
        _ => return None,
    })
}

/// GUC names: `^[A-Za-z_][A-Za-z0-9_.]*$` without empty dotted parts.
pub fn is_guc_name(key: &str) -> bool {
    let mut chars = key.chars();
    let head_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let tail_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    head_ok && tail_ok && !key.split('.').any(str::is_empty)
}

/// Splits `a, "B", c` like PostgreSQL splits an unquoted list value (bare elements
/// ASCII-lowercased, `"..."` kept verbatim, `""` inside quotes is one `"`); `None` when it is
/// not such a list (an empty element, an unterminated quote).
pub fn split_guc_list(s: &str) -> Option<Vec<String>> {
    let (mut items, mut rest) = (Vec::new(), s.trim_start());
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let (mut item, mut tail) = (String::new(), quoted);
            loop {
                let end = tail.find('"')?;
                item.push_str(&tail[..end]);
                tail = &tail[end + 1..];
                let Some(t) = tail.strip_prefix('"') else {
                    break;
                };
                item.push('"'); // a doubled quote
                tail = t;
            }
            items.push(item);
            rest = tail.trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let item = rest[..end].trim_end();
            if item.is_empty() {
                return None;
            }
            items.push(item.to_ascii_lowercase());
            rest = &rest[end..];
        }
        match rest.strip_prefix(',') {
            Some(r) if !r.trim().is_empty() => rest = r.trim_start(),
            None if rest.is_empty() => {}
            _ => return None,
        }
    }
    Some(items)
}
