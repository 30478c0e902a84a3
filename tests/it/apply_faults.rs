//! Records on a read-only or full disk: the per-action report is printed anyway, the apply
//! exits 1 naming what could not be written, the state does not advance, no temporary file stays,
//! and the next apply with room records the note and advances the state.
//!
//! The faults are real mounts (a read-only bind mount, a size-limited tmpfs filled to the last
//! page) made inside a private mount namespace that only `pgitops` enters and that dies with the
//! test: the machine's own mounts are never changed.

use std::path::Path;
use std::process::{Child, Command};

use crate::support::fleet::{ok, push, Fleet};

/// A private mount namespace, held open by a `sleep` that the guard kills.
struct MountNs {
    holder: Child,
}

impl MountNs {
    fn new() -> MountNs {
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sleep", "600"])
            .spawn()
            .expect("unshare");
        let ns = MountNs { holder };
        // Only once `sleep` runs has unshare left the machine's namespace: entering earlier
        // would mount on the machine itself.
        let pid = ns.holder.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mine = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let its = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
        assert_ne!(mine, its, "the holder has its own mount namespace");
        ns
    }

    /// `nsenter` into the namespace, to put before a command.
    fn prefix(&self) -> Vec<String> {
        let pid = self.holder.id().to_string();
        ["nsenter", "-t", &pid, "-m", "--"]
            .map(String::from)
            .to_vec()
    }

    /// Runs `script` with `sh -c` inside the namespace; its stdout.
    fn sh(&self, script: &str) -> String {
        let prefix = self.prefix();
        let out = Command::new(&prefix[0])
            .args(&prefix[1..])
            .args(["sh", "-ec", script])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{script}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn apply(&self, f: &Fleet, args: &[&str]) -> crate::support::Run {
        let prefix = self.prefix();
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        f.apply_via(&prefix, args)
    }

    /// Names of the files under `dir` as seen inside the namespace that contain `tmp`.
    fn temporaries(&self, dir: &Path) -> String {
        self.sh(&format!("find '{}' -name '*tmp*'", dir.display()))
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// `mount -t tmpfs` of `size` over `dir`, keeping what `dir` held, then filled to the last page.
fn full_tmpfs_over(ns: &MountNs, dir: &Path, size: &str) {
    let d = dir.display();
    ns.sh(&format!(
        "keep=$(mktemp -d); cp -a '{d}/.' \"$keep/\"; mount -t tmpfs -o size={size} pgitops-full '{d}'; \
         cp -a \"$keep/.\" '{d}/'; rm -rf \"$keep\"; \
         dd if=/dev/zero of='{d}/fill' bs=4k 2>/dev/null || true"
    ));
}

fn last_applied(state: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(state).unwrap();
    v["clusters"]["pg-t"]["last_applied"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_read_only_or_full_state_directory_loses_no_report_and_no_temporary_file_stays() {
    let f = Fleet::independent(&["127.0.94.11"]);
    let mut v = f.inventory();
    let base = f.commit(&v, "base");
    ok(&f.apply(&[]));
    let dir = f.repo.path().join(".git/pgitops");
    let state = dir.join("state.json");
    assert_eq!(
        last_applied(&std::fs::read_to_string(&state).unwrap()),
        base
    );

    // a read-only state directory
    push(
        &mut v,
        "pg_users",
        "{ name: fault_ro, password: 'Fault.Pass.1' }",
    );
    let ro = f.commit(&v, "add fault_ro");
    let ns = MountNs::new();
    let d = dir.display();
    ns.sh(&format!(
        "mount --bind '{d}' '{d}'; mount -o remount,bind,ro '{d}'"
    ));
    let run = ns.apply(&f, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("[applied] pg-t/user/fault_ro/create"),
        "the report is printed:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("were not recorded")
            && run.stderr.contains("saving the state")
            && run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    assert_eq!(ns.temporaries(&dir), "");
    drop(ns);
    assert_eq!(
        last_applied(&std::fs::read_to_string(&state).unwrap()),
        base,
        "the state did not advance"
    );
    assert_eq!(f.note(&ro)["status"], "success", "the note was written");
    // writable again: the next apply runs the action again and advances the state
    let run = f.apply(&[]);
    ok(&run);
    assert!(
        run.stdout.contains("pg-t/user/fault_ro/create"),
        "{}",
        run.stdout
    );
    assert_eq!(last_applied(&std::fs::read_to_string(&state).unwrap()), ro);

    // a full state directory
    push(
        &mut v,
        "pg_users",
        "{ name: fault_full, password: 'Fault.Pass.2' }",
    );
    let full = f.commit(&v, "add fault_full");
    let ns = MountNs::new();
    full_tmpfs_over(&ns, &dir, "64k");
    let run = ns.apply(&f, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("[applied] pg-t/user/fault_full/create"),
        "the report is printed:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("saving the state") && run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert_eq!(ns.temporaries(&dir), "", "no temporary file stays");
    let inside = |ns: &MountNs| ns.sh(&format!("cat '{}'", state.display()));
    assert_eq!(last_applied(&inside(&ns)), ro, "the state did not advance");
    // room again: the next apply advances the state
    ns.sh(&format!("rm '{d}/fill'"));
    ok(&ns.apply(&f, &[]));
    assert_eq!(last_applied(&inside(&ns)), full);
    let quiet = ns.apply(&f, &[]);
    ok(&quiet);
    assert!(!quiet.stdout.contains("fault_full"), "{}", quiet.stdout);
}

#[test]
fn a_full_disk_under_the_notes_loses_no_report_and_the_next_apply_records_it() {
    let f = Fleet::independent(&["127.0.94.21"]);
    let mut v = f.inventory();
    let base = f.commit(&v, "base");
    ok(&f.apply(&[]));
    let state = f.repo.path().join(".git/pgitops/state.json");
    let objects = f.repo.path().join(".git/objects");
    push(
        &mut v,
        "pg_users",
        "{ name: fault_note, password: 'Fault.Pass.3' }",
    );
    let c = f.commit(&v, "add fault_note");
    let ns = MountNs::new();
    full_tmpfs_over(&ns, &objects, "4m");
    let run = ns.apply(&f, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("[applied] pg-t/user/fault_note/create"),
        "the report is printed:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("were not recorded") && run.stderr.contains("writing the git note"),
        "{}",
        run.stderr
    );
    assert_eq!(ns.temporaries(&objects), "", "no temporary object stays");
    assert_eq!(
        last_applied(&std::fs::read_to_string(&state).unwrap()),
        base,
        "the state did not advance"
    );
    // room again: the next apply records the note and advances the state
    ns.sh(&format!("rm '{}/fill'", objects.display()));
    let run = ns.apply(&f, &[]);
    ok(&run);
    assert!(
        run.stdout.contains("pg-t/user/fault_note/create"),
        "{}",
        run.stdout
    );
    assert_eq!(last_applied(&std::fs::read_to_string(&state).unwrap()), c);
    // the objects written in the namespace's tmpfs are copied back before it goes
    let keep = tempfile::tempdir().unwrap();
    ns.sh(&format!(
        "cp -a '{}/.' '{}/'",
        objects.display(),
        keep.path().display()
    ));
    drop(ns);
    let copy = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", keep.path().display()))
        .arg(&objects)
        .status()
        .unwrap();
    assert!(copy.success());
    let note = f.note(&c);
    assert_eq!(note["status"], "success", "{note:#}");
    assert!(note.to_string().contains("pg-t/user/fault_note/create"));
    let quiet = f.apply(&[]);
    ok(&quiet);
    assert!(!quiet.stdout.contains("fault_note"), "{}", quiet.stdout);
}
