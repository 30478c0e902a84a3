//! Contract tests for the pull request API of the forge reporters
//! (`pgitops::report::pulls`) against the canned local server of `forge.rs`: the paths,
//! methods, authentication and bodies GitHub, Gitea/Forgejo and GitLab expect for listing open
//! pull requests, finding pgitops' comment, creating and editing it.

use pgitops::report::pulls::{Posted, Pull, MARKER};

use crate::forge::{reporter, Server};

#[test]
fn github_lists_open_pulls_of_the_branch_and_creates_then_edits_one_comment() {
    let pulls = r#"[{"number": 7, "head": {"sha": "abc"}, "base": {"ref": "main"}},
                    {"number": 8, "head": {"sha": "def"}, "base": {"ref": "other"}}]"#;
    let s = Server::start(&[(200, pulls), (201, r#"{"id": 55}"#), (200, r#"{"id": 55}"#)]);
    let r = reporter("github", &s.url, "acme/pg", 31);
    assert_eq!(
        r.open_pulls("main").unwrap(),
        vec![Pull {
            number: 7,
            head: "abc".into()
        }]
    );
    let body = format!("{MARKER}\nplan one");
    assert_eq!(
        r.upsert_comment(7, None, &body).unwrap(),
        Posted::Created(55)
    );
    let edited = format!("{MARKER}\nplan two");
    let known = Some((55, body.clone()));
    assert_eq!(
        r.upsert_comment(7, known, &edited).unwrap(),
        Posted::Edited(55)
    );
    assert_eq!(
        r.upsert_comment(7, Some((55, edited.clone())), &edited)
            .unwrap(),
        Posted::Unchanged(55),
        "an unchanged comment is not sent again"
    );
    let req = s.requests();
    assert_eq!(req.len(), 3);
    assert_eq!(req[0].method, "GET");
    assert!(
        req[0]
            .path
            .starts_with("/repos/acme/pg/pulls?state=open&per_page=100"),
        "{}",
        req[0].path
    );
    assert_eq!(
        (req[1].method.as_str(), req[1].path.as_str()),
        ("POST", "/repos/acme/pg/issues/7/comments")
    );
    assert_eq!(req[1].json()["body"], body.as_str());
    assert_eq!(
        (req[2].method.as_str(), req[2].path.as_str()),
        ("PATCH", "/repos/acme/pg/issues/comments/55")
    );
    assert_eq!(req[2].json()["body"], edited.as_str());
}

#[test]
fn gitea_finds_its_comment_by_the_marker_with_token_auth() {
    let comments = format!(
        r#"[{{"id": 1, "body": "looks good"}}, {{"id": 2, "body": "{MARKER}\nold plan"}}]"#
    );
    let s = Server::start(&[(200, comments.as_str())]);
    let r = reporter("gitea", &format!("{}/api/v1", s.url), "acme/pg", 32);
    let found = r.find_comment(4).unwrap();
    assert_eq!(found, Some((2, format!("{MARKER}\nold plan"))));
    let req = s.requests();
    assert!(
        req[0]
            .path
            .starts_with("/api/v1/repos/acme/pg/issues/4/comments?"),
        "{}",
        req[0].path
    );
    assert_eq!(
        req[0].header("authorization"),
        Some("token gitea-secret-32")
    );
}

#[test]
fn gitlab_uses_merge_request_notes_and_the_encoded_project() {
    let mrs = r#"[{"iid": 3, "sha": "fff", "target_branch": "main"}]"#;
    let s = Server::start(&[(200, mrs), (201, r#"{"id": 9}"#), (200, r#"{"id": 9}"#)]);
    let r = reporter("gitlab", &format!("{}/api/v4", s.url), "grp/pg", 33);
    assert_eq!(
        r.open_pulls("main").unwrap(),
        vec![Pull {
            number: 3,
            head: "fff".into()
        }]
    );
    let body = format!("{MARKER}\nx");
    assert_eq!(
        r.upsert_comment(3, None, &body).unwrap(),
        Posted::Created(9)
    );
    let edited = format!("{MARKER}\ny");
    assert_eq!(
        r.upsert_comment(3, Some((9, body)), &edited).unwrap(),
        Posted::Edited(9)
    );
    let req = s.requests();
    assert!(
        req[0]
            .path
            .starts_with("/api/v4/projects/grp%2Fpg/merge_requests?state=opened"),
        "{}",
        req[0].path
    );
    assert_eq!(
        (req[1].method.as_str(), req[1].path.as_str()),
        ("POST", "/api/v4/projects/grp%2Fpg/merge_requests/3/notes")
    );
    assert_eq!(
        (req[2].method.as_str(), req[2].path.as_str()),
        ("PUT", "/api/v4/projects/grp%2Fpg/merge_requests/3/notes/9")
    );
    assert_eq!(req[1].header("private-token"), Some("gitlab-secret-33"));
}

#[test]
fn errors_name_the_call_and_never_the_token() {
    let s = Server::start(&[(
        403,
        r#"{"message": "token gitea-secret-34 is not allowed"}"#,
    )]);
    let r = reporter("gitea", &s.url, "acme/pg", 34);
    let e = r
        .upsert_comment(5, None, &format!("{MARKER}\nz"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("commenting on #5") && e.contains("HTTP 403"),
        "{e}"
    );
    assert!(!e.contains("gitea-secret-34"), "{e}");
}

#[test]
fn a_full_page_asks_for_the_next_and_a_short_one_ends_the_list() {
    let page = |from: u64, n: u64| {
        let items: Vec<String> = (from..from + n)
            .map(|i| {
                format!(
                    r#"{{"number": {i}, "head": {{"sha": "h{i}"}}, "base": {{"ref": "main"}}}}"#
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    let (first, second) = (page(1, 100), page(101, 1));
    let s = Server::start(&[(200, first.as_str()), (200, second.as_str())]);
    let r = reporter("github", &s.url, "acme/pg", 35);
    let pulls = r.open_pulls("main").unwrap();
    assert_eq!(pulls.len(), 101);
    let req = s.requests();
    assert_eq!(req.len(), 2, "one page more, then stop");
    assert!(req[1].path.contains("page=2"), "{}", req[1].path);
}
