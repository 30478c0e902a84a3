//! `pgitops drift` on real nodes (sshd + PostgreSQL per loopback address, 127.0.76.x): after
//! an apply nothing drifts; changes made by hand (a role's connection limit and password, a
//! line added to one member's pg_hba.conf and to its pgbouncer database.txt, an `ALTER
//! SYSTEM`) are each reported with the field, the password only as "differs"; `apply --resync`
//! heals them and drift exits 0 again. The service's check on `[schedule] drift`:
//! `pgitops_drift_objects` and the `drift:` line of `pgitops status` follow a hand-made
//! change, which it never heals; with `drift_status` its verdict is a forge status on the
//! applied commit, once per change.

use crate::serve_policy::forge;
use crate::support::fleet::{ok, push, Fleet};
use crate::support::service::Service;
use crate::support::{pgitops, Run};

const APP_PW: &str = "App.Drift.Secret1";
const HAND_PW: &str = "Hand.Made.Secret2";

/// The items of the JSON report (one cluster), after checking the exit code.
fn items(run: &Run, code: i32) -> Vec<serde_json::Value> {
    assert_eq!(
        run.code, code,
        "drift exit code:\n{}\n{}",
        run.stdout, run.stderr
    );
    let doc = run.json();
    assert_eq!(doc["clusters"].as_array().unwrap().len(), 1, "{doc:#}");
    doc["clusters"][0]["items"].as_array().unwrap().clone()
}

fn find<'a>(
    items: &'a [serde_json::Value],
    object: &str,
    field: &str,
) -> Option<&'a serde_json::Value> {
    items
        .iter()
        .find(|i| i["object"] == object && i["field"] == field)
}

#[test]
fn hand_made_changes_are_reported_field_by_field_and_a_resync_heals_them() {
    let f = Fleet::new(&["127.0.76.11", "127.0.76.12"]);
    let mut v = f.inventory();
    let app =
        format!("{{ name: app, password: '{APP_PW}', connlimit: 5, pgbouncer: true, roles: [ dbrole_readonly ] }}");
    push(&mut v, "pg_users", &app);
    push(
        &mut v,
        "pg_databases",
        "{ name: shop, owner: app, schemas: [ sales ] }",
    );
    v["all"]["children"]["pg-t"]["vars"]["pg_parameters"] =
        crate::support::yaml("{ work_mem: 64MB }");
    let applied = f.commit(&v, "app, shop and work_mem");
    ok(&f.apply(&[]));

    let clean = f.verb("drift", &["--output", "json", "--exit-code"]);
    assert_eq!(
        items(&clean, 0),
        Vec::<serde_json::Value>::new(),
        "no drift right after the apply"
    );
    assert_eq!(clean.json()["clusters"][0]["commit"], applied.as_str());
    let other = f.verb("drift", &["--cluster", "pg-none", "--exit-code"]);
    assert_eq!(other.code, 0, "{}{}", other.stdout, other.stderr);
    assert_eq!(other.stdout, "pg-none: never applied, nothing to compare\n");

    // By hand, behind pgitops' back.
    let p = f.primary();
    p.sql("postgres", "ALTER ROLE app CONNECTION LIMIT 7");
    p.sql("postgres", &format!("ALTER ROLE app PASSWORD '{HAND_PW}'"));
    p.sql("postgres", "ALTER SYSTEM SET work_mem = '1GB'");
    p.sql("postgres", "SELECT pg_reload_conf()");
    let replica = f.nodes.node("127.0.76.12");
    let extra = "host all all 0.0.0.0/0 trust";
    let hba = std::fs::read_to_string(replica.hba_file()).unwrap();
    std::fs::write(replica.hba_file(), format!("{hba}{extra}\n")).unwrap();
    replica.sql("postgres", "SELECT pg_reload_conf()");
    let pooled = "extra = host=127.0.0.1 dbname=postgres";
    let db_txt = replica.pgbouncer_dir().join("database.txt");
    let text = std::fs::read_to_string(&db_txt).unwrap();
    std::fs::write(&db_txt, format!("{text}{pooled}\n")).unwrap();

    let run = f.verb("drift", &["--output", "json", "--exit-code"]);
    let got = items(&run, 1);
    let connlimit = find(&got, "user app", "connlimit").expect("connlimit drift");
    assert_eq!(
        (connlimit["expected"].as_str(), connlimit["live"].as_str()),
        (Some("5"), Some("7"))
    );
    let pw = find(&got, "user app", "password").expect("password drift");
    assert_eq!(pw["redacted"], true);
    assert!(pw["expected"].is_null() && pw["live"].is_null(), "{pw}");
    let line = find(&got, "hba", "line").expect("hba drift");
    assert_eq!(
        (line["host"].as_str(), line["live"].as_str()),
        (Some("127.0.76.12"), Some(extra))
    );
    assert!(line["expected"].is_null());
    let wm = find(&got, "parameter work_mem", "value").expect("work_mem drift");
    assert_eq!(
        (
            wm["host"].as_str(),
            wm["expected"].as_str(),
            wm["live"].as_str()
        ),
        (Some("127.0.76.11"), Some("64MB"), Some("1GB"))
    );
    let pgb = find(&got, "pgbouncer database.txt", "line").expect("database.txt drift");
    assert_eq!(
        (pgb["host"].as_str(), pgb["live"].as_str()),
        (Some("127.0.76.12"), Some(pooled))
    );
    // pgbouncer's userlist no longer holds the role's verifier, on both members: redacted.
    let lists: Vec<_> = got
        .iter()
        .filter(|i| i["object"] == "pgbouncer userlist.txt")
        .collect();
    assert_eq!(lists.len(), 2, "{got:#?}");
    assert!(lists
        .iter()
        .all(|i| i["redacted"] == true && i["live"].is_null()));
    assert_eq!(got.len(), 7, "nothing else drifted: {got:#?}");
    let text = f.verb("drift", &[]);
    assert_eq!(text.code, 0, "without --exit-code drift is not a failure");
    assert!(
        text.stdout.contains("user app: password differs"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("hba on 127.0.76.12: + {extra}")),
        "{}",
        text.stdout
    );
    for out in [&run.stdout, &run.stderr, &text.stdout, &text.stderr] {
        for secret in [APP_PW, HAND_PW, "SCRAM-SHA-256$", "md5"] {
            assert!(
                !out.contains(secret),
                "a secret ({secret}) in the output:\n{out}"
            );
        }
    }

    ok(&f.apply(&["--resync"]));
    let healed = f.verb("drift", &["--output", "json", "--exit-code"]);
    assert_eq!(
        items(&healed, 0),
        Vec::<serde_json::Value>::new(),
        "resync healed everything"
    );
    p.login("app", APP_PW, "postgres")
        .expect("the declared password is back");

    // A cluster of HEAD that was never applied is said so; pg-t is still held against the
    // commit it was applied at, not against HEAD.
    v["all"]["children"]["pg-new"] = crate::support::yaml(
        "{ hosts: { 127.0.76.99: { pg_seq: 1, pg_role: primary } }, vars: { pg_cluster: pg-new } }",
    );
    f.commit(&v, "pg-new, not applied");
    let run = f.verb("drift", &["--output", "json", "--exit-code"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let doc = run.json();
    let clusters = doc["clusters"].as_array().unwrap();
    let new = clusters
        .iter()
        .find(|c| c["cluster"] == "pg-new")
        .expect("pg-new listed");
    assert_eq!(new["never_applied"], true, "{doc:#}");
    let pgt = clusters.iter().find(|c| c["cluster"] == "pg-t").unwrap();
    assert_eq!(pgt["commit"], applied.as_str());
}

/// Waits up to 15 s until `/metrics` has `line`; panics with the last text.
fn metric(svc: &Service, line: &str) {
    let t0 = std::time::Instant::now();
    loop {
        let text = svc.get("/metrics");
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(t0.elapsed().as_secs() < 15, "no {line}:\n{text}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_service_checks_on_its_schedule_and_says_so_in_metrics_and_status() {
    let f = Fleet::new(&["127.0.76.21"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: app, password: 'App.Svc.Secret', connlimit: 5 }",
    );
    let base = f.commit(&v, "app");
    let (port, seen) = forge();
    let cfg = format!("[[reporter]]\nkind = \"github\"\nurl = \"http://127.0.0.1:{port}\"\nrepo = \"dba/inv\"\ntoken_env = \"PGITOPS_T_GH\"\n[schedule]\ndrift = \"* * * * * *\"\ndrift_status = true\n");
    let svc = Service::start_with(&f, &cfg, &[("PGITOPS_T_GH", "not-a-real-token")]);
    // The verdict goes to the applied commit, once per change.
    let verdict = |state: &str, description: &str| {
        let t0 = std::time::Instant::now();
        loop {
            let posts = seen.lock().unwrap().clone();
            let found = posts.iter().any(|(p, b)| {
                p.ends_with(&base)
                    && b["context"] == "pgitops/drift/pg-t"
                    && b["state"] == state
                    && b["description"] == description
            });
            if found {
                return posts;
            }
            assert!(
                t0.elapsed().as_secs() < 15,
                "no {state} drift status {description:?}: {posts:#?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");
    metric(&svc, "pgitops_drift_objects{cluster=\"pg-t\"} 0");
    verdict("success", "no drift");

    f.primary()
        .sql("postgres", "ALTER ROLE app CONNECTION LIMIT 9");
    metric(&svc, "pgitops_drift_objects{cluster=\"pg-t\"} 1");
    let posts = verdict("failure", "1 object drifted: user app connlimit");
    let drift_posts = posts
        .iter()
        .filter(|(_, b)| b["context"] == "pgitops/drift/pg-t");
    assert_eq!(
        drift_posts.count(),
        2,
        "one status per change, not per tick: {posts:#?}"
    );
    let text = svc.status().stdout;
    let line = format!(
        "    drift: 1 object drifted: user app connlimit (against {})",
        &base[..12]
    );
    assert!(text.contains(&line), "{text}");
    let mirror = svc.state.path().join("mirror.git");
    let state = svc.state.path().to_str().unwrap();
    let json = pgitops(
        &mirror,
        &["--state-dir", state, "status", "--output", "json"],
    )
    .json();
    let d = &json[0]["drift"];
    assert_eq!(
        (d["objects"].as_u64(), d["commit"].as_str()),
        (Some(1), Some(base.as_str())),
        "{json:#}"
    );
    // It reports; it never heals.
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app'"
        ),
        "9"
    );
}
