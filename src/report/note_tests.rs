//! Tests of the note document against a real Git repository: what is written reads back with the
//! same types, and nothing already in a note is lost.

use super::*;

/// A repository with one commit, and that commit.
fn repo() -> (tempfile::TempDir, Repository, Oid) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let sig = Signature::now("t", "t@localhost").unwrap();
    let tree = repo.treebuilder(None).unwrap().write().unwrap();
    let tree = repo.find_tree(tree).unwrap();
    let oid = repo
        .commit(Some("HEAD"), &sig, &sig, "one", &tree, &[])
        .unwrap();
    drop(tree);
    (dir, repo, oid)
}

fn raw(repo: &Repository, oid: Oid) -> Value {
    let note = repo.find_note(Some(NOTES_REF), oid).unwrap();
    serde_json::from_str(note.message().unwrap()).unwrap()
}

fn run(commit: Oid, result: &'static str) -> Run {
    Run {
        pgitops: "0.1.0",
        commit: commit.to_string(),
        from: "0".repeat(40),
        started: 1_700_000_000,
        ms: 12,
        result,
        clusters: vec![],
        errors: vec!["pigsty.yml:3:5: bad".into()],
        unverified: vec![],
        ignored_approvals: vec![],
        instance: None,
    }
}

#[test]
fn runs_read_back_as_written() {
    let (_d, repo, oid) = repo();
    append(&repo, &run(oid, "invalid")).unwrap();
    append(&repo, &run(oid, "success")).unwrap();
    let note = load(&repo, oid).unwrap();
    assert_eq!(note.status.as_deref(), Some("success"));
    assert_eq!(note.runs.len(), 2);
    assert_eq!(note.runs[0], RunRecord::from(&run(oid, "invalid")));
    // On disk, a run is exactly what `Run` serializes to.
    let disk = raw(&repo, oid);
    assert_eq!(
        disk["runs"][1],
        serde_json::to_value(run(oid, "success")).unwrap()
    );
    assert_eq!(disk["approvals"], serde_json::json!([]));
}

#[test]
fn an_unreadable_note_is_kept_not_overwritten() {
    let (_d, repo, oid) = repo();
    let sig = Signature::now("someone", "s@localhost").unwrap();
    let garbage = "{\"runs\": [ this is not JSON";
    repo.note(&sig, &sig, Some(NOTES_REF), oid, garbage, true)
        .unwrap();
    mark_pending(&repo, oid).unwrap();
    append(&repo, &run(oid, "success")).unwrap();
    let disk = raw(&repo, oid);
    assert_eq!(disk["unreadable"], serde_json::json!([garbage]));
    assert_eq!(disk["status"], "success");
    assert_eq!(disk["runs"].as_array().unwrap().len(), 1);
    // A document of the wrong shape is kept too.
    let (_d, repo, oid) = self::repo();
    let wrong = r#"{"runs": "yesterday", "status": "success"}"#;
    repo.note(&sig, &sig, Some(NOTES_REF), oid, wrong, true)
        .unwrap();
    assert!(approve(
        &repo,
        oid,
        Approval {
            action: "pg-a/database/x/drop".into(),
            by: "alice".into(),
            at: 1,
            signature: None,
        }
    )
    .unwrap());
    let note = load(&repo, oid).unwrap();
    assert_eq!(note.unreadable, [wrong]);
    assert_eq!(approvals(&repo, oid), ["pg-a/database/x/drop"]);
}

#[test]
fn unknown_fields_and_old_notes_survive_a_write() {
    let (_d, repo, oid) = repo();
    let sig = Signature::now("someone", "s@localhost").unwrap();
    let old = r#"{"runs": [{"commit": "abc", "result": "success", "extra": 1,
        "clusters": [{"name": "pg-a", "actions": [{"id": "pg-a/user/u/create",
        "cluster": "pg-a", "class": "online", "status": "applied", "hosts": [], "ms": 3}]}]}],
        "approvals": [{"action": "pg-a/database/x/drop"}], "ticket": "OPS-1"}"#;
    repo.note(&sig, &sig, Some(NOTES_REF), oid, old, true)
        .unwrap();
    remark(&repo, oid, "the branch was rewritten").unwrap();
    let note = load(&repo, oid).unwrap();
    assert!(note.unreadable.is_empty(), "{note:?}");
    assert_eq!(note.runs[0].clusters[0].actions[0].id, "pg-a/user/u/create");
    assert_eq!(note.runs[0].other["extra"], 1);
    assert_eq!(note.other["ticket"], "OPS-1");
    assert_eq!(note.remark.as_deref(), Some("the branch was rewritten"));
}

#[test]
fn merging_keeps_both_sides() {
    let ours = Note {
        runs: vec![RunRecord {
            result: "success".into(),
            ..RunRecord::default()
        }],
        status: Some("success".into()),
        ..Note::default()
    };
    let theirs = Note {
        approvals: vec![Approval {
            action: "pg-a/database/x/drop".into(),
            by: "bob".into(),
            at: 2,
            signature: None,
        }],
        status: Some("held".into()),
        remark: Some("theirs".into()),
        ..Note::default()
    };
    let merged = Note::parse(&merge_docs(&theirs.to_text(), &ours.to_text()));
    assert_eq!(
        (merged.runs.len(), merged.approvals.len()),
        (1, 1),
        "{merged:?}"
    );
    assert_eq!(merged.status.as_deref(), Some("success"));
    assert_eq!(merged.remark.as_deref(), Some("theirs"));
    let kept = Note::parse(&merge_docs("garbage", &ours.to_text()));
    assert_eq!(
        (kept.unreadable, kept.runs.len()),
        (vec!["garbage".to_string()], 1)
    );
    let same = Note::parse(&merge_docs(&ours.to_text(), &ours.to_text()));
    assert_eq!(same, ours);
}

fn observation(cluster: &str, at: u64) -> Observation {
    Observation {
        cluster: cluster.into(),
        at,
        leader: "10.0.0.12 (pg-a-2)".into(),
        declared: "10.0.0.11 (pg-a-1)".into(),
        message: "pg-a: Patroni's leader is 10.0.0.12".into(),
    }
}

#[test]
fn observations_are_added_once_and_keep_the_rest_of_the_note() {
    let (_d, repo, oid) = repo();
    let sig = Signature::now("someone", "s@localhost").unwrap();
    let old = r#"{"runs": [{"commit": "abc", "result": "success"}], "status": "success",
        "remark": "kept", "ticket": "OPS-1"}"#;
    repo.note(&sig, &sig, Some(NOTES_REF), oid, old, true)
        .unwrap();
    observe(&repo, oid, observation("pg-a", 5)).unwrap();
    observe(&repo, oid, observation("pg-a", 5)).unwrap();
    observe(&repo, oid, observation("pg-a", 9)).unwrap();
    let v = raw(&repo, oid);
    assert_eq!(v["observations"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(v["observations"][0]["leader"], "10.0.0.12 (pg-a-2)");
    assert_eq!(v["observations"][1]["at"], 9);
    assert_eq!(
        (
            &v["runs"][0]["commit"],
            &v["status"],
            &v["remark"],
            &v["ticket"]
        ),
        (
            &Value::from("abc"),
            &Value::from("success"),
            &Value::from("kept"),
            &Value::from("OPS-1")
        )
    );
    // Two versions of the note (the remote's and ours) keep both sides' observations.
    let theirs = Note {
        observations: vec![observation("pg-a", 5), observation("pg-b", 7)],
        ..Note::default()
    };
    let ours = load(&repo, oid).unwrap();
    let merged = Note::parse(&merge_docs(&theirs.to_text(), &ours.to_text()));
    let at: Vec<(String, u64)> = merged
        .observations
        .iter()
        .map(|o| (o.cluster.clone(), o.at))
        .collect();
    assert_eq!(
        at,
        [("pg-a".into(), 5), ("pg-b".into(), 7), ("pg-a".into(), 9)]
    );
    assert_eq!(merged.runs.len(), 1);
}
