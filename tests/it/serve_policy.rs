//! The service's policies on real nodes: forge statuses, revert, approval through `pgitops
//! approve` pushed to the remote, allow windows, and one broken cluster not blocking another.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::fleet::{has_role, push, Fleet};
use crate::support::service::{free_port, Service};
use crate::support::{pgitops, yaml};

/// `(path, json body)` of each status the forge stand-in received.
pub(crate) type Posts = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A forge stand-in on 127.0.0.1: records each POST, answers 201.
pub(crate) fn forge() -> (u16, Posts) {
    let port = free_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    while buf.len() < i + 4 + len {
                        let n = s.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[i + 4..].to_vec());
                }
            };
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            if let Ok(json) = serde_json::from_slice(&body) {
                log.lock().unwrap().push((path, json));
            }
            let _ = s.write_all(
                b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    (port, seen)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn statuses_revert_and_approval_through_the_remote() {
    let f = Fleet::new(&["127.0.44.11"]);
    let (port, seen) = forge();
    let reporter = format!("[[reporter]]\nkind = \"github\"\nurl = \"http://127.0.0.1:{port}\"\nrepo = \"dba/inv\"\ntoken_env = \"PGITOPS_T_GH\"\n");
    let svc = Service::start_with(&f, &reporter, &[("PGITOPS_T_GH", "not-a-real-token")]);
    let mut v = f.inventory();
    f.commit(&v, "base");
    push(
        &mut v,
        "pg_users",
        "{ name: reverted_user, password: 'Rev.Pass' }",
    );
    push(&mut v, "pg_databases", "{ name: doomed }");
    let add = f.commit(&v, "add reverted_user and doomed");
    svc.push(&f);
    assert_eq!(svc.final_note(&add)["status"], "success");
    wait_for("the success status", || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(p, b)| p.ends_with(&add) && b["state"] == "success" && b["context"] == "pgitops")
    });
    let statuses = seen.lock().unwrap().clone();
    assert!(statuses.iter().any(|(p, b)| p == &format!("/repos/dba/inv/statuses/{add}") && b["state"] == "pending"), "{statuses:#?}");
    assert!(
        statuses
            .iter()
            .any(|(_, b)| b["context"] == "pgitops/pg-t" && b["state"] == "success"),
        "{statuses:#?}"
    );

    // git revert of the commit that added the user: the user is gone (the database stays: it
    // was not dropped, only left the YAML)
    let repo = git2::Repository::open(f.repo.path()).unwrap();
    let commit = repo
        .find_commit(git2::Oid::from_str(&add).unwrap())
        .unwrap();
    repo.revert(&commit, None).unwrap();
    let revert = f.repo.commit("Revert");
    svc.push(&f);
    assert_eq!(svc.final_note(&revert)["status"], "success");
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'reverted_user'"
        ),
        "0"
    );

    // a drop waits for approval; `pgitops approve` pushes the approval; the service applies it
    push(&mut v, "pg_users", "{ name: keep_me }");
    let vars = &mut v["all"]["children"]["pg-t"]["vars"];
    vars["pg_databases"] = yaml("[ { name: doomed, state: absent } ]");
    let drop = f.commit(&v, "drop doomed");
    svc.push(&f);
    assert_eq!(svc.final_note(&drop)["status"], "held");
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'doomed'"
        ),
        "1"
    );
    repo.remote("origin", svc.remote.path().to_str().unwrap())
        .unwrap();
    let run = pgitops(
        f.repo.path(),
        &["approve", &drop, "pg-t/database/doomed/drop"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    wait_for("the approved drop", || {
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'doomed'",
        ) == "0"
    });
}

#[test]
fn destructive_actions_wait_for_their_window() {
    let f = Fleet::new(&["127.0.45.11"]);
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: scratch }");
    let create = f.commit(&v, "scratch");
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    // a window that opened a minute ago and lasts ten minutes, or one that opens in two hours
    let now = chrono::Utc::now();
    let window = |start: chrono::DateTime<chrono::Utc>| {
        format!("[schedule]\ntimezone = \"UTC\"\n[[schedule.window]]\nclass = \"destructive\"\nstart = \"0 {} {} * * *\"\nminutes = 10\n", start.format("%M"), start.format("%H"))
    };
    let closed = Service::start_with(&f, &window(now + chrono::Duration::hours(2)), &[]);
    closed.push(&f);
    assert_eq!(closed.final_note(&create)["status"], "success");
    let drop = f.commit(
        &v,
        "drop scratch\n\nPgitops-Approve: pg-t/database/scratch/drop\n",
    );
    closed.push(&f);
    let note = closed.final_note(&drop);
    assert_eq!(note["status"], "held", "{note:#}");
    assert!(note.to_string().contains("awaiting-window"), "{note:#}");
    let mirror = closed.state.path().join("mirror.git");
    let status = pgitops(
        &mirror,
        &[
            "--state-dir",
            closed.state.path().to_str().unwrap(),
            "status",
        ],
    );
    assert!(
        status
            .stdout
            .contains("awaiting its window: pg-t/database/scratch/drop"),
        "{}{}",
        status.stdout,
        status.stderr
    );
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'scratch'"
        ),
        "1"
    );
    drop_service(closed);
    let open = Service::start_with(&f, &window(now - chrono::Duration::minutes(1)), &[]);
    open.push(&f);
    assert_eq!(open.final_note(&drop)["status"], "success");
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'scratch'"
        ),
        "0"
    );
}

fn drop_service(s: Service) {
    drop(s);
}

#[test]
fn a_stopped_node_does_not_block_another_cluster_and_converges_when_back() {
    let f = Fleet::independent(&["127.0.46.11", "127.0.46.12"]);
    let mut v = f.inventory();
    // two one-node clusters: pg-t on .11, pg-u on .12
    let hosts = v["all"]["children"]["pg-t"]["hosts"]
        .as_mapping_mut()
        .unwrap();
    let second = hosts.remove("127.0.46.12").unwrap();
    let mut pg_u = v["all"]["children"]["pg-t"].clone();
    pg_u["hosts"] =
        serde_yaml_ng::Value::Mapping([("127.0.46.12".into(), second)].into_iter().collect());
    pg_u["hosts"]["127.0.46.12"]["pg_seq"] = 1.into();
    pg_u["hosts"]["127.0.46.12"]["pg_role"] = "primary".into();
    pg_u["vars"]["pg_cluster"] = "pg-u".into();
    v["all"]["children"]["pg-u"] = pg_u;
    let base = f.commit(&v, "two clusters");
    let svc = Service::start(&f);
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");
    f.nodes.stop("127.0.46.11");
    for c in ["pg-t", "pg-u"] {
        let users = v["all"]["children"][c]["vars"]["pg_users"]
            .as_sequence_mut()
            .unwrap();
        users.push(yaml("{ name: everywhere, password: 'Every.Where' }"));
    }
    let change = f.commit(&v, "a user in both clusters");
    svc.push(&f);
    let note = svc.final_note(&change);
    assert_eq!(note["status"], "failure", "{note:#}");
    assert!(
        has_role(f.nodes.node("127.0.46.12"), "everywhere"),
        "pg-u applied"
    );
    f.nodes.restart("127.0.46.11");
    wait_for("pg-t to converge after its node is back", || {
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'everywhere'",
        ) == "1"
    });
}
