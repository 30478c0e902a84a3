//! Typed steps: what one action does, per component. This enum is the one place components are
//! registered; a new component adds a variant here and the compiler points at every `match` that
//! must handle it (ids, kinds, previews, the native and the Pigsty executors, the record).
//!
//! In: names, definitions and argv built by the planners. Out: the action id's path
//! (`user/dbuser_app/create`), the JSON `kind`, and the preview lines (`Display`), with SQL from
//! the one audited renderer ([`crate::render::sql`], see `preview`) and passwords redacted.

use std::fmt;

use serde_yaml_ng::Mapping;

pub use super::pgbouncer_life::PgbOp;
use crate::inventory::defaults::Privileges;
use crate::render::sql::SqlContext;

/// One step of one action.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// PostgreSQL objects on the live primary (users, databases).
    Object(ObjectStep),
    /// `pg_hba.conf` / `pgb_hba.conf` on each target instance.
    Hba(HbaStep),
    /// `pg_parameters` on each target instance.
    Parameters(ParamStep),
    /// pgbouncer's files on each target member, then a reload where one changed.
    Pgbouncer(PgbStep),
    /// pgbouncer itself on each target member: `pgbouncer.ini` and its service.
    PgbService(PgbOp),
    /// Patroni's configuration re-rendered on each running member, reloaded where it changed
    /// (after the etcd endpoints changed); nothing restarted.
    PatroniRefresh { etcd: String },
    /// The cluster's HAProxy services on each target host: its members, or the hosts of
    /// `pg_service_provider` (Pigsty's `pg_service`).
    Services(ServiceStep),
    /// A PGSQL cluster appears in the inventory: natively checked to run, never bootstrapped.
    ClusterRunning { name: String },
    /// `pg_role: primary` moved from `from` to `to` (both members before and after): a Patroni
    /// switchover to `to`, whoever leads now.
    Switchover { from: String, to: String },
    /// Done by Pigsty's playbooks; the native executor does not do it (yet) and says so.
    Delegated(Delegated),
    /// Never applied automatically; the action's reason says why.
    Manual(Manual),
}

/// An inventory entry (`pg_users` / `pg_databases` item). Its `Debug` never shows the values:
/// a user definition carries the password.
#[derive(Clone, PartialEq)]
pub struct Definition(pub Mapping);

impl fmt::Debug for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Definition(<inventory entry>)")
    }
}

/// What the SQL renderer needs to know about the cluster, resolved from the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTarget {
    /// `pg_version` as declared (17 when absent); the executor uses the server's own.
    pub pg_major: u32,
    pub admin: String,
    pub monitor: String,
    pub replicator: String,
    /// `pg_default_privileges`, typed (see [`crate::inventory::defaults`]).
    pub default_privileges: Result<Privileges, String>,
}

impl SqlTarget {
    /// The renderer's context, for the server's major version when known.
    pub fn context(&self, pg_major: Option<u32>) -> SqlContext<'_> {
        SqlContext {
            pg_major: pg_major.unwrap_or(self.pg_major),
            admin: &self.admin,
            monitor: &self.monitor,
            replicator: &self.replicator,
            today: None,
            default_privileges: self.default_privileges.as_deref().map_err(String::as_str),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ObjectStep {
    /// `pg_default_roles`: created when missing, converged otherwise (Pigsty: at bootstrap).
    /// A role's definition carries the password it gets if it is created (for the system
    /// users: `pg_*_password` when the inventory sets it).
    DefaultRoles {
        roles: Vec<(String, Definition)>,
        sql: SqlTarget,
    },
    /// What Pigsty's bootstrap does to `template1` and `postgres` (`pg-init-template.sql`):
    /// default privileges, `pg_default_schemas`, `pg_default_extensions` (Pigsty's lists when
    /// unset), the backup grants and the `monitor` schema. Natively only on a cluster pgitops
    /// bootstrapped.
    TemplateInit {
        dbsu: String,
        /// `pg_default_schemas` and `pg_default_extensions` where the inventory sets them.
        lists: Definition,
        sql: SqlTarget,
    },
    UserUpsert {
        name: String,
        def: Definition,
        create: bool,
        sql: SqlTarget,
    },
    /// `state: absent`, or pruned (pgitops created it and it left the inventory).
    UserDrop {
        name: String,
        sql: SqlTarget,
        /// `state: absent`: Pigsty's `pg-drop-role` (terminate sessions, reassign what the role
        /// owns to this role, the dbsu, drop its privileges, drop it). `None` (a prune): drop
        /// only a role that owns and holds nothing.
        reassign_to: Option<String>,
    },
    DatabaseUpsert {
        name: String,
        def: Definition,
        create: bool,
        sql: SqlTarget,
    },
    DatabaseDrop {
        name: String,
        sql: SqlTarget,
    },
    /// `state: recreate`: drop, then create from `def`.
    DatabaseRecreate {
        name: String,
        def: Definition,
        sql: SqlTarget,
    },
}

impl ObjectStep {
    pub fn name(&self) -> &str {
        match self {
            ObjectStep::DefaultRoles { .. } => "pg_default_roles",
            ObjectStep::TemplateInit { .. } => "template1",
            ObjectStep::UserUpsert { name, .. }
            | ObjectStep::UserDrop { name, .. }
            | ObjectStep::DatabaseUpsert { name, .. }
            | ObjectStep::DatabaseDrop { name, .. }
            | ObjectStep::DatabaseRecreate { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaFile {
    Postgres,
    Pgbouncer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaStep {
    pub files: Vec<HbaFile>,
}

/// A file of `/etc/pgbouncer` that the files action writes (`pgbouncer.ini` is [`PgbOp`]'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PgbFile {
    Userlist,
    Useropts,
    Databases,
    Hba,
}

impl PgbFile {
    pub fn name(self) -> &'static str {
        match self {
            PgbFile::Userlist => "userlist.txt",
            PgbFile::Useropts => "useropts.txt",
            PgbFile::Databases => "database.txt",
            PgbFile::Hba => "pgb_hba.conf",
        }
    }
}

/// The pgbouncer files to converge (sorted, distinct), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgbStep {
    pub files: Vec<PgbFile>,
}

/// Where a cluster's services are rendered: `provider` is `pg_service_provider`'s group (the
/// files then follow the declared primary's variables, as `service_remote.yml` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStep {
    pub provider: Option<String>,
    /// Emitted with the cluster's creation (first contact): natively only on a cluster pgitops
    /// bootstrapped; a running one's services are adopted as they are.
    pub first: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamStep {
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceVerb {
    Add,
    Remove,
    Update,
}

impl InstanceVerb {
    fn as_str(self) -> &'static str {
        match self {
            InstanceVerb::Add => "add",
            InstanceVerb::Remove => "remove",
            InstanceVerb::Update => "update",
        }
    }
}

/// Work Pigsty's playbooks do (the action's `pigsty` command) and the native executor does not,
/// except ETCD's cluster create, member add/remove and refresh (see [`super::etcd::EtcdStep`])
/// and, under Patroni, a PGSQL member's add/remove and a whole PGSQL cluster's removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegated {
    ClusterCreate {
        name: String,
    },
    ClusterRemove {
        name: String,
    },
    MemberAdd {
        ip: String,
    },
    MemberRemove {
        ip: String,
    },
    HostAdd {
        ip: String,
    },
    HostRemove {
        ip: String,
    },
    RedisInstance {
        ip: String,
        port: String,
        verb: InstanceVerb,
    },
    /// The other etcd members' configuration after the membership change of `changed`.
    EtcdRefresh {
        changed: String,
    },
    /// Variables applied by one set of Pigsty tags; `tag` is the first of them.
    ConfigApply {
        tag: String,
        keys: Vec<String>,
    },
}

/// Changes that are never applied automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manual {
    /// Removing the declared primary.
    PrimaryRemoval { ip: String },
    /// An instance identity or bootstrap variable of a PGSQL member changed.
    MemberVar { ip: String, var: String },
    /// The identity of another module's member changed.
    MemberIdentity { ip: String },
    /// A MinIO topology change (`op`: create, delete, update).
    MinioMember { ip: String, op: &'static str },
    /// Fields only `CREATE DATABASE` sets.
    DatabaseCreateOptions { name: String },
    /// A variable with no safe automatic action.
    Var { name: String },
    /// `pg_parameters` that Patroni passes on the postmaster's command line: only its DCS
    /// configuration changes them.
    PatroniParameters { names: Vec<String> },
}

impl Step {
    /// The id after `<cluster>/`: `<entity>/<name>/<verb>`.
    pub fn path(&self) -> String {
        match self {
            Step::Object(o) => match o {
                ObjectStep::DefaultRoles { .. } => "default-roles/converge".into(),
                ObjectStep::TemplateInit { .. } => "templates/init".into(),
                ObjectStep::UserUpsert { name, create, .. } => {
                    format!("user/{name}/{}", verb(*create))
                }
                ObjectStep::UserDrop { name, .. } => format!("user/{name}/drop"),
                ObjectStep::DatabaseUpsert { name, create, .. } => {
                    format!("database/{name}/{}", verb(*create))
                }
                ObjectStep::DatabaseDrop { name, .. } => format!("database/{name}/drop"),
                ObjectStep::DatabaseRecreate { name, .. } => format!("database/{name}/recreate"),
            },
            Step::Hba(_) => "hba/reload".into(),
            Step::Parameters(_) => "parameters/apply".into(),
            Step::Pgbouncer(_) => "pgbouncer/reload".into(),
            Step::PgbService(op) => format!("pgbouncer/{}", op.verb()),
            Step::Services(_) => "service/refresh".into(),
            Step::PatroniRefresh { .. } => "patroni/refresh".into(),
            Step::ClusterRunning { name } => format!("cluster/{name}/create"),
            Step::Switchover { to, .. } => format!("primary/{to}/switchover"),
            Step::Delegated(d) => match d {
                Delegated::ClusterCreate { name } => format!("cluster/{name}/create"),
                Delegated::ClusterRemove { name } => format!("cluster/{name}/remove"),
                Delegated::MemberAdd { ip } => format!("member/{ip}/add"),
                Delegated::MemberRemove { ip } => format!("member/{ip}/remove"),
                Delegated::HostAdd { ip } => format!("host/{ip}/add"),
                Delegated::HostRemove { ip } => format!("host/{ip}/remove"),
                Delegated::RedisInstance { ip, port, verb } => {
                    format!("instance/{ip}:{port}/{}", verb.as_str())
                }
                Delegated::EtcdRefresh { .. } => "members/refresh".into(),
                Delegated::ConfigApply { tag, .. } => format!("config/{tag}/apply"),
            },
            Step::Manual(m) => match m {
                Manual::PrimaryRemoval { ip } => format!("member/{ip}/remove"),
                Manual::MemberVar { ip, var } => format!("member/{ip}/{var}"),
                Manual::MemberIdentity { ip } => format!("member/{ip}/identity"),
                Manual::MinioMember { ip, op } => format!("member/{ip}/{op}"),
                Manual::DatabaseCreateOptions { name } => {
                    format!("database/{name}/create-options")
                }
                Manual::Var { name } => format!("var/{name}/manual"),
                Manual::PatroniParameters { .. } => "parameters/patroni-dcs".into(),
            },
        }
    }

    /// The `kind` field of the plan's JSON (output only; nothing dispatches on it).
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Object(o) => match o {
                ObjectStep::DefaultRoles { .. } => "default-roles",
                ObjectStep::TemplateInit { .. } => "templates-init",
                ObjectStep::UserUpsert { create: true, .. } => "user-create",
                ObjectStep::UserUpsert { .. } => "user-update",
                ObjectStep::UserDrop { .. } => "user-drop",
                ObjectStep::DatabaseUpsert { create: true, .. } => "database-create",
                ObjectStep::DatabaseUpsert { .. } => "database-update",
                ObjectStep::DatabaseDrop { .. } => "database-drop",
                ObjectStep::DatabaseRecreate { .. } => "database-recreate",
            },
            Step::Hba(_) => "hba-reload",
            Step::Parameters(_) => "parameters-apply",
            Step::Pgbouncer(_) => "pgbouncer-reload",
            Step::PgbService(op) => op.kind(),
            Step::Services(_) => "service-refresh",
            Step::PatroniRefresh { .. } => "patroni-refresh",
            Step::ClusterRunning { .. } => "cluster-create",
            Step::Switchover { .. } => "switchover",
            Step::Delegated(d) => match d {
                Delegated::ClusterCreate { .. } => "cluster-create",
                Delegated::ClusterRemove { .. } => "cluster-remove",
                Delegated::MemberAdd { .. } => "member-add",
                Delegated::MemberRemove { .. } => "member-remove",
                Delegated::HostAdd { .. } => "node-add",
                Delegated::HostRemove { .. } => "node-remove",
                Delegated::RedisInstance { verb, .. } => match verb {
                    InstanceVerb::Add => "redis-instance-add",
                    InstanceVerb::Remove => "redis-instance-remove",
                    InstanceVerb::Update => "redis-instance-update",
                },
                Delegated::EtcdRefresh { .. } => "etcd-refresh",
                Delegated::ConfigApply { .. } => "config-apply",
            },
            Step::Manual(m) => match m {
                Manual::PrimaryRemoval { .. } => "member-remove",
                Manual::MemberVar { .. } => "member-identity",
                Manual::MemberIdentity { .. } => "member-identity",
                Manual::MinioMember { .. } => "member-manual",
                Manual::DatabaseCreateOptions { .. } => "database-create-options",
                Manual::Var { .. } => "var-manual",
                Manual::PatroniParameters { .. } => "parameters-patroni-dcs",
            },
        }
    }

    /// Preview lines (the plan's `steps`): one entry per script or file step; manual steps
    /// have none.
    pub fn preview(&self) -> Vec<String> {
        match self {
            Step::Object(o) => o.preview(),
            Step::Hba(h) => h
                .files
                .iter()
                .map(|file| match file {
                    HbaFile::Postgres => "write pg_hba.conf atomically (live role), SELECT pg_reload_conf(), check pg_hba_file_rules; put the old file back on any error",
                    HbaFile::Pgbouncer => "pgb_hba.conf: written by this cluster's pgbouncer/reload action (native executor)",
                }.to_string())
                .collect(),
            Step::Parameters(p) => vec![
                format!(
                    "set {} in postgresql.auto.conf on each host (ALTER SYSTEM), SELECT pg_reload_conf(), read pg_settings.pending_restart",
                    p.names.join(", ")
                ),
                "members under Patroni with a restart pending: restarted through Patroni's REST API (POST /restart, credentials on stdin), replicas one at a time, each awaited streaming, the leader last (a restart, not a failover), awaited leading; PostgreSQL not under Patroni: reported pending, never restarted".into(),
            ],
            Step::PatroniRefresh { etcd } => vec![
                format!("re-render Patroni's configuration (etcd3.hosts: {etcd}) on each member where Patroni runs and pgitops wrote the file; write it and reload Patroni (POST /reload) only where it changed; nothing restarted"),
            ],
            Step::Pgbouncer(p) => {
                let mut lines: Vec<String> = p.files.iter().map(|f| match f {
                    PgbFile::Userlist => "write /etc/pgbouncer/userlist.txt on each host if it differs: the dbsu, monitor, admin and `pgbouncer: true` users with their verifiers read from pg_authid on the live primary (never shown)".to_string(),
                    PgbFile::Hba => "write /etc/pgbouncer/pgb_hba.conf on each host if it differs (pgb_default_hba_rules + pgb_hba_rules)".to_string(),
                    f => format!("write /etc/pgbouncer/{} on each host if it differs", f.name()),
                }).collect();
                lines.push("RELOAD pgbouncer (admin console, as the dbsu) on each host where a file changed; never restarts".into());
                lines
            }
            Step::PgbService(op) => op.preview(),
            Step::ClusterRunning { .. } => vec![
                "native executor: creates the cluster under Patroni (etcd as DCS; primary first, then replicas cloned; waits until each streams), adopts members where Patroni answers, leaves a PostgreSQL not under Patroni alone; then converges the objects below".into(),
                "Pigsty executor: adopts the cluster when its members already run PostgreSQL (the untagged pgsql.yml never runs on a running cluster)".into(),
            ],
            Step::Switchover { from, to } => vec![
                format!("switchover: {from} → {to} (the declared primary moves; pgitops switches to {to} from whichever member leads now, and does nothing when {to} already leads)"),
                format!("native executor: check that {to} runs and streams under Patroni, POST /switchover to the leader's REST API (leader and candidate by Patroni name, credentials on stdin), wait until {to} leads with PostgreSQL serving"),
                "then, where pgitops runs HAProxy for the cluster, mark the new leader UP and the old one DOWN in the services checked on /primary (HAProxy's runtime API) instead of waiting for `rise` checks; wait until the old leader streams from the new one".into(),
            ],
            Step::Services(s) => {
                let on = match &s.provider {
                    Some(g) => format!("on each host of `pg_service_provider` group {g} (services as the declared primary defines them)"),
                    None => "on each member".to_string(),
                };
                vec![
                    format!("{on}: check /usr/sbin/haproxy; write /etc/haproxy/haproxy.cfg when absent or written by pgitops (a foreign one is left alone)"),
                    "write /etc/haproxy/conf.d/<cluster>-<service>.cfg for pg_default_services + pg_services, remove stale <cluster>-*.cfg; haproxy -c -f haproxy.cfg -f conf.d, the old files put back if it fails".into(),
                    "start haproxy under the node's supervisor when it does not run (`haproxy_enabled`), else reload it (SIGUSR2: established connections stay) where a file changed; verify the frontends on the admin socket".into(),
                    "nothing where `haproxy_enabled` is false, nor when Patroni answers on no member (the health checks ask its REST API)".into(),
                ]
            }
            Step::Delegated(d) => {
                let what = match d {
                    Delegated::ClusterRemove { .. } => "removing a whole cluster".to_string(),
                    Delegated::MemberAdd { .. } => "bootstrapping a new member".to_string(),
                    Delegated::MemberRemove { .. } => "removing a member".to_string(),
                    Delegated::ConfigApply { keys, .. } => format!("applying {}", keys.join(", ")),
                    _ => self.kind().to_string(),
                };
                let mut lines = vec![format!("native executor: {what} is not performed natively; use executor = \"pigsty\" (it runs the command above)")];
                if matches!(d, Delegated::HostAdd { .. } | Delegated::ClusterCreate { .. } | Delegated::MemberAdd { .. } | Delegated::RedisInstance { verb: InstanceVerb::Add, .. }) {
                    lines.push("Pigsty executor: first asks the hosts whether they already run the module; if they do, the action is adopted and the playbook does not run".into());
                }
                lines
            }
            Step::Manual(_) => vec![],
        }
    }
}

/// The preview: SQL with passwords as `<redacted>`, files and reloads, or what is not native.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Manual(_) => f.write_str("manual: never applied automatically"),
            _ => f.write_str(&self.preview().join("\n")),
        }
    }
}

fn verb(create: bool) -> &'static str {
    if create {
        "create"
    } else {
        "update"
    }
}
