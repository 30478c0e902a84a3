//! HBA rendering for Pigsty inventories: owns the translation of Pigsty HBA rule objects
//! (`pg_default_hba_rules` + `pg_hba_rules`, `pgb_default_hba_rules` + `pgb_hba_rules`) into the
//! text of `pg_hba.conf` / `pgb_hba.conf`, line for line what Pigsty's own templates
//! (`roles/pgsql/templates/pg_hba.conf` and `pgbouncer.hba`, v4.5) write.
//!
//! Inputs: the rule lists (YAML sequences, concatenated in order; Null counts as empty), an
//! [`HbaContext`] with the instance's effective variables, and the [`Target`]. Output: the full file
//! text, deterministic for equal inputs. Pure: no IO, no globals.
//!
//! Output: one header comment line (Pigsty's header carries a timestamp; ours does not), a blank
//! line, then the rules (those with `order` stable-sorted ascending, then those without `order`
//! in list order), each as a `# <title> [<role>] ` comment (`[DISABLED]` appended when the rule's
//! `role` filter does not match this instance, whose lines are then commented out with `#`), its
//! lines in Pigsty's columns (`%-8s %-18s %-18s %-18s method`), and a blank line.
//!
//! Inventory values are untrusted, so every value that reaches a rendered line is validated:
//! * `user` / `db`: a comma list of names of `[A-Za-z0-9_.@$+-]` and `@file` references (see
//!   [`crate::inventory::hba_rule`]); no quotes, braces, whitespace or non-ASCII. A `user` equal
//!   to `${dbsu}`, `${repl}`, `${monitor}` or `${admin}` is replaced by the context value, which
//!   must be one such name.
//! * `addr`: an alias or an IPv4 address/CIDR (bare address gets `/32`), parsed strictly. Context
//!   addresses (`admin_ip`, infra/cluster IPs, intranet CIDRs) must parse as IPv4 or IPv6 [/prefix].
//! * `rules` lines are emitted verbatim but must not contain control characters (tab excepted).
//! * `title` is written as is unless it holds a line break or another control character (tab
//!   excepted); then it is reduced to one line: whitespace runs become one space and other
//!   control characters are dropped.
//!
//! Errors name the rule's index in the concatenated list and at most the offending field's value
//! (Debug-escaped). When `rules` is a non-empty list it takes precedence over
//! `addr`/`auth`/`user`/`db` (which are still validated if given).
//!
//! Where Pigsty writes a line PostgreSQL rejects, this renderer differs on purpose: a bare IPv4
//! `addr` or context address gets its `/32` (Pigsty writes it bare, which PostgreSQL reads as
//! an address followed by a netmask column), a multi-line title stays one comment line, and
//! values Pigsty would write as broken columns (whitespace, quotes, `${x}` inside a list, a
//! `None` for `user: ~`) are an error or, for null fields, the default.
//!
//! This module owns the rendering; parsing and validating one rule, with the [`Target`] and
//! [`HbaError`] types, belong to the inventory ([`crate::inventory::hba_rule`]), re-exported here.

#[cfg(test)]
mod tests;

pub use crate::inventory::hba_rule::{check_rule, HbaError, Target};

use serde_yaml_ng::Value;

use crate::inventory::hba_rule::{
    invalid, norm_addr, parse, shape, substitute, valid_name, Rule, ADDR, ONE_NAME,
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
    /// The host's effective `admin_ip` (alias `admin`).
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

/// One rule line in Pigsty's columns; `width` is the address column's (18, except pgbouncer's
/// `world` lines, where Pigsty's template pads to 9).
fn line(conn: &str, db: &str, user: &str, (addr, width): (&str, usize), method: &str) -> String {
    format!("{conn:<8} {db:<18} {user:<18} {addr:<width$} {method}")
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
    if user != r.user && !valid_name(user) {
        return Err(invalid(i, "user", user, ONE_NAME));
    }
    let (pg, pgb, ssl) = r.auth;
    let pwenc = if ctx.pwd_enc == "md5" {
        "md5"
    } else {
        "scram-sha-256"
    };
    let method = if target == Target::Postgres { pg } else { pgb }.unwrap_or(pwenc);
    let conn = if ssl { "hostssl" } else { "host" };
    let hosts_w = |addrs: &[String], conn: &str, width: usize| -> Vec<String> {
        addrs
            .iter()
            .map(|a| line(conn, r.db, user, (a, width), method))
            .collect()
    };
    let hosts = |addrs: &[String], conn: &str| hosts_w(addrs, conn, 18);
    let local = line("local", r.db, user, ("", 18), method);
    let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let world_width = if target == Target::Postgres { 18 } else { 9 };
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
        "world" | "all" => hosts_w(&owned(&["0.0.0.0/0", "::/0"]), conn, world_width),
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
    let mut out =
        format!("# {file} rendered by pgitops from the Pigsty inventory; do not edit\n\n");
    for r in ordered.iter().chain(&unordered) {
        let enabled = role_enabled(r.role, ctx);
        let title = r.title.as_deref().unwrap_or_default();
        let disabled = if enabled { "" } else { "[DISABLED]" };
        out.push_str(&format!("# {title} [{}] {disabled}\n", r.role));
        for l in rule_lines(r, ctx, target)? {
            out.push_str(if enabled { "" } else { "#" });
            out.push_str(&l);
            out.push('\n');
        }
        out.push('\n');
    }
    Ok(out)
}
