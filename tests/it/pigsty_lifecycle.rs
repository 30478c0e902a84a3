//! Lifecycle playbooks (`node.yml`, untagged `pgsql.yml`) through the Pigsty executor. They
//! cannot run here: they need Pigsty's package repository and would reconfigure this machine
//! (the test nodes share its root filesystem). So `ansible-playbook` is a **recording stand-in**
//! (a script that records its arguments and the environment pgitops sets, runs nothing and
//! reports success), started from the real Pigsty home. The nodes and PostgreSQL are real: the
//! executor asks them what runs before it starts a lifecycle playbook.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::fleet::Fleet;
use crate::support::Run;

/// A recording stand-in for `ansible-playbook`: each run leaves `<dir>/run.*` holding its
/// arguments (one per line), then `--env--` and the ANSIBLE_* variables pgitops sets.
fn recorder(dir: &Path) -> PathBuf {
    let script = dir.join("ansible-playbook-recorder");
    let text = format!(
        "#!/bin/bash\n# Recording stand-in for ansible-playbook (test harness): runs nothing.\n\
         f=$(mktemp {d}/run.XXXXXX)\nprintf '%s\\n' \"$@\" > \"$f\"\necho --env-- >> \"$f\"\n\
         env | grep -E '^ANSIBLE_(HOST_KEY_CHECKING|CALLBACKS_ENABLED)=' | sort >> \"$f\"\n\
         limit=\nwhile [ $# -gt 0 ]; do [ \"$1\" = -l ] && limit=$2; shift; done\n\
         echo 'PLAY RECAP *****'\n\
         echo \"$limit : ok=1 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0\"\n",
        d = dir.display()
    );
    fs::write(&script, text).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The recorded runs (each: its argv lines, `--env--`, its environment lines), oldest first.
fn recorded(dir: &Path) -> Vec<Vec<String>> {
    let mut runs: Vec<(std::time::SystemTime, Vec<String>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("run."))
        .map(|p| {
            let t = fs::metadata(&p).unwrap().modified().unwrap();
            let lines = fs::read_to_string(&p).unwrap();
            (t, lines.lines().map(str::to_string).collect())
        })
        .collect();
    runs.sort();
    for p in fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if p.file_name().unwrap().to_string_lossy().starts_with("run.") {
            fs::remove_file(p).unwrap();
        }
    }
    runs.into_iter().map(|(_, r)| r).collect()
}

fn apply(f: &Fleet, rec: &Path) -> Run {
    let home = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/pigsty");
    assert!(
        home.join("node.yml").exists(),
        "the real Pigsty tree is expected at {}",
        home.display()
    );
    let (home, rec) = (home.display().to_string(), rec.display().to_string());
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
