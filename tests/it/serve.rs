//! `pgitops serve` as a real process: a bare remote on disk, pushes from a work repository, real
//! nodes. Asserts the users in the catalogs and the notes the service pushes to the remote.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::fleet::{push, Fleet};
use crate::support::service::Service;
use crate::support::to_yaml;

#[test]
fn pushed_commits_are_applied_and_noted_on_the_remote() {
    let f = Fleet::new(&["127.0.42.11", "127.0.42.12"]);
    let mut v = f.inventory();
    let svc = Service::applied(&f, &v);

    // a pushed commit adding a user: applied within the watch's reach, noted as success
    push(
        &mut v,
        "pg_users",
        "{ name: pushed_user, password: 'Pushed.Pass' }",
    );
    let add = f.commit(&v, "add pushed_user");
    let t = Instant::now();
    svc.push(&f);
    assert_eq!(svc.final_note(&add)["status"], "success");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "the file-system watch triggered the apply (poll is 60 s)"
    );
    f.primary()
        .login("pushed_user", "Pushed.Pass", "postgres")
        .expect("the pushed user exists");

    // broken YAML: refused whole with file:line, nothing applied; the next commit applies
    f.repo.write("pigsty.yml", &(to_yaml(&v) + "  broken: [\n"));
    let broken = f.repo.commit("broken");
    svc.push(&f);
    let note = svc.final_note(&broken);
    assert_eq!(note["status"], "invalid", "{note:#}");
    assert!(
        note["runs"][0]["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("pigsty.yml:"),
        "{note:#}"
    );
    push(
        &mut v,
        "pg_users",
        "{ name: after_fix, password: 'After.Fix' }",
    );
    let fixed = f.commit(&v, "fixed");
    svc.push(&f);
    assert_eq!(svc.final_note(&fixed)["status"], "success");
    f.primary()
        .login("after_fix", "After.Fix", "postgres")
        .expect("the fixed commit applied");

    // three commits pushed at once: one apply, two superseded notes
    let mut ids = Vec::new();
    for i in 0..3 {
        push(
            &mut v,
            "pg_users",
            &format!("{{ name: burst_{i}, password: 'Burst.{i}' }}"),
        );
        ids.push(f.commit(&v, &format!("burst {i}")));
    }
    svc.push(&f);
    assert_eq!(svc.final_note(&ids[2])["status"], "success");
    for id in &ids[..2] {
        let note = svc.final_note(id);
        assert_eq!(
            (note["status"].as_str(), note["superseded_by"].as_str()),
            (Some("superseded"), Some(ids[2].as_str())),
            "{note:#}"
        );
    }
    assert_eq!(
        f.primary().sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'burst%'"
        ),
        "3"
    );

    // health and metrics
    assert!(svc.get("/healthz").contains("200 OK"));
    let metrics = svc.get("/metrics");
    assert!(
        metrics.contains("pgitops_cluster_last_applied_timestamp_seconds{cluster=\"pg-t\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pgitops_merge_to_applied_seconds_count"),
        "{metrics}"
    );
}

#[test]
fn sigterm_stops_the_service_cleanly_and_a_second_instance_is_refused() {
    let f = Fleet::new(&["127.0.43.11"]);
    let v = f.inventory();
    let mut svc = Service::applied(&f, &v);
    // one active instance per state directory
    let cfg = svc.state.path().join("pgitops.toml");
    let second = Command::new(env!("CARGO_BIN_EXE_pgitops"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another pgitops already runs"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // SIGTERM: exit 0
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGTERM) };
    let status = svc.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Posts a push hook with signature header `sig`; returns the raw response.
fn post_hook(port: u16, sig: &str) -> String {
    use std::io::{Read, Write};
    let body = "{\"ref\":\"refs/heads/main\"}";
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "POST /hook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: {sig}\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_webhook_checks_its_signature() {
    use hmac::{KeyInit, Mac};
    let f = Fleet::new(&["127.0.80.21"]);
    let svc = Service::start_with(&f, "", &[]);
    assert!(
        post_hook(svc.port, "sha256=00").contains("404"),
        "no secret configured: the hook is off"
    );
    drop(svc);
    let svc = Service::start_with(
        &f,
        "hook_secret_env = \"PGITOPS_T_HOOK\"\n",
        &[("PGITOPS_T_HOOK", "hook-secret")],
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(b"{\"ref\":\"refs/heads/main\"}");
    let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert!(
        post_hook(svc.port, &good).contains("202 Accepted"),
        "a signed hook triggers a fetch"
    );
    assert!(
        post_hook(svc.port, "sha256=0123").contains("401"),
        "a bad signature is refused"
    );
}

#[test]
fn a_cluster_without_changes_does_not_keep_the_service_busy() {
    let f = Fleet::new(&["127.0.60.11"]);
    let mut v = f.inventory();
    // a MinIO cluster: not native, and untouched by the next commit
    v["all"]["children"]["minio"] = crate::support::yaml(
        "{ hosts: { 127.0.60.11: { minio_seq: 1 } }, vars: { minio_cluster: minio } }",
    );
    let svc = Service::applied(&f, &v);
    push(&mut v, "pg_users", "{ name: only_pg, password: 'Only.Pg' }");
    let c = f.commit(&v, "a pg-only change");
    svc.push(&f);
    assert_eq!(svc.final_note(&c)["status"], "success");
    // more triggers: nothing is behind, so no further run is recorded
    for _ in 0..3 {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(svc.child.id() as i32, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(300));
    }
    let note = svc.final_note(&c);
    assert_eq!(note["runs"].as_array().unwrap().len(), 1, "{note:#}");
    assert_eq!(note["status"], "success");
}
