//! One HBA rule object of the inventory: parsing and static validation, shared by inventory
//! validation (`pgitops validate`, through [`check_rule`]) and by the HBA renderer
//! (`render::hba`), which imports it from here so that `inventory` never depends on `render`.
//!
//! In: one YAML value from a rule list, its index in the concatenated lists and the [`Target`].
//! Out: a [`Rule`] whose `user`, `db`, `addr`, `auth`, `role` and raw lines are known safe to
//! render, or an [`HbaError`] carrying the index. A `user` that is exactly one of the context
//! placeholders (`${dbsu}`, ...) is substituted, like Pigsty's template does, at render time,
//! where the substituted name is checked. Also owns the address normalisation shared with
//! context addresses.
//!
//! Field semantics follow Pigsty's `pg_hba.conf`/`pgbouncer.hba` templates: an absent or empty
//! (`''`) `user`/`db` means `all`, `auth` means `pwd`, `role` means `default`; `rules: []` counts
//! as absent (the rule falls back to `addr`). `user` and `db` may be comma lists, as in
//! PostgreSQL's pg_hba.conf, whose elements are names or `@file` references.

use serde_yaml_ng::{Mapping, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

pub(crate) const PLACEHOLDERS: [&str; 4] = ["${dbsu}", "${repl}", "${monitor}", "${admin}"];

/// Which file is rendered: `pg_hba.conf` or pgbouncer's `pgb_hba.conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Postgres,
    Pgbouncer,
}

/// A rule that cannot be rendered. `index` is its position in the concatenated input.
#[derive(Debug, thiserror::Error)]
pub enum HbaError {
    #[error("HBA rule #{index}: {what} must be {expected}")]
    Shape {
        index: usize,
        what: &'static str,
        expected: &'static str,
    },
    #[error("HBA rule #{index}: unknown auth alias {value:?}; expected pwd, ssl, sha, scram-sha-256, ssl-sha, md5, ssl-md5, cert, trust, deny, reject, ident, os or peer")]
    UnknownAuth { index: usize, value: String },
    #[error("HBA rule #{index}: unknown role filter {value:?}; expected common, default, primary, replica, standby, delayed or offline")]
    UnknownRole { index: usize, value: String },
    /// An unsafe or malformed `user`, `db`, `addr`, raw line or context address.
    #[error("HBA rule #{index}: invalid {field} {value:?}; expected {expected}")]
    Invalid {
        index: usize,
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("HBA rule #{index}: db `replication` is not allowed in the pgbouncer HBA")]
    ReplicationInPgbouncer { index: usize },
    #[error("HBA rule #{index}: `addr` or `rules` is required")]
    MissingAddr { index: usize },
}

/// The `expected` texts of [`HbaError::Invalid`], shared with the renderer.
pub(crate) const NAME: &str = "a comma list of names of [A-Za-z0-9_.@$+-] or @file references (@ then [A-Za-z0-9_./-]), or for user exactly one of ${dbsu}, ${repl}, ${monitor}, ${admin}";
/// For a context value substituted into `user` (`pg_dbsu`, ...).
pub(crate) const ONE_NAME: &str = "one name of [A-Za-z0-9_.@$+-] not starting with '@'";
pub(crate) const ADDR: &str =
    "local, localhost, admin, infra, cluster, intra, intranet, world, all or an IPv4 address/CIDR";
pub(crate) const RAW: &str = "a single line without control characters";

pub(crate) fn shape(index: usize, what: &'static str, expected: &'static str) -> HbaError {
    HbaError::Shape {
        index,
        what,
        expected,
    }
}

pub(crate) fn invalid(
    index: usize,
    field: &'static str,
    value: &str,
    expected: &'static str,
) -> HbaError {
    let value = value.to_string();
    HbaError::Invalid {
        index,
        field,
        value,
        expected,
    }
}

/// Resolved auth alias: (pg method, pgbouncer method, hostssl); a `None` method means pwenc.
pub(crate) type Auth = (Option<&'static str>, Option<&'static str>, bool);

fn auth_alias(alias: &str) -> Option<Auth> {
    let (pg, pgb, ssl) = match alias {
        "pwd" => (None, None, false),
        "ssl" => (None, None, true),
        "sha" | "scram-sha-256" => (Some("scram-sha-256"), Some("scram-sha-256"), false),
        "ssl-sha" => (Some("scram-sha-256"), Some("scram-sha-256"), true),
        "md5" => (Some("md5"), Some("md5"), false),
        "ssl-md5" => (Some("md5"), Some("md5"), true),
        "cert" => (Some("cert"), Some("cert"), true),
        "trust" => (Some("trust"), Some("trust"), false),
        "deny" | "reject" => (Some("reject"), Some("reject"), false),
        "ident" | "os" => (Some("ident"), Some("peer"), false),
        "peer" => (Some("peer"), Some("peer"), false),
        _ => return None,
    };
    Some((pg, pgb, ssl))
}

/// A statically validated rule.
pub(crate) struct Rule<'v> {
    pub(crate) index: usize,
    pub(crate) user: &'v str,
    pub(crate) db: &'v str,
    pub(crate) addr: Option<&'v str>,
    pub(crate) auth: Auth,
    pub(crate) title: Option<String>,
    pub(crate) role: &'v str,
    pub(crate) order: Option<i64>,
    pub(crate) raw: Option<Vec<&'v str>>,
}

pub(crate) fn valid_name(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_.@$+-".contains(&b);
    !s.is_empty() && !s.starts_with('@') && s.bytes().all(ok)
}

/// An `@file` reference of pg_hba.conf: `@` then a relative or absolute path of
/// `[A-Za-z0-9_./-]`. See [`valid_list`] for why any path is allowed.
fn file_ref(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_./-".contains(&b);
    s.strip_prefix('@')
        .is_some_and(|p| !p.is_empty() && p.bytes().all(ok))
}

/// A `user`/`db` field: a comma list (PostgreSQL's syntax) of names and `@file` references,
/// no element empty. Every character that could end the field or the line (whitespace,
/// quotes, `#`, control characters) is outside both alphabets, so the value stays one column.
///
/// `@file` may name any path, relative (to the directory of pg_hba.conf; pgbouncer: of its
/// hba file) or absolute, as PostgreSQL and Pigsty allow: the file is read by the server's OS
/// user and its words are only matched against the connecting user/database name, never shown
/// to clients, and whoever writes the inventory already decides every HBA line (raw `rules`
/// are written verbatim), so a path grants nothing that `all` would not.
pub(crate) fn valid_list(s: &str) -> bool {
    s.split(',').all(|e| valid_name(e) || file_ref(e))
}

/// `user` exactly equal to a placeholder is replaced by the context value (Pigsty's
/// `usermapping`); anything else is kept as written.
pub(crate) fn substitute<'a>(user: &'a str, values: [&'a str; 4]) -> &'a str {
    PLACEHOLDERS
        .iter()
        .position(|p| *p == user)
        .map_or(user, |i| values[i])
}

/// Normalise an address or CIDR: strict parse, bare address gets /32 (or /128 for IPv6).
pub(crate) fn norm_addr(s: &str, allow_v6: bool) -> Option<String> {
    let (ip, prefix) = s.split_once('/').map_or((s, None), |(ip, p)| (ip, Some(p)));
    let max = if ip.parse::<Ipv4Addr>().is_ok() {
        32
    } else if allow_v6 && ip.parse::<Ipv6Addr>().is_ok() {
        128
    } else {
        return None;
    };
    match prefix {
        None => Some(format!("{ip}/{max}")),
        Some(p) if (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            (p.parse::<u32>().ok()? <= max).then(|| s.to_string())
        }
        Some(_) => None,
    }
}

fn get_str<'v>(
    m: &'v Mapping,
    key: &str,
    what: &'static str,
    i: usize,
) -> Result<Option<&'v str>, HbaError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(shape(i, what, "a string")),
    }
}

/// A field whose empty value means "unset", as Pigsty's template reads `user`, `db`, `addr`,
/// `auth` and `role` (`hba.x if 'x' in hba and hba.x != '' else <default>`).
fn get_set<'v>(
    m: &'v Mapping,
    key: &str,
    what: &'static str,
    i: usize,
) -> Result<Option<&'v str>, HbaError> {
    Ok(get_str(m, key, what, i)?.filter(|s| !s.is_empty()))
}

pub(crate) fn parse(rule: &Value, index: usize, target: Target) -> Result<Rule<'_>, HbaError> {
    let i = index;
    let m = rule.as_mapping().ok_or(shape(i, "the rule", "a mapping"))?;
    let user = get_set(m, "user", "field `user`", i)?.unwrap_or("all");
    let db = get_set(m, "db", "field `db`", i)?.unwrap_or("all");
    let addr = get_set(m, "addr", "field `addr`", i)?;
    let auth = get_set(m, "auth", "field `auth`", i)?.unwrap_or("pwd");
    let role = get_set(m, "role", "field `role`", i)?.unwrap_or("default");
    // Written as is, like Pigsty; a title that could end its comment line (a control character
    // other than tab, or a Unicode line separator) is reduced to one line instead: whitespace
    // runs become one space and other control characters are dropped.
    let breaks = |c: char| (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}';
    let title = get_str(m, "title", "field `title`", i)?.map(|t| match t.contains(breaks) {
        false => t.to_string(),
        true => {
            let t: String = t
                .chars()
                .filter(|c| c.is_whitespace() || !c.is_control())
                .collect();
            t.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    });
    let order = match m.get("order") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or(shape(i, "field `order`", "an integer"))?),
    };
    let raw = match m.get("rules") {
        None | Some(Value::Null) => None,
        Some(Value::Sequence(seq)) => {
            let mut lines = Vec::with_capacity(seq.len());
            for v in seq {
                let l = v
                    .as_str()
                    .ok_or(shape(i, "field `rules`", "a list of strings"))?;
                if l.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(invalid(i, "raw line", l, RAW));
                }
                lines.push(l);
            }
            // `rules: []` falls back to `addr` (Pigsty: `hba.rules|length > 0`)
            (!lines.is_empty()).then_some(lines)
        }
        Some(_) => return Err(shape(i, "field `rules`", "a list of strings")),
    };
    if !PLACEHOLDERS.contains(&user) && !valid_list(user) {
        return Err(invalid(i, "user", user, NAME));
    }
    if !valid_list(db) {
        return Err(invalid(i, "db", db, NAME));
    }
    if target == Target::Pgbouncer && db == "replication" {
        return Err(HbaError::ReplicationInPgbouncer { index });
    }
    let auth = auth_alias(auth).ok_or_else(|| HbaError::UnknownAuth {
        index,
        value: auth.to_string(),
    })?;
    if !"common default primary replica standby delayed offline"
        .split(' ')
        .any(|r| r == role)
    {
        return Err(HbaError::UnknownRole {
            index,
            value: role.to_string(),
        });
    }
    let aliases = "local localhost admin infra cluster intra intranet world all";
    match addr {
        None if raw.is_none() => return Err(HbaError::MissingAddr { index }),
        Some(a) if !aliases.split(' ').any(|x| x == a) && norm_addr(a, false).is_none() => {
            return Err(invalid(i, "addr", a, ADDR))
        }
        _ => {}
    }
    let title = title.filter(|t| !t.is_empty());
    Ok(Rule {
        index,
        user,
        db,
        addr,
        auth,
        title,
        role,
        order,
        raw,
    })
}

/// Static validation of one rule (for `pgitops validate`); the message omits the index.
pub fn check_rule(rule: &Value, target: Target) -> Result<(), String> {
    parse(rule, 0, target).map(|_| ()).map_err(|e| {
        let msg = e.to_string();
        msg.split_once(": ")
            .map_or(msg.clone(), |(_, m)| m.to_string())
    })
}
