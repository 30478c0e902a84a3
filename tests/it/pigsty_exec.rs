//! The Pigsty executor end to end: the real `ansible-playbook` (Debian's ansible-core) runs the
//! fixture Pigsty home's playbooks over SSH against real nodes, with the inventory of the right
//! revision; PLAY RECAP and the catalogs decide the result.

use crate::support::fleet::{has_database, has_role, ok, push, user, Fleet};
use crate::support::pigsty::{ansible_available, home};

fn apply(f: &Fleet, home: &std::path::Path, extra: &[&str]) -> crate::support::Run {
    let home = home.to_string_lossy().to_string();
    let mut args = vec!["--pigsty-home", home.as_str()];
    args.extend_from_slice(extra);
    f.apply(&args)
}

#[test]
fn users_databases_and_hba_through_ansible() {
    assert!(
        ansible_available(),
        "ansible-playbook is required (scripts/setup.sh installs ansible-core)"
    );
    let f = Fleet::new(&["127.0.57.11", "127.0.57.12"]);
    let home = home(&f.nodes);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: via_ansible, password: 'Via.Ansible.Pass', connlimit: 4 }",
    );
    push(
        &mut v,
        "pg_databases",
        "{ name: via_db, owner: via_ansible }",
    );
    let c = f.commit(&v, "objects via Pigsty");
    let run = apply(&f, home.path(), &[]);
    ok(&run);
    // First contact with a running fleet: the nodes and the cluster are adopted, neither
    // node.yml nor the untagged pgsql.yml runs, and the objects converge.
    for adopted in [
        "[adopted] pg-t/cluster/pg-t/create",
        "[adopted] pg-t/host/127.0.57.11/add",
        "[adopted] pg-t/host/127.0.57.12/add",
    ] {
        assert!(run.stdout.contains(adopted), "{adopted}: {}", run.stdout);
    }
    assert!(
        !run.stdout.contains("NODE (test fixture)"),
        "{}",
        run.stdout
    );
    let p = f.primary();
    p.login("via_ansible", "Via.Ansible.Pass", "postgres")
        .expect("pgsql-user.yml created the user");
    assert_eq!(
        p.sql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'via_db'"
        ),
        "via_ansible"
    );
    let note = f.note(&c).to_string();
    assert!(
        note.contains("ok=") && note.contains("ignored="),
        "the PLAY RECAP is in the note: {note}"
    );
    assert!(!note.contains("Via.Ansible.Pass") && !run.stdout.contains("Via.Ansible.Pass"));
    // an HBA change re-renders every member's file through pgsql.yml -t pg_hba,pg_reload,...
    push(&mut v, "pg_hba_rules", "{ user: via_ansible, db: all, addr: world, auth: deny, title: 'no via_ansible', order: 5 }");
    f.commit(&v, "deny via_ansible");
    ok(&apply(&f, home.path(), &[]));
    assert!(
        p.login("via_ansible", "Via.Ansible.Pass", "postgres")
            .is_err(),
        "the deny rule is live"
    );
    let replica_hba = std::fs::read_to_string(f.nodes.node("127.0.57.12").hba_file()).unwrap();
    assert!(replica_hba.contains("via_ansible"), "{replica_hba}");
    // state: absent drops the user (after the database it owns is dropped; both approved)
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    user(&mut v, "via_ansible")["state"] = "absent".into();
    f.commit(
        &v,
        "drop both\n\nPgitops-Approve: pg-t/database/via_db/drop\nPgitops-Approve: pg-t/user/via_ansible/drop\n",
    );
    ok(&apply(&f, home.path(), &[]));
    assert!(!has_database(p, "via_db"));
    assert!(!has_role(p, "via_ansible"));
}

#[test]
fn a_removed_replica_is_removed_with_the_old_inventory() {
    assert!(ansible_available());
    let f = Fleet::new(&["127.0.58.11", "127.0.58.12"]);
    let home = home(&f.nodes);
    let mut v = f.inventory();
    f.commit(&v, "two members");
    ok(&apply(&f, home.path(), &[]));
    v["all"]["children"]["pg-t"]["hosts"]
        .as_mapping_mut()
        .unwrap()
        .remove("127.0.58.12");
    f.commit(
        &v,
        "remove the replica\n\nPgitops-Approve: pg-t/member/127.0.58.12/remove\n",
    );
    let run = apply(&f, home.path(), &[]);
    ok(&run);
    assert!(
        run.stdout
            .contains("[applied] pg-t/member/127.0.58.12/remove"),
        "{}",
        run.stdout
    );
    // pgsql-rm.yml found the host's identity in the old revision and stopped its PostgreSQL
    let pid_file = f
        .nodes
        .node("127.0.58.12")
        .data_dir()
        .join("postmaster.pid");
    assert!(!pid_file.exists(), "the replica's server was stopped");
}

#[test]
fn a_failing_task_under_ignore_errors_still_fails_the_action() {
    assert!(ansible_available());
    let f = Fleet::new(&["127.0.59.11"]);
    let home = home(&f.nodes);
    let mut v = f.inventory();
    f.commit(&v, "base");
    ok(&apply(&f, home.path(), &[]));
    // PostgreSQL reserves role names starting with pg_: CREATE ROLE fails, Pigsty ignores it
    push(
        &mut v,
        "pg_users",
        "{ name: pg_reserved_name, password: 'Reserved.Pass' }",
    );
    f.commit(&v, "a role PostgreSQL refuses");
    let run = apply(&f, home.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("[failed] pg-t/user/pg_reserved_name/create"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("ignored=1"),
        "the RECAP shows the ignored failure: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("does not exist, although ansible-playbook succeeded"),
        "{}",
        run.stdout
    );
}
