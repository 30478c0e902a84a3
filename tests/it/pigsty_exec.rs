//! The Pigsty executor end to end with the **real** Pigsty v4.5.0 playbooks (`../shared/pigsty`,
//! see `support::pigsty`) run by the real `ansible-playbook` over SSH against real nodes
//! (PostgreSQL and pgbouncer in Pigsty's layout). The baseline commit is applied natively, as the
//! recipe says (first contact converges the default roles Pigsty's bootstrap makes); every later
//! commit goes through the playbooks. PLAY RECAP, the catalogs and Pigsty's logs decide.

use crate::support::fleet::{has_database, has_role, ok, push, user, Fleet};
use crate::support::pigsty::Ansible;
use crate::support::service::Service;
use crate::support::Run;

fn pigsty(f: &Fleet, a: &Ansible) -> Run {
    let (env, args) = (a.env(), a.args());
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    f.apply_via(&env, &args)
}

fn file(f: &Fleet, ip: &str, name: &str) -> String {
    std::fs::read_to_string(f.nodes.node(ip).pgbouncer_dir().join(name)).unwrap_or_default()
}

#[test]
fn users_databases_and_hba_through_the_real_playbooks() {
    let f = Fleet::new(&["127.0.57.11", "127.0.57.12"]);
    let ans = Ansible::new(&f.nodes);
    let mut v = f.inventory();
    f.commit(&v, "baseline");
    ok(&f.apply(&[]));

    push(&mut v, "pg_users", "{ name: via_ansible, password: 'Via.Ansible.Pass', connlimit: 4, roles: [ dbrole_readwrite ], comment: 'made by Pigsty', pgbouncer: true, pool_mode: session, pool_connlimit: 20, parameters: { work_mem: '16MB' } }");
    push(&mut v, "pg_databases", "{ name: via_db, owner: via_ansible, schemas: [ app ], extensions: [ { name: pg_trgm } ], pool_mode: transaction, pool_size: 16 }");
    let c = f.commit(&v, "objects via Pigsty");
    let run = pigsty(&f, &ans);
    ok(&run);
    for applied in [
        "[applied] pg-t/user/via_ansible/create",
        "[applied] pg-t/database/via_db/create",
    ] {
        assert!(run.stdout.contains(applied), "{applied}: {}", run.stdout);
    }
    let p = f.primary();
    p.login("via_ansible", "Via.Ansible.Pass", "postgres")
        .expect("pgsql-user.yml created the user");
    let facts = "SELECT rolconnlimit, pg_has_role('via_ansible', 'dbrole_readwrite', 'MEMBER'), \
        shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'via_ansible'";
    assert_eq!(p.sql("postgres", facts), "4|t|made by Pigsty");
    // Pigsty's pg-db.sql grants the default privileges FOR ROLE the owner.
    let acl = "SELECT count(*) > 0 FROM pg_default_acl WHERE defaclrole = 'via_ansible'::regrole";
    assert_eq!(p.sql("via_db", acl), "t");
    // pgbouncer files on every member, replicas included
    for ip in ["127.0.57.11", "127.0.57.12"] {
        let opts = file(&f, ip, "useropts.txt");
        assert!(
            opts.contains("via_ansible") && opts.contains("pool_mode=session"),
            "{ip}: {opts}"
        );
        let dbs = file(&f, ip, "database.txt");
        assert!(
            dbs.contains("via_db") && dbs.contains("pool_size=16"),
            "{ip}: {dbs}"
        );
        assert!(file(&f, ip, "userlist.txt").contains("\"via_ansible\" \"SCRAM-SHA-256$"));
    }
    let note = f.note(&c).to_string();
    assert!(
        note.contains("ok="),
        "the PLAY RECAP is in the note: {note}"
    );
    for text in [&note, &run.stdout, &run.stderr] {
        assert!(!text.contains("Via.Ansible.Pass"), "{text}");
    }

    // An HBA change re-renders every member's files through pgsql.yml -t pg_hba,...
    push(&mut v, "pg_hba_rules", "{ user: via_ansible, db: all, addr: world, auth: deny, title: 'no via_ansible', order: 5 }");
    f.commit(&v, "deny via_ansible");
    ok(&pigsty(&f, &ans));
    assert!(p
        .login("via_ansible", "Via.Ansible.Pass", "postgres")
        .is_err());
    let replica_hba = std::fs::read_to_string(f.nodes.node("127.0.57.12").hba_file()).unwrap();
    assert!(replica_hba.contains("via_ansible"), "{replica_hba}");

    // state: absent drops both (approved)
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    user(&mut v, "via_ansible")["state"] = "absent".into();
    f.commit(
        &v,
        "drop both\n\nPgitops-Approve: pg-t/database/via_db/drop\nPgitops-Approve: pg-t/user/via_ansible/drop\n",
    );
    ok(&pigsty(&f, &ans));
    assert!(!has_database(p, "via_db"));
    assert!(!has_role(p, "via_ansible"));
}

#[test]
fn a_playbook_that_succeeds_while_its_sql_failed_is_a_failure() {
    let f = Fleet::independent(&["127.0.80.31"]);
    let ans = Ansible::new(&f.nodes);
    let mut v = f.inventory();
    f.commit(&v, "baseline");
    ok(&f.apply(&[]));
    // pg-db.sql's CREATE EXTENSION fails; Pigsty's psql step appends the error to
    // /pg/tmp/pg-db-broken.log and exits 0, and PLAY RECAP says failed=0.
    push(
        &mut v,
        "pg_databases",
        "{ name: broken, extensions: [ { name: no_such_extension } ] }",
    );
    f.commit(&v, "an extension that does not exist");
    let run = pigsty(&f, &ans);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("[failed] pg-t/database/broken/create"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("failed=0"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("extension \"no_such_extension\" is missing"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("/pg/tmp/pg-db-broken.log"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("no_such_extension"), "{}", run.stdout);
}

#[test]
fn the_service_with_executor_pigsty_runs_the_real_playbooks() {
    let f = Fleet::new(&["127.0.52.21", "127.0.52.22"]);
    let ans = Ansible::new(&f.nodes);
    let mut v = f.inventory();
    let base = f.commit(&v, "baseline");
    let cfg = ans.config();
    let svc = Service::start_executor(
        &f,
        &ans.executor_toml("pigsty"),
        &[("ANSIBLE_CONFIG", &cfg)],
    );
    svc.push(&f);
    // First contact through Pigsty: the running nodes and cluster are adopted, nothing fails.
    let note = svc.final_note(&base);
    assert_ne!(note["status"], "failure", "{note:#}");
    assert!(note.to_string().contains("\"adopted\""), "{note:#}");
    push(
        &mut v,
        "pg_users",
        "{ name: via_service, password: 'Via.Service.1', comment: 'from the service' }",
    );
    let add = f.commit(&v, "a user through the service and Pigsty");
    svc.push(&f);
    let note = svc.final_note(&add);
    assert_eq!(note["status"], "success", "{note:#}");
    assert!(
        note.to_string().contains("\"executor\":\"pigsty\""),
        "{note:#}"
    );
    f.primary()
        .login("via_service", "Via.Service.1", "postgres")
        .expect("pgsql-user.yml ran from the service");
    assert!(!note.to_string().contains("Via.Service.1"));
}
