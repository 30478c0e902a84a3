//! `pgitops serve` as a long-lived controller, each test against ONE running service: an action
//! held by its window runs when the window opens, an approval given while the service runs is
//! picked up, SSH masters are opened once and kept across reconciles, and a node whose sshd
//! restarted (connections dropped) is reached again. No test makes a new commit, restarts the
//! service or forces a resync to get there.

use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};

use crate::support::fleet::{has_database, has_role, push, Fleet};
use crate::support::service::Service;
use crate::support::yaml;

/// The status of action `id` in the last run recorded in `note` ("" if absent).
fn action_status(note: &serde_json::Value, id: &str) -> String {
    let runs = note["runs"].as_array().cloned().unwrap_or_default();
    let last = runs.last().cloned().unwrap_or_default();
    let clusters = last["clusters"].as_array().cloned().unwrap_or_default();
    let found = clusters
        .iter()
        .flat_map(|c| c["actions"].as_array().cloned().unwrap_or_default())
        .find(|a| a["id"] == id);
    found
        .and_then(|a| a["status"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Whether `shared_buffers` waits for a restart on `node` (set by ALTER SYSTEM and reloaded).
fn shared_buffers_pending(node: &crate::support::nodes::Node) -> bool {
    let q = "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'";
    node.sql("postgres", q) == "t"
}

/// Sleeps until `t` (no-op if it has passed).
fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        std::thread::sleep(d);
    }
}

/// Allow windows for `destructive` and `restart` opening at `start` (UTC, to the second) for one
/// minute.
fn windows_at(start: DateTime<Utc>) -> String {
    let cron = format!(
        "{} {} {} * * *",
        start.second(),
        start.minute(),
        start.hour()
    );
    let mut toml = "[schedule]\ntimezone = \"UTC\"\n".to_string();
    for class in ["destructive", "restart"] {
        toml +=
            &format!("[[schedule.window]]\nclass = \"{class}\"\nstart = \"{cron}\"\nminutes = 1\n");
    }
    toml
}

#[test]
fn actions_held_by_a_window_run_when_it_opens_in_the_running_service() {
    const DROP: &str = "pg-t/database/doomed/drop";
    const PARAMS: &str = "pg-t/parameters/apply";
    let f = Fleet::new(&["127.0.61.11"]);
    let p = f.primary();
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: doomed }");
    // The window opens LEAD after the service starts: time for the base apply and the held one.
    const LEAD: i64 = 10;
    // Cron has whole seconds: the window opens at exactly `opens`.
    let opens = (Utc::now() + chrono::Duration::seconds(LEAD))
        .with_nanosecond(0)
        .expect("a whole second");
    let mut svc = Service::start_with(&f, &windows_at(opens), &[]);
    let base = f.commit(&v, "base with doomed");
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");
    assert!(has_database(p, "doomed"));

    // a drop (approved by its trailer) and a restart-only parameter: both wait for the window
    let vars = &mut v["all"]["children"]["pg-t"]["vars"];
    vars["pg_databases"][0]["state"] = "absent".into();
    vars["pg_parameters"] = yaml("{ shared_buffers: 32MB }");
    let drop = f.commit(
        &v,
        &format!("drop doomed, more shared_buffers\n\nPgitops-Approve: {DROP}\n"),
    );
    svc.push(&f);
    let note = svc.final_note(&drop);
    let held_at = Utc::now();
    eprintln!(
        "held {} ms before the window opens",
        (opens - held_at).num_milliseconds()
    );
    assert!(
        held_at < opens - chrono::Duration::seconds(1),
        "harness too slow: the held note came {}s after the window's start was set ({LEAD}s lead)",
        (held_at - (opens - chrono::Duration::seconds(LEAD))).num_seconds()
    );
    assert_eq!(note["status"], "held", "{note:#}");
    assert_eq!(action_status(&note, DROP), "awaiting-window", "{note:#}");
    assert_eq!(action_status(&note, PARAMS), "awaiting-window", "{note:#}");
    let status = svc.status();
    for id in [DROP, PARAMS] {
        assert!(
            status
                .stdout
                .contains(&format!("awaiting its window: {id}")),
            "{}{}",
            status.stdout,
            status.stderr
        );
    }

    // still held just before the window opens
    sleep_until(opens - chrono::Duration::milliseconds(700));
    assert!(has_database(p, "doomed"), "dropped before its window");
    assert!(
        !shared_buffers_pending(p),
        "restart class ran before its window"
    );
    assert_eq!(svc.note(&drop).unwrap()["status"], "held");

    // the window opens: the same service applies both, with no new commit, restart or resync
    sleep_until(opens);
    let t = Instant::now();
    let note = svc.note_with_status(&drop, "success", Duration::from_secs(20));
    let took = t.elapsed();
    assert_eq!(action_status(&note, DROP), "applied", "{note:#}");
    assert_eq!(action_status(&note, PARAMS), "applied", "{note:#}");
    assert!(
        !has_database(p, "doomed"),
        "the note says applied: {note:#}"
    );
    assert!(shared_buffers_pending(p), "shared_buffers set and reloaded");
    eprintln!("window opened → applied in {took:?}");
    assert_eq!(svc.remote_head(), drop, "no new commit");
    svc.assert_running();
}

#[test]
fn an_approval_given_while_the_service_runs_is_applied_without_a_new_commit() {
    const DROP: &str = "pg-t/database/doomed/drop";
    let f = Fleet::new(&["127.0.80.41"]);
    let p = f.primary();
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: doomed }");
    let mut svc = Service::applied(&f, &v);
    assert!(has_database(p, "doomed"));

    // no trailer: held for approval, the database stays
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    let drop = f.commit(&v, "drop doomed");
    svc.push(&f);
    let note = svc.final_note(&drop);
    assert_eq!(note["status"], "held", "{note:#}");
    assert_eq!(action_status(&note, DROP), "awaiting-approval", "{note:#}");
    assert!(has_database(p, "doomed"));

    // `pgitops approve` in a clone whose origin is the service's remote: the note is pushed
    let repo = git2::Repository::open(f.repo.path()).unwrap();
    repo.remote("origin", svc.remote.path().to_str().unwrap())
        .unwrap();
    let run = crate::support::pgitops(f.repo.path(), &["approve", &drop, DROP]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let t = Instant::now();
    let note = svc.note_with_status(&drop, "success", Duration::from_secs(20));
    eprintln!("approved → applied in {:?}", t.elapsed());
    assert_eq!(action_status(&note, DROP), "applied", "{note:#}");
    assert!(
        !has_database(p, "doomed"),
        "the note says applied: {note:#}"
    );
    assert_eq!(svc.remote_head(), drop, "no new commit");
    svc.assert_running();
}

#[test]
fn ssh_masters_are_opened_once_and_reused_across_reconciles() {
    let ips = ["127.0.63.11", "127.0.63.12", "127.0.63.13"];
    let f = Fleet::new(&ips);
    let mut v = f.inventory();
    let mut svc = Service::applied(&f, &v);
    let logins = || -> Vec<usize> { ips.iter().map(|ip| f.nodes.node(ip).ssh_logins()).collect() };
    let after_base = logins();
    for i in 0..10 {
        push(
            &mut v,
            "pg_users",
            &format!("{{ name: reuse_{i}, password: 'Reuse.{i}' }}"),
        );
        let c = f.commit(&v, &format!("reuse_{i}"));
        svc.push(&f);
        let note = svc.final_note(&c);
        assert_eq!(note["status"], "success", "{note:#}");
        assert!(has_role(f.primary(), &format!("reuse_{i}")));
    }
    svc.assert_running();
    let after_ten = logins();
    eprintln!("ssh connections accepted per host {ips:?}: after the base apply {after_base:?}, after ten more pushes {after_ten:?}");
    assert!(
        after_base.iter().all(|&n| n >= 1),
        "the base apply reached every host: {after_base:?}"
    );
    assert_eq!(
        after_ten,
        vec![1; ips.len()],
        "one SSH connection per host for the service's whole life \
         (hosts {ips:?}; after the base apply {after_base:?})"
    );
}

#[test]
fn a_node_whose_sshd_restarted_is_reached_again() {
    let ips = ["127.0.64.11", "127.0.64.12"];
    let f = Fleet::new(&ips);
    let p = f.primary();
    let mut v = f.inventory();
    let mut svc = Service::applied(&f, &v);
    push(&mut v, "pg_users", "{ name: before_restart }");
    let c = f.commit(&v, "before_restart");
    svc.push(&f);
    assert_eq!(svc.final_note(&c)["status"], "success");

    // the primary's sshd restarts and drops every connection (its masters break)
    let before = p.ssh_logins();
    f.nodes.restart_sshd(ips[0]);
    for name in ["after_restart", "after_restart_2"] {
        push(&mut v, "pg_users", &format!("{{ name: {name} }}"));
        let c = f.commit(&v, name);
        svc.push(&f);
        let note = svc.final_note(&c);
        assert_eq!(note["status"], "success", "{note:#}");
        assert!(has_role(p, name), "{name} on the primary: {note:#}");
    }
    eprintln!(
        "ssh connections accepted by {}: {before} before its sshd restart, {} after",
        ips[0],
        p.ssh_logins()
    );
    assert!(p.ssh_logins() > before, "a new connection was opened");
    svc.assert_running();
}
