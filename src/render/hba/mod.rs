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
//!
//! This module owns the rendering; parsing and validating one rule, with the [`Target`] and
//! [`HbaError`] types, belong to the inventory ([`crate::inventory::hba_rule`]), re-exported here.

#[cfg(test)]
mod tests;

pub use crate::inventory::hba_rule::{check_rule, HbaError, Target};

use serde_yaml_ng::Value;

use crate::inventory::hba_rule::{
    invalid, norm_addr, parse, shape, substitute, valid_name, Rule, ADDR, NAME,
};

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

const IP: &str = "an IP address or CIDR";

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
