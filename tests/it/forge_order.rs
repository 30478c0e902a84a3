//! Forge statuses arrive in order (`pgitops::report::status_queue`): a stand-in forge on
//! 127.0.0.1 (the one of `forge.rs`) fails the first `pending` post with HTTP 500; the final
//! status is still the last one the forge receives for each commit and context, so the commit
//! never stays pending on the forge.

use std::time::Duration;

use pgitops::report::forge::State;
use pgitops::report::status_queue::{Retry, StatusQueue};

use crate::forge::{reporter, Server};

const SHA: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// `(context, state)` of each post the forge received, with the HTTP status it answered.
fn received(server: &Server, answers: &[u16]) -> Vec<(String, String, u16)> {
    let requests = server.requests();
    requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.method, "POST");
            assert!(r.path.ends_with(SHA), "{}", r.path);
            let body = r.json();
            let answer = answers[i.min(answers.len() - 1)];
            let field = |k: &str| body[k].as_str().unwrap_or_default().to_string();
            (field("context"), field("state"), answer)
        })
        .collect()
}

#[test]
fn a_failed_pending_never_lands_after_the_final_status() {
    let answers = [500, 201];
    let server = Server::start(&[(500, "{\"message\":\"try again\"}"), (201, "{}")]);
    let gh = reporter("github", &server.url, "acme/inventory", 11);
    let retry = Retry {
        attempts: 5,
        first_backoff: Duration::from_millis(300),
    };
    let queue = StatusQueue::start(gh, retry);
    queue.send(
        SHA,
        "pgitops",
        State::Pending,
        "pgitops is applying this commit",
    );
    // The apply ends while the failed `pending` waits for its retry.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no post reached the forge"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    queue.send(SHA, "pgitops/pg-a", State::Pending, "applying");
    queue.send(
        SHA,
        "pgitops/pg-a",
        State::Success,
        "success: 1 actions, 0 failed",
    );
    queue.send(SHA, "pgitops", State::Success, "success: 1 actions");
    assert!(queue.close(Duration::from_secs(30)), "all statuses posted");

    let got = received(&server, &answers);
    assert_eq!(
        got.first(),
        Some(&("pgitops".into(), "pending".into(), 500)),
        "{got:?}"
    );
    for context in ["pgitops", "pgitops/pg-a"] {
        let last = got
            .iter()
            .rev()
            .find(|(c, _, code)| c == context && *code < 300);
        assert_eq!(
            last.map(|(_, s, _)| s.as_str()),
            Some("success"),
            "{context}: {got:?}"
        );
        // Nothing for this context after its final status.
        let at = got.iter().rposition(|(c, _, _)| c == context).unwrap();
        assert_eq!(got[at].1, "success", "{context}: {got:?}");
    }
}

#[test]
fn a_failed_pending_is_retried_while_nothing_newer_is_queued() {
    let server = Server::start(&[(500, "{}"), (201, "{}")]);
    let gh = reporter("github", &server.url, "acme/inventory", 12);
    let retry = Retry {
        attempts: 3,
        first_backoff: Duration::from_millis(100),
    };
    let queue = StatusQueue::start(gh, retry);
    queue.send(
        SHA,
        "pgitops",
        State::Pending,
        "pgitops is applying this commit",
    );
    // The result comes after the retry already went through.
    std::thread::sleep(Duration::from_millis(1000));
    queue.send(SHA, "pgitops", State::Failure, "failure: 1 actions");
    assert!(queue.close(Duration::from_secs(30)));
    let got = received(&server, &[500, 201]);
    let states: Vec<(&str, u16)> = got.iter().map(|(_, s, c)| (s.as_str(), *c)).collect();
    assert_eq!(
        states,
        [("pending", 500), ("pending", 201), ("failure", 201)],
        "{got:?}"
    );
}
