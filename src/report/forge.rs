//! Forge commit statuses: the optional reporters that mark a commit on GitHub, Gitea/Forgejo or
//! GitLab with `pgitops` (aggregate) and `pgitops/<cluster>` statuses.
//!
//! In: the reporter's own [`Settings`] (forge kind, API base URL, repository, where the token
//! lives; `config` maps `[[reporter]]` onto them) and a [`Status`] (sha, context, state, description, link). Out: one HTTP `POST` to the
//! forge's commit-status endpoint, `Ok(())` or a [`ForgeError`] that names the forge, the sha and
//! the HTTP status. The code is blocking (ureq); the daemon calls it from a blocking task so a
//! slow forge never holds up an apply. Each request has a 10 s budget;
//! [`Reporter::post_with_retry`] backs off exponentially (or as long as a `Retry-After` asks, up
//! to 60 s) on network errors, 5xx and 429, and gives up at once on any other 4xx, which a retry
//! cannot fix. Loopback forges are never reached through the environment's proxy. TLS
//! certificates are checked against the system's trust store (rustls-platform-verifier), so an
//! on-premises forge with a private CA works once that CA is installed on the host.
//!
//! The token is read once by [`Reporter::new`] and only ever written into a request
//! header: it is absent from `Debug`, from every error and from the logs, and it is cut out of
//! descriptions and of any response body quoted in an error.
//!
//! GitLab refuses to post the state a status already has (HTTP 400 `Cannot transition status via
//! :run from :running`). pgitops reposts statuses after restarts and retries, so that answer is
//! taken as success when the `from` state is the very state being posted; a 400 naming another
//! `from` state is a real conflict and stays an error.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use ureq::tls::{RootCerts, TlsConfig};

/// Longest description any of the forges accepts (GitHub's limit), in characters.
pub const MAX_DESCRIPTION: usize = 140;
const TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("pgitops/", env!("CARGO_PKG_VERSION"));
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The state of one status. GitLab has no "pending" that can later turn into a result, so
/// [`State::Pending`] is sent to GitLab as `running` and [`State::Failure`] as `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Success,
    Failure,
}

/// One status for one commit.
#[derive(Debug, Clone)]
pub struct Status<'a> {
    pub sha: &'a str,
    /// `pgitops` (aggregate) or `pgitops/<cluster>`.
    pub context: String,
    pub state: State,
    /// Cut to [`MAX_DESCRIPTION`] characters when sent.
    pub description: String,
    pub target_url: Option<String>,
}

/// The forge a reporter posts to (`kind` in `[[reporter]]`; `forgejo` is read as `gitea`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    #[serde(rename = "github")]
    GitHub,
    #[serde(alias = "forgejo")]
    Gitea,
    #[serde(rename = "gitlab")]
    GitLab,
}

impl ForgeKind {
    /// `github`, `gitea` or `gitlab`.
    pub fn name(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "github",
            ForgeKind::Gitea => "gitea",
            ForgeKind::GitLab => "gitlab",
        }
    }
}

impl std::str::FromStr for ForgeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "github" => Ok(ForgeKind::GitHub),
            "gitea" | "forgejo" => Ok(ForgeKind::Gitea),
            "gitlab" => Ok(ForgeKind::GitLab),
            _ => Err(format!(
                "forge kind {s:?}: expected github, gitea or gitlab"
            )),
        }
    }
}

/// What one reporter needs: the forge, its API base URL (e.g. `https://api.github.com`,
/// `https://gitea.example/api/v1`, `https://gitlab.example/api/v4`), the repository (`owner/name`
/// on GitHub and Gitea, the project id or path on GitLab) and where its token lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub kind: ForgeKind,
    pub url: String,
    pub repo: String,
    /// The token is read from this environment variable, else from `token_file`.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
}

/// Why a status could not be posted. No variant ever holds the token.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("{forge} reporter: repo `{repo}` must be `owner/name`")]
    BadRepo { forge: &'static str, repo: String },
    #[error("{forge} reporter for `{repo}`: no token ({hint})")]
    MissingToken {
        forge: &'static str,
        repo: String,
        hint: String,
    },
    #[error("{forge} status for {sha}: HTTP {status}: {body}")]
    Http {
        forge: &'static str,
        sha: String,
        status: u16,
        body: String,
    },
    #[error("{forge} status for {sha}: {error}")]
    Network {
        forge: &'static str,
        sha: String,
        error: String,
    },
}

impl ForgeError {
    /// Network errors, 5xx and 429 may go away on their own; anything else will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            ForgeError::Network { .. } => true,
            ForgeError::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// One configured forge, ready to post statuses.
pub struct Reporter {
    pub(super) kind: ForgeKind,
    pub(super) base: String,
    pub(super) repo: String,
    token: String,
    pub(super) agent: ureq::Agent,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("kind", &self.kind.name())
            .field("base", &self.base)
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// Checks the settings and reads the token (from `token_env`, else `token_file`).
    pub fn new(cfg: &Settings) -> Result<Reporter, ForgeError> {
        let kind = cfg.kind;
        let (forge, repo) = (kind.name(), cfg.repo.trim().to_string());
        let parts: Vec<&str> = repo.split('/').collect();
        let owner_name = parts.len() == 2 && parts.iter().all(|p| !p.is_empty());
        if repo.is_empty() || (kind != ForgeKind::GitLab && !owner_name) {
            return Err(ForgeError::BadRepo { forge, repo });
        }
        let (env, file) = (cfg.token_env.as_deref(), cfg.token_file.as_deref());
        let Some(token) = crate::fsutil::secret(env, file).filter(|t| !t.trim().is_empty()) else {
            let hint = match (env, file) {
                (None, None) => "set token_env or token_file".to_string(),
                _ => format!("token_env {env:?} unset or empty, token_file {file:?} unreadable"),
            };
            return Err(ForgeError::MissingToken { forge, repo, hint });
        };
        let base = cfg.url.trim_end_matches('/').to_string();
        Ok(Reporter {
            kind,
            agent: agent(&base),
            base,
            repo,
            token,
        })
    }

    /// The forge kind: `github`, `gitea` or `gitlab`.
    pub fn forge(&self) -> &'static str {
        self.kind.name()
    }

    /// Posts one status, one attempt.
    pub fn post(&self, status: &Status) -> Result<(), ForgeError> {
        self.attempt(status).map_err(|(e, _)| e)
    }

    /// Posts one status, trying up to `attempts` times. Network errors, 5xx and 429 are retried
    /// after `first_backoff`, doubling each time (or after the forge's `Retry-After`, if longer,
    /// capped at 60 s); other errors are returned at once.
    pub fn post_with_retry(
        &self,
        status: &Status,
        attempts: u32,
        first_backoff: Duration,
    ) -> Result<(), ForgeError> {
        let mut backoff = first_backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(status) {
                Err((e, retry_after)) if e.is_retryable() && attempt < attempts.max(1) => {
                    let (forge, sha) = (self.forge(), status.sha);
                    tracing::warn!(forge, sha, attempt, error = %e, "commit status failed, retrying");
                    let wait = backoff.max(retry_after.unwrap_or_default());
                    std::thread::sleep(wait.min(MAX_BACKOFF));
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                result => return result.map_err(|(e, _)| e),
            }
        }
    }

    /// One request; on failure also the delay the forge asked for (`Retry-After` in seconds).
    /// For callers that schedule their own retries, like [`super::status_queue`].
    pub fn attempt(&self, status: &Status) -> Result<(), (ForgeError, Option<Duration>)> {
        let (forge, sha) = (self.forge(), status.sha.to_string());
        let request = self.authorized(self.agent.post(self.url(status.sha)));
        let body = self.body(status).to_string();
        let sent = request.content_type("application/json").send(body);
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => {
                let error = self.redact(&e.to_string());
                return Err((ForgeError::Network { forge, sha, error }, None));
            }
        };
        let code = response.status().as_u16();
        let context = &status.context;
        if (200..300).contains(&code) {
            tracing::debug!(forge, sha, context, "posted commit status");
            return Ok(());
        }
        let retry_after = response.headers().get("retry-after");
        let retry_after = retry_after.and_then(|v| v.to_str().ok()?.trim().parse().ok());
        let reader = response.body_mut().with_config().limit(64 * 1024);
        let text = reader.read_to_string().unwrap_or_default();
        let state = gitlab_state(status.state);
        if self.kind == ForgeKind::GitLab && code == 400 && gitlab_already_in(&text, state) {
            tracing::debug!(
                sha,
                context,
                state,
                "gitlab commit status already in this state"
            );
            return Ok(());
        }
        let body = cut(&self.redact(text.trim()), 300);
        let error = ForgeError::Http {
            forge,
            sha,
            status: code,
            body,
        };
        Err((error, retry_after.map(Duration::from_secs)))
    }

    fn url(&self, sha: &str) -> String {
        let (base, sha) = (&self.base, encode_segment(sha));
        match self.kind {
            ForgeKind::GitHub | ForgeKind::Gitea => {
                let repo: Vec<String> = self.repo.split('/').map(encode_segment).collect();
                format!("{base}/repos/{}/statuses/{sha}", repo.join("/"))
            }
            ForgeKind::GitLab => format!(
                "{base}/projects/{}/statuses/{sha}",
                encode_segment(&self.repo)
            ),
        }
    }

    fn body(&self, status: &Status) -> Value {
        let description = cut_description(&self.redact(&status.description));
        let mut body = match self.kind {
            ForgeKind::GitHub | ForgeKind::Gitea => json!({
                "state": match status.state {
                    State::Pending => "pending",
                    State::Success => "success",
                    State::Failure => "failure",
                },
                "context": status.context,
                "description": description,
            }),
            ForgeKind::GitLab => json!({
                "state": gitlab_state(status.state),
                "name": status.context,
                "description": description,
            }),
        };
        if let Some(url) = &status.target_url {
            body["target_url"] = Value::String(url.clone());
        }
        body
    }

    /// A request with the forge's user agent and authentication headers.
    pub(super) fn authorized<B>(
        &self,
        request: ureq::RequestBuilder<B>,
    ) -> ureq::RequestBuilder<B> {
        let request = request.header("User-Agent", USER_AGENT);
        match self.kind {
            ForgeKind::GitHub => request
                .header("Authorization", format!("Bearer {}", self.token))
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            ForgeKind::Gitea => request.header("Authorization", format!("token {}", self.token)),
            ForgeKind::GitLab => request.header("PRIVATE-TOKEN", self.token.as_str()),
        }
    }

    pub(super) fn redact(&self, text: &str) -> String {
        text.replace(self.token.as_str(), "[redacted]")
    }
}

/// A description cut to at most [`MAX_DESCRIPTION`] characters, ending with `…` when cut.
pub fn cut_description(text: &str) -> String {
    cut(text, MAX_DESCRIPTION)
}

pub(super) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn gitlab_state(state: State) -> &'static str {
    match state {
        State::Pending => "running",
        State::Success => "success",
        State::Failure => "failed",
    }
}

/// True when a GitLab 400 body says the status cannot transition because it already is `state`
/// (`Cannot transition status via :run from :running ...`).
fn gitlab_already_in(body: &str, state: &str) -> bool {
    let rest = body.split("Cannot transition status").nth(1).unwrap_or("");
    let from = rest.split(" from :").nth(1).unwrap_or("");
    from.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        == Some(state)
}

/// Bytes escaped in a URL path segment: all but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one URL path segment, so that a GitLab project path `group/project` becomes
/// `group%2Fproject`.
pub(super) fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// A ureq agent with a 10 s budget per request, error statuses returned as responses, no
/// redirects (a moved API endpoint is a configuration error), certificates checked against the
/// system's trust store, and the environment's proxy, except for loopback forges, which are never
/// reached through a proxy.
fn agent(base: &str) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::PlatformVerifier)
        .build();
    let mut config = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0);
    if is_loopback(base) {
        config = config.proxy(None);
    }
    config.build().into()
}

fn is_loopback(url: &str) -> bool {
    let uri = url.parse::<ureq::http::Uri>().ok();
    let host = uri.as_ref().and_then(|u| u.host()).unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse().is_ok_and(|ip: IpAddr| ip.is_loopback())
}

#[cfg(test)]
#[path = "forge_tests.rs"]
mod tests;
