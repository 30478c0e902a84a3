//! pgbouncer itself on each member (`pgbouncer.ini` and the `pgbouncer` service), as Pigsty's
//! `roles/pgsql/tasks/pgbouncer.yml` runs it: launched with a cluster's creation, a member's
//! addition or `pgbouncer_enabled` turned on; `pgbouncer.ini` re-rendered and reloaded when a
//! `pgbouncer_*` setting changes; restarted when `pgbouncer_port` changes; stopped and its
//! service removed when `pgbouncer_enabled` turns off.
//!
//! In: a cluster's changes (and whether it is created). Out: at most one action per [`PgbOp`]:
//! `<cluster>/pgbouncer/launch` and `/enable` (online), `/config` (reload), `/restart` and
//! `/disable` (restart:
//! they wait for the restart window). A launch also makes the files action write every file
//! (see [`super::pgbouncer::plan`]). Natively a launch acts only on a cluster pgitops
//! bootstrapped: a running fleet's pgbouncer is adopted, its `pgbouncer.ini` never rewritten on
//! first contact.

use std::collections::BTreeSet;

use super::pgbouncer::enabled;
use super::{Action, Builder, Class, Order, Phase, Playbook, Step};
use crate::diff::{Change, Entity, Op};
use crate::inventory::model::PgCluster;
use crate::inventory::module::Module;

/// What happens to pgbouncer on the action's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgbOp {
    /// `pgbouncer.ini` and starter files written, the service installed, started and awaited.
    /// `first`: with the cluster's creation or the member's addition (else `pgbouncer_enabled`
    /// turned on).
    Launch { first: bool },
    /// `pgbouncer.ini` re-rendered; RELOAD where it changed.
    Config,
    /// `pgbouncer.ini` re-rendered; the service restarted (a new port).
    Restart,
    /// The service stopped and removed (`pgbouncer_enabled: false`).
    Stop,
}

impl PgbOp {
    /// The last part of the action id (`<cluster>/pgbouncer/<verb>`).
    pub fn verb(self) -> &'static str {
        match self {
            PgbOp::Launch { first: true } => "launch",
            PgbOp::Launch { first: false } => "enable",
            PgbOp::Config => "config",
            PgbOp::Restart => "restart",
            PgbOp::Stop => "disable",
        }
    }

    /// The plan's `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            PgbOp::Launch { first: true } => "pgbouncer-launch",
            PgbOp::Launch { first: false } => "pgbouncer-enable",
            PgbOp::Config => "pgbouncer-config",
            PgbOp::Restart => "pgbouncer-restart",
            PgbOp::Stop => "pgbouncer-disable",
        }
    }

    pub fn preview(self) -> Vec<String> {
        let ini = "render /etc/pgbouncer/pgbouncer.ini (Pigsty's template) for the pgbouncer version installed on each host (`pgbouncer --version`): settings that version refuses are left out and named (max_prepared_statements needs 1.21+; Debian 12 ships 1.18)";
        let ours = "native executor: only on a cluster pgitops bootstrapped (its Patroni configuration carries pgitops' mark); a running fleet's pgbouncer is left as it runs";
        let v = |lines: &[&str]| lines.iter().map(|s| s.to_string()).collect();
        match self {
            PgbOp::Launch { .. } => v(&[
                ours,
                ini,
                "write it (dbsu, 0640) with starter userlist/useropts/database/pgb_hba files where missing (the pgbouncer/reload action writes the real ones), create pgbouncer_log_dir and /run/postgresql",
                "install the service `pgbouncer` under the node's supervisor as the dbsu (/usr/sbin/pgbouncer /etc/pgbouncer/pgbouncer.ini), start it, wait until its port answers (pg_isready)",
            ]),
            PgbOp::Config => v(&[
                ini,
                "write it only where it differs, then RELOAD pgbouncer (admin console, as the dbsu); never restarts",
            ]),
            PgbOp::Restart => v(&[
                ours,
                ini,
                "write it, restart the service `pgbouncer` under the node's supervisor (clients are disconnected), wait until the new port answers",
            ]),
            PgbOp::Stop => v(&[
                ours,
                "stop the service `pgbouncer` and remove it from the node's supervisor; /etc/pgbouncer is kept (Pigsty's pgsql-rm.yml -t pgbouncer removes it)",
            ]),
        }
    }
}

/// pgbouncer-only settings of `pgbouncer.ini` (a change re-renders it and reloads).
const INI_VARS: &[&str] = &[
    "pgbouncer_poolmode",
    "pgbouncer_auth_query",
    "pgbouncer_sslmode",
    "pgbouncer_ignore_param",
    "pgbouncer_log_dir",
];

/// Whether `key` is planned here (the catalog marks these covered).
pub fn covers(key: &str) -> bool {
    INI_VARS.contains(&key) || key == "pgbouncer_port" || key == "pgbouncer_enabled"
}

fn push(
    b: &mut Builder,
    name: &str,
    op: PgbOp,
    hosts: BTreeSet<String>,
    p: Option<Playbook>,
    why: String,
) {
    if hosts.is_empty() {
        return;
    }
    let class = match op {
        PgbOp::Launch { .. } => Class::Online,
        PgbOp::Config => Class::Reload,
        PgbOp::Restart | PgbOp::Stop => Class::Restart,
    };
    let step = Step::PgbService(op);
    let a = Action::new(
        Module::Pgsql,
        name,
        step,
        class,
        Order::Create(Phase::PgbouncerLaunch),
    );
    let a = a.hosts(hosts.into_iter().collect()).reason(why);
    b.push(match p {
        Some(p) => a.pigsty(p),
        None => a,
    });
}

/// Plans pgbouncer's lifecycle for cluster `name`; returns whether a launch was planned.
pub(super) fn plan(
    b: &mut Builder,
    name: &str,
    limit: &str,
    new: &PgCluster,
    changes: &[&Change],
    created: bool,
) -> bool {
    let on = |h: &String| enabled(b.new, h);
    let hosts = |f: &dyn Fn(&String) -> bool| -> BTreeSet<String> {
        new.members.keys().filter(|h| f(h)).cloned().collect()
    };
    if created {
        let hs = hosts(&|h| on(h));
        let any = !hs.is_empty();
        let why = "with the cluster's creation; Pigsty launches pgbouncer inside the untagged pgsql.yml (no command of its own)".to_string();
        push(b, name, PgbOp::Launch { first: true }, hs, None, why);
        return any;
    }
    let added: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.entity == Entity::Member && c.op == Op::Create)
        .map(|c| c.name.clone())
        .filter(|h| new.members.contains_key(h) && on(h))
        .collect();
    let var = |k: &str| {
        changes
            .iter()
            .find(|c| c.entity == Entity::Var && c.name == k)
    };
    let mut enable = BTreeSet::new();
    let mut disable = BTreeSet::new();
    if let Some(c) = var("pgbouncer_enabled") {
        for h in c.hosts.iter().filter(|h| new.members.contains_key(*h)) {
            match (enabled(b.old, h), enabled(b.new, h)) {
                (false, true) => enable.insert(h.clone()),
                (true, false) => disable.insert(h.clone()),
                _ => false,
            };
        }
    }
    let launching: BTreeSet<String> = added.union(&enable).cloned().collect();
    let restart: BTreeSet<String> = var("pgbouncer_port")
        .map(|c| {
            c.hosts
                .iter()
                .filter(|h| new.members.contains_key(*h) && on(h) && !launching.contains(*h))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let ini_keys: Vec<&Change> = INI_VARS.iter().filter_map(|k| var(k).copied()).collect();
    let config: BTreeSet<String> = ini_keys
        .iter()
        .flat_map(|c| c.hosts.iter())
        .filter(|h| {
            new.members.contains_key(*h)
                && on(h)
                && !launching.contains(*h)
                && !restart.contains(*h)
        })
        .cloned()
        .collect();
    let book = |hs: &BTreeSet<String>, tags: &str| {
        let hs: Vec<String> = hs.iter().cloned().collect();
        let target = match hs.len() == new.members.len() {
            true => limit.to_string(),
            false => super::limit_hosts(&hs, limit),
        };
        Playbook::new("pgsql", &target, &["-t", tags])
    };
    let any_launch = !launching.is_empty();
    if !added.is_empty() {
        let why = format!(
            "member {} added; Pigsty launches pgbouncer inside the untagged pgsql.yml of the member's addition",
            added.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        let op = PgbOp::Launch { first: true };
        push(b, name, op, added.clone(), None, why);
    }
    let p = book(&enable, "pgbouncer");
    push(
        b,
        name,
        PgbOp::Launch { first: false },
        enable,
        Some(p),
        "`pgbouncer_enabled` turned on".into(),
    );
    let p = book(&restart, "pgbouncer_config,pgbouncer_launch");
    push(
        b,
        name,
        PgbOp::Restart,
        restart,
        Some(p),
        "`pgbouncer_port` changed: pgbouncer listens on the new port after a restart".into(),
    );
    let p = book(&config, "pgbouncer_config,pgbouncer_reload");
    let keys: Vec<&str> = ini_keys.iter().map(|c| c.name.as_str()).collect();
    push(
        b,
        name,
        PgbOp::Config,
        config,
        Some(p),
        format!("changed: {}", keys.join(", ")),
    );
    let hs: Vec<String> = disable.iter().cloned().collect();
    let p = Playbook::new(
        "pgsql-rm",
        &super::limit_hosts(&hs, limit),
        &["-t", "pgbouncer"],
    );
    push(
        b,
        name,
        PgbOp::Stop,
        disable,
        Some(p),
        "`pgbouncer_enabled` turned off".into(),
    );
    any_launch
}
