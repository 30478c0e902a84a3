//! `pgitops serve` with `[repository] verify = "ssh"` on a real node: signed pushes apply; a
//! push whose range holds an unsigned commit applies nothing, and the note and the forge
//! statuses name the commit and why; a force-push that replaces it with a signed commit applies.
//! With `unverified = "stop"` the service applies up to the last verified commit and no further.

use crate::serve_policy::{forge, wait_for};
use crate::support::fleet::{has_role, push, Fleet};
use crate::support::service::Service;
use crate::support::signing::{allowed_signers, commit, reset_hard, Sign, SshKey};
use crate::support::to_yaml;

#[test]
fn an_unsigned_commit_holds_the_push_until_a_signed_force_push() {
    let f = Fleet::new(&["127.0.75.31"]);
    let alice = SshKey::new("alice@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let allowed = allowed_signers(keys.path(), &[&alice]);
    let (port, seen) = forge();
    let reporter = format!("[[reporter]]\nkind = \"github\"\nurl = \"http://127.0.0.1:{port}\"\nrepo = \"dba/inv\"\ntoken_env = \"PGITOPS_T_GH\"\n");
    let svc = Service::start_repository(
        &f,
        &format!("verify = \"ssh\"\nallowed_signers = {allowed:?}\n"),
        &reporter,
        &[("PGITOPS_T_GH", "not-a-real-token")],
    );
    let mut v = f.inventory();
    let save = |v: &serde_yaml_ng::Value, message: &str, sign: Sign| {
        f.repo.write("pigsty.yml", &to_yaml(v));
        commit(f.repo.path(), message, sign)
    };

    // signed: applied
    let base = save(&v, "base", Sign::Ssh(&alice));
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");
    push(
        &mut v,
        "pg_users",
        "{ name: signed_user, password: 'Signed.Pass' }",
    );
    let c1 = save(&v, "add signed_user", Sign::Ssh(&alice));
    svc.push(&f);
    assert_eq!(svc.final_note(&c1)["status"], "success");
    assert!(has_role(f.primary(), "signed_user"));

    // signed, unsigned, signed in one push: nothing of it is applied
    let mut ids = Vec::new();
    for (name, sign) in [
        ("u_a", Sign::Ssh(&alice)),
        ("u_b", Sign::No),
        ("u_c", Sign::Ssh(&alice)),
    ] {
        push(
            &mut v,
            "pg_users",
            &format!("{{ name: {name}, password: 'P.{name}' }}"),
        );
        ids.push(save(&v, &format!("add {name}"), sign));
    }
    let (unsigned, head) = (ids[1].clone(), ids[2].clone());
    svc.push(&f);
    let note = svc.final_note(&head);
    assert_eq!(note["status"], "unverified", "{note:#}");
    let held = &note["runs"].as_array().unwrap().last().unwrap()["unverified"][0];
    let why = format!("commit {} is not verified: unsigned", &unsigned[..12]);
    assert_eq!(
        (&held["commit"], &held["reason"], &held["message"]),
        (
            &unsigned.as_str().into(),
            &"unsigned".into(),
            &why.as_str().into()
        ),
        "{note:#}"
    );
    for name in ["u_a", "u_b", "u_c"] {
        assert!(!has_role(f.primary(), name), "{name} was applied");
    }
    for id in &ids[..2] {
        let n = svc.note(id).unwrap_or_default();
        assert_ne!(n["status"], "superseded", "{id}: {n:#}");
    }
    let failed = |context: &str, text: &str| {
        seen.lock().unwrap().iter().any(|(p, b)| {
            p.ends_with(&head)
                && b["context"] == context
                && b["state"] == "failure"
                && b["description"].as_str().unwrap_or("").contains(text)
        })
    };
    wait_for("the failure statuses naming the unsigned commit", || {
        failed("pgitops", &format!("unverified: {why}"))
            && failed("pgitops/pg-t", &format!("not applied: {why}"))
    });
    let out = svc.status();
    assert_eq!(out.code, 0, "{}", out.stderr);

    // the branch force-pushed with the commits signed: applied
    reset_hard(f.repo.path(), &c1);
    let mut w = f.inventory();
    push(
        &mut w,
        "pg_users",
        "{ name: signed_user, password: 'Signed.Pass' }",
    );
    let mut last = String::new();
    for name in ["u_a", "u_b", "u_c"] {
        push(
            &mut w,
            "pg_users",
            &format!("{{ name: {name}, password: 'P.{name}' }}"),
        );
        last = save(&w, &format!("add {name}, signed"), Sign::Ssh(&alice));
    }
    svc.push(&f);
    assert_eq!(svc.final_note(&last)["status"], "success");
    for name in ["u_a", "u_b", "u_c"] {
        assert!(has_role(f.primary(), name), "{name} was not applied");
    }
}

#[test]
fn with_stop_the_service_applies_up_to_the_last_verified_commit() {
    let f = Fleet::new(&["127.0.75.32"]);
    let alice = SshKey::new("alice@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let allowed = allowed_signers(keys.path(), &[&alice]);
    let svc = Service::start_repository(
        &f,
        &format!("verify = \"ssh\"\nallowed_signers = {allowed:?}\nunverified = \"stop\"\n"),
        "",
        &[],
    );
    let mut v = f.inventory();
    let save = |v: &serde_yaml_ng::Value, message: &str, sign: Sign| {
        f.repo.write("pigsty.yml", &to_yaml(v));
        commit(f.repo.path(), message, sign)
    };
    let base = save(&v, "base", Sign::Ssh(&alice));
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");

    let mut ids = Vec::new();
    for (name, sign) in [
        ("s_a", Sign::Ssh(&alice)),
        ("s_b", Sign::No),
        ("s_c", Sign::Ssh(&alice)),
    ] {
        push(
            &mut v,
            "pg_users",
            &format!("{{ name: {name}, password: 'P.{name}' }}"),
        );
        ids.push(save(&v, &format!("add {name}"), sign));
    }
    svc.push(&f);
    let note = svc.final_note(&ids[2]);
    assert_eq!(note["status"], "unverified", "{note:#}");
    let held = &note["runs"].as_array().unwrap().last().unwrap()["unverified"][0];
    assert_eq!(
        (&held["commit"], &held["stopped_at"]),
        (&ids[1].as_str().into(), &ids[0].as_str().into()),
        "{note:#}"
    );
    // the last verified commit was applied and noted as such
    assert!(has_role(f.primary(), "s_a"));
    assert!(!has_role(f.primary(), "s_b") && !has_role(f.primary(), "s_c"));
    let applied = svc.final_note(&ids[0]);
    assert_eq!(applied["status"], "success", "{applied:#}");
    let out = svc.status();
    assert!(
        out.stdout.contains(&format!("{:<13}", &ids[0][..12])),
        "pg-t is at the stop: {}",
        out.stdout
    );

    // a signed commit on top does not get past the unsigned one
    push(&mut v, "pg_users", "{ name: s_d, password: 'P.s_d' }");
    let d = save(&v, "add s_d", Sign::Ssh(&alice));
    svc.push(&f);
    assert_eq!(svc.final_note(&d)["status"], "unverified");
    assert!(!has_role(f.primary(), "s_d"));
}
