//! Plans on pull requests, end to end: a real node, the real service, a bare remote whose pull
//! requests are GitHub-shaped `refs/pull/<n>/head` refs, and a stand-in GitHub (`pull_forge`)
//! that lists the open ones and keeps the comments and statuses pgitops posts.

use std::time::{Duration, Instant};

use crate::support::fleet::{has_database, has_role, push, Fleet};
use crate::support::patroni::wait_until;
use crate::support::pull_forge::{PullForge, TOKEN};
use crate::support::service::{push_refs, Service};
use crate::support::*;

/// Opens (or updates) pull request `n` on the forge with the work repository's HEAD, then
/// pushes it to the remote's `refs/pull/<n>/head` (whose change wakes the service, as the
/// forge's webhook would); returns the head. `forge` None: pushed only (a closed request).
fn push_pull(f: &Fleet, svc: &Service, forge: Option<&PullForge>, n: u64) -> String {
    let repo = git2::Repository::open(f.repo.path()).unwrap();
    let head = repo.head().unwrap().target().unwrap().to_string();
    if let Some(forge) = forge {
        forge.open(n, &head);
    }
    push_refs(
        f.repo.path(),
        svc.remote.path(),
        &[format!("+HEAD:refs/pull/{n}/head")],
    );
    head
}

/// Moves the work repository back to `commit` (a pull request branches from there).
fn reset(f: &Fleet, commit: &str) {
    let repo = git2::Repository::open(f.repo.path()).unwrap();
    let c = repo
        .find_object(git2::Oid::from_str(commit).unwrap(), None)
        .unwrap();
    repo.reset(&c, git2::ResetType::Hard, None).unwrap();
}

/// A node on `ip` with the base inventory applied by a service reporting to a stand-in GitHub:
/// the fleet, the forge, the inventory, the base commit and the service.
fn serving(ip: &str) -> (Fleet, PullForge, serde_yaml_ng::Value, String, Service) {
    let f = Fleet::new(&[ip]);
    let forge = PullForge::start();
    let v = f.inventory();
    let base = f.commit(&v, "base");
    let svc = Service::start_with(&f, &forge.config(), &[("PULL_FORGE_TOKEN", TOKEN)]);
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");
    (f, forge, v, base, svc)
}

/// Waits until pgitops' one comment on `n` contains `want`; returns it.
fn comment_with(forge: &PullForge, n: u64, want: &str) -> String {
    let mut last = vec![];
    wait_until(&format!("a comment on #{n} with {want:?}"), 30, || {
        last = forge.comments(n);
        last.last().is_some_and(|c| c.contains(want))
    });
    assert_eq!(last.len(), 1, "one comment per pull request: {last:#?}");
    last.pop().unwrap()
}

#[test]
fn a_pull_request_gets_one_comment_edited_per_head_with_held_drops_and_their_trailer() {
    let f = Fleet::new(&["127.0.78.11"]);
    let forge = PullForge::start();
    let mut v = f.inventory();
    push(&mut v, "pg_databases", "{ name: olddb }");
    let base = f.commit(&v, "base");
    let svc = Service::start_with(&f, &forge.config(), &[("PULL_FORGE_TOKEN", TOKEN)]);
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");
    assert!(has_database(f.primary(), "olddb"));

    // Opened: a user added.
    push(
        &mut v,
        "pg_users",
        "{ name: dbuser_pr, password: Pr.Secret.Pass, connlimit: 3 }",
    );
    f.commit(&v, "add dbuser_pr");
    let t0 = Instant::now();
    let head1 = push_pull(&f, &svc, Some(&forge), 1);
    let c1 = comment_with(&forge, 1, "pg-t/user/dbuser_pr/create");
    println!("push → comment: {} ms", t0.elapsed().as_millis());
    assert!(c1.contains("Pull request #1"), "{c1}");
    assert!(
        !c1.contains("Pr.Secret.Pass"),
        "the password never shows: {c1}"
    );
    wait_until("status on head 1", 10, || forge.status(&head1).is_some());
    assert_eq!(forge.status(&head1).unwrap().0, "success");

    // Updated: the database pgitops created is dropped: held, with its trailer.
    let dbs = v["all"]["children"]["pg-t"]["vars"]["pg_databases"]
        .as_sequence_mut()
        .unwrap();
    dbs[0] = yaml("{ name: olddb, state: absent }");
    f.commit(&v, "drop olddb");
    let head2 = push_pull(&f, &svc, Some(&forge), 1);
    let c2 = comment_with(&forge, 1, "Pgitops-Approve: pg-t/database/olddb/drop");
    assert!(c2.contains("1 destructive action(s) need approval"), "{c2}");
    wait_until("status on head 2", 10, || forge.status(&head2).is_some());
    let (state, description) = forge.status(&head2).unwrap();
    assert_eq!(state, "pending");
    assert!(
        description.contains("1 destructive action(s) need approval"),
        "{description}"
    );

    // Updated again: the trailer in a commit of the pull request approves the drop.
    f.repo.write("README", "approve\n");
    f.repo
        .commit("approve the drop\n\nPgitops-Approve: pg-t/database/olddb/drop\n");
    let head3 = push_pull(&f, &svc, Some(&forge), 1);
    let c3 = comment_with(&forge, 1, "— approved");
    assert!(!c3.contains("need approval"), "{c3}");
    wait_until("status on head 3", 10, || forge.status(&head3).is_some());
    assert_eq!(forge.status(&head3).unwrap().0, "success");
    assert_eq!(forge.count("POST", "/issues/1/comments"), 1, "created once");
    assert!(
        forge.count("PATCH", "/issues/comments/") >= 2,
        "edited per head"
    );

    // Planned, never applied: the branch did not move.
    assert!(!has_role(f.primary(), "dbuser_pr"));
    assert!(has_database(f.primary(), "olddb"));

    // Closed: a later push to its ref is not planned.
    forge.close(1);
    f.repo.write("README", "after close\n");
    let head4 = {
        f.repo.commit("after close");
        push_pull(&f, &svc, None, 1)
    };
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        forge.status(&head4).is_none(),
        "a closed pull request is not planned"
    );
    assert_eq!(comment_with(&forge, 1, "— approved"), c3);
    assert_eq!(forge.refused(), 0);
}

#[test]
fn a_pull_request_that_breaks_the_yaml_or_conflicts_is_told_so() {
    let (f, forge, v, base, svc) = serving("127.0.78.21");

    // #2 breaks the YAML: the located error, a failure, nothing applied.
    let text = to_yaml(&v).replace("pg_cluster: pg-t", "pg_cluster: [pg-t");
    f.repo.commit_inventory(&text, "broken");
    let head = push_pull(&f, &svc, Some(&forge), 2);
    let c = comment_with(&forge, 2, "nothing would be applied");
    assert!(c.contains("pigsty.yml:"), "located: {c}");
    wait_until("status on the broken head", 10, || {
        forge.status(&head).is_some()
    });
    assert_eq!(forge.status(&head).unwrap().0, "failure");

    // #3 and the branch both change the same line: it does not merge.
    reset(&f, &base);
    let mut mine = v.clone();
    push(&mut mine, "pg_users", "{ name: dbuser_three }");
    f.commit(&mine, "pr three");
    let head3 = push_pull(&f, &svc, Some(&forge), 3);
    reset(&f, &base);
    let mut theirs = v.clone();
    push(&mut theirs, "pg_users", "{ name: dbuser_main }");
    let main = f.commit(&theirs, "main moves");
    svc.push(&f);
    assert_eq!(svc.final_note(&main)["status"], "success");
    let c3 = comment_with(&forge, 3, "Does not merge cleanly");
    assert!(c3.contains("`pigsty.yml`"), "{c3}");
    wait_until("status on the conflicting head", 10, || {
        forge.status(&head3).is_some()
    });
    assert_eq!(forge.status(&head3).unwrap().0, "failure");
}

#[test]
fn a_pull_request_with_an_unsigned_commit_is_told_before_its_merge() {
    use crate::support::signing::{allowed_signers, commit, Sign, SshKey};
    let f = Fleet::new(&["127.0.78.31"]);
    let forge = PullForge::start();
    let alice = SshKey::new("alice@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let allowed = allowed_signers(keys.path(), &[&alice]);
    let verify = format!("verify = \"ssh\"\nallowed_signers = {allowed:?}\n");
    let env = [("PULL_FORGE_TOKEN", TOKEN)];
    let svc = Service::start_repository(&f, &verify, &forge.config(), &env);
    let mut v = f.inventory();
    f.repo.write("pigsty.yml", &to_yaml(&v));
    let base = commit(f.repo.path(), "base", Sign::Ssh(&alice));
    svc.push(&f);
    assert_eq!(svc.final_note(&base)["status"], "success");

    push(&mut v, "pg_users", "{ name: dbuser_unsigned }");
    f.repo.write("pigsty.yml", &to_yaml(&v));
    let unsigned = commit(f.repo.path(), "unsigned change", Sign::No);
    let head = push_pull(&f, &svc, Some(&forge), 4);
    let c = comment_with(&forge, 4, "Signature check");
    assert!(c.contains(&unsigned[..12]) && c.contains("unsigned"), "{c}");
    wait_until("status on the unsigned head", 10, || {
        forge.status(&head).is_some()
    });
    let (state, description) = forge.status(&head).unwrap();
    assert_eq!(state, "failure", "{description}");
    assert!(description.contains("not verified"), "{description}");
}

#[test]
fn pull_request_plans_on_a_slow_forge_do_not_hold_up_an_apply() {
    let (f, forge, v, base, svc) = serving("127.0.81.11");

    // Four open pull requests pushed at once (one round plans them all); each comment request
    // now takes 1.5 s, so the round takes about 12 s.
    forge.slow_comments(1500);
    let mut specs = Vec::new();
    for n in 1..=4 {
        f.repo.write("README", &format!("pull {n}\n"));
        let head = f.repo.commit(&format!("pull {n}"));
        forge.open(n, &head);
        specs.push(format!("+{head}:refs/pull/{n}/head"));
        reset(&f, &base);
    }
    push_refs(f.repo.path(), svc.remote.path(), &specs);
    wait_until("pull request plans under way", 30, || {
        forge.count("GET", "/issues/") >= 1
    });

    // A push to the branch meanwhile is applied before the round ends.
    let mut v2 = v.clone();
    push(
        &mut v2,
        "pg_users",
        "{ name: dbuser_now, password: Now.Pass.1 }",
    );
    let c = f.commit(&v2, "add dbuser_now");
    svc.push(&f);
    wait_until("dbuser_now created", 30, || {
        has_role(f.primary(), "dbuser_now")
    });
    let commented = (1..=4).filter(|n| !forge.comments(*n).is_empty()).count();
    assert!(
        commented < 4,
        "the apply waited for every pull request's plan ({commented} of 4 commented first)"
    );
    assert_eq!(svc.final_note(&c)["status"], "success");

    // The round resumes after the apply: every pull request gets its comment, once.
    for n in 1..=4 {
        comment_with(&forge, n, "Pull request #");
    }
    assert_eq!(forge.refused(), 0);
}
