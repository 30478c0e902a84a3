//! Contract tests for the forge commit-status reporters (`pgitops::report::forge`) against a
//! local HTTP server started by each test on 127.0.0.1: a thread that parses each request by
//! hand (request line, headers, body), records it, and replies with the next canned status and
//! body. In: forge `Settings` pointing at that server, tokens from per-test env vars. Out:
//! assertions on method, path, auth header, JSON body, retries and error text. Nothing else on
//! the network is contacted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgitops::report::forge::{ForgeError, Reporter, Settings, State, Status};
use serde_json::{json, Value};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 that answers `replies` in order (the last one
/// repeats) and closes each connection after one exchange. The thread lives as long as the test
/// binary, blocked in `accept`.
pub(crate) struct Server {
    pub(crate) url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    pub(crate) fn start(replies: &[(u16, &str)]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let replies: Vec<(u16, String)> =
            replies.iter().map(|(s, b)| (*s, b.to_string())).collect();
        let recorded = requests.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let (status, body) = &replies[n.min(replies.len() - 1)];
                if let Ok(stream) = stream {
                    serve(stream, *status, body, &recorded);
                }
            }
        });
        Server { url, requests }
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request (request line, headers, a `Content-Length` body), records it, answers it.
fn serve(stream: TcpStream, status: u16, body: &str, recorded: &Mutex<Vec<Request>>) -> Option<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace().map(str::to_string);
    let (method, path) = (parts.next()?, parts.next()?);
    let mut request = Request {
        method,
        path,
        headers: Vec::new(),
        body: String::new(),
    };
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let Some((name, value)) = header.trim_end().split_once(':') else {
            break;
        };
        request
            .headers
            .push((name.trim().to_string(), value.trim().to_string()));
    }
    let len = request
        .header("content-length")
        .map_or(Some(0), |v| v.parse().ok())?;
    let mut raw = vec![0; len];
    reader.read_exact(&mut raw).ok()?;
    request.body = String::from_utf8(raw).ok()?;
    recorded.lock().unwrap().push(request);
    let reply = format!(
        "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    (&stream).write_all(reply.as_bytes()).ok()
}

/// A reporter of `kind` at `url`; its token `<kind>-secret-<n>` is in the env var
/// `PGITOPS_TEST_<KIND>_TOKEN_<n>`, unique per test so that tests never share one.
pub(crate) fn reporter(kind: &str, url: &str, repo: &str, n: u32) -> Reporter {
    let env = format!("PGITOPS_TEST_{}_TOKEN_{n}", kind.to_uppercase());
    std::env::set_var(&env, format!("{kind}-secret-{n}"));
    let (kind, url, repo) = (kind.parse().unwrap(), url.into(), repo.into());
    let cfg = Settings {
        kind,
        url,
        repo,
        token_env: Some(env),
        token_file: None,
    };
    Reporter::new(&cfg).unwrap()
}

fn status(context: &str, state: State, description: &str) -> Status<'static> {
    let (context, description) = (context.into(), description.into());
    Status {
        sha: SHA,
        context,
        state,
        description,
        target_url: None,
    }
}

fn linked(context: &str, state: State, description: &str, url: &str) -> Status<'static> {
    Status {
        target_url: Some(url.into()),
        ..status(context, state, description)
    }
}

/// `post_with_retry` with a 10 ms first backoff.
fn retry(r: &Reporter, status: &Status, attempts: u32) -> Result<(), ForgeError> {
    r.post_with_retry(status, attempts, Duration::from_millis(10))
}

fn assert_json_post(r: &Request) {
    assert_eq!(r.method, "POST");
    let content_type = r.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{r:?}");
    assert!(
        r.header("user-agent")
            .unwrap_or_default()
            .starts_with("pgitops/"),
        "{r:?}"
    );
}

#[test]
fn github_posts_bearer_token_and_status_body() {
    let server = Server::start(&[(201, "{}")]);
    let gh = reporter("github", &server.url, "acme/inventory", 1);
    let url = "https://ci.example/run/7";
    gh.post(&linked(
        "pgitops/pg-meta",
        State::Pending,
        "applying 2 actions",
        url,
    ))
    .unwrap();
    gh.post(&status("pgitops", State::Success, "all clusters applied"))
        .unwrap();
    gh.post(&status("pgitops", State::Failure, "pg-test failed"))
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_json_post(r);
        assert_eq!(r.path, format!("/repos/acme/inventory/statuses/{SHA}"));
        assert_eq!(r.header("authorization"), Some("Bearer github-secret-1"));
        assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
    }
    let context = "pgitops/pg-meta";
    let first = json!({"state": "pending", "context": context, "description": "applying 2 actions",
                       "target_url": url});
    assert_eq!(reqs[0].json(), first);
    let second =
        json!({"state": "success", "context": "pgitops", "description": "all clusters applied"});
    assert_eq!(reqs[1].json(), second);
    assert_eq!(reqs[2].json()["state"], "failure");
}

#[test]
fn gitea_posts_token_auth_under_api_v1() {
    let server = Server::start(&[(201, "{}")]);
    let gitea = reporter("gitea", &format!("{}/api/v1/", server.url), "ops/pigsty", 1);
    let failed = linked(
        "pgitops/pg-test",
        State::Failure,
        "create user failed",
        "https://x/y",
    );
    gitea.post(&failed).unwrap();
    gitea
        .post(&status("pgitops", State::Pending, "applying"))
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_json_post(r);
        assert_eq!(r.path, format!("/api/v1/repos/ops/pigsty/statuses/{SHA}"));
        assert_eq!(r.header("authorization"), Some("token gitea-secret-1"));
    }
    let first = json!({"state": "failure", "context": "pgitops/pg-test",
                       "description": "create user failed", "target_url": "https://x/y"});
    assert_eq!(reqs[0].json(), first);
    let second = json!({"state": "pending", "context": "pgitops", "description": "applying"});
    assert_eq!(reqs[1].json(), second);
}

#[test]
fn gitlab_maps_states_and_name_and_encodes_the_project_path() {
    let server = Server::start(&[(201, "{}")]);
    let url = format!("{}/api/v4", server.url);
    let gl = reporter("gitlab", &url, "dba/pigsty-inventory", 1);
    gl.post(&linked(
        "pgitops/pg-meta",
        State::Pending,
        "applying",
        "https://ci/1",
    ))
    .unwrap();
    gl.post(&status("pgitops/pg-meta", State::Failure, "failed"))
        .unwrap();
    gl.post(&status("pgitops", State::Success, "done")).unwrap();
    reporter("gitlab", &url, "42", 2)
        .post(&status("pgitops", State::Success, "done"))
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    for r in &reqs[..3] {
        assert_json_post(r);
        assert_eq!(
            r.path,
            format!("/api/v4/projects/dba%2Fpigsty-inventory/statuses/{SHA}")
        );
        assert_eq!(r.header("private-token"), Some("gitlab-secret-1"));
        assert_eq!(r.header("authorization"), None);
    }
    let running = json!({"state": "running", "name": "pgitops/pg-meta", "description": "applying",
                         "target_url": "https://ci/1"});
    assert_eq!(reqs[0].json(), running);
    let failed = json!({"state": "failed", "name": "pgitops/pg-meta", "description": "failed"});
    assert_eq!(reqs[1].json(), failed);
    let success = json!({"state": "success", "name": "pgitops", "description": "done"});
    assert_eq!(reqs[2].json(), success);
    assert_eq!(reqs[3].path, format!("/api/v4/projects/42/statuses/{SHA}"));
    assert_eq!(reqs[3].header("private-token"), Some("gitlab-secret-2"));
}

#[test]
fn description_is_cut_to_140_characters() {
    let server = Server::start(&[(201, "{}")]);
    let gh = reporter("github", &server.url, "acme/inventory", 2);
    let long = format!("pg-meta: {}", "ällé ".repeat(60));
    gh.post(&status("pgitops/pg-meta", State::Failure, &long))
        .unwrap();
    let exact = "x".repeat(140);
    gh.post(&status("pgitops", State::Success, &exact)).unwrap();
    let reqs = server.requests();
    let cut = reqs[0].json()["description"].as_str().unwrap().to_string();
    assert_eq!(cut.chars().count(), 140, "{cut}");
    assert!(cut.ends_with('…'), "{cut}");
    assert!(long.starts_with(cut.trim_end_matches('…')));
    assert_eq!(reqs[1].json()["description"], exact.as_str());
}

#[test]
fn retries_on_500_then_succeeds() {
    let server = Server::start(&[(500, r#"{"message":"boom"}"#), (201, "{}")]);
    let gh = reporter("github", &server.url, "acme/inventory", 3);
    retry(&gh, &status("pgitops", State::Success, "ok"), 4).unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn retries_on_429_then_succeeds() {
    let server = Server::start(&[(429, r#"{"message":"slow down"}"#), (201, "{}")]);
    let gitea = reporter("gitea", &server.url, "ops/pigsty", 2);
    retry(&gitea, &status("pgitops", State::Success, "ok"), 3).unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn gives_up_after_the_last_attempt() {
    let server = Server::start(&[(503, "{}")]);
    let gh = reporter("github", &server.url, "acme/inventory", 4);
    let err = retry(&gh, &status("pgitops", State::Success, "ok"), 3).unwrap_err();
    assert!(matches!(err, ForgeError::Http { status: 503, .. }), "{err}");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn does_not_retry_on_404() {
    let server = Server::start(&[(404, r#"{"message":"Not Found"}"#), (201, "{}")]);
    let gh = reporter("github", &server.url, "acme/missing", 5);
    let err = retry(&gh, &status("pgitops", State::Success, "ok"), 5).unwrap_err();
    assert_eq!(server.requests().len(), 1);
    let text = err.to_string();
    assert!(
        text.contains("github") && text.contains(SHA) && text.contains("404"),
        "{text}"
    );
}

#[test]
fn gitlab_already_running_is_success() {
    let body = r#"{"message":"Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\")"}"#;
    let server = Server::start(&[(400, body)]);
    let gl = reporter("gitlab", &format!("{}/api/v4", server.url), "7", 3);
    retry(&gl, &status("pgitops", State::Pending, "applying"), 3).unwrap();
    assert_eq!(server.requests().len(), 1);
    // The same answer to a different state is a real conflict, not a repeat.
    let err = gl
        .post(&status("pgitops", State::Success, "done"))
        .unwrap_err();
    assert!(matches!(err, ForgeError::Http { status: 400, .. }), "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn token_never_appears_in_errors() {
    let echo = |token: &str| format!(r#"{{"message":"Bad credentials: {token}"}}"#);
    let (gh, gitea, gl) = ("github-secret-6", "gitea-secret-3", "gitlab-secret-4");
    let replies = [(401, echo(gh)), (401, echo(gitea)), (401, echo(gl))];
    let server = Server::start(&replies.each_ref().map(|(s, b)| (*s, b.as_str())));
    let mut errors = Vec::new();
    for (kind, n, token) in [("github", 6, gh), ("gitea", 3, gitea), ("gitlab", 4, gl)] {
        let r = reporter(kind, &server.url, "acme/inventory", n);
        assert!(!format!("{r:?}").contains(token));
        let err = r
            .post(&status("pgitops", State::Failure, &format!("echo {token}")))
            .unwrap_err();
        assert!(err.to_string().contains("401"), "{err}");
        errors.push((err, token));
    }
    let leaked = server
        .requests()
        .iter()
        .any(|r| [gh, gitea, gl].iter().any(|t| r.body.contains(t)));
    assert!(!leaked, "a token leaked into a request body");
    // A closed port: a network error, retried and then returned.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = reporter("github", &format!("http://{closed}"), "acme/inventory", 7);
    let err = retry(&r, &status("pgitops", State::Success, "ok"), 2).unwrap_err();
    assert!(matches!(err, ForgeError::Network { .. }), "{err}");
    errors.push((err, "github-secret-7"));
    for (err, token) in &errors {
        let (display, debug) = (err.to_string(), format!("{err:?}"));
        assert!(
            !display.contains(token) && !debug.contains(token),
            "{display}"
        );
        assert!(display.contains(SHA), "{display}");
    }
}

#[test]
fn missing_token_and_bad_config_are_errors() {
    let cfg = |kind: &str, repo: &str| Settings {
        kind: kind.parse().unwrap(),
        url: "http://127.0.0.1:9".into(),
        repo: repo.into(),
        token_env: Some("PGITOPS_TEST_GITHUB_TOKEN_UNSET_8".into()),
        token_file: Some("/nonexistent/pgitops/forge-token".into()),
    };
    let err = |kind, repo| Reporter::new(&cfg(kind, repo)).unwrap_err();
    let missing = err("github", "acme/inventory");
    let text = missing.to_string();
    assert!(matches!(missing, ForgeError::MissingToken { .. }), "{text}");
    assert!(text.contains("PGITOPS_TEST_GITHUB_TOKEN_UNSET_8") && text.contains("forge-token"));
    assert!("bitbucket"
        .parse::<pgitops::report::forge::ForgeKind>()
        .is_err());
    assert!(matches!(
        err("github", "nameonly"),
        ForgeError::BadRepo { .. }
    ));
    assert!(matches!(err("gitea", "a/b/c"), ForgeError::BadRepo { .. }));
}
