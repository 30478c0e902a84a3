//! HBA rendering for Pigsty inventories: owns the translation of Pigsty HBA rule objects
//! (`pg_default_hba_rules` + `pg_hba_rules`, `pgb_default_hba_rules` + `pgb_hba_rules`) into the
//! text of `pg_hba.conf` / `pgb_hba.conf`, following the reference spec section 4.
//!
//! Inputs: the rule lists (YAML sequences, concatenated in order; Null counts as empty), an
//! [`HbaContext`] with the instance's effective variables, and the [`Target`]. Output: the full file
//! text, deterministic for equal inputs. Pure: no IO, no globals.
//!
//! Output: a header comment line, then the rules (those with `order` stable-sorted ascending,
//! then those without `order` in list order), each as an optional `# title` comment plus its lines
//! (padded columns `type db user [addr] method`, trailing newline). Rules whose `role` filter does
//! not match this instance are kept but commented out with `#` under `# [DISABLED] title`.
//!
//! Inventory values are untrusted, so every value that reaches a rendered line is validated:
//! * `user` / `db`: one non-empty name of `[A-Za-z0-9_.@$+-]`, not starting with `@` (pg_hba file
//!   inclusion). No commas, quotes, braces, whitespace or non-ASCII. `user` may contain the
//!   placeholders `${dbsu}`, `${repl}`, `${monitor}`, `${admin}`; the substituted result must pass
//!   the same rule (so an unknown `${x}` is rejected).
//! * `addr`: an alias or an IPv4 address/CIDR (bare address gets `/32`), parsed strictly. Context
//!   addresses (`admin_ip`, infra/cluster IPs, intranet CIDRs) must parse as IPv4 or IPv6 [/prefix].
//! * `rules` lines are emitted verbatim but must not contain control characters (tab excepted).
//! * `title` is reduced to one line: whitespace runs (including newlines) become one space and
//!   other control characters are dropped.
//!
//! Errors name the rule's index in the concatenated list and at most the offending field's value
//! (Debug-escaped). When `rules` is present it takes precedence over `addr`/`auth`/`user`/`db`
//! (which are still validated if given).

use serde_yaml_ng::{Mapping, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Which file is rendered: `pg_hba.conf` or pgbouncer's `pgb_hba.conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Postgres,
    Pgbouncer,
}

/// Effective variables of the instance the file is rendered for.
#[derive(Debug, Clone)]
pub struct HbaContext<'a> {
    /// `pg_dbsu`, substituted for `${dbsu}` in `user`.
    pub dbsu: &'a str,
    /// `pg_replication_username`, substituted for `${repl}`.
    pub repl: &'a str,
    /// `pg_monitor_username`, substituted for `${monitor}`.
    pub monitor: &'a str,
    /// `pg_admin_username`, substituted for `${admin}`.
    pub admin: &'a str,
    /// `all.vars.admin_ip` (alias `admin`).
    pub admin_ip: &'a str,
    /// IPs of the `infra` group (alias `infra`; rendered sorted).
    pub infra_ips: &'a [String],
    /// IPs of the members of this `pg_cluster` (alias `cluster`; rendered sorted).
    pub cluster_ips: &'a [String],
    /// `node_firewall_intranet` CIDRs (alias `intra`/`intranet`; rendered in list order).
    pub intranet: &'a [String],
    /// Inventory `pg_role` of this instance, used by the `role` filter.
    pub pg_role: &'a str,
    /// `pg_offline_query` of this instance (enables `role: offline` rules).
    pub offline_query: bool,
    /// `pg_pwd_enc`: `md5` selects md5 for `pwd`/`ssl`; anything else means `scram-sha-256`.
    pub pwd_enc: &'a str,
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

const NAME: &str = "one name of [A-Za-z0-9_.@$+-] not starting with '@' (user may use ${dbsu}, ${repl}, ${monitor}, ${admin})";
const ADDR: &str =
    "local, localhost, admin, infra, cluster, intra, intranet, world, all or an IPv4 address/CIDR";
const RAW: &str = "a single line without control characters";
const IP: &str = "an IP address or CIDR";
const PLACEHOLDERS: [&str; 4] = ["${dbsu}", "${repl}", "${monitor}", "${admin}"];

fn shape(index: usize, what: &'static str, expected: &'static str) -> HbaError {
    HbaError::Shape {
        index,
        what,
        expected,
    }
}

fn invalid(index: usize, field: &'static str, value: &str, expected: &'static str) -> HbaError {
    let value = value.to_string();
    HbaError::Invalid {
        index,
        field,
        value,
        expected,
    }
}

/// Resolved auth alias: (pg method, pgbouncer method, hostssl); a `None` method means pwenc.
type Auth = (Option<&'static str>, Option<&'static str>, bool);

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
struct Rule<'v> {
    index: usize,
    user: &'v str,
    db: &'v str,
    addr: Option<&'v str>,
    auth: Auth,
    title: Option<String>,
    role: &'v str,
    order: Option<i64>,
    raw: Option<Vec<&'v str>>,
}

fn valid_name(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_.@$+-".contains(&b);
    !s.is_empty() && !s.starts_with('@') && s.bytes().all(ok)
}

fn substitute(user: &str, values: [&str; 4]) -> String {
    let pairs = PLACEHOLDERS.iter().zip(values);
    pairs.fold(user.to_string(), |u, (p, v)| u.replace(p, v))
}

/// Normalise an address or CIDR: strict parse, bare address gets /32 (or /128 for IPv6).
fn norm_addr(s: &str, allow_v6: bool) -> Option<String> {
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

fn parse(rule: &Value, index: usize, target: Target) -> Result<Rule<'_>, HbaError> {
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

fn role_enabled(role: &str, ctx: &HbaContext) -> bool {
    match role {
        "common" | "default" => true,
        "offline" => ctx.pg_role == "offline" || ctx.offline_query,
        r => ctx.pg_role == r,
    }
}

fn line(conn: &str, db: &str, user: &str, addr: &str, method: &str) -> String {
    format!("{conn:<7} {db:<15} {user:<15} {addr:<23} {method}")
}

/// Validate and normalise context addresses; `sort` sorts (as strings, like Jinja) and dedups.
fn ctx_addrs(
    i: usize,
    field: &'static str,
    ips: &[String],
    sort: bool,
) -> Result<Vec<String>, HbaError> {
    let mut ips: Vec<&String> = ips.iter().collect();
    if sort {
        ips.sort();
        ips.dedup();
    }
    let norm = |ip: &&String| norm_addr(ip, true).ok_or_else(|| invalid(i, field, ip, IP));
    ips.iter().map(norm).collect()
}

fn rule_lines(r: &Rule, ctx: &HbaContext, target: Target) -> Result<Vec<String>, HbaError> {
    if let Some(raw) = &r.raw {
        return Ok(raw.iter().map(|l| l.to_string()).collect());
    }
    let i = r.index;
    let user = substitute(r.user, [ctx.dbsu, ctx.repl, ctx.monitor, ctx.admin]);
    if !valid_name(&user) {
        return Err(invalid(i, "user", &user, NAME));
    }
    let (pg, pgb, ssl) = r.auth;
    let pwenc = if ctx.pwd_enc == "md5" {
        "md5"
    } else {
        "scram-sha-256"
    };
    let method = if target == Target::Postgres { pg } else { pgb }.unwrap_or(pwenc);
    let conn = if ssl { "hostssl" } else { "host" };
    let hosts = |addrs: &[String], conn: &str| -> Vec<String> {
        addrs
            .iter()
            .map(|a| line(conn, r.db, &user, a, method))
            .collect()
    };
    let local = line("local", r.db, &user, "", method);
    let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Ok(match r.addr.unwrap_or_default() {
        "local" => vec![local],
        "localhost" => {
            let v = hosts(&owned(&["127.0.0.1/32", "::1/128"]), "host");
            std::iter::once(local).chain(v).collect()
        }
        "admin" => hosts(
            &ctx_addrs(i, "admin_ip", &owned(&[ctx.admin_ip]), false)?,
            conn,
        ),
        "infra" => hosts(&ctx_addrs(i, "infra IP", ctx.infra_ips, true)?, conn),
        "cluster" => hosts(&ctx_addrs(i, "cluster IP", ctx.cluster_ips, true)?, conn),
        "intra" | "intranet" => hosts(&ctx_addrs(i, "intranet CIDR", ctx.intranet, false)?, conn),
        "world" | "all" => hosts(&owned(&["0.0.0.0/0", "::/0"]), conn),
        a => hosts(
            &[norm_addr(a, false).ok_or_else(|| invalid(i, "addr", a, ADDR))?],
            conn,
        ),
    })
}

/// Render the whole HBA file for one instance from the concatenated `rule_lists`.
pub fn render(rule_lists: &[&Value], ctx: &HbaContext, target: Target) -> Result<String, HbaError> {
    let mut rules = Vec::new();
    for list in rule_lists {
        match list {
            Value::Null => {}
            Value::Sequence(seq) => {
                for v in seq {
                    rules.push(parse(v, rules.len(), target)?);
                }
            }
            _ => return Err(shape(rules.len(), "the rule list", "a sequence")),
        }
    }
    let (mut ordered, unordered): (Vec<Rule>, Vec<Rule>) =
        rules.into_iter().partition(|r| r.order.is_some());
    ordered.sort_by_key(|r| r.order); // stable: equal orders keep list order
    let file = if target == Target::Postgres {
        "pg_hba.conf"
    } else {
        "pgb_hba.conf"
    };
    let mut out = format!("# {file} rendered by pgitops from the Pigsty inventory; do not edit\n");
    for r in ordered.iter().chain(&unordered) {
        let enabled = role_enabled(r.role, ctx);
        match (&r.title, enabled) {
            (Some(t), true) => out.push_str(&format!("# {t}\n")),
            (Some(t), false) => out.push_str(&format!("# [DISABLED] {t}\n")),
            (None, false) => out.push_str("# [DISABLED]\n"),
            (None, true) => {}
        }
        for l in rule_lines(r, ctx, target)? {
            out.push_str(if enabled { "" } else { "#" });
            out.push_str(&l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Target::{Pgbouncer as Pgb, Postgres as Pg};

    fn y(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    fn ips(a: &[&str]) -> &'static [String] {
        Box::leak(
            a.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )
    }

    fn ctx() -> HbaContext<'static> {
        HbaContext {
            dbsu: "postgres",
            repl: "replicator",
            monitor: "dbuser_monitor",
            admin: "dbuser_dba",
            admin_ip: "10.10.10.10",
            infra_ips: ips(&["10.10.10.3", "10.10.10.10"]),
            cluster_ips: ips(&["10.10.10.12", "10.10.10.11"]),
            intranet: ips(&["10.0.0.0/8", "192.168.0.0/16"]),
            pg_role: "primary",
            offline_query: false,
            pwd_enc: "scram-sha-256",
        }
    }

    /// Render YAML rule lists; drop the header line and collapse the column padding.
    fn body(lists: &[&str], c: &HbaContext, t: Target) -> Result<Vec<String>, HbaError> {
        let vals: Vec<Value> = lists.iter().map(|l| y(l)).collect();
        let out = render(&vals.iter().collect::<Vec<_>>(), c, t)?;
        assert!(out.starts_with("# ") && out.ends_with('\n'));
        let norm = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(out.lines().skip(1).map(norm).collect())
    }

    fn ok(rules: &str, c: &HbaContext, t: Target) -> Vec<String> {
        body(&[rules], c, t).unwrap()
    }

    #[test]
    fn address_aliases() {
        let c = ctx();
        let one = |addr: &str| ok(&format!("[{{user: u, addr: '{addr}'}}]"), &c, Pg).join("|");
        let m = " scram-sha-256";
        assert_eq!(one("local"), format!("local all u{m}"));
        let lh = format!("local all u{m}|host all u 127.0.0.1/32{m}|host all u ::1/128{m}");
        assert_eq!(one("localhost"), lh);
        assert_eq!(one("admin"), format!("host all u 10.10.10.10/32{m}"));
        let infra = format!("host all u 10.10.10.10/32{m}|host all u 10.10.10.3/32{m}");
        assert_eq!(one("infra"), infra);
        let cl = format!("host all u 10.10.10.11/32{m}|host all u 10.10.10.12/32{m}");
        assert_eq!(one("cluster"), cl);
        let intra = format!("host all u 10.0.0.0/8{m}|host all u 192.168.0.0/16{m}");
        assert_eq!((one("intra"), one("intranet")), (intra.clone(), intra));
        let world = format!("host all u 0.0.0.0/0{m}|host all u ::/0{m}");
        assert_eq!((one("world"), one("all")), (world.clone(), world));
        assert_eq!(one("1.2.3.4"), format!("host all u 1.2.3.4/32{m}"));
        assert_eq!(one("10.1.0.0/16"), format!("host all u 10.1.0.0/16{m}"));
        // a local line has no address column; columns are padded
        let out = render(&[&y("[{addr: local, auth: ident}]")], &c, Pg).unwrap();
        let pad = format!("local   all             all             {:23} ident", "");
        assert_eq!(out.lines().nth(1), Some(pad.as_str()));
    }

    #[test]
    fn auth_aliases_both_targets() {
        let mut c = ctx();
        // alias, connection type, pg method, pgbouncer method (S = scram-sha-256)
        let cases = "pwd host S S;ssl hostssl S S;sha host S S;scram-sha-256 host S S;\
                     ssl-sha hostssl S S;md5 host md5 md5;ssl-md5 hostssl md5 md5;\
                     cert hostssl cert cert;trust host trust trust;deny host reject reject;\
                     reject host reject reject;ident host ident peer;os host ident peer;\
                     peer host peer peer";
        let cases = cases.replace(" S", " scram-sha-256");
        for case in cases.split(';') {
            let [alias, conn, pg, pgb] = case.split(' ').collect::<Vec<_>>()[..] else {
                panic!("{case}")
            };
            let r = format!("{{addr: 1.2.3.4, auth: {alias}}}");
            assert_eq!(
                ok(&format!("[{r}]"), &c, Pg),
                [format!("{conn} all all 1.2.3.4/32 {pg}")]
            );
            assert_eq!(
                ok(&format!("[{r}]"), &c, Pgb),
                [format!("{conn} all all 1.2.3.4/32 {pgb}")]
            );
            assert_eq!(check_rule(&y(&r), Pgb), Ok(()));
        }
        // local/localhost stay local/host even with ssl aliases
        let lh = ok("[{addr: localhost, auth: ssl-sha}]", &c, Pg);
        assert!(
            lh[0].starts_with("local ") && lh[1].starts_with("host ") && lh[2].starts_with("host ")
        );
        c.pwd_enc = "md5";
        assert_eq!(ok("[{addr: local}]", &c, Pgb), ["local all all md5"]);
        assert_eq!(
            ok("[{addr: local, auth: ssl}]", &c, Pg),
            ["local all all md5"]
        );
    }

    #[test]
    fn ordering() {
        let c = ctx();
        let defaults =
            "[{addr: local, user: d200, order: 200}, {addr: local, user: d100, order: 100}]";
        let users = "[{addr: local, user: u1}, {addr: local, user: u50, order: 50}, \
                     {addr: local, user: u2}, {addr: local, user: s200, order: 200}]";
        let out = body(&[defaults, users], &c, Pg).unwrap();
        let names: Vec<&str> = out.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
        assert_eq!(names, ["u50", "d100", "d200", "s200", "u1", "u2"]);
        let plain = ok("[{addr: local, user: b}, {addr: local, user: a}]", &c, Pg);
        assert_eq!(
            plain,
            ["local all b scram-sha-256", "local all a scram-sha-256"]
        );
    }

    #[test]
    fn role_filter_and_titles() {
        let mut c = ctx();
        let rules = "[{addr: local, role: replica, title: 'ro\nonly'}, {addr: local, role: primary}, \
                     {role: offline, rules: ['local all x trust']}, {addr: local, role: default, title: t}]";
        let (on, off) = (
            "local all all scram-sha-256",
            "#local all all scram-sha-256",
        );
        let b = ok(rules, &c, Pg);
        let expect = [
            "# [DISABLED] ro only",
            off,
            on,
            "# [DISABLED]",
            "#local all x trust",
            "# t",
            on,
        ];
        assert_eq!(b, expect);
        c.pg_role = "replica";
        c.offline_query = true;
        let b = ok(rules, &c, Pg);
        assert_eq!(
            b[..5],
            ["# ro only", on, "# [DISABLED]", off, "local all x trust"]
        );
        (c.pg_role, c.offline_query) = ("offline", false);
        assert_eq!(ok(rules, &c, Pg)[4], "local all x trust");
        (c.pg_role, c.offline_query) = ("standby", false);
        assert_eq!(ok("[{addr: local, role: standby}]", &c, Pg), [on]);
    }

    #[test]
    fn placeholders_and_raw_rules() {
        let r = "[{user: '${dbsu}', addr: local, auth: ident}, \
                 {user: '${repl}', db: replication, addr: localhost}, \
                 {user: '${monitor}', addr: infra, auth: trust}, {user: '${admin}', addr: world, auth: ssl}, \
                 {user: '+dbrole_readonly', rules: ['host all all 10.0.0.0/8   md5', '']}]";
        let b = ok(r, &ctx(), Pg);
        assert_eq!(b[0], "local all postgres ident");
        assert_eq!(b[1], "local replication replicator scram-sha-256");
        assert_eq!(b[4], "host all dbuser_monitor 10.10.10.10/32 trust");
        assert_eq!(b[6], "hostssl all dbuser_dba 0.0.0.0/0 scram-sha-256");
        assert_eq!(b[8..], ["host all all 10.0.0.0/8 md5", ""]);
    }

    #[test]
    fn null_lists_and_fields() {
        let c = ctx();
        let b = body(
            &["~", "[{addr: local, user: ~, db: null, title: ~}]", "[]"],
            &c,
            Pg,
        )
        .unwrap();
        assert_eq!(b, ["local all all scram-sha-256"]);
        assert_eq!(render(&[], &c, Pgb).unwrap().lines().count(), 1);
        let e = body(&["~", "{a: 1}"], &c, Pg).unwrap_err();
        assert!(matches!(e, HbaError::Shape { index: 0, .. }));
    }

    #[test]
    fn errors_carry_index() {
        let c = ctx();
        let d = "[{addr: local}, {addr: local}]";
        let e = body(
            &[d, "[{addr: local}, {addr: world, auth: kerberos}]"],
            &c,
            Pg,
        )
        .unwrap_err();
        assert!(matches!(&e, HbaError::UnknownAuth { index: 3, value } if value == "kerberos"));
        assert!(e
            .to_string()
            .starts_with("HBA rule #3: unknown auth alias \"kerberos\"; expected pwd"));
        let e = body(&[d, "[{db: replication, addr: local}]"], &c, Pgb).unwrap_err();
        assert!(matches!(e, HbaError::ReplicationInPgbouncer { index: 2 }));
        let e = body(&[d, "[{user: x}]"], &c, Pg).unwrap_err();
        assert!(matches!(e, HbaError::MissingAddr { index: 2 }));
        let e = body(&["[{addr: local, role: leader}]"], &c, Pg).unwrap_err();
        assert!(matches!(e, HbaError::UnknownRole { index: 0, .. }));
        let e = body(&[d, "[{addr: local, order: x}]"], &c, Pg).unwrap_err();
        assert!(matches!(e, HbaError::Shape { index: 2, .. }));
        let m = check_rule(&y("{addr: local, auth: nope}"), Pg).unwrap_err();
        assert!(
            m.starts_with("unknown auth alias \"nope\"; expected pwd"),
            "{m}"
        );
        let m = check_rule(&y("{db: replication, addr: local}"), Pgb).unwrap_err();
        assert!(m.contains("replication"));
        assert_eq!(check_rule(&y("{db: replication, addr: local}"), Pg), Ok(()));
        assert_eq!(
            check_rule(&y("{rules: ['local all all trust']}"), Pgb),
            Ok(())
        );
        assert!(check_rule(&y("[]"), Pg).unwrap_err().contains("mapping"));
    }

    #[test]
    fn hostile_values_rejected() {
        let bad = [
            r#"{addr: local, user: "a b"}"#,
            r#"{addr: local, user: "a\nhost all all 0.0.0.0/0 trust"}"#,
            r#"{addr: local, user: "a#b"}"#,
            r#"{addr: local, user: "\"x\""}"#,
            r#"{addr: local, user: "a,b"}"#,
            r#"{addr: local, user: "@file"}"#,
            r#"{addr: local, user: "${other}"}"#,
            r#"{addr: local, user: ""}"#,
            r#"{addr: local, user: [a]}"#,
            r#"{addr: local, db: "all trust"}"#,
            r#"{addr: local, db: "x'"}"#,
            r#"{addr: "1.2.3.4 trust"}"#,
            r#"{addr: "1.2.3.4/33"}"#,
            r#"{addr: "1.2.3.4/+8"}"#,
            r#"{addr: "1.2.3"}"#,
            r#"{addr: "::1"}"#,
            r#"{addr: "10.0.0.0/8\nhost"}"#,
            r#"{rules: ["host all all 0/0 trust\nlocal all all trust"]}"#,
            r#"{rules: ["x\ry"]}"#,
            r#"{rules: "local all all trust"}"#,
        ];
        for b in bad {
            assert!(check_rule(&y(b), Pg).is_err(), "{b}");
            assert!(body(&[&format!("[{b}]")], &ctx(), Pg).is_err(), "{b}");
        }
        let good = r#"{addr: local, user: "+dbrole_x.y@z$-1", db: "meta-db_1"}"#;
        assert_eq!(check_rule(&y(good), Pg), Ok(()));
        // hostile context values are rejected at render time
        let c = HbaContext {
            dbsu: "postgres\nhost all all 0.0.0.0/0 trust",
            ..ctx()
        };
        let e = body(&["[{user: '${dbsu}', addr: local}]"], &c, Pg).unwrap_err();
        assert!(matches!(
            e,
            HbaError::Invalid {
                index: 0,
                field: "user",
                ..
            }
        ));
        let c = HbaContext {
            admin_ip: "1.2.3.4 trust",
            ..ctx()
        };
        let e = body(&["[{addr: admin}]"], &c, Pg).unwrap_err();
        assert!(matches!(
            e,
            HbaError::Invalid {
                index: 0,
                field: "admin_ip",
                ..
            }
        ));
        let c = HbaContext {
            intranet: ips(&["10.0.0.0/8\nlocal all all trust"]),
            ..ctx()
        };
        assert!(body(&["[{addr: intra}]"], &c, Pg).is_err());
        let c = HbaContext {
            cluster_ips: ips(&["10.0.0.1 trust"]),
            ..ctx()
        };
        assert!(body(&["[{addr: cluster}]"], &c, Pg).is_err());
        // a title cannot open a new line
        let t = r#"[{addr: local, title: "a\nlocal all all trust\r\u0085\u2028b"}]"#;
        let b = ok(t, &ctx(), Pg);
        assert_eq!(
            b,
            ["# a local all all trust b", "local all all scram-sha-256"]
        );
    }
}
