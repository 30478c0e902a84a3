//! The service under stress: SIGTERM in the middle of an apply, a force-pushed branch, and a
//! remote that disappears for a while.

use std::time::{Duration, Instant};

use crate::support::fleet::{push, Fleet};
use crate::support::service::Service;

fn note_status(svc: &Service, commit: &str) -> Option<serde_json::Value> {
    let repo = git2::Repository::open(svc.state.path().join("mirror.git")).ok()?;
    let note = repo
        .find_note(
            Some("refs/notes/pgitops"),
            git2::Oid::from_str(commit).ok()?,
        )
        .ok()?;
    serde_json::from_str(note.message().ok()?).ok()
}

#[test]
fn sigterm_during_an_apply_finishes_running_steps_and_records_partial_results() {
    let f = Fleet::new(&["127.0.47.11"]);
    let mut v = f.inventory();
    let mut svc = Service::applied(&f, &v);
    for i in 0..80 {
        push(
            &mut v,
            "pg_users",
            &format!("{{ name: many_{i}, password: 'Many.{i}' }}"),
        );
    }
    let many = f.commit(&v, "many users");
    svc.push(&f);
    // as soon as the apply has created its first users, ask the service to stop
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.primary().sql(
        "postgres",
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'many_%'",
    ) == "0"
    {
        assert!(Instant::now() < deadline, "the apply did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGTERM) };
    let status = svc.child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the first SIGTERM drains and exits 0"
    );
    let doc = note_status(&svc, &many).unwrap();
    let actions: Vec<serde_json::Value> = doc["runs"][0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["actions"].as_array().unwrap().clone())
        .collect();
    let applied = actions.iter().filter(|a| a["status"] == "applied").count();
    let skipped = actions.iter().filter(|a| a["status"] == "skipped").count();
    assert!(
        applied > 0 && skipped > 0,
        "partial results recorded: {applied} applied, {skipped} skipped"
    );
    assert_eq!(
        doc["status"], "held",
        "the commit is not done: the next start continues it"
    );
    let created: i64 = f
        .primary()
        .sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'many_%'",
        )
        .parse()
        .unwrap();
    assert_eq!(created as usize, applied - actions.iter().filter(|a| a["status"] == "applied" && !a["id"].as_str().unwrap().contains("many_")).count());
}

#[test]
fn a_force_push_still_diffs_trees_and_says_so() {
    let f = Fleet::new(&["127.0.48.11"]);
    let mut v = f.inventory();
    let svc = Service::applied(&f, &v);
    let base = git2::Repository::open(f.repo.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string();
    push(
        &mut v,
        "pg_users",
        "{ name: short_lived, password: 'Short.Lived' }",
    );
    let lost = f.commit(&v, "soon rewritten");
    svc.push(&f);
    assert_eq!(svc.final_note(&lost)["status"], "success");
    // rewrite history: reset to base and commit something else, then force-push
    let repo = git2::Repository::open(f.repo.path()).unwrap();
    let base_commit = repo
        .find_commit(git2::Oid::from_str(&base).unwrap())
        .unwrap();
    repo.reset(base_commit.as_object(), git2::ResetType::Hard, None)
        .unwrap();
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: rewritten, password: 'Re.Written' }",
    );
    let new = f.commit(&v, "rewritten history");
    svc.push(&f);
    let note = svc.final_note(&new);
    assert_eq!(note["status"], "success", "{note:#}");
    assert!(
        note["remark"]
            .as_str()
            .unwrap_or("")
            .contains("not an ancestor"),
        "{note:#}"
    );
    f.primary()
        .login("rewritten", "Re.Written", "postgres")
        .expect("applied from the tree diff");
}

#[test]
fn an_unreachable_remote_keeps_the_service_up_and_it_recovers() {
    let f = Fleet::new(&["127.0.49.11"]);
    let v = f.inventory();
    let svc = Service::applied(&f, &v);
    let moved = svc.remote.path().with_extension("away");
    std::fs::rename(svc.remote.path(), &moved).unwrap();
    // SIGHUP triggers a fetch, which fails; the service stays up and counts it
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = svc.get("/metrics");
        if m.lines()
            .any(|l| l.starts_with("pgitops_fetch_errors_total") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no fetch error counted:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(svc.get("/healthz").contains("200 OK"));
    std::fs::rename(&moved, svc.remote.path()).unwrap();
    let mut v = v;
    crate::support::fleet::push(
        &mut v,
        "pg_users",
        "{ name: back_again, password: 'Back.Again' }",
    );
    let next = f.commit(&v, "after the outage");
    svc.push(&f);
    // SAFETY: as above.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGHUP) };
    assert_eq!(svc.final_note(&next)["status"], "success");
}
