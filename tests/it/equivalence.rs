//! Equivalence: the same commits applied by the native executor to one fleet and by the real
//! Pigsty v4.5.0 playbooks to another leave the same state, compared field by field: roles and
//! their attributes, memberships (with admin option), role settings, databases (owner, limits,
//! ACL, comment), per database the schemas (owner, ACL), extensions (schema), default
//! privileges; the pgbouncer files. Addresses are the only thing allowed to differ (each fleet
//! has its own), and the differences README lists as deliberate are named where they are
//! normalised. Passwords are compared by logging in, not by verifier (SCRAM salts differ).

use std::collections::BTreeSet;

use crate::support::fleet::{ok, push, user, Fleet};
use crate::support::nodes::Node;
use crate::support::pgitops;
use crate::support::pigsty::Ansible;

/// Every fact, one per line, sorted; `ips` are replaced by `IP<n>`.
fn snapshot(p: &Node, ips: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |prefix: &str, text: String| {
        for line in text.lines().filter(|l| !l.is_empty()) {
            out.insert(format!("{prefix}|{line}"));
        }
    };
    // Roles Pigsty's bootstrap and the harness make are the same on both sides; all compared.
    add("role", p.sql("postgres", "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, rolpassword IS NOT NULL, coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_authid WHERE rolname !~ '^pg_' ORDER BY 1"));
    add("member", p.sql("postgres", "SELECT r.rolname, m.rolname, a.admin_option FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE m.rolname !~ '^pg_' ORDER BY 1, 2"));
    add("setting", p.sql("postgres", "SELECT coalesce(r.rolname, '*'), coalesce(d.datname, '*'), array_to_string(ARRAY(SELECT unnest(s.setconfig) ORDER BY 1), ',') FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase ORDER BY 1, 2"));
    let acl =
        |col: &str| format!("array_to_string(ARRAY(SELECT unnest({col})::text ORDER BY 1), ',')");
    add("database", p.sql("postgres", &format!("SELECT datname, pg_get_userbyid(datdba), datconnlimit, datallowconn, datistemplate, {}, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database ORDER BY 1", acl("datacl"))));
    let dbs = p.sql("postgres", "SELECT datname FROM pg_database WHERE datallowconn AND datname NOT IN ('template0') ORDER BY 1");
    for db in dbs.lines() {
        add(&format!("schema@{db}"), p.sql(db, &format!("SELECT nspname, pg_get_userbyid(nspowner), {}, coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1", acl("nspacl"))));
        add(&format!("extension@{db}"), p.sql(db, "SELECT extname, extnamespace::regnamespace, extversion FROM pg_extension ORDER BY 1"));
        add(&format!("default-acl@{db}"), p.sql(db, &format!("SELECT pg_get_userbyid(defaclrole), coalesce(defaclnamespace::regnamespace::text, '-'), defaclobjtype, {} FROM pg_default_acl ORDER BY 1, 2, 3", acl("defaclacl"))));
    }
    let ip_free = |s: String| {
        ips.iter()
            .enumerate()
            .fold(s, |s, (i, ip)| s.replace(ip.as_str(), &format!("IP{i}")))
    };
    // Deliberate (README): Pigsty's template writes a YAML boolean setting as Python's
    // `False`/`True`, pgitops as `off`/`on`; PostgreSQL reads both the same.
    let python_bools = |s: String| s.replace("=False", "=off").replace("=True", "=on");
    out.into_iter().map(ip_free).map(python_bools).collect()
}

/// The pgbouncer files of `node` (userlist: names only; a verifier's salt differs by run).
fn pgbouncer_files(n: &Node) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in ["useropts.txt", "database.txt", "userlist.txt"] {
        let text = std::fs::read_to_string(n.pgbouncer_dir().join(f)).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let line = match f {
                "userlist.txt" => line.split(' ').next().unwrap_or("").to_string(),
                _ => line.split_whitespace().collect::<Vec<_>>().join(" "),
            };
            out.insert(format!("{f}|{line}"));
        }
    }
    out
}

/// The rule lines of both HBA files of `n` (comments and the header differ by design: Pigsty's
/// banner carries the render time), addresses replaced by `IP<n>`.
fn hba_files(n: &Node, ips: &[String]) -> Vec<String> {
    let pgb = n.pgbouncer_dir().join("pgb_hba.conf");
    let mut out = Vec::new();
    for (name, path) in [("pg_hba.conf", n.hba_file()), ("pgb_hba.conf", pgb)] {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let line = ips.iter().enumerate().fold(line.to_string(), |l, (i, ip)| {
                l.replace(ip.as_str(), &format!("IP{i}"))
            });
            out.push(format!("{name}|{line}"));
        }
    }
    out
}

/// Applies each commit natively on `a` and through Pigsty on `b`, then compares.
struct Pair {
    a: Fleet,
    b: Fleet,
    ans: Ansible,
}

impl Pair {
    fn commit(&self, edit: &dyn Fn(&mut serde_yaml_ng::Value), message: &str) {
        for (f, pigsty) in [(&self.a, false), (&self.b, true)] {
            let mut v = f.inventory();
            edit(&mut v);
            // Quoted, as Pigsty's docs write it: a plain date is a date object to Ansible, and
            // pgsql-user.yml's set_fact then turns the user's definition into a string and fails.
            let text = crate::support::to_yaml(&v)
                .replace("expire_at: 2031-01-01", "expire_at: '2031-01-01'");
            f.repo.commit_inventory(&text, message);
            let run = match pigsty {
                false => f.apply(&[]),
                true => {
                    let (env, args) = (self.ans.env(), self.ans.args());
                    let env: Vec<&str> = env.iter().map(String::as_str).collect();
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    f.apply_via(&env, &args)
                }
            };
            ok(&run);
        }
    }

    fn same(&self, step: &str) {
        let (sa, sb) = (
            snapshot(self.a.primary(), &self.a.ips),
            snapshot(self.b.primary(), &self.b.ips),
        );
        let only_a: Vec<&String> = sa.difference(&sb).collect();
        let only_b: Vec<&String> = sb.difference(&sa).collect();
        assert!(
            only_a.is_empty() && only_b.is_empty(),
            "{step}: catalogs differ\nnative only: {only_a:#?}\npigsty only: {only_b:#?}"
        );
        for (na, nb) in self.a.ips.iter().zip(&self.b.ips) {
            let (fa, fb) = (
                pgbouncer_files(self.a.nodes.node(na)),
                pgbouncer_files(self.b.nodes.node(nb)),
            );
            // Deliberate (README): with `pg_default_roles` unset, pgitops writes the default
            // roles' pool options as pgsql.yml does (the role's defaults); the standalone
            // pgsql-user.yml has no role defaults and rewrites useropts.txt without them.
            let default_role = |l: &&String| {
                ["dbuser_dba ", "dbuser_monitor "]
                    .iter()
                    .any(|r| l.starts_with(&format!("useropts.txt|{r}")))
            };
            let fa: BTreeSet<&String> = fa.iter().filter(|l| !default_role(l)).collect();
            let fb: BTreeSet<&String> = fb.iter().filter(|l| !default_role(l)).collect();
            assert_eq!(fa, fb, "{step}: pgbouncer files of {na} / {nb}");
            let (ha, hb) = (
                hba_files(self.a.nodes.node(na), &self.a.ips),
                hba_files(self.b.nodes.node(nb), &self.b.ips),
            );
            assert_eq!(ha, hb, "{step}: HBA files of {na} / {nb}");
            // What `pgitops render` shows is what the native executor wrote.
            let node = self.a.nodes.node(na);
            for (file, path) in [
                ("pg_hba.conf", node.hba_file()),
                ("pgb_hba.conf", node.pgbouncer_dir().join("pgb_hba.conf")),
                ("useropts.txt", node.pgbouncer_dir().join("useropts.txt")),
                ("database.txt", node.pgbouncer_dir().join("database.txt")),
            ] {
                let r = pgitops(self.a.repo.path(), &["render", "--host", na, file]);
                assert_eq!(r.code, 0, "{}", r.stderr);
                assert_eq!(
                    r.stdout,
                    std::fs::read_to_string(path).unwrap(),
                    "{step}: {file}"
                );
            }
        }
    }
}

fn users(v: &mut serde_yaml_ng::Value) {
    push(v, "pg_users", "{ name: eq_full, password: 'Eq.Full.1', login: true, superuser: false, createdb: true, createrole: true, inherit: false, replication: true, bypassrls: true, connlimit: 7, expire_at: '2031-01-01', comment: 'every attribute', roles: [ dbrole_readwrite, { name: dbrole_readonly, admin: true } ], parameters: { work_mem: '16MB', search_path: 'app,public', enable_seqscan: false }, pgbouncer: true, pool_mode: session, pool_connlimit: 20 }");
    push(
        v,
        "pg_users",
        "{ name: eq_nologin, login: false, comment: 'a group' }",
    );
    push(
        v,
        "pg_users",
        "{ name: eq_plain, password: 'Eq.Plain.1', pgbouncer: true }",
    );
}

fn databases(v: &mut serde_yaml_ng::Value) {
    push(v, "pg_databases", "{ name: eq_shop, owner: eq_full, comment: 'the shop', revokeconn: true, connlimit: 30, schemas: [ app, { name: audit, owner: eq_plain } ], extensions: [ { name: pg_trgm }, { name: pgcrypto, schema: app } ], parameters: { work_mem: '8MB' }, pool_mode: transaction, pool_size: 16, pool_reserve: 4, pool_connlimit: 50 }");
    push(v, "pg_databases", "{ name: eq_quiet, pgbouncer: false }");
}

#[test]
fn native_and_pigsty_leave_the_same_state() {
    let a = Fleet::new(&["127.0.53.11", "127.0.53.12"]);
    let b = Fleet::new(&["127.0.54.11", "127.0.54.12"]);
    let ans = Ansible::new(&b.nodes);
    let pair = Pair { a, b, ans };
    // The baseline natively on both (what the recipe does; Pigsty's bootstrap made these).
    for f in [&pair.a, &pair.b] {
        f.commit(&f.inventory(), "baseline");
        ok(&f.apply(&[]));
    }
    pair.same("baseline");
    pair.commit(&users, "users with every attribute");
    pair.same("users");
    for f in [&pair.a, &pair.b] {
        f.primary()
            .login("eq_full", "Eq.Full.1", "postgres")
            .expect("password set");
    }
    pair.commit(
        &|v| {
            users(v);
            databases(v);
        },
        "databases",
    );
    pair.same("databases");
    let hba = |v: &mut serde_yaml_ng::Value| {
        users(v);
        databases(v);
        push(v, "pg_hba_rules", "{ user: eq_plain, db: eq_shop, addr: world, auth: deny, title: 'no eq_plain', order: 5 }");
        push(
            v,
            "pgb_hba_rules",
            "{ user: eq_full, db: all, addr: intra, auth: pwd, title: 'eq_full via pgbouncer' }",
        );
    };
    pair.commit(&hba, "HBA rules for PostgreSQL and pgbouncer");
    pair.same("hba");
    pair.commit(&|v| {
        hba(v);
        v["all"]["children"]["pg-t"]["vars"]["pg_databases"][1]["state"] = "absent".into();
        user(v, "eq_nologin")["state"] = "absent".into();
    }, "drop a database and a user\n\nPgitops-Approve: pg-t/database/eq_quiet/drop\nPgitops-Approve: pg-t/user/eq_nologin/drop\n");
    pair.same("drops");
}
