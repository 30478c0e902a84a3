//! The one place that quotes SQL: identifiers as `"..."`, literals as `'...'` / `E'...'`.
//!
//! In: inventory text and the field it came from (named in errors). Out: the quoted SQL token, or
//! an `SqlError` when the text cannot be quoted safely (NUL; identifiers also empty or > 63 bytes).

use super::{invalid, Result};

/// `"..."` with `"` doubled. Refuses NUL, empty and names longer than 63 bytes.
pub fn quote_ident(s: &str) -> Result<String> {
    ident("identifier", s)
}

/// `'...'` with `'` doubled; `E'...'` with `\` doubled too when `s` holds a backslash. Refuses NUL.
pub fn quote_literal(s: &str) -> Result<String> {
    literal("literal", s)
}

pub(super) fn ident(field: &str, s: &str) -> Result<String> {
    if s.is_empty() || s.len() > 63 || s.contains('\0') {
        return Err(invalid(field, "a name of 1 to 63 bytes without NUL"));
    }
    Ok(format!("\"{}\"", s.replace('"', "\"\"")))
}

/// `(identifier, literal)` for a name used both ways.
pub(super) fn names(field: &str, s: &str) -> Result<(String, String)> {
    Ok((ident(field, s)?, literal(field, s)?))
}

pub(super) fn literal(field: &str, s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(invalid(field, "a string without NUL bytes"));
    }
    let body = s.replace('\'', "''");
    Ok(match s.contains('\\') {
        true => format!("E'{}'", body.replace('\\', "\\\\")),
        false => format!("'{body}'"),
    })
}

/// A libpq connection-string value: `'...'` with `\\` and `'` backslash-escaped, so a
/// database name like `a=b` or `x'y` stays one `dbname` value for psql. Refuses NUL.
pub fn conninfo_value(s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(invalid("connection value", "a string without NUL bytes"));
    }
    Ok(format!(
        "'{}'",
        s.replace('\\', "\\\\").replace('\'', "\\'")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b; c").unwrap(), "\"a\"\"b; c\"");
        assert_eq!(quote_ident("ünï\nx").unwrap(), "\"ünï\nx\"");
        let pwn = "it's; $(touch /tmp/pwned)";
        assert_eq!(quote_literal(pwn).unwrap(), "'it''s; $(touch /tmp/pwned)'");
        assert_eq!(quote_literal("a\\'b\nü").unwrap(), "E'a\\\\''b\nü'");
        assert!(quote_ident("a\0").is_err() && quote_literal("a\0").is_err());
        assert!(quote_ident("").is_err() && quote_ident(&"x".repeat(64)).is_err());
        assert!(quote_ident(&"é".repeat(31)).is_ok() && quote_ident(&"é".repeat(32)).is_err());
        assert_eq!(conninfo_value("a=b x'y\\z").unwrap(), "'a=b x\\'y\\\\z'");
    }
}
