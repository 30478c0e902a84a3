//! A stand-in GitHub for the pull request tests: a thread on 127.0.0.1 that keeps open pull
//! requests, issue comments and commit statuses, answers the API calls pgitops makes (list open
//! pulls, list/create/edit comments, post a status), checks the token on each, and records every
//! request so tests can count creations and edits. One request per connection.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub const TOKEN: &str = "pull-forge-token-Secret";

#[derive(Default)]
struct World {
    /// Open pull requests: number → head sha.
    open: BTreeMap<u64, String>,
    /// Comments: id → (pull, body).
    comments: BTreeMap<u64, (u64, String)>,
    /// Statuses in order: (sha, context, state, description).
    statuses: Vec<(String, String, String, String)>,
    /// Every request: (method, path).
    requests: Vec<(String, String)>,
    refused: usize,
}

#[derive(Clone)]
pub struct PullForge {
    pub url: String,
    world: Arc<Mutex<World>>,
    /// Milliseconds each comment request (list, create, edit) takes: a slow forge.
    comment_delay: Arc<AtomicU64>,
}

impl PullForge {
    pub fn start() -> PullForge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let world = Arc::new(Mutex::new(World::default()));
        let comment_delay = Arc::new(AtomicU64::new(0));
        let (w, delay) = (world.clone(), comment_delay.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let (mut length, mut auth) = (0usize, String::new());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        match k.trim().to_ascii_lowercase().as_str() {
                            "content-length" => length = v.trim().parse().unwrap_or(0),
                            "authorization" => auth = v.trim().to_string(),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if path.contains("/issues/") {
                    let ms = delay.load(Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                let (status, answer) = w.lock().unwrap().answer(&method, &path, &auth, &body);
                let text = answer.to_string();
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        PullForge {
            url,
            world,
            comment_delay,
        }
    }

    /// Makes every comment request take `ms` milliseconds from now on.
    pub fn slow_comments(&self, ms: u64) {
        self.comment_delay.store(ms, Ordering::Relaxed);
    }

    /// The `[[reporter]]` and `[pulls]` tables for the service.
    pub fn config(&self) -> String {
        format!(
            "[[reporter]]\nkind = \"github\"\nurl = {:?}\nrepo = \"acme/pg\"\ntoken_env = \"PULL_FORGE_TOKEN\"\n[pulls]\nenabled = true\n",
            self.url
        )
    }

    pub fn open(&self, number: u64, head: &str) {
        self.world
            .lock()
            .unwrap()
            .open
            .insert(number, head.to_string());
    }

    pub fn close(&self, number: u64) {
        self.world.lock().unwrap().open.remove(&number);
    }

    /// pgitops' comments on the pull request, oldest first.
    pub fn comments(&self, number: u64) -> Vec<String> {
        let w = self.world.lock().unwrap();
        w.comments
            .values()
            .filter(|(n, _)| *n == number)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The last `pgitops/plan` status on `sha`: (state, description).
    pub fn status(&self, sha: &str) -> Option<(String, String)> {
        let w = self.world.lock().unwrap();
        w.statuses
            .iter()
            .rev()
            .find(|(s, c, _, _)| s == sha && c == "pgitops/plan")
            .map(|(_, _, st, d)| (st.clone(), d.clone()))
    }

    /// How many requests had this method and a path containing `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        let w = self.world.lock().unwrap();
        w.requests
            .iter()
            .filter(|(m, p)| m == method && p.contains(part))
            .count()
    }

    /// Requests refused for a wrong or missing token.
    pub fn refused(&self) -> usize {
        self.world.lock().unwrap().refused
    }
}

impl World {
    fn answer(&mut self, method: &str, path: &str, auth: &str, body: &Value) -> (u16, Value) {
        self.requests.push((method.to_string(), path.to_string()));
        if auth != format!("Bearer {TOKEN}") {
            self.refused += 1;
            return (401, json!({"message": "Bad credentials"}));
        }
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let first_page =
            !query.contains("page=") || query.contains("page=1&") || query.ends_with("page=1");
        let segs: Vec<&str> = route.trim_start_matches('/').split('/').collect();
        match (method, segs.as_slice()) {
            ("GET", ["repos", "acme", "pg", "pulls"]) => {
                let list: Vec<Value> = if first_page {
                    self.open
                        .iter()
                        .map(|(n, h)| json!({"number": n, "head": {"sha": h}, "base": {"ref": "main"}, "state": "open"}))
                        .collect()
                } else {
                    vec![]
                };
                (200, Value::Array(list))
            }
            ("GET", ["repos", "acme", "pg", "issues", n, "comments"]) => {
                let n: u64 = n.parse().unwrap_or(0);
                let list: Vec<Value> = if first_page {
                    self.comments
                        .iter()
                        .filter(|(_, (p, _))| *p == n)
                        .map(|(id, (_, b))| json!({"id": id, "body": b}))
                        .collect()
                } else {
                    vec![]
                };
                (200, Value::Array(list))
            }
            ("POST", ["repos", "acme", "pg", "issues", n, "comments"]) => {
                let id = 1000 + self.comments.len() as u64;
                let text = body["body"].as_str().unwrap_or("").to_string();
                self.comments
                    .insert(id, (n.parse().unwrap_or(0), text.clone()));
                (201, json!({"id": id, "body": text}))
            }
            ("PATCH", ["repos", "acme", "pg", "issues", "comments", id]) => {
                let id: u64 = id.parse().unwrap_or(0);
                let text = body["body"].as_str().unwrap_or("").to_string();
                match self.comments.get_mut(&id) {
                    Some(c) => {
                        c.1 = text.clone();
                        (200, json!({"id": id, "body": text}))
                    }
                    None => (404, json!({"message": "Not Found"})),
                }
            }
            ("POST", ["repos", "acme", "pg", "statuses", sha]) => {
                let s = |k: &str| body[k].as_str().unwrap_or("").to_string();
                self.statuses
                    .push((sha.to_string(), s("context"), s("state"), s("description")));
                (201, json!({}))
            }
            _ => (404, json!({"message": "Not Found"})),
        }
    }
}
