//! Recording an apply when its note cannot be written: the per-action report is printed first,
//! the state does not advance, and the next apply records what was really done.

use crate::support::fleet::{has_role, push, Fleet};

#[test]
fn a_note_that_cannot_be_written_never_advances_the_state() {
    let f = Fleet::independent(&["127.0.65.11"]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: rec_app, password: 'Rec.Pass.1' }",
    );
    let c = f.commit(&v, "add rec_app");
    // git cannot update refs/notes/pgitops while its lock file exists
    let lock = f.repo.path().join(".git/refs/notes/pgitops.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "").unwrap();
    let run = f.apply(&[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    // the report of what ran is out, then why it was not recorded
    assert!(
        run.stdout.contains("[applied] pg-t/user/rec_app/create"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("were not recorded") && run.stderr.contains("git note"),
        "{}",
        run.stderr
    );
    assert!(
        has_role(f.primary(), "rec_app"),
        "the user was really created"
    );
    // the state did not advance: the plan still holds the user
    let plan = f.apply(&["--dry-run"]);
    assert!(
        plan.stdout.contains("pg-t/user/rec_app/create"),
        "{}",
        plan.stdout
    );
    // once the note can be written, the next apply runs the (idempotent) action again and
    // records it on the commit
    std::fs::remove_file(&lock).unwrap();
    let run = f.apply(&[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let note = f.note(&c);
    assert_eq!(note["status"], "success", "{note:#}");
    let last = note["runs"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last.to_string().contains("pg-t/user/rec_app/create"),
        "{last:#}"
    );
    let again = f.apply(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!again.stdout.contains("rec_app"), "{}", again.stdout);
}
