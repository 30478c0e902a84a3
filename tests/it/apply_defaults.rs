//! Pigsty's default objects, natively: adopting a running PostgreSQL that lacks the default roles
//! creates them before the business objects; a database with an owner grants what Pigsty's
//! `pg-db.sql` grants (checked by using a table the owner creates later, and against the catalogs
//! left by Pigsty's own template, rendered with jinja2 and run on a second database).

use std::path::PathBuf;
use std::process::Command;

use crate::support::fleet::{has_role, ok, push, Fleet};
use crate::support::yaml;

/// Pigsty v4.5.0's source tree (`../shared/pigsty`, or `PGITOPS_PIGSTY_SRC`).
fn pigsty_src() -> PathBuf {
    let dir = std::env::var_os("PGITOPS_PIGSTY_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/pigsty"));
    assert!(
        dir.join("roles/pgsql/templates/pg-db.sql").exists(),
        "Pigsty's source is needed at {} (set PGITOPS_PIGSTY_SRC)",
        dir.display()
    );
    dir
}

/// Renders one of Pigsty's templates as Ansible's `template` module does (jinja2 with
/// `trim_blocks`, plus the two Ansible filters the SQL templates use).
fn render_pigsty(template: &str, vars: &serde_json::Value) -> String {
    const SCRIPT: &str = r#"
import json, sys, time, jinja2
env = jinja2.Environment(trim_blocks=True, undefined=jinja2.Undefined)
env.filters['strftime'] = lambda fmt, t=None: time.strftime(fmt, time.localtime(t))
env.filters['bool'] = lambda v: v if isinstance(v, bool) else str(v).lower() in ('yes', 'true', '1', 'on')
print(env.from_string(open(sys.argv[1]).read()).render(**json.loads(sys.argv[2])))
"#;
    let path = pigsty_src().join("roles/pgsql/templates").join(template);
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&path)
        .arg(vars.to_string())
        .output()
        .expect("python3 with jinja2");
    assert!(
        out.status.success(),
        "rendering {template}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The catalog state `pg-db.sql` decides in `db`, with the database's own name masked.
fn grants(p: &crate::support::nodes::Node, db: &str) -> String {
    let sql = "SELECT 'acl', pg_get_userbyid(defaclrole), defaclnamespace::regnamespace, defaclobjtype, defaclacl::text \
                 FROM pg_default_acl ORDER BY 2, 3, 4;\n\
               SELECT 'schema', nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace \
                 WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 2;\n\
               SELECT 'database', pg_get_userbyid(datdba), datacl::text, datconnlimit, \
                 replace(shobj_description(oid, 'pg_database'), datname, '<db>') \
                 FROM pg_database WHERE datname = current_database();";
    p.sql(db, sql)
}

#[test]
fn adopting_a_cluster_creates_the_default_roles_before_its_objects() {
    let f = Fleet::independent(&["127.0.171.11"]);
    let p = f.primary();
    assert!(!has_role(p, "dbrole_admin"), "the node starts without them");
    // an existing system user: its password is not rotated by adoption
    p.sql(
        "postgres",
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE dbuser_monitor LOGIN PASSWORD 'Old.Mon.1'",
    );
    let mut v = f.inventory();
    let vars = &mut v["all"]["children"]["pg-t"]["vars"];
    vars["pg_users"] = yaml("[]");
    vars["pg_admin_password"] = "Dba.Pass.1".into();
    vars["pg_monitor_password"] = "New.Mon.2".into();
    push(
        &mut v,
        "pg_users",
        "{ name: app, password: 'App.Pass.1', roles: [ dbrole_readwrite ] }",
    );
    push(&mut v, "pg_databases", "{ name: appdb, owner: app }");
    f.commit(&v, "adopt pg-t");
    let run = f.apply(&[]);
    ok(&run);
    let out = &run.stdout;
    let (roles, user) = (
        out.find("pg-t/default-roles/converge").expect(out),
        out.find("pg-t/user/app/create").expect(out),
    );
    assert!(roles < user, "default roles come first:\n{out}");
    assert!(!out.contains("Dba.Pass.1") && !out.contains("New.Mon.2"));
    // Pigsty's attributes, memberships and comments
    let role = |name: &str| {
        p.sql("postgres", &format!(
            "SELECT rolcanlogin, rolsuper, rolreplication, shobj_description(oid, 'pg_authid'), \
             (SELECT string_agg(pg_get_userbyid(roleid), ',' ORDER BY pg_get_userbyid(roleid)) FROM pg_auth_members WHERE member = r.oid) \
             FROM pg_roles r WHERE rolname = '{name}'"
        ))
    };
    assert_eq!(
        role("dbrole_readonly"),
        "f|f|f|role for global read-only access|"
    );
    assert_eq!(
        role("dbrole_offline"),
        "f|f|f|role for restricted read-only access|"
    );
    assert_eq!(
        role("dbrole_readwrite"),
        "f|f|f|role for global read-write access|dbrole_readonly"
    );
    assert_eq!(
        role("dbrole_admin"),
        "f|f|f|role for object creation|dbrole_readwrite,pg_monitor"
    );
    assert_eq!(
        role("replicator"),
        "t|f|t|system replicator|dbrole_readonly,pg_monitor"
    );
    assert_eq!(role("dbuser_dba"), "t|t|f|pgsql admin user|dbrole_admin");
    assert_eq!(
        role("dbuser_monitor"),
        "t|f|f|pgsql monitor user|dbrole_readonly,pg_monitor"
    );
    assert_eq!(role("postgres"), "t|t|t|system superuser|");
    assert_eq!(
        p.sql("postgres", "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting WHERE setrole = 'dbuser_monitor'::regrole"),
        "log_min_duration_statement=1000"
    );
    p.login("dbuser_dba", "Dba.Pass.1", "postgres")
        .expect("a system user created now gets pg_admin_password");
    p.login("dbuser_monitor", "Old.Mon.1", "postgres")
        .expect("an existing system user keeps its password");
    // the business objects applied after them
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT pg_has_role('app', 'dbrole_readonly', 'member')"
        ),
        "t"
    );

    // a later change of pg_default_roles is converged too
    v["all"]["children"]["pg-t"]["vars"]["pg_default_roles"] = yaml(
        "[ { name: dbrole_readonly, login: false, comment: readers }, { name: etl_role, login: false, roles: [ dbrole_readonly ] } ]",
    );
    f.commit(&v, "own default roles");
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("pg-t/default-roles/converge"),
        "{}",
        run.stdout
    );
    assert_eq!(role("dbrole_readonly"), "f|f|f|readers|");
    assert_eq!(
        role("etl_role"),
        "f|f|f|business user etl_role|dbrole_readonly"
    );
}

#[test]
fn a_database_grants_what_pigsty_grants_to_the_default_roles() {
    let f = Fleet::independent(&["127.0.172.11"]);
    let p = f.primary();
    let mut v = f.inventory();
    v["all"]["children"]["pg-t"]["vars"]["pg_users"] = yaml("[]");
    for u in [
        "{ name: dbo, password: 'Dbo.Pass.1' }",
        "{ name: reader, password: 'Reader.1', roles: [ dbrole_readonly ] }",
        "{ name: writer, password: 'Writer.1', roles: [ dbrole_readwrite ] }",
        "{ name: etl, password: 'Etl.1', roles: [ dbrole_offline ] }",
    ] {
        push(&mut v, "pg_users", u);
    }
    let db = "{ name: shop, owner: dbo, revokeconn: true, schemas: [ { name: sales, owner: dbo }, plain ] }";
    push(&mut v, "pg_databases", db);
    f.commit(&v, "add shop");
    ok(&f.apply(&[]));

    // Pigsty's own pg-db.sql for the same definition, on a second database: same catalogs
    p.sql("postgres", "CREATE DATABASE pigshop OWNER dbo");
    let mut database: serde_json::Value = serde_json::to_value(yaml(db)).unwrap();
    database["name"] = "pigshop".into();
    let vars = serde_json::json!({
        "database": database, "pg_cluster": "pg-t", "pg_seq": 1,
        "inventory_hostname": "127.0.172.11", "pg_port": 5432, "pg_version": 15,
    });
    let script = render_pigsty("pg-db.sql", &vars);
    assert!(
        script.contains("ALTER DEFAULT PRIVILEGES FOR ROLE \"dbo\""),
        "{script}"
    );
    p.sql("pigshop", &script);
    let (native, pigsty) = (grants(p, "shop"), grants(p, "pigshop"));
    assert_eq!(
        native, pigsty,
        "native (left) and Pigsty (right) catalogs differ"
    );
    assert_eq!(
        native.lines().filter(|l| l.starts_with("acl|dbo|")).count(),
        4,
        "four pg_default_acl rows for the owner, as measured on Pigsty:\n{native}"
    );

    // the owner creates objects later; the default roles can use them
    p.sql(
        "shop",
        "SET ROLE dbo; CREATE TABLE sales.orders (id serial PRIMARY KEY, item text); \
         CREATE SCHEMA later; CREATE TABLE later.t (x int); CREATE FUNCTION sales.f() RETURNS int LANGUAGE sql AS 'SELECT 1';",
    );
    let as_role = |role: &str, sql: &str| p.sql("shop", &format!("SET ROLE {role}; {sql}"));
    as_role("writer", "INSERT INTO sales.orders (item) VALUES ('a'); UPDATE sales.orders SET item = 'b'; INSERT INTO later.t VALUES (1)");
    assert_eq!(as_role("reader", "SELECT item FROM sales.orders; "), "b");
    assert_eq!(as_role("etl", "SELECT count(*) FROM later.t"), "1");
    assert_eq!(as_role("reader", "SELECT sales.f()"), "1");
    assert_eq!(
        as_role(
            "reader",
            "SELECT has_table_privilege('sales.orders', 'INSERT')"
        ),
        "f",
        "read-only stays read-only"
    );
    assert_eq!(
        as_role(
            "dbuser_dba",
            "SELECT has_table_privilege('dbrole_admin', 'sales.orders', 'TRUNCATE')"
        ),
        "t"
    );
}
