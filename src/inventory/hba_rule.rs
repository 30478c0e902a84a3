//! One HBA rule object of the inventory: parsing and static validation, shared by inventory
//! validation (`pgitops validate`, through [`check_rule`]) and by the HBA renderer
//! (`render::hba`), which imports it from here so that `inventory` never depends on `render`.
//!
//! In: one YAML value from a rule list, its index in the concatenated lists and the [`Target`].
//! Out: a [`Rule`] whose `user`, `db`, `addr`, `auth`, `role` and raw lines are known safe to
//! render, or an [`HbaError`] carrying the index. Context placeholders in `user` are checked here
//! with a stand-in value; the substituted name is checked again at render time. Also owns the
//! address normalisation shared with context addresses.

use serde_yaml_ng::{Mapping, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

const PLACEHOLDERS: [&str; 4] = ["${dbsu}", "${repl}", "${monitor}", "${admin}"];

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
pub(crate) const NAME: &str = "one name of [A-Za-z0-9_.@$+-] not starting with '@' (user may use ${dbsu}, ${repl}, ${monitor}, ${admin})";
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

pub(crate) fn substitute(user: &str, values: [&str; 4]) -> String {
    let pairs = PLACEHOLDERS.iter().zip(values);
    pairs.fold(user.to_string(), |u, (p, v)| u.replace(p, v))
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

pub(crate) fn parse(rule: &Value, index: usize, target: Target) -> Result<Rule<'_>, HbaError> {
    let i = index;
    let m = rule.as_mapping().ok_or(shape(i, "the rule", "a mapping"))?;
    let user = get_str(m, "user", "field `user`", i)?.unwrap_or("all");
    let db = get_str(m, "db", "field `db`", i)?.unwrap_or("all");
    let addr = get_str(m, "addr", "field `addr`", i)?;
    let auth = get_str(m, "auth", "field `auth`", i)?.unwrap_or("pwd");
    let role = get_str(m, "role", "field `role`", i)?.unwrap_or("common");
    let title = get_str(m, "title", "field `title`", i)?.map(|t| {
        let t: String = t
            .chars()
            .filter(|c| c.is_whitespace() || !c.is_control())
            .collect();
        t.split_whitespace().collect::<Vec<_>>().join(" ")
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
            Some(lines)
        }
        Some(_) => return Err(shape(i, "field `rules`", "a list of strings")),
    };
    if !valid_name(&substitute(user, ["x"; 4])) {
        return Err(invalid(i, "user", user, NAME));
    }
    if !valid_name(db) {
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
