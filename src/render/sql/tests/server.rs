//! Runs the scripts twice each against a throwaway PostgreSQL 15 and checks what they did, that
//! they are idempotent, and that neither the server log nor pg_stat_statements saw the verifier.

use super::*;

/// A throwaway PostgreSQL 15 on a unix socket in a temp dir (Debian paths). As root, server and
/// psql run through `runuser -u postgres`. Run: `cargo test -- --ignored real_server`.
struct Server(std::path::PathBuf);
const BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(prog: &str) -> std::process::Command {
    let id = std::process::Command::new("id").arg("-u").output().unwrap();
    if id.stdout != b"0\n" {
        return std::process::Command::new(prog);
    }
    let mut cmd = std::process::Command::new("runuser");
    cmd.args(["-u", "postgres", "--", prog]);
    cmd
}

impl Server {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pgitops-sql-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("ts1")).unwrap();
        let chown = ["-R", "postgres:postgres"];
        let _ = std::process::Command::new("chown")
            .args(chown)
            .arg(&dir)
            .status();
        let (data, initdb) = (dir.join("data"), format!("{BIN}/initdb"));
        let args = [
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ];
        let init = as_postgres(&initdb).args(args).arg(&data).output().unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let opts = format!(
            "-k {} -c listen_addresses='' -c log_statement=all \
                            -c shared_preload_libraries=pg_stat_statements",
            dir.display()
        );
        let mut ctl = as_postgres(&format!("{BIN}/pg_ctl"));
        ctl.args(["-w", "-o", &opts, "-l"])
            .arg(dir.join("log"))
            .arg("-D")
            .arg(&data);
        assert!(ctl.arg("start").status().unwrap().success());
        Server(dir)
    }
    /// Feeds `input` to psql on stdin; returns (success, stdout + stderr).
    fn psql(&self, db: &str, input: &str) -> (bool, String) {
        use std::{io::Write, process::Stdio};
        let mut cmd = as_postgres("psql");
        cmd.args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
            "-d",
            db,
            "-h",
        ])
        .arg(&self.0);
        let (i, o, e) = (Stdio::piped(), Stdio::piped(), Stdio::piped());
        let mut child = cmd.stdin(i).stdout(o).stderr(e).spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text.into_owned())
    }
    fn twice(&self, db: &str, script: &Script) -> String {
        let input = script.to_psql_input();
        let runs = [self.psql(db, &input), self.psql(db, &input)];
        for (ok, out) in &runs {
            assert!(ok, "script failed in {db}:\n{input}\n---\n{out}");
        }
        runs.map(|r| r.1).concat()
    }
    fn expect(&self, db: &str, sql: &str, want: &str) {
        let (ok, out) = self.psql(db, sql);
        assert!(
            ok && out.trim_end_matches('\n') == want,
            "{sql}\n-> {out}\nwant {want}"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut ctl = as_postgres(&format!("{BIN}/pg_ctl"));
        let _ = ctl
            .args(["-m", "immediate", "-D"])
            .arg(self.0.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs PostgreSQL 15 binaries; run manually"]
fn real_server_runs_scripts_twice() {
    let pg = Server::start();
    let c = SqlContext {
        today: None,
        ..ctx(15)
    };
    let ts = quote_literal(&pg.0.join("ts1").to_string_lossy()).unwrap();
    let setup = format!(
        "CREATE TABLESPACE ts1 LOCATION {ts}; CREATE ROLE nobody;\n\
        CREATE EXTENSION pg_stat_statements; SET password_encryption = 'scram-sha-256';\n\
        CREATE ROLE tmp PASSWORD 'pw'; SELECT rolpassword FROM pg_authid WHERE rolname = 'tmp';"
    );
    let (ok, out) = pg.psql("postgres", &setup);
    let verifier = out
        .lines()
        .find(|l| l.starts_with("SCRAM") && ok)
        .unwrap()
        .to_string();
    for (name, def) in [
        ("dbrole_admin", "login: false"),
        ("replicator", "replication: true"),
        ("dbuser_dba", "superuser: true"),
        ("dbuser_monitor", "roles: [pg_monitor]"),
    ] {
        pg.twice(
            "postgres",
            &user_upsert(name, &yaml(def), Secret::Redacted, &c).unwrap(),
        );
    }
    let name = "app'\"; $(touch /tmp/pwned) ünï";
    let lit = quote_literal(name).unwrap();
    let mut def = yaml(
        r#"{login: true, superuser: false, createdb: true, createrole: false,
        inherit: true, replication: false, bypassrls: false, connlimit: 5, expire_in: 30,
        expire_at: '2000-01-01', password: x, roles: [dbrole_admin, {name: pg_monitor, admin: true,
        set: true, inherit: false}, {name: pg_read_all_data, state: absent}, {name: pg_signal_backend,
        admin: false}], parameters: {search_path: '"$user", Public, "odd""s"', work_mem: 64MB,
        statement_timeout: 1000, log_min_duration_statement: DEFAULT, pg_stat_statements.track: all,
        temp_tablespaces: [ts1]}}"#,
    );
    def.insert("comment".into(), NASTY.into());
    let out = pg.twice(
        "postgres",
        &user_upsert(name, &def, Secret::Verifier(&verifier), &c).unwrap(),
    );
    assert!(!out.contains(&verifier));
    let role = format!("FROM pg_authid WHERE rolname = {lit}");
    pg.expect(
        "postgres",
        &format!("SELECT shobj_description(oid, 'pg_authid') {role}"),
        NASTY,
    );
    pg.expect("postgres", &format!("SELECT rolpassword {role}"), &verifier);
    let attrs =
        "rolcanlogin, rolcreatedb, rolconnlimit, rolvaliduntil > now() + interval '29 days'";
    pg.expect("postgres", &format!("SELECT {attrs} {role}"), "t|t|5|t");
    let setconfig =
        "SELECT array_to_string(setconfig, ' / ') FROM pg_db_role_setting WHERE setrole =";
    let want =
        "search_path=\"$user\", public, \"odd\"\"s\" / work_mem=64MB / statement_timeout=1000 / \
                pg_stat_statements.track=all / temp_tablespaces=ts1";
    pg.expect(
        "postgres",
        &format!("{setconfig} (SELECT oid {role})"),
        want,
    );
    let members = format!(
        "SELECT string_agg(roleid::regrole || ':' || admin_option, ',' ORDER BY roleid::regrole::text) \
        FROM pg_auth_members WHERE member = (SELECT oid {role})"
    );
    pg.expect(
        "postgres",
        &members,
        "dbrole_admin:false,pg_monitor:true,pg_signal_backend:false",
    );

    let dbname = "app \"db\"; ü";
    let mut ddef = yaml(
        r#"{template: template0, encoding: UTF8, lc_collate: C, lc_ctype: C,
        locale_provider: ICU, icu_locale: en-US, strategy: WAL_LOG, tablespace: ts1, connlimit: 20,
        is_template: false, allowconn: false, revokeconn: true, parameters: {search_path: 'app, public',
        work_mem: 8MB, jit: off}, schemas: [app, {name: gone, state: absent}], extensions: [citext,
        {name: hstore, schema: app, version: '1.8'}, {name: pg_trgm, state: absent}]}"#,
    );
    for (key, value) in [("owner", name), ("comment", NASTY)] {
        ddef.insert(key.into(), value.into());
    }
    let mut other = yaml("name: other");
    other.insert("owner".into(), name.into());
    ddef["schemas"]
        .as_sequence_mut()
        .unwrap()
        .push(other.into());
    let apply = |def: &Mapping| {
        let s = database_upsert(dbname, def, &c).unwrap();
        for _ in 0..2 {
            pg.twice(s.admin_db, &s.create);
            pg.twice(dbname, &s.provision);
            pg.twice(s.admin_db, &s.finish);
        }
    };
    apply(&ddef);
    let db = format!(
        "FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace \
                      WHERE datname = {}",
        quote_literal(dbname).unwrap()
    );
    let cols = format!("SELECT datallowconn, datconnlimit, spcname, daticulocale, \
        has_database_privilege('nobody', d.oid, 'CONNECT'), \
        has_database_privilege('dbuser_monitor', d.oid, 'CONNECT'), pg_get_userbyid(datdba) = {lit}");
    pg.expect("postgres", &format!("{cols} {db}"), "f|20|ts1|en-US|f|t|t");
    pg.expect(
        "postgres",
        &format!("SELECT shobj_description(d.oid, 'pg_database') {db}"),
        NASTY,
    );
    ddef.insert("allowconn".into(), true.into());
    ddef.insert("revokeconn".into(), false.into());
    ddef.insert("tablespace".into(), "pg_default".into());
    apply(&ddef);
    pg.expect(
        "postgres",
        &format!("{cols} {db}"),
        "t|20|pg_default|en-US|t|t|t",
    );
    let ext =
        "SELECT string_agg(extname || '@' || extnamespace::regnamespace, ',' ORDER BY extname) \
               FROM pg_extension";
    pg.expect(dbname, ext, "citext@public,hstore@app,plpgsql@pg_catalog");
    let owners = format!("SELECT string_agg(nspname || ':' || (nspowner::regrole::text = \
        quote_ident({lit})), ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('app', 'other')");
    pg.expect(dbname, &owners, "app:false,other:true");
    let provision = database_upsert(dbname, &ddef, &c)
        .unwrap()
        .provision
        .to_psql_input();
    let (ok, out) = pg.psql("postgres", &provision);
    assert!(!ok && out.contains("must run inside it"), "{out}");

    let (ok, out) = pg.psql("postgres", &user_drop(name, &c).unwrap().to_psql_input());
    assert!(
        !ok && out.contains("refusing to drop role") && out.contains("owns database"),
        "{out}"
    );
    assert!(
        out.contains("has 1 dependent object(s) in database \"app \"\"db\"\"; ü\""),
        "{out}"
    );
    let (ok, out) = pg.psql(
        dbname,
        &user_ownership_check(name, &c).unwrap().to_psql_input(),
    );
    assert!(!ok && out.contains("owns schema other"), "{out}");
    pg.twice("postgres", &database_drop(dbname, &c).unwrap());
    pg.expect("postgres", &format!("SELECT count(*) {db}"), "0");
    pg.twice("postgres", &user_drop(name, &c).unwrap());
    pg.expect("postgres", &format!("SELECT count(*) {role}"), "0");

    let log = std::fs::read_to_string(pg.0.join("log")).unwrap();
    assert!(
        log.contains("COMMENT ON ROLE") && !log.contains(&verifier),
        "log leaked the verifier"
    );
    let pgss = "SELECT count(*) FILTER (WHERE query LIKE '%SCRAM-SHA-256$%'), \
        count(*) FILTER (WHERE query LIKE 'COMMENT ON ROLE%') > 0 FROM pg_stat_statements";
    pg.expect("postgres", pgss, "0|t");
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}
