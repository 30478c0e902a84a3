//! `pgitops apply --config` with `[repository] verify = "ssh"` on real nodes: a signed range
//! applies; an unsigned commit in a cluster's range applies nothing of it (another cluster with
//! a clean range still applies) and the note says which commit and why; history rewritten with
//! signed commits applies. With `unverified = "stop"`: a `Pgitops-Approve` trailer in an
//! unsigned commit approves nothing, the same trailer in a signed commit approves, and a
//! `pgitops approve` note counts only when signed by an allowed key (the plan says which did
//! not and why).

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use crate::support::fleet::{has_database, has_role, ok, push, Fleet};
use crate::support::signing::{allowed_signers, commit, reset_hard, Sign, SshKey};
use crate::support::{pgitops, to_yaml, yaml};

/// A service configuration whose `[repository]` asks for SSH signatures by `key`.
fn config(dir: &Path, key: &SshKey, unverified: &str) -> PathBuf {
    let allowed = allowed_signers(dir, &[key]);
    let path = dir.join("pgitops.toml");
    std::fs::write(
        &path,
        format!("[repository]\nremote = \"unused by plan and apply\"\nverify = \"ssh\"\nallowed_signers = {allowed:?}\nunverified = \"{unverified}\"\n"),
    )
    .unwrap();
    path
}

/// Writes the inventory and commits it with the real git, signed as `sign` says.
fn commit_v(f: &Fleet, v: &Value, message: &str, sign: Sign) -> String {
    f.repo.write("pigsty.yml", &to_yaml(v));
    commit(f.repo.path(), message, sign)
}

/// Two one-node clusters: `pg-t` on the first address, `pg-u` on the second.
fn two_clusters(f: &Fleet) -> Value {
    let mut v = f.inventory();
    let group = v["all"]["children"]["pg-t"].clone();
    let mut u = group.clone();
    u["vars"]["pg_cluster"] = "pg-u".into();
    u["hosts"] = yaml(&format!(
        "{{ {}: {{ pg_seq: 1, pg_role: primary }} }}",
        f.ips[1]
    ));
    v["all"]["children"]["pg-t"]["hosts"] = yaml(&format!(
        "{{ {}: {{ pg_seq: 1, pg_role: primary }} }}",
        f.ips[0]
    ));
    v["all"]["children"]["pg-u"] = u;
    v
}

fn add_user(v: &mut Value, name: &str) {
    for c in ["pg-t", "pg-u"] {
        v["all"]["children"][c]["vars"]["pg_users"]
            .as_sequence_mut()
            .unwrap()
            .push(yaml(&format!(
                "{{ name: {name}, password: 'Pass.{name}' }}"
            )));
    }
}

#[test]
fn an_unsigned_commit_blocks_its_clusters_range_and_a_signed_rewrite_applies() {
    let f = Fleet::independent(&["127.0.75.11", "127.0.75.12"]);
    let (t, u) = (f.nodes.node(&f.ips[0]), f.nodes.node(&f.ips[1]));
    let alice = SshKey::new("alice@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let cfg = config(keys.path(), &alice, "block");
    let cfg = cfg.to_str().unwrap();
    let mut v = two_clusters(&f);
    commit_v(&f, &v, "base", Sign::Ssh(&alice));
    ok(&f.apply(&["--config", cfg]));

    // a signed range applies
    add_user(&mut v, "alpha");
    let c1 = commit_v(&f, &v, "add alpha", Sign::Ssh(&alice));
    ok(&f.apply(&["--config", cfg]));
    assert!(has_role(t, "alpha") && has_role(u, "alpha"));

    // an unsigned commit applied to pg-t only, without verification: the clusters' ranges differ
    add_user(&mut v, "beta");
    let c2 = commit_v(&f, &v, "add beta, unsigned", Sign::No);
    ok(&f.apply(&["--cluster", "pg-t"]));
    assert!(has_role(t, "beta") && !has_role(u, "beta"));

    // with verification: pg-t's range (c3) is clean and applies; pg-u's (c2, c3) is blocked
    add_user(&mut v, "gamma");
    let c3 = commit_v(&f, &v, "add gamma", Sign::Ssh(&alice));
    let run = f.apply(&["--config", cfg]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let why = format!("commit {} is not verified: unsigned", &c2[..12]);
    assert!(run.stderr.contains(&why), "{}", run.stderr);
    assert!(has_role(t, "gamma"), "pg-t's clean range applied");
    assert!(
        !has_role(u, "beta") && !has_role(u, "gamma"),
        "nothing of pg-u's range"
    );
    let note = f.note(&c3);
    assert_eq!(note["status"], "unverified", "{note:#}");
    let last = note["runs"].as_array().unwrap().last().unwrap();
    let held = &last["unverified"][0];
    assert_eq!(
        (&held["commit"], &held["reason"], &held["clusters"]),
        (
            &c2.as_str().into(),
            &"unsigned".into(),
            &yaml("[pg-u]").into_json()
        ),
        "{note:#}"
    );
    assert_eq!(held["message"], why.as_str());
    let result = |name: &str| {
        last["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["result"].clone())
    };
    assert_eq!(result("pg-u"), Some("unverified".into()), "{note:#}");
    assert_eq!(result("pg-t"), Some("success".into()), "{note:#}");
    // `plan` with the configuration: no plan, only why (exit 2)
    let range = format!("{c1}..{c3}");
    let plan = pgitops(f.repo.path(), &["plan", &range, "--config", cfg]);
    assert_eq!(
        (plan.code, plan.stdout.as_str()),
        (2, ""),
        "{}",
        plan.stderr
    );
    assert!(
        plan.stderr.contains(&format!(
            "unverified: {why}; nothing of this range is planned"
        )),
        "{}",
        plan.stderr
    );
    // still blocked on the next apply: nothing changed; `status` says why each cluster stands
    assert_eq!(f.apply(&["--config", cfg]).code, 2);
    assert!(!has_role(u, "beta"));
    let status = pgitops(f.repo.path(), &["status", "--output", "json"]).json();
    let state = |name: &str| {
        let c = status
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster"] == name);
        c.map(|c| c["state"].clone())
    };
    assert_eq!(state("pg-u"), Some("unverified".into()), "{status:#}");
    assert_eq!(state("pg-t"), Some("in-sync".into()), "{status:#}");

    // the branch rewritten: c2 and c3 again, signed; pg-u applies both
    reset_hard(f.repo.path(), &c1);
    let mut w = v.clone();
    remove_user(&mut w, "gamma");
    commit_v(&f, &w, "add beta, signed", Sign::Ssh(&alice));
    let c3b = commit_v(&f, &v, "add gamma", Sign::Ssh(&alice));
    ok(&f.apply(&["--config", cfg]));
    assert!(has_role(u, "beta") && has_role(u, "gamma"));
    assert_eq!(f.note(&c3b)["status"], "success");
}

fn remove_user(v: &mut Value, name: &str) {
    for c in ["pg-t", "pg-u"] {
        v["all"]["children"][c]["vars"]["pg_users"]
            .as_sequence_mut()
            .unwrap()
            .retain(|u| u["name"] != name);
    }
}

trait IntoJson {
    fn into_json(self) -> serde_json::Value;
}

impl IntoJson for Value {
    fn into_json(self) -> serde_json::Value {
        serde_json::to_value(self).unwrap()
    }
}

#[test]
fn approvals_count_only_from_signed_commits_and_signed_notes() {
    let f = Fleet::independent(&["127.0.75.21"]);
    let alice = SshKey::new("alice@127.0.0.1");
    let mallory = SshKey::new("mallory@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let cfg = config(keys.path(), &alice, "stop");
    let cfg = cfg.to_str().unwrap();
    let drop_id = "pg-t/database/doomed/drop";
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: doomed }");
    push(&mut v, "pg_databases", "{ name: doomed2 }");
    commit_v(&f, &v, "base with doomed", Sign::Ssh(&alice));
    ok(&f.apply(&["--config", cfg]));
    assert!(has_database(f.primary(), "doomed"));

    // the drop, signed: held until approved
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][0]["state"] = "absent".into();
    let c1 = commit_v(&f, &v, "drop doomed", Sign::Ssh(&alice));
    ok(&f.apply(&["--config", cfg]));
    assert!(has_database(f.primary(), "doomed"));
    assert_eq!(f.note(&c1)["status"], "held");

    // the trailer in an unsigned commit (with another change): stop at c1, the drop stays held
    push(
        &mut v,
        "pg_users",
        "{ name: late_user, password: 'Late.Pass' }",
    );
    let message = format!("approve the drop\n\nPgitops-Approve: {drop_id}\n");
    let c2 = commit_v(&f, &v, &message, Sign::No);
    let run = f.apply(&["--config", cfg]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "unverified: commit {} is not verified: unsigned; planned up to {}",
            &c2[..12],
            &c1[..12]
        )),
        "{}",
        run.stderr
    );
    assert!(
        has_database(f.primary(), "doomed"),
        "an unsigned trailer approves nothing"
    );
    assert!(!has_role(f.primary(), "late_user"), "nothing past the stop");
    let note = f.note(&c2);
    assert_eq!(note["status"], "unverified", "{note:#}");
    let held = &note["runs"].as_array().unwrap().last().unwrap()["unverified"][0];
    assert_eq!(held["stopped_at"], c1.as_str(), "{note:#}");

    // the same commit signed: the trailer approves, the drop runs
    reset_hard(f.repo.path(), &c1);
    let c2b = commit_v(&f, &v, &message, Sign::Ssh(&alice));
    ok(&f.apply(&["--config", cfg]));
    assert!(
        !has_database(f.primary(), "doomed"),
        "a signed trailer approves"
    );
    assert!(has_role(f.primary(), "late_user"));
    assert_eq!(f.note(&c2b)["status"], "success");

    // `pgitops approve` notes: git does not sign notes; with verification on only an approval
    // signed by an allowed key counts (`--ssh-key`), and the plan says which did not and why
    let drop2 = "pg-t/database/doomed2/drop";
    v["all"]["children"]["pg-t"]["vars"]["pg_databases"][1]["state"] = "absent".into();
    let c3 = commit_v(&f, &v, "drop doomed2", Sign::Ssh(&alice));
    ok(&f.apply(&["--config", cfg]));
    assert_eq!(f.note(&c3)["status"], "held");
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--output", "json"];
        args.extend_from_slice(extra);
        let run = pgitops(f.repo.path(), &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()
    };
    let approval = |doc: &serde_json::Value| crate::support::action(doc, drop2)["approval"].clone();
    let approve = |extra: &[&str]| {
        let mut args = vec!["approve", c3.as_str(), drop2];
        args.extend_from_slice(extra);
        let run = pgitops(f.repo.path(), &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    let short = &c3[..12];
    assert!(approve(&[]).starts_with("approved: "));
    let doc = plan(&["--config", cfg]);
    assert_eq!(approval(&doc), "required", "{doc:#}");
    assert_eq!(
        doc["ignored_approvals"],
        serde_json::json!([format!("{drop2} on {short} (unsigned)")])
    );
    let text = pgitops(f.repo.path(), &["plan", "--config", cfg]);
    assert!(
        text.stderr.contains(&format!(
            "approval notes are not counted while commit verification is on unless an allowed key signed them: {drop2} on {short} (unsigned)"
        )),
        "{}",
        text.stderr
    );
    assert_eq!(
        approval(&plan(&[])),
        "approved",
        "counted without verification"
    );
    // an apply holds the drop and its note names the approval that did not count
    ok(&f.apply(&["--config", cfg]));
    assert!(has_database(f.primary(), "doomed2"));
    let note = f.note(&c3);
    let last = note["runs"].as_array().unwrap().last().unwrap();
    assert_eq!(
        last["ignored_approvals"],
        serde_json::json!([format!("{drop2} on {short} (unsigned)")]),
        "{note:#}"
    );
    let key = |k: &SshKey| k.private().to_str().unwrap().to_string();
    assert!(approve(&["--ssh-key", &key(&mallory)]).starts_with("approved (signed): "));
    let doc = plan(&["--config", cfg]);
    assert_eq!(approval(&doc), "required", "{doc:#}");
    assert_eq!(
        doc["ignored_approvals"],
        serde_json::json!([
            format!("{drop2} on {short} (unsigned)"),
            format!("{drop2} on {short} (unknown-key)")
        ])
    );
    assert!(approve(&["--ssh-key", &key(&alice)]).starts_with("approved (signed): "));
    let doc = plan(&["--config", cfg]);
    assert_eq!(approval(&doc), "approved", "{doc:#}");
    assert_eq!(doc["ignored_approvals"], serde_json::json!([]));
    ok(&f.apply(&["--config", cfg]));
    assert!(
        !has_database(f.primary(), "doomed2"),
        "the signed note approved"
    );
}
