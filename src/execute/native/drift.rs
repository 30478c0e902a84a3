//! The drift check's observation (IO): what a cluster's nodes have now, read-only, through the
//! native executor's plumbing, then held against the inventory by the pure
//! [`crate::diff::drift`].
//!
//! In: the inventory of the cluster's last applied commit, the actions a resync of that commit
//! would run (they say what pgitops manages: users, default roles, databases, pgbouncer files
//! on which members), the runner and execution settings. Out: a [`Drift`]. SQL goes to the
//! **live** primary (found as the executor finds it) on psql's stdin and is fixed text: every
//! role and database is read and filtered here, so no inventory value reaches a query. Files
//! are read as the dbsu by one fixed script per member (paths as arguments, content back in
//! base64). The verifiers read from `pg_authid` stay in memory: they are compared, never shown.
//! Nothing is written anywhere.

use std::collections::BTreeMap;

use base64::Engine as _;
use futures::StreamExt;
use serde::Deserialize;

use super::hba::live_role;
use super::pg::{become_argv, live_primary, psql};
use super::Ctx;
use crate::diff::drift::databases::{self, LiveDatabase, LiveInner};
use crate::diff::drift::objects::{self, LiveRole};
use crate::diff::drift::{files, Drift, Item};
use crate::execute::{ExecConfig, ExecError, HostLocks, Runner};
use crate::inventory::model::PgCluster;
use crate::inventory::Inventory;
use crate::plan::{Action, ObjectStep, PgbFile, Step};
use crate::render::hba::Target;
use crate::render::hba_for;
use crate::render::pgbouncer::{database_txt, userlist, userlist_users, useropts};

/// Every role but PostgreSQL's own (`pg_*`), as one JSON array.
const ROLES: &str = "SELECT coalesce(json_agg(json_build_object('name', r.rolname, \
 'flags', json_build_object('login', r.rolcanlogin, 'superuser', r.rolsuper, \
 'createdb', r.rolcreatedb, 'createrole', r.rolcreaterole, 'inherit', r.rolinherit, \
 'replication', r.rolreplication, 'bypassrls', r.rolbypassrls), \
 'connlimit', r.rolconnlimit, \
 'valid_until', CASE WHEN r.rolvaliduntil IS NULL THEN NULL \
   WHEN r.rolvaliduntil = 'infinity' THEN 'infinity' \
   ELSE to_char(r.rolvaliduntil, 'YYYY-MM-DD') END, \
 'password', r.rolpassword, \
 'comment', pg_catalog.shobj_description(r.oid, 'pg_authid'), \
 'member_of', ARRAY(SELECT g.rolname FROM pg_catalog.pg_auth_members m \
   JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), \
 'settings', coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s \
   WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}'))), '[]')::text \
 FROM pg_catalog.pg_authid r WHERE r.rolname !~ '^pg_';\n";

/// Every database, as one JSON array.
const DATABASES: &str = "SELECT coalesce(json_agg(json_build_object('name', d.datname, \
 'owner', pg_catalog.pg_get_userbyid(d.datdba), \
 'encoding', pg_catalog.pg_encoding_to_char(d.encoding), \
 'collate', d.datcollate, 'ctype', d.datctype, \
 'tablespace', (SELECT t.spcname FROM pg_catalog.pg_tablespace t WHERE t.oid = d.dattablespace), \
 'is_template', d.datistemplate, 'allowconn', d.datallowconn, 'connlimit', d.datconnlimit, \
 'public_connect', EXISTS (SELECT FROM pg_catalog.aclexplode(coalesce(d.datacl, \
   pg_catalog.acldefault('d', d.datdba))) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'), \
 'comment', pg_catalog.shobj_description(d.oid, 'pg_database'), \
 'settings', coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s \
   WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}'))), '[]')::text \
 FROM pg_catalog.pg_database d;\n";

/// Inside one database: its schemas, extensions and its owner's default privileges.
const INNER: &str = "SELECT json_build_object(\
 'schemas', ARRAY(SELECT n.nspname FROM pg_catalog.pg_namespace n), \
 'extensions', coalesce((SELECT json_object_agg(e.extname, e.extversion) \
   FROM pg_catalog.pg_extension e), '{}'), \
 'owner_default_acl', (SELECT count(*) FROM pg_catalog.pg_default_acl a \
   WHERE a.defaclrole = (SELECT datdba FROM pg_catalog.pg_database \
   WHERE datname = current_database())))::text;\n";

/// One instance: in recovery, and the `postgresql.auto.conf` entries in file order.
const INSTANCE: &str = "SELECT json_build_object('recovery', pg_is_in_recovery(), \
 'auto', coalesce((SELECT json_agg(json_build_array(f.name, f.setting) ORDER BY f.seqno) \
   FROM pg_catalog.pg_file_settings f WHERE f.sourcefile LIKE '%/postgresql.auto.conf'), '[]'))::text;\n";

/// Prints, per path argument, `present <base64 of the file>` or `missing` on a line.
const READ_FILES: &str = r#"for f in "$@"; do
  if [ -f "$f" ]; then printf 'present '; base64 -w0 < "$f"; echo; else echo missing; fi
done"#;

/// Databases read at once (one psql each).
const INSIDE_AT_ONCE: usize = 8;

#[derive(Deserialize)]
struct Instance {
    recovery: bool,
    auto: Vec<(String, String)>,
}

/// What the resync plan of the cluster manages.
#[derive(Default)]
struct Managed<'a> {
    /// Name, definition, whether its password is compared.
    roles: Vec<(&'a str, &'a serde_yaml_ng::Mapping, bool)>,
    roles_absent: Vec<&'a str>,
    databases: Vec<(&'a str, &'a serde_yaml_ng::Mapping, bool)>,
    databases_absent: Vec<&'a str>,
    /// Host, files.
    pgbouncer: BTreeMap<&'a str, Vec<PgbFile>>,
}

fn managed(actions: &[Action]) -> Managed<'_> {
    let mut m = Managed::default();
    for a in actions {
        match &a.step {
            Step::Object(ObjectStep::UserUpsert { name, def, .. }) => {
                m.roles.push((name, &def.0, true))
            }
            Step::Object(ObjectStep::DefaultRoles { roles, .. }) => m
                .roles
                .extend(roles.iter().map(|(n, d)| (n.as_str(), &d.0, false))),
            Step::Object(ObjectStep::UserDrop { name, .. }) => m.roles_absent.push(name),
            Step::Object(
                ObjectStep::DatabaseUpsert { name, def, sql, .. }
                | ObjectStep::DatabaseRecreate { name, def, sql },
            ) => {
                let privileges = sql.default_privileges.as_ref().is_ok_and(|p| !p.is_empty());
                m.databases.push((name, &def.0, privileges))
            }
            Step::Object(ObjectStep::DatabaseDrop { name, .. }) => m.databases_absent.push(name),
            Step::Pgbouncer(s) => {
                for h in &a.hosts {
                    let files = m.pgbouncer.entry(h.as_str()).or_default();
                    for f in &s.files {
                        if !files.contains(f) {
                            files.push(*f);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // A default role that `pg_users` declares too is converged by the user action after it:
    // the user's definition is the one that holds.
    let users: Vec<&str> = m.roles.iter().filter(|r| r.2).map(|r| r.0).collect();
    m.roles.retain(|(n, _, user)| *user || !users.contains(n));
    m
}

fn parse<T: for<'de> Deserialize<'de>>(host: &str, what: &str, out: &str) -> Result<T, ExecError> {
    serde_json::from_str(out).map_err(|e| ExecError::Failed {
        host: host.into(),
        what: format!("reading {what}"),
        stderr: e.to_string(),
    })
}

/// Checks cluster `name` of `inv` (the inventory of `commit`) against its nodes.
pub async fn check(
    inv: &Inventory,
    commit: &str,
    name: &str,
    actions: &[Action],
    runner: &Runner,
    cfg: &ExecConfig,
) -> Drift {
    let mut d = Drift {
        cluster: name.into(),
        commit: Some(commit.into()),
        ..Drift::default()
    };
    let Some(c) = inv.model.pgsql.get(name) else {
        d.error = Some(format!(
            "cluster {name} is not in the inventory of {commit}"
        ));
        return d;
    };
    let locks = HostLocks::default();
    let ctx = Ctx::reading(inv, runner, cfg, &locks);
    let m = managed(actions);
    let mut errors = vec![];
    let roles = match objects_drift(&ctx, c, &m).await {
        Ok((items, roles, unread)) => {
            d.items.extend(items);
            errors.extend(unread);
            Some(roles)
        }
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let roles = roles.as_deref();
    let hosts = c.members.keys().map(|h| instance(&ctx, c, &m, roles, h));
    let hosts = futures::future::join_all(hosts).await;
    for r in hosts {
        match r {
            Ok(items) => d.items.extend(items),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        d.error = Some(errors.join("; "));
    }
    d
}

/// Roles and databases on the live primary; also every live role, for pgbouncer's userlist,
/// and why a database could not be read inside.
async fn objects_drift(
    ctx: &Ctx<'_>,
    c: &PgCluster,
    m: &Managed<'_>,
) -> Result<(Vec<Item>, Vec<LiveRole>, Vec<String>), ExecError> {
    let (primary, _) = live_primary(ctx, c).await?;
    let roles: Vec<LiveRole> = parse(
        &primary,
        "roles",
        &psql(ctx, &primary, "postgres", ROLES).await?,
    )?;
    let all = roles;
    let roles: BTreeMap<&str, &LiveRole> = all.iter().map(|r| (r.name.as_str(), r)).collect();
    let dbs: Vec<LiveDatabase> = parse(
        &primary,
        "databases",
        &psql(ctx, &primary, "postgres", DATABASES).await?,
    )?;
    let dbs: BTreeMap<&str, &LiveDatabase> = dbs.iter().map(|d| (d.name.as_str(), d)).collect();
    let enter: Vec<&str> = m
        .databases
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| dbs.get(n).is_some_and(|d| d.allowconn))
        .collect();
    let primary = primary.as_str();
    let read = std::time::Instant::now();
    let inner: Vec<(&str, Result<LiveInner, ExecError>)> = futures::stream::iter(enter)
        .map(|db| async move {
            let out = psql(ctx, primary, db, INNER).await;
            (db, out.and_then(|o| parse(primary, "a database", &o)))
        })
        .buffer_unordered(INSIDE_AT_ONCE)
        .collect()
        .await;
    tracing::debug!(
        ms = read.elapsed().as_secs_f64() * 1e3,
        databases = inner.len(),
        "read inside the databases"
    );
    // A database that cannot be read inside is compared on what pg_database says; why it could
    // not be read is the check's error.
    let mut inside = BTreeMap::new();
    let mut unread = vec![];
    for (db, r) in inner {
        match r {
            Ok(facts) => {
                inside.insert(db, facts);
            }
            Err(e) => unread.push(format!("database {db}: {e}")),
        }
    }
    let mut items = vec![];
    let compared = std::time::Instant::now();
    let declared: Vec<objects::DeclaredRole> = m
        .roles
        .iter()
        .map(|(name, def, with_password)| (*name, *def, roles.get(name).copied(), *with_password))
        .collect();
    items.extend(objects::roles(&declared));
    tracing::debug!(
        ms = compared.elapsed().as_secs_f64() * 1e3,
        roles = declared.len(),
        "roles compared"
    );
    for name in &m.roles_absent {
        items.extend(objects::exists(
            format!("user {name}"),
            false,
            roles.contains_key(name),
        ));
    }
    for (name, def, privileges) in &m.databases {
        let live = dbs.get(name).copied();
        items.extend(databases::database(
            name,
            def,
            live,
            inside.get(name),
            *privileges,
        ));
    }
    for name in &m.databases_absent {
        items.extend(objects::exists(
            format!("database {name}"),
            false,
            dbs.contains_key(name),
        ));
    }
    drop(roles);
    Ok((items, all, unread))
}

/// One member: its HBA file, `ALTER SYSTEM` parameters and pgbouncer files.
/// `roles`: the live roles (their verifiers), `None` when the primary could not be read.
async fn instance(
    ctx: &Ctx<'_>,
    c: &PgCluster,
    m: &Managed<'_>,
    roles: Option<&[LiveRole]>,
    host: &str,
) -> Result<Vec<Item>, ExecError> {
    let live: Instance = parse(
        host,
        "the instance",
        &psql(ctx, host, "postgres", INSTANCE).await?,
    )?;
    let pg = ctx.pg(host);
    let pgb = m.pgbouncer.get(host).cloned().unwrap_or_default();
    let mut paths = vec![format!("{}/pg_hba.conf", pg.data)];
    paths.extend(pgb.iter().map(|f| format!("/etc/pgbouncer/{}", f.name())));
    let mut argv = become_argv(ctx.cfg.become_method, &pg.dbsu);
    argv.extend(["sh", "-c", READ_FILES, "sh"]);
    argv.extend(paths.iter().map(String::as_str));
    let out = ctx
        .runner
        .run(&ctx.target(host), &argv, None, ctx.cfg.timeout)
        .await?;
    let texts: Vec<Option<String>> = out
        .stdout
        .lines()
        .map(|l| {
            let b64 = l.strip_prefix("present ")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect();
    if out.status != 0 || texts.len() != paths.len() {
        return Err(ExecError::Failed {
            host: host.into(),
            what: "reading pg_hba.conf and pgbouncer's files".into(),
            stderr: out.stderr.trim().into(),
        });
    }
    let refused = |e: &dyn ToString| ExecError::Refused(format!("{host}: {}", e.to_string()));
    let role = live_role(c, host, live.recovery);
    let hba = hba_for(ctx.new, c, host, Target::Postgres, Some(role)).map_err(|e| refused(&e))?;
    let mut items = files::file("hba", host, &hba, texts[0].as_deref());
    let declared = ctx
        .new
        .tree
        .hosts
        .get(host)
        .and_then(|h| h.vars.get("pg_parameters"));
    let declared = files::declared_parameters(declared.map(|v| v.value.as_ref()));
    items.extend(files::parameters(host, &declared, &live.auto));
    for (file, live) in pgb.iter().zip(&texts[1..]) {
        let object = format!("pgbouncer {}", file.name());
        let text = match file {
            PgbFile::Useropts => useropts(ctx.new, host).map_err(|e| refused(&e))?,
            PgbFile::Databases => database_txt(ctx.new, host).map_err(|e| refused(&e))?,
            PgbFile::Hba => {
                hba_for(ctx.new, c, host, Target::Pgbouncer, None).map_err(|e| refused(&e))?
            }
            PgbFile::Userlist => {
                if let Some(roles) = roles {
                    let text = expected_userlist(ctx, host, roles)?;
                    items.extend(files::secret_file(&object, host, &text, live.as_deref()));
                }
                continue;
            }
        };
        items.extend(files::file(&object, host, &text, live.as_deref()));
    }
    Ok(items)
}

/// `userlist.txt` as the executor writes it: the dbsu with no password, then each listed user
/// that exists with its verifier from the live primary.
fn expected_userlist(ctx: &Ctx<'_>, host: &str, roles: &[LiveRole]) -> Result<String, ExecError> {
    let refused = |e: &dyn ToString| ExecError::Refused(format!("{host}: {}", e.to_string()));
    let users = userlist_users(ctx.new, host).map_err(|e| refused(&e))?;
    let mut entries = vec![(users[0].clone(), String::new())];
    for u in &users[1..] {
        if let Some(r) = roles.iter().find(|r| &r.name == u) {
            entries.push((r.name.clone(), r.password.clone().unwrap_or_default()));
        }
    }
    userlist(&entries).map_err(|e| refused(&e))
}
