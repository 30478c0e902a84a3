//! Unit tests of the forge reporter's pure parts: descriptions, URL segments, GitLab answers,
//! retry decisions and the proxy bypass.

use super::*;

#[test]
fn descriptions_are_cut_on_char_boundaries() {
    let exact = "é".repeat(MAX_DESCRIPTION);
    assert_eq!(cut_description(&exact), exact);
    let cut = cut_description(&format!("{exact}é"));
    assert_eq!(cut.chars().count(), MAX_DESCRIPTION);
    assert_eq!(cut, format!("{}…", "é".repeat(MAX_DESCRIPTION - 1)));
    assert_eq!(
        encode_segment("group/sub proj~a.b_c-d"),
        "group%2Fsub%20proj~a.b_c-d"
    );
    assert_eq!(encode_segment("é/ü"), "%C3%A9%2F%C3%BC");
}

#[test]
fn gitlab_repeat_of_the_same_state_is_recognised() {
    let running = r#"{"message":"Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\")"}"#;
    let other = r#"{"message":"Cannot transition status via :run from :success"}"#;
    let plain = "Cannot transition status via :success from :success";
    assert!(gitlab_already_in(running, "running") && gitlab_already_in(plain, "success"));
    assert!(!gitlab_already_in(running, "success") && !gitlab_already_in(other, "running"));
    assert!(!gitlab_already_in(
        r#"{"message":"ref is missing"}"#,
        "running"
    ));
}

#[test]
fn only_network_errors_5xx_and_429_are_retried() {
    let (forge, sha, error) = ("github", String::new(), String::new());
    let http = |status| ForgeError::Http {
        forge,
        sha: "a".into(),
        status,
        body: "".into(),
    };
    assert!([500, 503, 429]
        .map(http)
        .iter()
        .all(ForgeError::is_retryable));
    assert!(![400, 404, 422]
        .map(http)
        .iter()
        .any(ForgeError::is_retryable));
    assert!(ForgeError::Network { forge, sha, error }.is_retryable());
}

#[test]
fn loopback_forges_bypass_the_proxy() {
    let loopback = [
        "http://127.0.0.1:8080/api/v1",
        "http://127.9.1.2",
        "http://[::1]:3/x",
    ];
    assert!(loopback.iter().all(|url| is_loopback(url)) && is_loopback("http://LOCALHOST"));
    assert!(!is_loopback("https://api.github.com") && !is_loopback("https://gitlab.com/api/v4"));
}
