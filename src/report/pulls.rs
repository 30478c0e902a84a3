//! Pull requests on the forge: which are open against the watched branch, and the one plan
//! comment pgitops keeps on each (created once, edited on every new head, never one per push).
//! GitHub and Gitea/Forgejo share the issue-comment API; GitLab has merge-request notes.
//!
//! In: a [`Reporter`] (forge, API base, repository, token), the branch, a pull request number
//! and the comment's Markdown. Out: the open pull requests ([`Pull`]: number and head commit)
//! and whether the comment was created or edited, or a [`PullsError`] naming the forge, what
//! was asked and the HTTP status. The token is only ever in a header; it is cut out of any
//! answer quoted in an error.

use serde_json::{json, Value};

use super::forge::{cut, encode_segment, ForgeKind, Reporter};

/// The first line of pgitops' comment: how it finds its own comment again (after a restart too).
pub const MARKER: &str = "<!-- pgitops:plan -->";

/// Pages read at most when listing (100 entries asked for each).
const MAX_PAGES: usize = 20;

/// A page shorter than this is the last: forges cap a page at 100 (GitHub, GitLab) or at
/// their configured maximum, 50 by default (Gitea/Forgejo), whatever is asked for.
const SMALLEST_FULL_PAGE: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum PullsError {
    #[error("{forge}: {what}: HTTP {status}: {body}")]
    Http {
        forge: &'static str,
        what: String,
        status: u16,
        body: String,
    },
    #[error("{forge}: {what}: {error}")]
    Network {
        forge: &'static str,
        what: String,
        error: String,
    },
    #[error("{forge}: {what}: unexpected answer: {reason}")]
    Answer {
        forge: &'static str,
        what: String,
        reason: String,
    },
}

/// An open pull (merge) request against the watched branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// GitHub/Gitea: the number; GitLab: the merge request's iid.
    pub number: u64,
    /// The head commit.
    pub head: String,
}

/// What [`upsert_comment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    Created(u64),
    Edited(u64),
    /// The comment already says exactly this.
    Unchanged(u64),
}

impl Reporter {
    fn repo_path(&self) -> String {
        match self.kind {
            ForgeKind::GitHub | ForgeKind::Gitea => {
                let parts: Vec<String> = self.repo.split('/').map(encode_segment).collect();
                format!("{}/repos/{}", self.base, parts.join("/"))
            }
            ForgeKind::GitLab => format!("{}/projects/{}", self.base, encode_segment(&self.repo)),
        }
    }

    /// One JSON request; `what` names it in errors.
    fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Value, PullsError> {
        let forge = self.forge();
        let err = |error: String| PullsError::Network {
            forge,
            what: what.to_string(),
            error,
        };
        let sent = match (method, body) {
            ("GET", _) => self.authorized(self.agent.get(url)).call(),
            ("POST", Some(b)) => self
                .authorized(self.agent.post(url))
                .content_type("application/json")
                .send(b.to_string()),
            ("PATCH", Some(b)) => self
                .authorized(self.agent.patch(url))
                .content_type("application/json")
                .send(b.to_string()),
            ("PUT", Some(b)) => self
                .authorized(self.agent.put(url))
                .content_type("application/json")
                .send(b.to_string()),
            _ => unreachable!("pulls: {method} without a body is never sent"),
        };
        let mut response = sent.map_err(|e| err(self.redact(&e.to_string())))?;
        let status = response.status().as_u16();
        let reader = response.body_mut().with_config().limit(16 * 1024 * 1024);
        let text = reader.read_to_string().map_err(|e| err(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(PullsError::Http {
                forge,
                what: what.to_string(),
                status,
                body: cut(&self.redact(text.trim()), 300),
            });
        }
        serde_json::from_str(&text).map_err(|e| PullsError::Answer {
            forge,
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// All pages of a list.
    fn list(&self, url: &str, what: &str) -> Result<Vec<Value>, PullsError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let sep = if url.contains('?') { '&' } else { '?' };
            let page_url = format!("{url}{sep}per_page=100&limit=100&page={page}");
            let items = match self.call("GET", &page_url, None, what)? {
                Value::Array(items) => items,
                other => {
                    return Err(PullsError::Answer {
                        forge: self.forge(),
                        what: what.to_string(),
                        reason: format!("expected a list, got {}", kind_of(&other)),
                    })
                }
            };
            let n = items.len();
            out.extend(items);
            if n < SMALLEST_FULL_PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// The open pull requests whose base is `branch`.
    pub fn open_pulls(&self, branch: &str) -> Result<Vec<Pull>, PullsError> {
        let repo = self.repo_path();
        let what = format!("open pull requests against {branch}");
        let (url, number, head, base): (String, &str, &[&str], &[&str]) = match self.kind {
            ForgeKind::GitHub | ForgeKind::Gitea => (
                format!("{repo}/pulls?state=open"),
                "number",
                &["head", "sha"],
                &["base", "ref"],
            ),
            ForgeKind::GitLab => (
                format!("{repo}/merge_requests?state=opened"),
                "iid",
                &["sha"],
                &["target_branch"],
            ),
        };
        let at = |v: &Value, path: &[&str]| {
            path.iter()
                .try_fold(v, |v, k| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let mut pulls = Vec::new();
        for item in self.list(&url, &what)? {
            if at(&item, base).as_deref() != Some(branch) {
                continue;
            }
            let (Some(n), Some(head)) = (item.get(number).and_then(Value::as_u64), at(&item, head))
            else {
                continue;
            };
            pulls.push(Pull { number: n, head });
        }
        Ok(pulls)
    }

    fn comments_url(&self, number: u64) -> String {
        match self.kind {
            ForgeKind::GitHub | ForgeKind::Gitea => {
                format!("{}/issues/{number}/comments", self.repo_path())
            }
            ForgeKind::GitLab => format!("{}/merge_requests/{number}/notes", self.repo_path()),
        }
    }

    fn comment_url(&self, number: u64, id: u64) -> String {
        match self.kind {
            ForgeKind::GitHub | ForgeKind::Gitea => {
                format!("{}/issues/comments/{id}", self.repo_path())
            }
            ForgeKind::GitLab => {
                format!("{}/merge_requests/{number}/notes/{id}", self.repo_path())
            }
        }
    }

    /// pgitops' comment on the pull request (the first that starts with [`MARKER`]): id, body.
    pub fn find_comment(&self, number: u64) -> Result<Option<(u64, String)>, PullsError> {
        let what = format!("comments of #{number}");
        let found = self
            .list(&self.comments_url(number), &what)?
            .into_iter()
            .find_map(|c| {
                let body = c.get("body")?.as_str()?;
                body.starts_with(MARKER)
                    .then(|| Some((c.get("id")?.as_u64()?, body.to_string())))?
            });
        Ok(found)
    }

    /// Creates pgitops' comment on the pull request, or edits it (`known`: its id and body, if
    /// already found). `body` must start with [`MARKER`].
    pub fn upsert_comment(
        &self,
        number: u64,
        known: Option<(u64, String)>,
        body: &str,
    ) -> Result<Posted, PullsError> {
        debug_assert!(body.starts_with(MARKER));
        let payload = json!({ "body": body });
        match known {
            Some((id, old)) if old == body => Ok(Posted::Unchanged(id)),
            Some((id, _)) => {
                let what = format!("editing comment {id} of #{number}");
                let method = if self.kind == ForgeKind::GitLab {
                    "PUT"
                } else {
                    "PATCH"
                };
                self.call(method, &self.comment_url(number, id), Some(payload), &what)?;
                Ok(Posted::Edited(id))
            }
            None => {
                let what = format!("commenting on #{number}");
                let made = self.call("POST", &self.comments_url(number), Some(payload), &what)?;
                let id =
                    made.get("id")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| PullsError::Answer {
                            forge: self.forge(),
                            what,
                            reason: "the new comment has no id".into(),
                        })?;
                Ok(Posted::Created(id))
            }
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
