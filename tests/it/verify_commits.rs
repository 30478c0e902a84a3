//! Commit signature verification on real repositories with real keys: the reasons one commit
//! is not verified (SSH with ssh-keygen, GPG with gpgv), the gate over a range (block, stop,
//! merges), and the time to verify 100 signed commits.

use std::path::Path;
use std::time::Instant;

use pgitops::ops::verified::{approval_commits, gate};
use pgitops::source::verify::{verify_commit, Mode, OnUnverified, Outcome, Reason, Settings};
use pgitops::source::Repo;

use crate::support::signing::{allowed_signers, commit, tamper, GpgKey, Sign, SshKey};

fn ssh_settings(allowed: &Path, on: OnUnverified) -> Settings {
    Settings::new(Mode::Ssh, Some(allowed), None, on).unwrap()
}

fn check(dir: &Path, settings: &Settings, id: &str) -> Outcome {
    let git = git2::Repository::open(dir).unwrap();
    verify_commit(&git, settings, git2::Oid::from_str(id).unwrap())
}

fn reason(outcome: Outcome) -> Reason {
    match outcome {
        Outcome::Unverified { reason } => reason,
        v => panic!("expected unverified, got {v:?}"),
    }
}

#[test]
fn ssh_signed_unsigned_unknown_key_and_tampered() {
    let repo = tempfile::tempdir().unwrap();
    git2::Repository::init(repo.path()).unwrap();
    let alice = SshKey::new("alice@127.0.0.1");
    let mallory = SshKey::new("mallory@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let s = ssh_settings(
        &allowed_signers(keys.path(), &[&alice]),
        OnUnverified::Block,
    );

    std::fs::write(repo.path().join("pigsty.yml"), "all: {}\n").unwrap();
    let signed = commit(repo.path(), "signed", Sign::Ssh(&alice));
    match check(repo.path(), &s, &signed) {
        Outcome::Verified { signer } => {
            assert!(signer.starts_with("alice@127.0.0.1 ("), "{signer}");
            assert!(signer.contains(&alice.fingerprint()), "{signer}");
        }
        v => panic!("{v:?}"),
    }
    let unsigned = commit(repo.path(), "unsigned", Sign::No);
    assert_eq!(reason(check(repo.path(), &s, &unsigned)), Reason::Unsigned);
    let unknown = commit(repo.path(), "by mallory", Sign::Ssh(&mallory));
    match reason(check(repo.path(), &s, &unknown)) {
        Reason::UnknownKey(d) => assert!(
            d.contains(&mallory.fingerprint()) && d.contains("not in the allowed signers"),
            "{d}"
        ),
        r => panic!("{r:?}"),
    }
    let forged = tamper(repo.path(), &signed);
    match reason(check(repo.path(), &s, &forged)) {
        Reason::BadSignature(d) => assert!(d.contains("incorrect signature"), "{d}"),
        r => panic!("{r:?}"),
    }
    // The messages name the commit and the reason.
    let failure = pgitops::source::verify::Failure {
        commit: unsigned.clone(),
        reason: Reason::Unsigned,
    };
    assert_eq!(
        failure.to_string(),
        format!("commit {} is not verified: unsigned", &unsigned[..12])
    );
    // A GPG-format setting does not accept an SSH signature.
    let file = keys.path().join("allowed_signers");
    let gpg = Settings::new(Mode::Gpg, None, Some(&file), OnUnverified::Block).unwrap();
    assert!(matches!(
        reason(check(repo.path(), &gpg, &signed)),
        Reason::UnknownKey(_)
    ));
    // An allowed-signers file that is gone: the tool fails, the commit is not verified.
    let gone = ssh_settings(&file, OnUnverified::Block);
    std::fs::remove_file(&file).unwrap();
    match reason(check(repo.path(), &gone, &signed)) {
        Reason::ToolFailed(d) => assert!(d.contains("allowed_signers"), "{d}"),
        r => panic!("{r:?}"),
    }
}

#[test]
fn gpg_signed_unsigned_unknown_key_and_tampered() {
    let Some(trusted) = GpgKey::new("Trusted Signer <trusted@127.0.0.1>") else {
        return;
    };
    let Some(stranger) = GpgKey::new("Stranger <stranger@127.0.0.1>") else {
        return;
    };
    let repo = tempfile::tempdir().unwrap();
    git2::Repository::init(repo.path()).unwrap();
    let s = Settings::new(Mode::Gpg, None, Some(&trusted.keyring), OnUnverified::Block).unwrap();
    std::fs::write(repo.path().join("pigsty.yml"), "all: {}\n").unwrap();
    let signed = commit(repo.path(), "signed", Sign::Gpg(&trusted));
    match check(repo.path(), &s, &signed) {
        Outcome::Verified { signer } => {
            assert!(signer.contains("trusted@127.0.0.1"), "{signer}");
            assert!(signer.contains(&trusted.fingerprint), "{signer}");
        }
        v => panic!("{v:?}"),
    }
    let unsigned = commit(repo.path(), "unsigned", Sign::No);
    assert_eq!(reason(check(repo.path(), &s, &unsigned)), Reason::Unsigned);
    let unknown = commit(repo.path(), "stranger", Sign::Gpg(&stranger));
    match reason(check(repo.path(), &s, &unknown)) {
        Reason::UnknownKey(d) => assert!(
            stranger.fingerprint.ends_with(
                d.split_whitespace()
                    .nth(1)
                    .unwrap_or("no key id in the message")
            ),
            "{d}"
        ),
        r => panic!("{r:?}"),
    }
    let forged = tamper(repo.path(), &signed);
    assert!(matches!(
        reason(check(repo.path(), &s, &forged)),
        Reason::BadSignature(_)
    ));
    // An SSH-format setting does not accept a GPG signature.
    let ssh = ssh_settings(&trusted.keyring, OnUnverified::Block);
    assert!(matches!(
        reason(check(repo.path(), &ssh, &signed)),
        Reason::UnknownKey(_)
    ));
}

#[test]
fn the_gate_blocks_or_stops_at_the_first_unverified_commit_merges_included() {
    let dir = tempfile::tempdir().unwrap();
    let git = git2::Repository::init(dir.path()).unwrap();
    let alice = SshKey::new("alice@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let allowed = allowed_signers(keys.path(), &[&alice]);
    let p = dir.path();
    let base = commit(p, "base", Sign::Ssh(&alice));
    let c1 = commit(p, "c1", Sign::Ssh(&alice));
    let c2 = commit(p, "c2 unsigned", Sign::No);
    let c3 = commit(p, "c3", Sign::Ssh(&alice));
    let repo = Repo::open(p).unwrap();
    let to = repo.commit(&c3).unwrap();

    let block = ssh_settings(&allowed, OnUnverified::Block);
    let (target, held) = gate(&repo, &block, Some(&base), &to).unwrap();
    let held = held.expect("held");
    assert!(held.blocked());
    assert_eq!(
        (held.commit.as_str(), held.reason.as_str()),
        (c2.as_str(), "unsigned")
    );
    assert_eq!(target.id, c3);
    let stop = ssh_settings(&allowed, OnUnverified::Stop);
    let (target, held) = gate(&repo, &stop, Some(&base), &to).unwrap();
    assert_eq!(target.id, c1, "stopped at the last verified commit");
    assert_eq!(held.unwrap().stopped_at.as_deref(), Some(c1.as_str()));
    // A range that starts after the unsigned commit is clean.
    let (target, held) = gate(&repo, &block, Some(&c2), &to).unwrap();
    assert_eq!((target.id.as_str(), held), (c3.as_str(), None));
    // With no base (the first apply, a resync) TO's signature covers the tree applied: only
    // TO is checked.
    assert_eq!(gate(&repo, &block, None, &to).unwrap().1, None);
    let unsigned_head = repo.commit(&c2).unwrap();
    assert_eq!(
        gate(&repo, &block, None, &unsigned_head)
            .unwrap()
            .1
            .unwrap()
            .commit,
        c2
    );
    // ... and only TO's trailers count then (an unsigned ancestor's do not).
    let ids = |v: Vec<pgitops::source::CommitInfo>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(approval_commits(&repo, &block, None, &to).unwrap()),
        vec![c3.clone()]
    );
    assert_eq!(
        ids(approval_commits(&repo, &Settings::default(), None, &to).unwrap()).len(),
        4,
        "verification off: every commit's trailers"
    );
    // Unsigned right after the base: stop has nothing to apply, so it blocks.
    let (_, held) = gate(&repo, &stop, Some(&c1), &to).unwrap();
    assert!(held.unwrap().blocked());

    // A signed merge of a side branch that holds an unsigned commit: blocked by that commit.
    let main_ref = git.head().unwrap().name().unwrap().to_string();
    let side_base = git.find_commit(git2::Oid::from_str(&c3).unwrap()).unwrap();
    git.branch("side", &side_base, true).unwrap();
    git.set_head("refs/heads/side").unwrap();
    let side_bad = commit(p, "side unsigned", Sign::No);
    git.set_head(&main_ref).unwrap();
    let m1 = commit(p, "main signed", Sign::Ssh(&alice));
    let merge = git2_merge(p, &git, &m1, &side_bad, &alice);
    let to = repo.commit(&merge).unwrap();
    let (_, held) = gate(&repo, &block, Some(&c3), &to).unwrap();
    assert_eq!(held.unwrap().commit, side_bad);
    // stop: the merge has the unsigned commit as an ancestor; its first parent does not.
    let (target, _) = gate(&repo, &stop, Some(&c3), &to).unwrap();
    assert_eq!(target.id, m1);
}

/// A signed merge commit of `theirs` into the current branch at `ours` (with the real git).
fn git2_merge(p: &Path, _git: &git2::Repository, ours: &str, theirs: &str, k: &SshKey) -> String {
    let out = std::process::Command::new("git")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("-C")
        .arg(p)
        .args(["-c", "user.name=Test", "-c", "user.email=test@127.0.0.1"])
        .args(["-c", "gpg.format=ssh", "-c"])
        .arg(format!("user.signingkey={}", k.private().display()))
        .args(["merge", "-q", "--no-ff", "-S", "-m", "merge side", theirs])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let head = git2::Repository::open(p)
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap()
        .to_string();
    assert_ne!(head, ours);
    head
}

/// The figure: the time to verify a range of 100 SSH-signed commits (the gate, as an apply runs
/// it). `cargo test --test it verify_commits::hundred -- --nocapture` prints it.
#[test]
fn hundred_signed_commits_verify_and_the_time_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path()).unwrap();
    let alice = SshKey::new("alice@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let s = ssh_settings(
        &allowed_signers(keys.path(), &[&alice]),
        OnUnverified::Block,
    );
    let base = commit(dir.path(), "base", Sign::Ssh(&alice));
    let mut last = base.clone();
    for i in 0..100 {
        std::fs::write(dir.path().join("pigsty.yml"), format!("n: {i}\n")).unwrap();
        last = commit(dir.path(), &format!("c{i}"), Sign::Ssh(&alice));
    }
    let repo = Repo::open(dir.path()).unwrap();
    let to = repo.commit(&last).unwrap();
    let t = Instant::now();
    let (target, held) = gate(&repo, &s, Some(&base), &to).unwrap();
    let took = t.elapsed();
    assert_eq!((target.id.as_str(), held), (last.as_str(), None));
    println!(
        "verify: 100 SSH-signed commits in {:.0} ms ({:.1} ms per commit)",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3 / 100.0
    );
}

/// `pgitops approve` signatures: bound to the commit and the action, in their own SSH
/// namespace (a signature made for git does not pass), and GPG through `gpg --detach-sign`.
#[test]
fn approval_signatures_are_bound_to_commit_action_and_namespace() {
    use pgitops::source::approval::{self, Signer};
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path()).unwrap();
    let alice = SshKey::new("alice@127.0.0.1");
    let keys = tempfile::tempdir().unwrap();
    let s = ssh_settings(
        &allowed_signers(keys.path(), &[&alice]),
        OnUnverified::Block,
    );
    let c = commit(dir.path(), "c", Sign::Ssh(&alice));
    let action = "pg-t/database/x/drop";
    let sig = approval::sign(&Signer::Ssh(alice.private()), &c, action).unwrap();
    assert!(matches!(
        approval::verify(&s, &c, action, Some(&sig)),
        Outcome::Verified { .. }
    ));
    for (commit, action) in [
        (c.as_str(), "pg-t/database/y/drop"),
        (&"0".repeat(40), action),
    ] {
        assert!(matches!(
            approval::verify(&s, commit, action, Some(&sig)),
            Outcome::Unverified {
                reason: Reason::BadSignature(_)
            }
        ));
    }
    assert_eq!(
        reason(approval::verify(&s, &c, action, None)),
        Reason::Unsigned
    );
    // The same text signed in git's namespace is not an approval.
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "git", "-f"])
        .arg(alice.private())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(approval::payload(&c, action).as_bytes())?;
            drop(stdin);
            child.wait_with_output()
        })
        .unwrap();
    let git_sig = String::from_utf8(out.stdout).unwrap();
    assert!(matches!(
        reason(approval::verify(&s, &c, action, Some(&git_sig))),
        Reason::BadSignature(_)
    ));
    // Verification off: every approval counts, signed or not.
    assert!(matches!(
        approval::verify(&Settings::default(), &c, action, None),
        Outcome::Verified { .. }
    ));

    // GPG: `pgitops approve --gpg-key` signs with the user's gpg; gpgv checks the note.
    let Some(gpg) = GpgKey::new("Approver <approver@127.0.0.1>") else {
        return;
    };
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_pgitops"))
        .env("GNUPGHOME", gpg.home.path())
        .arg("--repo")
        .arg(dir.path())
        .args(["approve", &c, action, "--gpg-key", &gpg.fingerprint])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let git = git2::Repository::open(dir.path()).unwrap();
    let records = pgitops::report::note::approval_records(&git, git2::Oid::from_str(&c).unwrap());
    let signature = records[0].signature.as_deref().expect("a signed approval");
    let g = Settings::new(Mode::Gpg, None, Some(&gpg.keyring), OnUnverified::Block).unwrap();
    match approval::verify(&g, &c, action, Some(signature)) {
        Outcome::Verified { signer } => assert!(signer.contains(&gpg.fingerprint), "{signer}"),
        v => panic!("{v:?}"),
    }
    assert!(matches!(
        approval::verify(&g, &c, "pg-t/database/other/drop", Some(signature)),
        Outcome::Unverified {
            reason: Reason::BadSignature(_)
        }
    ));
}
