//! `POST /hook`: a GitHub, Gitea/Forgejo or GitLab webhook. In: the request's headers and its
//! body (already read, within the size limit). Out: a [`Verdict`] — the hook is off (no secret),
//! the signature is bad or missing, the hook triggers a fetch, or its delivery id was seen before.
//!
//! The signature is an HMAC-SHA256 of the body (GitHub's `X-Hub-Signature-256: sha256=<hex>`,
//! Gitea's `X-Gitea-Signature: <hex>`, Forgejo's `X-Forgejo-Signature: <hex>`), or, from GitLab,
//! which signs nothing, the secret itself in `X-Gitlab-Token` (compared in constant time; it
//! proves the sender knows the secret, not that the body is intact, which is enough for a request
//! whose only effect is a fetch from the configured remote). A correctly signed delivery whose id
//! (`X-GitHub-Delivery`, `X-Gitea-Delivery`, `X-Forgejo-Delivery`, `X-Gitlab-Event-UUID`) is
//! among the last ids remembered is a replay or a redelivery: it is answered, but does not
//! trigger another fetch. Ids are remembered only once their delivery's signature checked out,
//! so an unsigned request cannot fill the window. A delivery without an id is never a duplicate.
//! The forges do not sign the id header, so the window stops redeliveries and naive replays; a
//! fetch is idempotent, so a replay under a new id costs one fetch and changes nothing.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use sha2::Sha256;

/// Signature headers, in the order they are looked for.
const SIGNATURES: [&str; 3] = [
    "X-Hub-Signature-256",
    "X-Gitea-Signature",
    "X-Forgejo-Signature",
];

/// GitLab's secret token header.
const GITLAB_TOKEN: &str = "X-Gitlab-Token";

/// Delivery id headers, in the order they are looked for.
const DELIVERIES: [&str; 4] = [
    "X-GitHub-Delivery",
    "X-Gitea-Delivery",
    "X-Forgejo-Delivery",
    "X-Gitlab-Event-UUID",
];

/// Checks a push webhook's signature: GitHub's `X-Hub-Signature-256: sha256=<hex>` or Gitea's
/// `X-Gitea-Signature: <hex>`, an HMAC-SHA256 of the body.
pub fn signature_ok(secret: &[u8], body: &[u8], header: &str) -> bool {
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .unwrap_or(header.trim());
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Checks GitLab's `X-Gitlab-Token` against the secret, in constant time (both are run through
/// an HMAC keyed by the secret and the MACs compared).
pub fn token_ok(secret: &[u8], token: &str) -> bool {
    let mac = |data: &[u8]| {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
        m.update(data);
        Some(m)
    };
    match (mac(token.as_bytes()), mac(secret)) {
        (Some(given), Some(expected)) => given
            .verify_slice(&expected.finalize().into_bytes())
            .is_ok(),
        _ => false,
    }
}

/// What a hook request comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No secret is configured: the hook is off.
    Disabled,
    /// The signature is missing or does not match the body.
    BadSignature,
    /// Signed and new: a fetch is triggered.
    Fetch,
    /// Signed, but this delivery id was seen already: no fetch.
    Duplicate(String),
}

/// The last delivery ids seen, oldest first; at most `capacity` of them.
#[derive(Debug)]
struct Window {
    order: VecDeque<String>,
    seen: HashSet<String>,
    capacity: usize,
}

impl Window {
    /// Remembers `id`; false if it was remembered already.
    fn insert(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.seen.insert(id.to_string());
        true
    }
}

/// The hook's secret and its window of delivery ids.
pub struct Hook {
    secret: Option<String>,
    window: Mutex<Window>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn header<'h>(headers: &'h HeaderMap, names: &[&str]) -> Option<&'h str> {
    names
        .iter()
        .find_map(|n| headers.get(*n))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl Hook {
    /// A hook checked with `secret` (none: the hook is off) that remembers the last `window`
    /// delivery ids.
    pub fn new(secret: Option<String>, window: usize) -> Hook {
        Hook {
            secret,
            window: Mutex::new(Window {
                order: VecDeque::new(),
                seen: HashSet::new(),
                capacity: window.max(1),
            }),
        }
    }

    /// Whether the hook is on (a secret is configured).
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// Decides what a request with `headers` and `body` comes to, and remembers its delivery id.
    pub fn check(&self, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let Some(secret) = &self.secret else {
            return Verdict::Disabled;
        };
        let signed = match header(headers, &SIGNATURES) {
            Some(sig) => signature_ok(secret.as_bytes(), body, sig),
            None => header(headers, &[GITLAB_TOKEN])
                .is_some_and(|token| token_ok(secret.as_bytes(), token)),
        };
        if !signed {
            return Verdict::BadSignature;
        }
        match header(headers, &DELIVERIES).filter(|id| !id.is_empty()) {
            Some(id) if !self.window.lock().expect("delivery window").insert(id) => {
                Verdict::Duplicate(id.to_string())
            }
            _ => Verdict::Fetch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures() {
        let body = b"{\"ref\":\"refs/heads/main\"}";
        let sig = sign(b"s3cret", body);
        assert!(signature_ok(b"s3cret", body, &format!("sha256={sig}")));
        assert!(signature_ok(b"s3cret", body, &sig));
        assert!(!signature_ok(b"other", body, &sig));
        assert!(!signature_ok(b"s3cret", b"tampered", &sig));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn deliveries_are_remembered_once_signed() {
        let body = b"{}";
        let sig = sign(b"k", body);
        let hook = Hook::new(Some("k".into()), 2);
        let signed = |id: &str| {
            headers(&[
                ("x-gitea-signature", sig.as_str()),
                ("x-gitea-delivery", id),
            ])
        };
        // an unsigned request with an id does not take the id
        let forged = headers(&[("x-gitea-signature", "00"), ("x-gitea-delivery", "a")]);
        assert_eq!(hook.check(&forged, body), Verdict::BadSignature);
        assert_eq!(hook.check(&signed("a"), body), Verdict::Fetch);
        assert_eq!(
            hook.check(&signed("a"), body),
            Verdict::Duplicate("a".into())
        );
        // GitHub's header names; the window keeps the last two ids
        let gh = |id: &str| {
            headers(&[
                ("x-hub-signature-256", &format!("sha256={sig}")),
                ("x-github-delivery", id),
            ])
        };
        assert_eq!(hook.check(&gh("b"), body), Verdict::Fetch);
        assert_eq!(hook.check(&gh("c"), body), Verdict::Fetch);
        assert_eq!(
            hook.check(&gh("a"), body),
            Verdict::Fetch,
            "a was forgotten"
        );
        // no id: never a duplicate
        let no_id = headers(&[("x-forgejo-signature", sig.as_str())]);
        assert_eq!(hook.check(&no_id, body), Verdict::Fetch);
        assert_eq!(hook.check(&no_id, body), Verdict::Fetch);
        assert_eq!(Hook::new(None, 8).check(&no_id, body), Verdict::Disabled);
    }

    #[test]
    fn gitlab_tokens_are_the_secret_itself() {
        assert!(token_ok(b"k", "k"));
        assert!(!token_ok(b"k", "K"));
        assert!(!token_ok(b"k", ""));
        assert!(!token_ok(b"k", "k "));
        let hook = Hook::new(Some("k".into()), 4);
        let gl = |token: &str, id: &str| {
            headers(&[("x-gitlab-token", token), ("x-gitlab-event-uuid", id)])
        };
        assert_eq!(hook.check(&gl("wrong", "u1"), b"{}"), Verdict::BadSignature);
        assert_eq!(hook.check(&gl("k", "u1"), b"{}"), Verdict::Fetch);
        assert_eq!(
            hook.check(&gl("k", "u1"), b"{}"),
            Verdict::Duplicate("u1".into())
        );
        // a signature header present and wrong is not rescued by a token
        let both = headers(&[
            ("x-hub-signature-256", "sha256=00"),
            ("x-gitlab-token", "k"),
        ]);
        assert_eq!(hook.check(&both, b"{}"), Verdict::BadSignature);
    }
}
