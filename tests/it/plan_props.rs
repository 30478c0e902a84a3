//! Properties of `plan` and `validate` as a user meets them: semantic (not textual) diffs,
//! determinism, refusal of bad input with file:line:column, hostile values kept as data,
//! secrets never printed, the split layout, ordering, exit codes.

use crate::support::*;

#[test]
fn reformat_only_commit_plans_nothing() {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    // Same content: block style instead of flow, keys reordered, comments and anchors added.
    let v = base();
    let block = format!("# reformatted\n{}", to_yaml(&v))
        .replace("pg_seq: 1\n", "pg_seq: 1 # the primary\n");
    assert_ne!(block, BASE);
    repo.commit_inventory(&block, "reformat");
    let run = pgitops(repo.path(), &["plan", "--output", "json", "--exit-code"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let p = run.json();
    assert_eq!(p["actions"], serde_json::json!([]));
    assert_eq!(p["clusters"], serde_json::json!([]));
    // anchors and merge keys that resolve to the same values are no-ops too
    let anchored = BASE.replace(
        "    pg-test:\n      hosts:\n        127.0.10.11: { pg_seq: 1, pg_role: primary }\n        127.0.10.12: { pg_seq: 2, pg_role: replica }\n",
        "    pg-test:\n      hosts:\n        127.0.10.11: &m { pg_seq: 1, pg_role: primary }\n        127.0.10.12: { <<: *m, pg_seq: 2, pg_role: replica }\n",
    );
    assert_ne!(anchored, BASE);
    repo.commit_inventory(&anchored, "anchors");
    let run = pgitops(repo.path(), &["plan", "--output", "json", "--exit-code"]);
    assert_eq!(
        (run.code, run.json()["actions"].clone()),
        (0, serde_json::json!([])),
        "{}",
        run.stdout
    );
}

#[test]
fn same_commit_plans_nothing_and_json_is_byte_identical() {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    let mut v = base();
    vars(&mut v, "pg-meta")["pg_users"][1]["connlimit"] = 30.into();
    let head = repo.commit_inventory(&to_yaml(&v), "connlimit");
    let same = pgitops(
        repo.path(),
        &[
            "plan",
            "--output",
            "json",
            "--exit-code",
            &format!("{head}..{head}"),
        ],
    );
    assert_eq!(same.code, 0);
    assert_eq!(same.json()["actions"], serde_json::json!([]));
    let first = pgitops(repo.path(), &["plan", "--output", "json", "HEAD~1..HEAD"]);
    let second = pgitops(repo.path(), &["plan", "--output", "json", "HEAD~1..HEAD"]);
    assert_eq!(first.stdout, second.stdout);
    assert!(!first.stdout.is_empty());
    let changes = pgitops(repo.path(), &["plan", "--exit-code"]);
    assert_eq!(changes.code, 1, "--exit-code: 1 when there are changes");
    assert!(
        changes
            .stdout
            .contains("[online] pg-meta/user/dbuser_view/update"),
        "{}",
        changes.stdout
    );
    assert!(
        changes.stdout.contains("+ connlimit: 30"),
        "{}",
        changes.stdout
    );
    assert!(
        !changes.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn malformed_yaml_is_refused_with_its_location() {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    let broken = BASE.replace("pg_cluster: pg-test\n", "pg_cluster: [pg-test\n");
    repo.commit_inventory(&broken, "broken");
    let line = broken.lines().position(|l| l.contains("[pg-test")).unwrap() + 1;
    for args in [
        vec!["plan"],
        vec!["validate"],
        vec!["plan", "--output", "json"],
    ] {
        let run = pgitops(repo.path(), &args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        if !args.contains(&"json") {
            assert!(all.contains("pigsty.yml:"), "{args:?}: {all}");
        } else {
            let e = &run.json()["errors"][0];
            assert_eq!(e["file"], "pigsty.yml");
            assert!(e["line"].as_u64().unwrap() as usize >= line, "{e}");
            assert!(e["column"].as_u64().unwrap() >= 1);
            assert_eq!(run.json()["actions"], serde_json::json!([]));
        }
    }
}

#[test]
fn validation_errors_name_file_line_column_and_refuse_the_plan() {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    let bad = BASE.replace(
        "127.0.10.12: { pg_seq: 2, pg_role: replica }",
        "127.0.10.12: { pg_seq: 2, pg_role: primary }",
    );
    repo.commit_inventory(&bad, "two primaries");
    let run = pgitops(repo.path(), &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("exactly one member with `pg_role: primary`"),
        "{}",
        run.stderr
    );
    let line = bad
        .lines()
        .position(|l| l.contains("pg_cluster: pg-test"))
        .unwrap()
        + 1;
    assert!(
        run.stderr.contains(&format!("pigsty.yml:{line}:")),
        "{}",
        run.stderr
    );
    let plan = pgitops(repo.path(), &["plan", "--output", "json"]);
    assert_eq!(plan.code, 2);
    assert_eq!(plan.json()["actions"], serde_json::json!([]));
    // the next good commit plans normally against the last good one
    repo.commit_inventory(BASE, "fix");
    assert_eq!(
        pgitops(repo.path(), &["plan", "HEAD~2..HEAD", "--exit-code"]).code,
        0
    );
}

#[test]
fn hostile_values_stay_data() {
    let hostile = "x'; DROP ROLE postgres; --\n$(touch /tmp/pwned)\"ü";
    let hostile_password = "pw'; DROP ROLE postgres; --\n$(touch /tmp/pwned)";
    let p = plan_edit(|v| {
        let users = vars(v, "pg-meta")["pg_users"].as_sequence_mut().unwrap();
        users.push(serde_yaml_ng::Value::Mapping(
            [
                ("name".into(), "dbuser_odd".into()),
                ("password".into(), hostile_password.into()),
                ("comment".into(), hostile.into()),
            ]
            .into_iter()
            .collect(),
        ));
    });
    let steps = action(&p, "pg-meta/user/dbuser_odd/create")["steps"][0]
        .as_str()
        .unwrap()
        .to_string();
    // the comment is one SQL literal with its quote doubled, and appears nowhere else
    assert!(steps.contains("COMMENT ON ROLE \"dbuser_odd\" IS 'x''; DROP ROLE postgres; --\n$(touch /tmp/pwned)\"ü';"), "{steps}");
    assert_eq!(steps.matches("DROP ROLE postgres").count(), 1, "{steps}");
    assert!(
        !p.to_string().contains("pw'; DROP ROLE"),
        "the hostile password is redacted too"
    );
    // an unusual database name that PostgreSQL and Pigsty's files take reaches SQL and the
    // command line quoted, with a warning
    let odd_db = "x$1-ü";
    let p = plan_edit(|v| {
        let dbs = vars(v, "pg-meta")["pg_databases"]
            .as_sequence_mut()
            .unwrap();
        dbs.push(serde_yaml_ng::Value::Mapping(
            [("name".into(), odd_db.into())].into_iter().collect(),
        ));
    });
    let act = action(&p, "pg-meta/database/x$1-ü/create");
    assert_eq!(
        act["pigsty"],
        r"./pgsql-db.yml -l pg-meta -e 'dbname=x$1-ü'"
    );
    let sql = act["steps"][0].as_str().unwrap();
    assert!(sql.contains(r#"CREATE DATABASE "x$1-ü""#), "{sql}");
    assert!(
        p["warnings"].to_string().contains("does not match"),
        "a warning names the odd name"
    );
    // a hostile *name* is refused by validation, naming the field
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    let mut v = base();
    vars(&mut v, "pg-meta")["pg_users"][0]["name"] = "a\"; DROP ROLE x; --".into();
    repo.commit_inventory(&to_yaml(&v), "hostile name");
    let run = pgitops(repo.path(), &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("user name") && run.stderr.contains("must match"),
        "{}",
        run.stderr
    );
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    // so is a database name with quotes, `;` or whitespace, which would break Pigsty's pgbouncer
    // and SQL files
    let mut v = base();
    vars(&mut v, "pg-meta")["pg_databases"][0]["name"] = "x'; $(touch /tmp/pwned)".into();
    repo.commit_inventory(&to_yaml(&v), "hostile database name");
    let run = pgitops(repo.path(), &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("database name") && run.stderr.contains("breaks Pigsty's"),
        "{}",
        run.stderr
    );
    // connection settings that ssh would read as options are refused
    let mut v = base();
    hosts(&mut v, "pg-test")["127.0.10.12"]["ansible_host"] =
        "-oProxyCommand=touch /tmp/pwned".into();
    repo.commit_inventory(&to_yaml(&v), "hostile ansible_host");
    let run = pgitops(repo.path(), &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("`ansible_host` must be a host name"),
        "{}",
        run.stderr
    );
    // a port in a string reads as Ansible reads it; anything else that is not a port is refused
    let mut v = base();
    hosts(&mut v, "pg-test")["127.0.10.12"]["ansible_port"] = "2200".into();
    repo.commit_inventory(&to_yaml(&v), "quoted port");
    let run = pgitops(repo.path(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    hosts(&mut v, "pg-test")["127.0.10.13"]["pg_port"] = "5432; rm -rf /".into();
    repo.commit_inventory(&to_yaml(&v), "not a port");
    let run = pgitops(repo.path(), &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("`pg_port` must be a port number")
            && run.stderr.contains("pigsty.yml:"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_password_appears_in_text_or_json() {
    let repo = Repo::new();
    repo.commit("init");
    repo.commit_inventory(BASE, "everything is new");
    let mut v = base();
    for (i, u) in vars(&mut v, "pg-meta")["pg_users"]
        .as_sequence_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        u["password"] = format!("Changed.{i}.Secret").into();
    }
    v["all"]["vars"]["pg_admin_password"] = "Changed.Admin.Secret".into();
    vars(&mut v, "pg-test")["pg_users"]
        .as_sequence_mut()
        .unwrap()
        .push(yaml("{ name: fresh, password: Fresh.User.Secret }"));
    vars(&mut v, "redis-ms")["redis_password"] = "Changed.Redis.Secret".into();
    repo.commit_inventory(&to_yaml(&v), "rotate");
    let mut secrets: Vec<String> = SECRETS.iter().map(|s| s.to_string()).collect();
    secrets.extend(
        [
            "Changed.0.Secret",
            "Changed.1.Secret",
            "Changed.Admin.Secret",
            "Changed.Redis.Secret",
        ]
        .map(String::from),
    );
    for range in ["HEAD~1..HEAD", "HEAD~2..HEAD", "HEAD~2..HEAD~1"] {
        for out in ["text", "json"] {
            let run = pgitops(repo.path(), &["plan", "--output", out, range]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            for s in &secrets {
                assert!(
                    !run.stdout.contains(s.as_str()) && !run.stderr.contains(s.as_str()),
                    "{s} leaked in {range} {out}:\n{}",
                    run.stdout
                );
            }
        }
    }
    let text = pgitops(repo.path(), &["plan", "HEAD~1..HEAD"]).stdout;
    assert!(
        text.contains("user dbuser_meta update [password]")
            && text.contains("a secret changed (values redacted)"),
        "{text}"
    );
    assert!(text.contains("+ password: <redacted>"), "{text}");
    assert!(
        text.contains("pg-meta/var/pg_admin_password/manual"),
        "{text}"
    );
}

#[test]
fn split_layout_loads_like_the_single_file() {
    let repo = Repo::new();
    repo.write(
        "inventory/hosts.yml",
        "all:\n  children:\n    pg-test:\n      hosts:\n        127.0.10.11: { pg_seq: 1, pg_role: primary }\n        127.0.10.12:\n",
    );
    repo.write(
        "inventory/group_vars/all.yml",
        "admin_ip: 127.0.10.10\npg_version: 15\n",
    );
    repo.write(
        "inventory/group_vars/pg-test.yml",
        "pg_cluster: pg-test\npg_users: [ { name: app, password: Split.Secret } ]\n",
    );
    repo.write(
        "inventory/host_vars/127.0.10.12.yml",
        "pg_seq: 2\npg_role: replica\n",
    );
    repo.commit("split layout");
    let run = pgitops(repo.path(), &["--inventory", "inventory", "validate"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("2 hosts, 1 PGSQL clusters"),
        "{}",
        run.stdout
    );
    repo.write(
        "inventory/host_vars/127.0.10.12.yml",
        "pg_seq: 2\npg_role: replica\npg_parameters: { work_mem: 64MB }\n",
    );
    repo.write(
        "inventory/group_vars/pg-test.yml",
        "pg_cluster: pg-test\npg_users: [ { name: app, password: Split.Secret, connlimit: 5 } ]\n",
    );
    repo.commit("change both");
    let p = pgitops(
        repo.path(),
        &["--inventory", "inventory", "plan", "--output", "json"],
    )
    .json();
    assert_eq!(
        ids(&p),
        vec!["pg-test/user/app/update", "pg-test/parameters/apply"]
    );
    assert_eq!(
        action(&p, "pg-test/parameters/apply")["hosts"],
        serde_json::json!(["127.0.10.12"])
    );
    assert!(!p.to_string().contains("Split.Secret"));
    // a broken host_vars file is reported with its own path
    repo.write(
        "inventory/host_vars/127.0.10.12.yml",
        "pg_seq: 2\npg_role: [replica\n",
    );
    repo.commit("broken host vars");
    let run = pgitops(repo.path(), &["--inventory", "inventory", "validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("inventory/host_vars/127.0.10.12.yml:"),
        "{}",
        run.stderr
    );
}

#[test]
fn creation_and_removal_order_follows_the_modules() {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    let mut v = base();
    // create: a new etcd member, a new pg user that owns a new database, a redis instance
    hosts(&mut v, "etcd")["127.0.10.13"] = yaml("{ etcd_seq: 4 }");
    vars(&mut v, "pg-meta")["pg_databases"]
        .as_sequence_mut()
        .unwrap()
        .push(yaml("{ name: app, owner: app_owner }"));
    vars(&mut v, "pg-meta")["pg_users"]
        .as_sequence_mut()
        .unwrap()
        .push(yaml("{ name: app_owner, roles: [ app_role ] }"));
    vars(&mut v, "pg-meta")["pg_users"]
        .as_sequence_mut()
        .unwrap()
        .push(yaml("{ name: app_role, login: false }"));
    hosts(&mut v, "redis-ms")["127.0.10.10"]["redis_instances"][6390] = yaml("{}");
    // remove: a pg replica and a redis instance
    hosts(&mut v, "pg-test")
        .as_mapping_mut()
        .unwrap()
        .remove("127.0.10.13");
    hosts(&mut v, "redis-ms")["127.0.10.10"]["redis_instances"]
        .as_mapping_mut()
        .unwrap()
        .remove(serde_yaml_ng::Value::from(6380));
    repo.commit_inventory(&to_yaml(&v), "many");
    let ids = ids(&pgitops(repo.path(), &["plan", "--output", "json"]).json());
    let pos = |id: &str| {
        ids.iter()
            .position(|x| x == id)
            .unwrap_or_else(|| panic!("{id} missing: {ids:#?}"))
    };
    assert!(pos("etcd/member/127.0.10.13/add") < pos("pg-meta/user/app_role/create"));
    assert!(
        pos("pg-meta/user/app_role/create") < pos("pg-meta/user/app_owner/create"),
        "a granted role comes first"
    );
    assert!(
        pos("pg-meta/user/app_owner/create") < pos("pg-meta/database/app/create"),
        "the owner before its database"
    );
    assert!(pos("pg-meta/database/app/create") < pos("redis-ms/instance/127.0.10.10:6390/add"));
    // removals come after creations, in reverse module order: redis before pgsql before node
    assert!(
        pos("redis-ms/instance/127.0.10.10:6390/add")
            < pos("redis-ms/instance/127.0.10.10:6380/remove")
    );
    assert!(
        pos("redis-ms/instance/127.0.10.10:6380/remove") < pos("pg-test/member/127.0.10.13/remove")
    );
}

#[test]
fn usage_and_repository_errors_exit_2() {
    let repo = Repo::new();
    repo.commit_inventory(BASE, "base");
    assert_eq!(pgitops(repo.path(), &["plan", "no-such-rev"]).code, 2);
    assert_eq!(pgitops(repo.path(), &["plan", "--output", "yaml"]).code, 2);
    assert_eq!(
        pgitops(repo.path(), &["--inventory", "missing.yml", "validate"]).code,
        2
    );
    let not_a_repo = tempfile::tempdir().unwrap();
    let run = pgitops(not_a_repo.path(), &["validate"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("opening the repository"),
        "{}",
        run.stderr
    );
    // the first commit plans against nothing: everything is created
    let first = pgitops(repo.path(), &["plan", "--output", "json"]).json();
    assert!(ids(&first).contains(&"pg-test/cluster/pg-test/create".to_string()));
}
