//! The credentials of Patroni's REST API and the curl configuration that carries them: a
//! request needing authentication sends `curl -K -` this text on stdin, so neither the
//! password nor the body reaches a command line.
//!
//! In: a username, a password, a body. Out: curl's config text. Pure.

/// Basic-auth credentials of Patroni's REST API; `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RestAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RestAuth({}, <redacted>)", self.username)
    }
}

impl RestAuth {
    /// curl's configuration (`curl -K -`, read from stdin) with these credentials and, when
    /// given, the request body: every value double-quoted with curl's escapes, so that nothing
    /// of it reaches a command line.
    pub fn curl_config(&self, body: Option<&str>) -> String {
        fn quoted(s: &str) -> String {
            let mut q = String::with_capacity(s.len() + 2);
            q.push('"');
            for c in s.chars() {
                match c {
                    '\\' => q.push_str("\\\\"),
                    '"' => q.push_str("\\\""),
                    '\n' => q.push_str("\\n"),
                    '\r' => q.push_str("\\r"),
                    '\t' => q.push_str("\\t"),
                    c => q.push(c),
                }
            }
            q.push('"');
            q
        }
        let mut text = format!(
            "user = {}\n",
            quoted(&format!("{}:{}", self.username, self.password))
        );
        if let Some(b) = body {
            text += &format!("data = {}\n", quoted(b));
        }
        text
    }
}
