//! Lifecycle playbooks (`node.yml`, untagged `pgsql.yml`) through the Pigsty executor. They
//! cannot run here: they need Pigsty's package repository and would reconfigure this machine
//! (the test nodes share its root filesystem). So `ansible-playbook` is a **recording stand-in**
//! (a script that records its arguments and the environment pgitops sets, runs nothing and
//! reports success), started from the real Pigsty home. The nodes and PostgreSQL are real: the
//! executor asks them what runs before it starts a lifecycle playbook.

use std::path::Path;

use crate::support::fleet::{ok, Fleet};
use crate::support::pigsty::{real_home, recorded, recorder};
use crate::support::Run;

fn apply(f: &Fleet, rec: &Path) -> Run {
    let (home, rec) = (real_home().display().to_string(), rec.display().to_string());
    f.apply(&["--pigsty-home", &home, "--ansible-playbook", &rec])
}

#[test]
fn a_lifecycle_playbook_never_runs_where_its_module_runs() {
    let f = Fleet::new(&["127.0.59.11", "127.0.59.12", "127.0.59.13"]);
    // .13 is a node without PostgreSQL: what a freshly added host looks like.
    f.nodes.stop("127.0.59.13");
    let dir = tempfile::tempdir().unwrap();
    let rec = recorder(dir.path());

    // First contact with a running cluster: the plan has node.yml for every host and the
    // untagged pgsql.yml for the cluster; all of them are adopted, none runs.
    let mut v = f.inventory();
    v["all"]["children"]["pg-t"]["hosts"]
        .as_mapping_mut()
        .unwrap()
        .remove("127.0.59.13");
    f.commit(&v, "a running cluster");
    // The stand-in creates nothing: the roles exist already as declared (the executor checks the
    // declared result after every object playbook).
    for r in ["dbrole_readonly", "dbrole_admin"] {
        f.primary().sql(
            "postgres",
            &format!("CREATE ROLE {r} NOLOGIN; COMMENT ON ROLE {r} IS 'business user {r}';"),
        );
    }
    let run = apply(&f, &rec);
    for adopted in [
        "[adopted] pg-t/host/127.0.59.11/add",
        "[adopted] pg-t/host/127.0.59.12/add",
        "[adopted] pg-t/cluster/pg-t/create",
    ] {
        assert!(run.stdout.contains(adopted), "{adopted}:\n{}", run.stdout);
    }
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let runs = recorded(dir.path());
    assert!(
        !runs.is_empty(),
        "the objects go through Pigsty: {}",
        run.stdout
    );
    for r in &runs {
        // Only object playbooks, and pgsql.yml only with tags.
        let tagged = r.contains(&"-t".to_string());
        assert!(
            r[0] == "pgsql-user.yml" || (r[0] == "pgsql.yml" && tagged),
            "{r:?}"
        );
    }

    // A new host that runs nothing yet: node.yml and pgsql.yml run for it, with pgitops' own
    // SSH settings and strict host-key checking.
    f.commit(&f.inventory(), "add a replica on a new host");
    let run = apply(&f, &rec);
    let runs = recorded(dir.path());
    let node: Vec<&Vec<String>> = runs.iter().filter(|r| r[0] == "node.yml").collect();
    assert_eq!(node.len(), 1, "{runs:?}\n{}", run.stdout);
    let (key, cfg, kh) = (
        f.nodes.identity().display().to_string(),
        f.nodes.ssh_config().display().to_string(),
        f.nodes.known_hosts().display().to_string(),
    );
    let args = &node[0][..node[0].iter().position(|l| l == "--env--").unwrap()];
    assert_eq!(args[1], "-i");
    assert_eq!(
        args[3..],
        [
            "--private-key".to_string(),
            key,
            "-u".into(),
            "root".into(),
            "--ssh-common-args".into(),
            format!("-F {cfg} -o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes"),
            "-l".into(),
            "127.0.59.13".into(),
        ]
    );
    assert!(
        node[0].contains(&"ANSIBLE_HOST_KEY_CHECKING=True".to_string()),
        "{node:?}"
    );
    let member: Vec<&Vec<String>> = runs
        .iter()
        .filter(|r| r[0] == "pgsql.yml" && !r.contains(&"-t".to_string()))
        .collect();
    assert_eq!(member.len(), 1, "{runs:?}\n{}", run.stdout);
    // Pigsty's way to add a member: the new host, intersected with its cluster.
    let limit = member[0].iter().position(|a| a == "-l").unwrap();
    assert_eq!(member[0][limit + 1], "127.0.59.13,&pg-t", "{member:?}");
}

#[test]
fn a_removed_replica_is_removed_with_the_old_inventory() {
    let f = Fleet::new(&["127.0.58.11", "127.0.58.12"]);
    let dir = tempfile::tempdir().unwrap();
    let rec = recorder(dir.path());
    let mut v = f.inventory();
    f.commit(&v, "two members");
    // The baseline natively: first contact converges the default roles Pigsty's bootstrap makes.
    ok(&f.apply(&[]));
    v["all"]["children"]["pg-t"]["hosts"]
        .as_mapping_mut()
        .unwrap()
        .remove("127.0.58.12");
    f.commit(
        &v,
        "remove the replica\n\nPgitops-Approve: pg-t/member/127.0.58.12/remove\n",
    );
    let run = apply(&f, &rec);
    ok(&run);
    assert!(
        run.stdout
            .contains("[applied] pg-t/member/127.0.58.12/remove"),
        "{}",
        run.stdout
    );
    // pgsql-rm.yml reads the host's identity from the old revision: the host is gone from the
    // new one.
    let runs = recorded(dir.path());
    let rm: Vec<&Vec<String>> = runs.iter().filter(|r| r[0] == "pgsql-rm.yml").collect();
    assert_eq!(rm.len(), 1, "{runs:?}");
    let inv = &rm[0][rm[0].iter().position(|a| a == "-i").unwrap() + 1];
    assert!(inv.contains("/old/"), "{inv}");
    let limit = &rm[0][rm[0].iter().position(|a| a == "-l").unwrap() + 1];
    assert_eq!(limit, "127.0.58.12,&pg-t");
}

#[test]
fn auto_runs_natively_what_is_native_and_pigsty_for_the_rest() {
    let f = Fleet::new(&["127.0.55.11", "127.0.55.12"]);
    f.nodes.stop("127.0.55.12");
    let dir = tempfile::tempdir().unwrap();
    let rec = recorder(dir.path());
    let (home, recp) = (real_home().display().to_string(), rec.display().to_string());
    let auto = [
        "--pigsty-home",
        &home,
        "--ansible-playbook",
        &recp,
        "--native-first",
    ];
    let mut v = f.inventory();
    v["all"]["children"]["pg-t"]["hosts"]
        .as_mapping_mut()
        .unwrap()
        .remove("127.0.55.12");
    crate::support::fleet::push(&mut v, "pg_users", "{ name: app, password: 'App.Pass.2' }");
    let c = f.commit(&v, "one running member");
    let run = f.apply(&auto);
    ok(&run);
    for line in [
        "[adopted] pg-t/host/127.0.55.11/add",
        "[applied] pg-t/default-roles/converge",
        "[applied] pg-t/user/app/create",
    ] {
        assert!(run.stdout.contains(line), "{line}:\n{}", run.stdout);
    }
    assert!(
        run.stdout.contains("by native") && run.stdout.contains("by pigsty"),
        "{}",
        run.stdout
    );
    // Objects ran natively: no playbook at all (the host was adopted).
    assert_eq!(recorded(dir.path()), Vec::<Vec<String>>::new());
    f.primary()
        .login("app", "App.Pass.2", "postgres")
        .expect("created natively");
    let note = f.note(&c).to_string();
    assert!(
        note.contains("\"executor\":\"native\"") && note.contains("\"executor\":\"pigsty\""),
        "{note}"
    );

    // A new host: node.yml and pgsql.yml (Pigsty), nothing else.
    f.commit(
        &{
            let mut v = f.inventory();
            crate::support::fleet::push(
                &mut v,
                "pg_users",
                "{ name: app, password: 'App.Pass.2' }",
            );
            v
        },
        "a new member",
    );
    let run = f.apply(&auto);
    ok(&run);
    let mut books: Vec<String> = recorded(dir.path())
        .iter()
        .map(|r| book_and_limit(r))
        .collect();
    books.sort();
    // The new host, the new member (Pigsty's way: the host within its cluster), and the
    // services of the others; objects and HBA stay native.
    assert_eq!(
        books,
        [
            "node.yml -l 127.0.55.12",
            "pgsql.yml -l 127.0.55.12,&pg-t",
            "pgsql.yml -l pg-t,!127.0.55.12"
        ],
        "{}",
        run.stdout
    );
}

/// `<playbook> -l <limit>` of a recorded run.
fn book_and_limit(run: &[String]) -> String {
    let limit = run
        .iter()
        .position(|a| a == "-l")
        .map(|i| run[i + 1].as_str());
    format!("{} -l {}", run[0], limit.unwrap_or("?"))
}
