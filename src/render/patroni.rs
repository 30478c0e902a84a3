//! Patroni's configuration of a PGSQL member, as Pigsty v4.5.0's `pg_conf` templates
//! (`roles/pgsql/templates/{oltp,olap,crit,tiny}.yml`) render it, and where Pigsty puts it
//! (`/pg/conf/<pg_instance>.yml`, owner `pg_dbsu`, group `postgres`, mode 0640, linked from
//! `/etc/patroni/patroni.yml`: `roles/pgsql/tasks/config.yml`).
//!
//! In: an [`Inventory`] (the host's effective variables over Pigsty's role defaults, the `pg_id`
//! facts from its cluster, the `etcd` and `infra` groups) and the [`NodeFacts`] that Pigsty's
//! `node_id` and `config.yml` observe (CPUs, memory, data disk size). Out: the YAML text, built
//! as a value tree and emitted by one YAML emitter (never by pasting inventory text), or a
//! [`PatroniError`]. The text holds passwords: callers must never log it; errors never carry a
//! value. Pure. `pg_hba` is not part of it (Pigsty writes `pg_hba.conf` itself: [`super::hba`]);
//! neither is `pg_parameters` beyond `cron.database_name` (Pigsty writes them into
//! `postgresql.auto.conf`, which overrides what Patroni writes).

pub mod jinja;
pub mod params;
mod rest;
mod sections;
mod service;

pub use rest::RestAuth;
pub use service::service;

use std::sync::OnceLock;

use serde_yaml_ng::{Mapping, Value};

use crate::inventory::{HostVars, Inventory};
use jinja::{plain, text};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatroniError {
    #[error("{0} is not a member of a PGSQL cluster")]
    NotMember(String),
    #[error("`{0}` is not set (Pigsty's template needs it)")]
    Missing(&'static str),
    #[error(
        "`pg_conf` {0:?} is not one of Pigsty's templates: oltp.yml, olap.yml, crit.yml, tiny.yml"
    )]
    Conf(String),
    #[error("`{var}` must be {expected}")]
    Invalid {
        var: &'static str,
        expected: &'static str,
    },
    #[error("there is no `etcd` group: Patroni needs an etcd DCS")]
    NoEtcd,
    #[error(
        "the value at `{0}` would not read back as the same string in YAML 1.1 (Patroni's reader)"
    )]
    Ambiguous(String),
}

/// The templates `pg_conf` chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conf {
    Oltp,
    Olap,
    Crit,
    Tiny,
}

impl Conf {
    pub const ALL: [Conf; 4] = [Conf::Oltp, Conf::Olap, Conf::Crit, Conf::Tiny];

    pub fn file(self) -> &'static str {
        match self {
            Conf::Oltp => "oltp.yml",
            Conf::Olap => "olap.yml",
            Conf::Crit => "crit.yml",
            Conf::Tiny => "tiny.yml",
        }
    }
}

/// What the templates read from the node: `node_cpu`, `node_mem_mb`, `node_mem_gb` (from
/// `roles/node_id`), `node_fs_bytes` (`df` of `pg_fs_main` in `roles/pgsql/tasks/config.yml`)
/// and, for `pg_io_method: auto` on PostgreSQL 18, `os_package`/`os_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub cpu: u32,
    pub mem_mb: u64,
    pub mem_gb: u64,
    pub fs_bytes: u64,
    /// `deb` or `rpm`.
    pub os_package: String,
    pub os_version: u32,
}

impl NodeFacts {
    /// From what a node shows: processors, physical pages × page size, and `df --output=size`
    /// of `pg_fs_main` (or `node_data`) in KiB, `None` when neither exists (Pigsty then assumes
    /// 40 GiB).
    pub fn observed(
        cpu: u32,
        mem_bytes: u64,
        fs_kib: Option<u64>,
        os_package: &str,
        os_version: u32,
    ) -> Self {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        NodeFacts {
            cpu,
            mem_mb: mem_bytes.div_ceil(MIB),
            mem_gb: mem_bytes.div_ceil(GIB).max(1),
            fs_bytes: fs_kib.unwrap_or(41_943_040) * 1024,
            os_package: os_package.into(),
            os_version,
        }
    }
}

/// How Patroni reaches its etcd (the `etcd3` section). Pigsty's etcd runs https with an etcd
/// user per cluster (its templates: certificates under `/pg/cert`, `username`/`password`);
/// pgitops' native etcd ([`crate::render::etcd`]) serves plain http without authentication. The
/// caller says which one the cluster's etcd is, from how that etcd runs (the native executor
/// observes who wrote `/etc/etcd/etcd.conf`): never from a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dcs {
    /// Pigsty's etcd: `protocol: https`, certificates, the cluster's etcd user.
    PigstyTls,
    /// pgitops-native etcd: `protocol: http`, no certificates, no user.
    PlainHttp,
}

/// Where Pigsty puts the file: the path, the link to it, owner, group and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub path: String,
    pub link: &'static str,
    pub owner: String,
    pub group: &'static str,
    pub mode: u32,
}

/// One host's view: its variables over the role defaults, the conf, the facts.
pub struct Ctx<'a> {
    vars: &'a HostVars,
    pub conf: Conf,
    pub facts: &'a NodeFacts,
    /// `pg_version | int`.
    pub version: i64,
    pub dcs: Dcs,
}

impl<'a> Ctx<'a> {
    /// The effective value: the inventory's, else Pigsty's role default; `None` if undefined.
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        match self.vars.get(k) {
            Some(v) => Some(v.value.as_ref()),
            None => super::pigsty_defaults::default(k),
        }
    }

    pub fn req(&self, k: &'static str) -> Result<&'a Value, PatroniError> {
        self.get(k).ok_or(PatroniError::Missing(k))
    }

    fn text(&self, k: &'static str) -> Result<String, PatroniError> {
        self.req(k).map(text)
    }

    fn plain(&self, k: &'static str) -> Result<Value, PatroniError> {
        self.req(k).map(plain)
    }

    fn defined(&self, k: &str) -> bool {
        self.vars.get(k).is_some()
    }
}

fn vars<'i>(inv: &'i Inventory, host: &str) -> Result<&'i HostVars, PatroniError> {
    let member = inv
        .model
        .pgsql
        .values()
        .any(|c| c.members.contains_key(host));
    match (member, inv.tree.hosts.get(host)) {
        (true, Some(h)) => Ok(&h.vars),
        _ => Err(PatroniError::NotMember(host.into())),
    }
}

/// Patroni's `etcd3.hosts`: `<ip>:<etcd_port>` of every `etcd` host, sorted (an error when
/// there is no `etcd` group).
pub fn etcd_hosts(inv: &Inventory) -> Result<String, PatroniError> {
    sections::etcd_hosts(inv)
}

/// The credentials of `host`'s Patroni REST API (`restapi.authentication`: `patroni_username`,
/// `patroni_password`, Pigsty's defaults `postgres` / `Patroni.API`). The password is a secret:
/// callers send it on stdin only.
pub fn rest_auth(inv: &Inventory, host: &str) -> Result<RestAuth, PatroniError> {
    let vars = vars(inv, host)?;
    let ctx = vars_only(vars);
    Ok(RestAuth {
        username: ctx.text("patroni_username")?,
        password: ctx.text("patroni_password")?,
    })
}

/// A context for reading `vars` alone (names, paths, credentials): no node facts, no template.
fn vars_only(vars: &HostVars) -> Ctx<'_> {
    static NO_FACTS: OnceLock<NodeFacts> = OnceLock::new();
    Ctx {
        vars,
        conf: Conf::Oltp,
        facts: NO_FACTS.get_or_init(|| NodeFacts::observed(1, 1, None, "deb", 12)),
        version: 0,
        dcs: Dcs::PigstyTls,
    }
}

/// The template `pg_conf` names.
pub fn conf(inv: &Inventory, host: &str) -> Result<Conf, PatroniError> {
    let vars = vars(inv, host)?;
    let name = match vars.get("pg_conf") {
        Some(v) => text(&v.value),
        None => "oltp.yml".into(),
    };
    Conf::ALL
        .into_iter()
        .find(|c| c.file() == name)
        .ok_or(PatroniError::Conf(name))
}

/// Where Pigsty writes the file of `host` (`roles/pgsql/tasks/config.yml`).
pub fn placement(inv: &Inventory, host: &str) -> Result<Placement, PatroniError> {
    let vars = vars(inv, host)?;
    let ctx = vars_only(vars);
    Ok(Placement {
        path: format!("/pg/conf/{}.yml", instance(&ctx)?),
        link: "/etc/patroni/patroni.yml",
        owner: ctx.text("pg_dbsu")?,
        group: "postgres",
        mode: 0o640,
    })
}

/// `pg_instance`: `<pg_cluster>-<pg_seq>`.
fn instance(c: &Ctx) -> Result<String, PatroniError> {
    Ok(format!("{}-{}", c.text("pg_cluster")?, c.text("pg_seq")?))
}

/// Patroni's configuration of `host` as YAML text (holds passwords: never log it), for Pigsty's
/// etcd ([`Dcs::PigstyTls`]).
pub fn patroni_yml(inv: &Inventory, host: &str, facts: &NodeFacts) -> Result<String, PatroniError> {
    patroni_yml_for(inv, host, facts, Dcs::PigstyTls)
}

/// [`patroni_yml`] for the etcd `dcs` says.
pub fn patroni_yml_for(
    inv: &Inventory,
    host: &str,
    facts: &NodeFacts,
    dcs: Dcs,
) -> Result<String, PatroniError> {
    let doc = patroni_config(inv, host, facts, dcs)?;
    jinja::emit(&doc).map_err(PatroniError::Ambiguous)
}

/// The configuration as a value tree, in the template's key order.
pub fn patroni_config(
    inv: &Inventory,
    host: &str,
    facts: &NodeFacts,
    dcs: Dcs,
) -> Result<Value, PatroniError> {
    let conf = conf(inv, host)?;
    let vars = vars(inv, host)?;
    let probe = Ctx {
        vars,
        conf,
        facts,
        version: 0,
        dcs,
    };
    let version = jinja::int(probe.req("pg_version")?);
    let c = Ctx { version, ..probe };
    let mut doc = Mapping::new();
    let citus = c.text("pg_mode")? == "citus";
    doc.insert(
        "namespace".into(),
        jinja::plain_text(&format!("{}/", c.text("pg_namespace")?)),
    );
    doc.insert("name".into(), jinja::plain_text(&instance(&c)?));
    let shard = shard(&c)?;
    if citus {
        doc.insert("scope".into(), jinja::plain_text(&shard));
        let mut m = Mapping::new();
        m.insert("group".into(), jinja::plain_text(&group(&c)));
        m.insert("database".into(), c.plain("pg_primary_db")?);
        doc.insert("citus".into(), Value::Mapping(m));
    } else {
        doc.insert("scope".into(), c.plain("pg_cluster")?);
    }
    sections::top(&c, inv, host, &mut doc, citus, &shard)?;
    Ok(Value::Mapping(doc))
}

/// `pg_shard` as `pg_id` sets it: the variable, else `pg_cluster`.
fn shard(c: &Ctx) -> Result<String, PatroniError> {
    match c.get("pg_shard") {
        Some(v) if c.defined("pg_shard") => Ok(text(v)),
        _ => c.text("pg_cluster"),
    }
}

/// `pg_group` as `pg_id` sets it: `pg_group | int`, else 0.
fn group(c: &Ctx) -> String {
    match c.vars.get("pg_group") {
        Some(v) => jinja::int(&v.value).to_string(),
        None => "0".into(),
    }
}

#[cfg(test)]
#[path = "patroni_tests.rs"]
mod tests;
