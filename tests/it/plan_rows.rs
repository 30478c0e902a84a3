//! One test per row of the reference's diff → action table (§13), each from a real two-commit
//! repository, checking ids, classes, revisions and the Pigsty command line.

use crate::support::*;

fn a(id: &str, class: &str, rev: &str, pigsty: &str) -> (String, String, String, String) {
    (id.into(), class.into(), rev.into(), pigsty.into())
}

#[test]
fn new_pg_cluster() {
    let p = plan_edit(|v| {
        v["all"]["children"]["pg-new"] = yaml(
            "{ hosts: { 127.0.10.21: { pg_seq: 1, pg_role: primary }, 127.0.10.22: { pg_seq: 2, pg_role: replica } }, vars: { pg_cluster: pg-new, pg_users: [ { name: app } ] } }",
        );
    });
    // Pigsty bootstraps the cluster with its objects; the native executor converges the objects
    // on running members, so they are planned too.
    assert_eq!(
        actions(&p),
        vec![
            a(
                "pg-new/host/127.0.10.21/add",
                "online",
                "new",
                "./node.yml -l 127.0.10.21"
            ),
            a(
                "pg-new/host/127.0.10.22/add",
                "online",
                "new",
                "./node.yml -l 127.0.10.22"
            ),
            a(
                "pg-new/cluster/pg-new/create",
                "online",
                "new",
                "./pgsql.yml -l pg-new"
            ),
            // Pigsty creates the default roles while bootstrapping: no narrower command
            a("pg-new/default-roles/converge", "online", "new", ""),
            // and initialises template1 and postgres (pg-init-template.sql): no narrower command
            a("pg-new/templates/init", "online", "new", ""),
            a(
                "pg-new/user/app/create",
                "online",
                "new",
                "./pgsql-user.yml -l pg-new -e username=app"
            ),
            a(
                "pg-new/hba/reload",
                "reload",
                "new",
                "./pgsql.yml -l pg-new -t pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload"
            ),
            // pgbouncer launched on every member (Pigsty: inside the untagged pgsql.yml), then
            // its files on every member; Pigsty writes them inside its playbooks
            a("pg-new/pgbouncer/launch", "online", "new", ""),
            a("pg-new/pgbouncer/reload", "reload", "new", ""),
            // its services: Pigsty renders them while creating it
            a("pg-new/service/refresh", "reload", "new", ""),
        ]
    );
}

#[test]
fn new_host_in_existing_cluster() {
    let p =
        plan_edit(|v| hosts(v, "pg-test")["127.0.10.14"] = yaml("{ pg_seq: 4, pg_role: replica }"));
    assert_eq!(
        actions(&p),
        vec![
            a(
                "pg-test/host/127.0.10.14/add",
                "online",
                "new",
                "./node.yml -l 127.0.10.14"
            ),
            a(
                "pg-test/member/127.0.10.14/add",
                "online",
                "new",
                "./pgsql.yml -l '127.0.10.14,&pg-test'"
            ),
            // the `cluster` alias in pg-test's HBA now has one more address; the new member
            // gets its HBA when it is bootstrapped
            a(
                "pg-test/hba/reload",
                "reload",
                "new",
                "./pgsql.yml -l '127.0.10.11,127.0.10.12,127.0.10.13,&pg-test' -t pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload"
            ),
            // pgbouncer on the new member (Pigsty: inside the member's pgsql.yml), then every
            // pgbouncer file written where it differs
            a("pg-test/pgbouncer/launch", "online", "new", ""),
            a("pg-test/pgbouncer/reload", "reload", "new", ""),
            a(
                "pg-test/service/refresh",
                "reload",
                "new",
                "./pgsql.yml -l 'pg-test,!127.0.10.14' -t pg_service"
            ),
        ]
    );
    assert_eq!(
        action(&p, "pg-test/hba/reload")["hosts"],
        serde_json::json!(["127.0.10.11", "127.0.10.12", "127.0.10.13"])
    );
}

#[test]
fn replica_removed_reads_old_revision_then_refreshes_services() {
    let p = plan_edit(|v| {
        hosts(v, "pg-test")
            .as_mapping_mut()
            .unwrap()
            .remove("127.0.10.13");
    });
    let got = actions(&p);
    let pos = |id: &str| {
        got.iter()
            .position(|x| x.0 == id)
            .unwrap_or_else(|| panic!("{id} missing: {got:#?}"))
    };
    assert_eq!(
        got[pos("pg-test/member/127.0.10.13/remove")],
        a(
            "pg-test/member/127.0.10.13/remove",
            "destructive",
            "old",
            "./pgsql-rm.yml -l '127.0.10.13,&pg-test'"
        )
    );
    assert_eq!(
        got[pos("pg-test/service/refresh")],
        a(
            "pg-test/service/refresh",
            "reload",
            "new",
            "./pgsql.yml -l pg-test -t pg_service"
        )
    );
    assert!(pos("pg-test/member/127.0.10.13/remove") < pos("pg-test/service/refresh"));
    assert_eq!(
        action(&p, "pg-test/member/127.0.10.13/remove")["approval"],
        "required"
    );
    let steps = action(&p, "pg-test/member/127.0.10.13/remove")["steps"].to_string();
    for want in ["live leader", "pg_rm_data", "pg_stat_replication"] {
        assert!(steps.contains(want), "{want}: {steps}");
    }
    assert!(!steps.contains("not performed natively"), "{steps}");
    // the host leaves the inventory altogether: node removal comes after the module removal
    assert!(pos("pg-test/host/127.0.10.13/remove") > pos("pg-test/member/127.0.10.13/remove"));
}

#[test]
fn removing_the_declared_primary_is_refused() {
    let p = plan_edit(|v| {
        let h = hosts(v, "pg-test").as_mapping_mut().unwrap();
        h.remove("127.0.10.11");
        h.insert(
            "127.0.10.12".into(),
            yaml("{ pg_seq: 2, pg_role: primary }"),
        );
    });
    let remove = action(&p, "pg-test/member/127.0.10.11/remove");
    assert_eq!(remove["class"], "manual");
    assert_eq!(remove["pigsty"], "");
    assert!(remove["reason"]
        .as_str()
        .unwrap()
        .contains("declared primary"));
}

#[test]
fn cluster_removed_is_destructive_and_reads_old() {
    let p = plan_edit(|v| {
        v["all"]["children"]
            .as_mapping_mut()
            .unwrap()
            .remove("pg-test");
    });
    let remove = action(&p, "pg-test/cluster/pg-test/remove");
    assert_eq!(
        (
            remove["class"].as_str(),
            remove["revision"].as_str(),
            remove["pigsty"].as_str()
        ),
        (
            Some("destructive"),
            Some("old"),
            Some("./pgsql-rm.yml -l pg-test")
        )
    );
    assert_eq!(remove["approval"], "required");
    // The preview says what the native executor does, beside the Pigsty command above.
    let steps: Vec<&str> = remove["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let text = steps.join("\n");
    for want in [
        "pg_safeguard",
        "replicas first, the live leader last",
        "--prefix",
        "pg_rm_data",
        "left alone",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(!text.contains("not performed natively"), "{text}");
}

#[test]
fn user_added_and_changed() {
    let p = plan_edit(|v| {
        let users = vars(v, "pg-meta")["pg_users"].as_sequence_mut().unwrap();
        users[1]["connlimit"] = 20.into();
        users.push(yaml(
            "{ name: dbuser_app, password: App.New.Secret, roles: [dbrole_readwrite] }",
        ));
    });
    assert_eq!(
        actions(&p),
        vec![
            a(
                "pg-meta/user/dbuser_view/update",
                "online",
                "new",
                "./pgsql-user.yml -l pg-meta -e username=dbuser_view"
            ),
            a(
                "pg-meta/user/dbuser_app/create",
                "online",
                "new",
                "./pgsql-user.yml -l pg-meta -e username=dbuser_app"
            ),
        ]
    );
    let change = &p["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pg-meta")
        .unwrap()["changes"][0];
    assert_eq!(
        (
            change["entity"].as_str(),
            change["name"].as_str(),
            change["op"].as_str()
        ),
        (Some("user"), Some("dbuser_view"), Some("update"))
    );
    assert_eq!(change["fields"], serde_json::json!(["connlimit"]));
    let text = p.to_string();
    assert!(!text.contains("App.New.Secret"));
    let steps = action(&p, "pg-meta/user/dbuser_app/create")["steps"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        steps.contains("PASSWORD <redacted>")
            && steps.contains("GRANT \"dbrole_readwrite\" TO \"dbuser_app\""),
        "{steps}"
    );
}

#[test]
fn user_absent_is_dropped_and_deleted_user_is_left_in_place() {
    let p = plan_edit(|v| {
        let users = vars(v, "pg-meta")["pg_users"].as_sequence_mut().unwrap();
        users[0]["state"] = "absent".into();
        users.remove(1);
    });
    // dbuser_meta has `pgbouncer: true`: it leaves userlist.txt
    assert_eq!(
        actions(&p),
        vec![
            a("pg-meta/pgbouncer/reload", "reload", "new", ""),
            a(
                "pg-meta/user/dbuser_meta/drop",
                "destructive",
                "new",
                "./pgsql-user.yml -l pg-meta -e username=dbuser_meta"
            )
        ]
    );
    let changes = &p["clusters"][0]["changes"];
    assert!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "dbuser_view" && c["op"] == "unmanaged"),
        "{changes}"
    );
    assert!(p["warnings"].to_string().contains(
        "dbuser_view was removed from the inventory without `state: absent`: left in place"
    ));
}

#[test]
fn database_added_changed_and_create_only_flagged() {
    let p = plan_edit(|v| {
        let dbs = vars(v, "pg-meta")["pg_databases"]
            .as_sequence_mut()
            .unwrap();
        dbs[0]["comment"] = "the meta database".into();
        dbs[0]["encoding"] = "LATIN1".into();
        dbs.push(yaml("{ name: meta2, owner: dbuser_view }"));
    });
    assert_eq!(
        actions(&p),
        vec![
            a("pg-meta/database/meta/create-options", "manual", "new", ""),
            a(
                "pg-meta/database/meta/update",
                "online",
                "new",
                "./pgsql-db.yml -l pg-meta -e dbname=meta"
            ),
            a(
                "pg-meta/database/meta2/create",
                "online",
                "new",
                "./pgsql-db.yml -l pg-meta -e dbname=meta2"
            ),
            a("pg-meta/pgbouncer/reload", "reload", "new", ""),
        ]
    );
}

#[test]
fn database_drop_needs_approval_and_trailer_approves() {
    let drop = |v: &mut serde_yaml_ng::Value| {
        vars(v, "pg-meta")["pg_databases"][0]["state"] = "absent".into()
    };
    let held = plan_edit(drop);
    let act = action(&held, "pg-meta/database/meta/drop");
    assert_eq!(
        (act["class"].as_str(), act["approval"].as_str()),
        (Some("destructive"), Some("required"))
    );
    assert_eq!(act["pigsty"], "./pgsql-db.yml -l pg-meta -e dbname=meta");
    let approved = plan_edit_msg(
        "drop meta\n\nPgitops-Approve: pg-meta/database/meta/drop\n",
        drop,
    );
    assert_eq!(
        action(&approved, "pg-meta/database/meta/drop")["approval"],
        "approved"
    );
    let recreate =
        plan_edit(|v| vars(v, "pg-meta")["pg_databases"][0]["state"] = "recreate".into());
    let act = action(&recreate, "pg-meta/database/meta/recreate");
    assert_eq!(
        (act["class"].as_str(), act["pigsty"].as_str()),
        (
            Some("destructive"),
            Some("./pgsql-db.yml -l pg-meta -e dbname=meta")
        )
    );
}

#[test]
fn hba_rule_change_reloads_every_member() {
    let p = plan_edit(|v| vars(v, "pg-meta")["pg_hba_rules"][0]["auth"] = "ssl".into());
    assert_eq!(
        actions(&p),
        vec![a(
            "pg-meta/hba/reload",
            "reload",
            "new",
            "./pgsql.yml -l pg-meta -t pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload"
        )]
    );
    assert_eq!(
        p["clusters"][0]["changes"][0]["fields"],
        serde_json::json!(["pg_hba_rules"])
    );
}

#[test]
fn admin_ip_change_reaches_clusters_whose_hba_uses_admin() {
    let p = plan_edit(|v| {
        vars(v, "pg-test")["pg_hba_rules"]
            .as_sequence_mut()
            .unwrap()
            .push(yaml(
                "{ user: all, db: all, addr: admin, auth: pwd, title: 'from the admin node' }",
            ));
    });
    assert!(ids(&p).contains(&"pg-test/hba/reload".to_string()));
    // Now move the admin node: pg-test's HBA uses `admin`, pg-meta's does not.
    let repo = Repo::new();
    let mut v = base();
    vars(&mut v, "pg-test")["pg_hba_rules"]
        .as_sequence_mut()
        .unwrap()
        .push(yaml(
            "{ user: all, db: all, addr: admin, auth: pwd, title: 'admin' }",
        ));
    repo.commit_inventory(&to_yaml(&v), "base");
    v["all"]["vars"]["admin_ip"] = "127.0.10.11".into();
    repo.commit_inventory(&to_yaml(&v), "move admin");
    let p = pgitops(repo.path(), &["plan", "--output", "json"]).json();
    let ids = ids(&p);
    assert!(ids.contains(&"pg-test/hba/reload".to_string()), "{ids:?}");
    assert!(!ids.contains(&"pg-meta/hba/reload".to_string()), "{ids:?}");
    let hba = p["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pg-test" && c["module"] == "pgsql")
        .unwrap();
    assert_eq!(hba["changes"][0]["fields"], serde_json::json!(["admin_ip"]));
}

#[test]
fn infra_membership_refreshes_hba_of_every_cluster() {
    // the default rules admit the monitor from `infra` hosts
    let p = plan_edit(|v| hosts(v, "infra")["127.0.10.12"] = yaml("{ infra_seq: 2 }"));
    let ids = ids(&p);
    for id in [
        "infra/member/127.0.10.12/add",
        "pg-meta/hba/reload",
        "pg-test/hba/reload",
    ] {
        assert!(ids.contains(&id.to_string()), "{id} missing from {ids:?}");
    }
}

#[test]
fn pg_role_swap_switches_over_and_refreshes_hba_and_services() {
    let p = plan_edit(|v| {
        let h = hosts(v, "pg-test");
        h["127.0.10.11"]["pg_role"] = "replica".into();
        h["127.0.10.12"]["pg_role"] = "primary".into();
    });
    assert_eq!(
        actions(&p),
        vec![
            a("pg-test/primary/127.0.10.12/switchover", "restart", "new", ""),
            a("pg-test/hba/reload", "reload", "new", "./pgsql.yml -l '127.0.10.11,127.0.10.12,&pg-test' -t pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload"),
            a("pg-test/service/refresh", "reload", "new", "./pgsql.yml -l pg-test -t pg_service"),
        ]
    );
}

#[test]
fn pg_role_moved_to_a_new_member_is_manual() {
    let p = plan_edit(|v| {
        let h = hosts(v, "pg-test");
        h["127.0.10.11"]["pg_role"] = "replica".into();
        h["127.0.10.14"] = yaml("{ pg_seq: 4, pg_role: primary }");
    });
    let ids: Vec<String> = actions(&p).into_iter().map(|a| a.0).collect();
    assert!(
        ids.contains(&"pg-test/member/127.0.10.14/pg_role".to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"pg-test/member/127.0.10.14/add".to_string()),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|i| i.contains("switchover")), "{ids:?}");
}

#[test]
fn services_and_weights_refresh_services() {
    let p = plan_edit(|v| {
        vars(v, "pg-test")["pg_services"] =
            yaml("[ { name: standby, port: 5435, selector: '[]', dest: postgres } ]")
    });
    assert_eq!(
        actions(&p),
        vec![a(
            "pg-test/service/refresh",
            "reload",
            "new",
            "./pgsql.yml -l pg-test -t pg_service"
        )]
    );
    // HAProxy's own settings on a PGSQL cluster's hosts (NODE variables): the same action
    let p = plan_edit(|v| vars(v, "pg-test")["haproxy_client_timeout"] = "1h".into());
    assert_eq!(
        actions(&p),
        vec![a(
            "pg-test/service/refresh",
            "reload",
            "new",
            "./pgsql.yml -l pg-test -t pg_service"
        )]
    );
    let why = action(&p, "pg-test/service/refresh")["reason"].to_string();
    assert!(why.contains("haproxy_client_timeout"), "{why}");
    let p = plan_edit(|v| hosts(v, "pg-test")["127.0.10.12"]["pg_weight"] = 50.into());
    assert_eq!(
        actions(&p),
        vec![a(
            "pg-test/service/refresh",
            "reload",
            "new",
            "./pgsql.yml -l pg-test -t pg_service"
        )]
    );
}

#[test]
fn parameters_reload_or_restart() {
    let p = plan_edit(|v| {
        vars(v, "pg-test")["pg_parameters"]["log_min_duration_statement"] = 500.into()
    });
    assert_eq!(
        actions(&p),
        vec![a(
            "pg-test/parameters/apply",
            "reload",
            "new",
            "./pgsql.yml -l pg-test -t pg_param,pg_reload"
        )]
    );
    let p = plan_edit(|v| {
        hosts(v, "pg-test")["127.0.10.13"]["pg_parameters"] = yaml("{ shared_buffers: 256MB }")
    });
    let act = action(&p, "pg-test/parameters/apply");
    assert_eq!(act["class"], "restart");
    assert_eq!(
        act["hosts"],
        serde_json::json!(["127.0.10.13"]),
        "a host-level dict replaces the cluster one on that host only"
    );
    assert!(act["reason"].as_str().unwrap().contains("shared_buffers"));
}

#[test]
fn parameters_patroni_pins_are_manual() {
    // max_connections is on Patroni's postmaster command line: ALTER SYSTEM still writes it (as
    // Pigsty does), the action does not wait for a restart for it, and a manual action says
    // where it must change.
    let p = plan_edit(|v| {
        vars(v, "pg-test")["pg_parameters"]["max_connections"] = 300.into();
        vars(v, "pg-test")["pg_parameters"]["work_mem"] = "8MB".into();
    });
    assert_eq!(
        actions(&p),
        vec![
            a(
                "pg-test/parameters/apply",
                "reload",
                "new",
                "./pgsql.yml -l pg-test -t pg_param,pg_reload"
            ),
            a("pg-test/parameters/patroni-dcs", "manual", "new", ""),
        ]
    );
    let why = action(&p, "pg-test/parameters/patroni-dcs")["reason"].to_string();
    assert!(
        why.contains("max_connections") && why.contains("edit-config"),
        "{why}"
    );
    assert!(!why.contains("work_mem"), "{why}");
    // a restart-class parameter Patroni does not pin: restart class, through Patroni
    let p =
        plan_edit(|v| vars(v, "pg-test")["pg_parameters"]["max_files_per_process"] = 2000.into());
    let act = action(&p, "pg-test/parameters/apply");
    assert_eq!(act["class"], "restart");
    assert!(act["reason"].as_str().unwrap().contains("through Patroni"));
    assert!(!actions(&p).iter().any(|x| x.0.ends_with("patroni-dcs")));
}

#[test]
fn bootstrap_only_settings_are_manual() {
    let p = plan_edit(|v| {
        vars(v, "pg-test")["pg_conf"] = "olap.yml".into();
        vars(v, "pg-test")["pg_libs"] = "pg_stat_statements, auto_explain".into();
    });
    assert_eq!(
        actions(&p),
        vec![
            a("pg-test/var/pg_conf/manual", "manual", "new", ""),
            a("pg-test/var/pg_libs/manual", "manual", "new", "")
        ]
    );
}

#[test]
fn tagged_cluster_knobs() {
    let p = plan_edit(|v| {
        let m = vars(v, "pg-meta");
        m["pg_crontab"] = yaml("[ '00 01 * * * /pg/bin/pg-backup full' ]");
        m["pg_vip_enabled"] = true.into();
        m["pg_vip_address"] = "127.0.10.2/24".into();
        m["pg_extensions"] = yaml("[ pg_repack ]");
        m["pgbouncer_poolmode"] = "session".into();
    });
    assert_eq!(
        actions(&p),
        vec![
            // pgbouncer.ini re-rendered and reloaded (natively too)
            a(
                "pg-meta/pgbouncer/config",
                "reload",
                "new",
                "./pgsql.yml -l pg-meta -t pgbouncer_config,pgbouncer_reload"
            ),
            a(
                "pg-meta/config/pg_crontab/apply",
                "online",
                "new",
                "./pgsql.yml -l pg-meta -t pg_crontab"
            ),
            a(
                "pg-meta/config/pg_ext/apply",
                "online",
                "new",
                "./pgsql.yml -l pg-meta -t pg_ext"
            ),
            a(
                "pg-meta/config/pg_vip/apply",
                "online",
                "new",
                "./pgsql.yml -l pg-meta -t pg_vip"
            ),
        ]
    );
}

#[test]
fn redis_instances_and_settings() {
    let p = plan_edit(|v| {
        let inst = &mut hosts(v, "redis-ms")["127.0.10.10"]["redis_instances"];
        inst.as_mapping_mut()
            .unwrap()
            .remove(serde_yaml_ng::Value::from(6380));
        inst[6381] = yaml("{}");
    });
    assert_eq!(
        actions(&p),
        vec![
            a(
                "redis-ms/instance/127.0.10.10:6381/add",
                "online",
                "new",
                "./redis.yml -l 127.0.10.10 -e redis_port=6381"
            ),
            a(
                "redis-ms/instance/127.0.10.10:6380/remove",
                "destructive",
                "old",
                "./redis-rm.yml -l 127.0.10.10 -e redis_port=6380"
            ),
        ]
    );
    let p = plan_edit(|v| vars(v, "redis-ms")["redis_max_memory"] = "128MB".into());
    assert_eq!(
        actions(&p),
        vec![a(
            "redis-ms/config/redis_config/apply",
            "restart",
            "new",
            "./redis.yml -l redis-ms -t redis_config,redis_launch"
        )]
    );
    let p = plan_edit(|v| {
        vars(v, "redis-ms")["redis_sentinel_monitor"] =
            yaml("[ { name: redis-ms, host: 127.0.10.10, port: 6379, quorum: 1 } ]")
    });
    assert_eq!(
        actions(&p),
        vec![a(
            "redis-ms/config/redis-ha/apply",
            "online",
            "new",
            "./redis.yml -l redis-ms -t redis-ha"
        )]
    );
}

#[test]
fn etcd_members_added_and_removed() {
    let p = plan_edit(|v| hosts(v, "etcd")["127.0.10.13"] = yaml("{ etcd_seq: 4 }"));
    let got = actions(&p);
    assert!(
        got.contains(&a(
            "etcd/member/127.0.10.13/add",
            "online",
            "new",
            "./etcd.yml -l 127.0.10.13 -e etcd_init=existing"
        )),
        "{got:#?}"
    );
    assert!(
        got.contains(&a(
            "etcd/members/refresh",
            "restart",
            "new",
            "./etcd.yml -l 'etcd,!127.0.10.13' -t etcd_config,etcd_launch -f 1"
        )),
        "{got:#?}"
    );
    let p = plan_edit(|v| {
        hosts(v, "etcd")
            .as_mapping_mut()
            .unwrap()
            .remove("127.0.10.12");
    });
    assert!(actions(&p).contains(&a(
        "etcd/member/127.0.10.12/remove",
        "destructive",
        "old",
        "./etcd-rm.yml -l 127.0.10.12"
    )));
}

#[test]
fn patroni_follows_the_etcd_endpoints() {
    // Every PGSQL cluster's running members get Patroni's configuration re-rendered.
    let p = plan_edit(|v| hosts(v, "etcd")["127.0.10.13"] = yaml("{ etcd_seq: 4 }"));
    let got = actions(&p);
    for (c, limit) in [
        ("pg-meta", "127.0.10.10,&pg-meta"),
        ("pg-test", "127.0.10.11,127.0.10.12,127.0.10.13,&pg-test"),
    ] {
        let want = a(
            &format!("{c}/patroni/refresh"),
            "reload",
            "new",
            &format!("./pgsql.yml -l '{limit}' -t pg_conf,patroni_reload"),
        );
        assert!(got.contains(&want), "{got:#?}");
    }
    let act = action(&p, "pg-test/patroni/refresh");
    assert!(act["steps"][0]
        .as_str()
        .unwrap()
        .contains("127.0.10.10:2379,127.0.10.11:2379,127.0.10.12:2379,127.0.10.13:2379"));
    // an etcd change that leaves the endpoints alone (a member's own variable) refreshes nothing
    let p = plan_edit(|v| v["all"]["vars"]["node_timezone"] = "UTC".into());
    assert!(!actions(&p).iter().any(|x| x.0.ends_with("patroni/refresh")));
}

#[test]
fn minio_users_and_topology() {
    let p = plan_edit(|v| vars(v, "minio")["minio_buckets"] = yaml("[ { name: pgsql } ]"));
    assert_eq!(
        actions(&p),
        vec![a(
            "minio/config/minio_provision/apply",
            "online",
            "new",
            "./minio.yml -l minio -t minio_provision"
        )]
    );
    let p = plan_edit(|v| hosts(v, "minio")["127.0.10.11"] = yaml("{ minio_seq: 2 }"));
    assert_eq!(
        action(&p, "minio/member/127.0.10.11/create")["class"],
        "manual"
    );
}

#[test]
fn node_knobs_and_haproxy_services() {
    let p = plan_edit(|v| v["all"]["vars"]["node_timezone"] = "Asia/Shanghai".into());
    let got = actions(&p);
    assert!(
        got.contains(&a(
            "pg-test/config/node_timezone/apply",
            "online",
            "new",
            "./node.yml -l 127.0.10.11,127.0.10.12,127.0.10.13 -t node_timezone"
        )),
        "{got:#?}"
    );
    let p = plan_edit(|v| {
        vars(v, "pg-meta")["haproxy_services"] =
            yaml("[ { name: minio, port: 9002, servers: [] } ]")
    });
    assert_eq!(
        actions(&p),
        vec![a(
            "pg-meta/config/haproxy_config/apply",
            "reload",
            "new",
            "./node.yml -l 127.0.10.10 -t haproxy_config,haproxy_reload"
        )]
    );
}

#[test]
fn default_roles_changed() {
    let p = plan_edit(|v| {
        vars(v, "pg-test")["pg_default_roles"] =
            yaml("[ { name: dbrole_readonly, login: false } ]");
        vars(v, "pg-test")["pg_default_privileges"] =
            yaml("[ GRANT SELECT ON TABLES TO dbrole_readonly ]");
    });
    let rows = actions(&p);
    assert_eq!(
        rows[0],
        a("pg-test/default-roles/converge", "online", "new", "")
    );
    // pg_default_roles feeds useropts.txt (pool settings of the default roles)
    assert_eq!(rows[1], a("pg-test/pgbouncer/reload", "reload", "new", ""));
    // pg_default_privileges only feeds databases created or changed later (as in Pigsty)
    assert_eq!(rows[2].0, "pg-test/var/pg_default_privileges/manual");
    assert_eq!(rows.len(), 3, "{rows:?}");
}

#[test]
fn database_moves_and_closes_are_classed_for_what_they_cost() {
    let p = plan_edit(|v| {
        let db = &mut vars(v, "pg-meta")["pg_databases"][0];
        db["tablespace"] = "fast".into();
        db["allowconn"] = false.into();
    });
    let a = action(&p, "pg-meta/database/meta/update");
    assert_eq!(a["class"], "destructive", "moving a database is not online");
    let why = a["reason"].as_str().unwrap();
    assert!(
        why.contains("SET TABLESPACE copies every file under an exclusive lock")
            && why.contains("Pigsty never moves"),
        "{why}"
    );
    assert!(why.contains("allowconn: false"), "{why}");
    let p = plan_edit(|v| vars(v, "pg-meta")["pg_databases"][0]["allowconn"] = false.into());
    let a = action(&p, "pg-meta/database/meta/update");
    assert_eq!(a["class"], "online");
    assert!(a["reason"]
        .as_str()
        .unwrap()
        .contains("refuses new connections"));
}
