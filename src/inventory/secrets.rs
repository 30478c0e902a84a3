//! Which inventory values are secrets, and their redaction.
//!
//! In: a variable or field name and a value. Out: the value with every secret replaced by
//! [`REDACTED`]: values under password/secret/token-like keys, and the password part of
//! credentials embedded in URLs (`postgres://user:pass@host`). Plans, notes, logs and errors
//! render values only through [`redact`].

use serde_yaml_ng::Value;

pub const REDACTED: &str = "<redacted>";

/// Whether a variable or field with this name holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("access_key") || k.ends_with("_username") || k == "pg_pwd_enc" {
        return false;
    }
    [
        "password",
        "passwd",
        "secret",
        "token",
        "cipher_pass",
        "private_key",
        "credential",
        "api_key",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with("_pass")
        || k.ends_with("_key")
        || k == "pass"
        || k == "key"
}

/// Redacts `value`, found under `key` (if any).
pub fn redact(key: Option<&str>, value: &Value) -> Value {
    if key.is_some_and(is_secret_key) && !value.is_null() {
        return Value::from(REDACTED);
    }
    match value {
        Value::String(s) => Value::from(redact_url_password(s)),
        Value::Sequence(items) => Value::Sequence(items.iter().map(|v| redact(None, v)).collect()),
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| {
                    let name = k
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| super::yaml::scalar_text(k));
                    (k.clone(), redact(name.as_deref(), v))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every secret value written anywhere in an inventory (for redacting tools' output).
pub fn collect(tree: &super::ansible::Tree) -> Vec<String> {
    fn walk(key: Option<&str>, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if key.is_some_and(is_secret_key) => out.push(s.clone()),
            Value::Sequence(items) => items.iter().for_each(|i| walk(None, i, out)),
            Value::Mapping(m) => m.iter().for_each(|(k, v)| walk(k.as_str(), v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let layers = std::iter::once(&tree.all_vars)
        .chain(tree.groups.values().map(|g| &g.vars))
        .chain(tree.hosts.values().map(|h| &h.own));
    for layer in layers {
        for (k, var) in layer.iter() {
            walk(Some(k), &var.value, &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `scheme://user:secret@host` becomes `scheme://user:<redacted>@host`, anywhere in a string.
pub fn redact_url_password(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "pg_admin_password",
            "minio_secret_key",
            "secret_key",
            "etcd_root_password",
            "s3_key_secret",
            "cipher_pass",
            "GITHUB_TOKEN",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "name",
            "access_key",
            "pg_admin_username",
            "pg_pwd_enc",
            "comment",
            "minio_access_key",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn nested_values_and_urls_are_redacted() {
        let v: Value = serde_yaml_ng::from_str(
            "{ name: u, password: 'p1;$(x)', env: { URL: 'postgres://u:DBUser.X@10.0.0.1:5432/db?x=1', N: 'http://host/a' }, users: [ { access_key: a, secret_key: s2 } ] }",
        )
        .unwrap();
        let text = serde_yaml_ng::to_string(&redact(None, &v)).unwrap();
        for secret in ["p1;$(x)", "DBUser.X", "s2"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("postgres://u:<redacted>@10.0.0.1:5432/db"),
            "{text}"
        );
        assert!(text.contains("http://host/a"));
        assert!(text.contains("access_key: a"));
    }
}
