//! Typed checks of single values against a [`Kind`]: what PostgreSQL, the SQL renderer or the
//! node would refuse later is refused here, at the value's position.
//!
//! In: a YAML value, its [`Kind`] and the field's name. Out: `Ok`, or a [`Problem`] whose message
//! names what was expected and what was found (never a secret's value; names are shown cut to
//! 64 characters). A wrong type is a problem, never "absent": only null means "not set".

use serde_yaml_ng::Value;

use crate::inventory::fields::{is_guc_name, split_guc_list, Kind};
use crate::inventory::positions::Seg;
use crate::inventory::secrets::is_secret_key;

/// Why a value is refused. `quote_hint`: a string was expected and YAML read a boolean or a
/// number; the diagnostic then shows the token as written, quoted.
#[derive(Debug)]
pub(super) struct Problem {
    pub(super) message: String,
    pub(super) quote_hint: bool,
    /// The node inside the checked value that is wrong (a parameter, a list item).
    pub(super) inner: Option<Seg>,
}

impl Problem {
    pub(super) fn new(message: String) -> Self {
        Problem {
            message,
            quote_hint: false,
            inner: None,
        }
    }
    pub(super) fn inside(mut self, seg: Seg) -> Self {
        self.inner.get_or_insert(seg);
        self
    }
}

type Checked = Result<(), Problem>;

/// The YAML type of a value, as users call it.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
}

/// A name for a message: Debug-escaped, at most 64 characters.
pub(super) fn shown(s: &str) -> String {
    if s.chars().count() <= 64 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(64).collect();
        format!("{head:?}...")
    }
}

/// `key` must be a string: `Err` names the YAML type found (with the quote hint for scalars).
pub(super) fn string<'v>(key: &str, v: &'v Value) -> Result<&'v str, Problem> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(Problem {
            message: format!("`{key}`: expected a string, got {}", type_name(other)),
            quote_hint: matches!(other, Value::Bool(_) | Value::Number(_)) && !is_secret_key(key),
            inner: None,
        }),
    }
}

/// Text PostgreSQL can store: no NUL byte.
fn no_nul(key: &str, s: &str) -> Checked {
    match s.contains('\0') {
        true => Err(Problem::new(format!(
            "`{key}` contains a NUL byte, which PostgreSQL cannot store"
        ))),
        false => Ok(()),
    }
}

fn one_line(key: &str, s: &str) -> Checked {
    no_nul(key, s)?;
    match s.chars().any(char::is_control) {
        true => Err(Problem::new(format!(
            "`{key}` must be one line of text without control characters (newline, tab, ...)"
        ))),
        false => Ok(()),
    }
}

/// An SQL name (role, database, schema, extension, tablespace): 1 to 63 bytes, no control
/// characters. PostgreSQL truncates longer names silently, so two names could become one.
pub(super) fn sql_name(key: &str, s: &str) -> Checked {
    one_line(key, s)?;
    if s.is_empty() || s.len() > 63 {
        return Err(Problem::new(format!(
            "`{key}` {} must be 1 to 63 bytes long (PostgreSQL truncates longer names), it has {}",
            shown(s),
            s.len()
        )));
    }
    Ok(())
}

/// Checks `v` (not null) against `kind`.
pub(super) fn check(key: &str, kind: Kind, v: &Value) -> Checked {
    let wrong = |expected: &str| {
        Err(Problem::new(format!(
            "`{key}` must be {expected}, got {}",
            type_name(v)
        )))
    };
    match kind {
        Kind::Any | Kind::Entries(_) | Kind::Params(_) => Ok(()),
        Kind::Bool if v.is_bool() => Ok(()),
        Kind::Bool => wrong("true or false (unquoted)"),
        Kind::Int { min, max } => match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            Some(n) => Err(Problem::new(format!(
                "`{key}` must be an integer from {min} to {max}{}, got {n}",
                if min == -1 { " (-1: no limit)" } else { "" }
            ))),
            None => wrong("an integer (unquoted)"),
        },
        Kind::Text => no_nul(key, string(key, v)?),
        Kind::Line => one_line(key, string(key, v)?),
        Kind::Name => sql_name(key, string(key, v)?),
        Kind::Date => {
            let s = string(key, v)?;
            let shape = s.len() == 10
                && s.bytes().enumerate().all(|(i, b)| {
                    matches!(i, 4 | 7) == (b == b'-') && (b == b'-' || b.is_ascii_digit())
                });
            match shape && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
                true => Ok(()),
                false => Err(Problem::new(format!(
                    "`{key}` must be a date YYYY-MM-DD, got {}",
                    shown(s)
                ))),
            }
        }
        Kind::OneOf(allowed) | Kind::Keyword(allowed) => {
            let s = string(key, v)?;
            let any_case = matches!(kind, Kind::Keyword(_));
            match allowed
                .iter()
                .any(|a| *a == s || (any_case && a.eq_ignore_ascii_case(s)))
            {
                true => Ok(()),
                false => Err(Problem::new(format!(
                    "`{key}` must be one of {}, got {}",
                    allowed.join(", "),
                    shown(s)
                ))),
            }
        }
    }
}

/// A `parameters` mapping (`ALTER ROLE|DATABASE|SYSTEM ... SET`): GUC names, and values that are
/// one line of text, a number or a boolean; a list-valued GUC (`list_gucs`) also takes a list of
/// strings, or a string that splits as PostgreSQL splits such a list.
pub(super) fn parameters(key: &str, v: &Value, list_gucs: &[&str]) -> Checked {
    let map = match v {
        Value::Null => return Ok(()),
        Value::Mapping(m) => m,
        other => {
            return Err(Problem::new(format!(
                "`{key}` must be a mapping of parameter names to values, got {}",
                type_name(other)
            )))
        }
    };
    for (k, value) in map {
        let name = k.as_str().unwrap_or_default();
        parameter(key, name, k, value, list_gucs).map_err(|p| p.inside(Seg::Key(name.into())))?;
    }
    Ok(())
}

fn parameter(key: &str, name: &str, k: &Value, value: &Value, list_gucs: &[&str]) -> Checked {
    {
        if !is_guc_name(name) {
            let shown = k.as_str().map_or_else(|| type_name(k).to_string(), shown);
            return Err(Problem::new(format!(
                "`{key}` key {shown} is not a parameter name (letters, digits, `_`, `.`; starting with a letter or `_`)"
            )));
        }
        let field = format!("{key}.{name}");
        let list = list_gucs.iter().any(|g| g.eq_ignore_ascii_case(name));
        let scalar = |v: &Value| match v {
            Value::String(s) => one_line(&field, s),
            Value::Number(_) | Value::Bool(_) => Ok(()),
            other => Err(Problem::new(format!(
                "`{field}` must be one line of text, a number or a boolean, got {}",
                type_name(other)
            ))),
        };
        match value {
            Value::Null => {}
            Value::Sequence(items) if list => {
                for item in items {
                    match item {
                        Value::String(s) => one_line(&field, s)?,
                        other => {
                            return Err(Problem::new(format!(
                                "`{field}` must be a list of strings, got a {} in it",
                                type_name(other)
                            )))
                        }
                    }
                }
            }
            Value::String(s) if list && !s.eq_ignore_ascii_case("default") => {
                one_line(&field, s)?;
                if split_guc_list(s).is_none() {
                    return Err(Problem::new(format!(
                        "`{field}` must be a comma-separated list of names, \"quoted\" or not"
                    )));
                }
            }
            Value::Number(_) | Value::Bool(_) if list => {
                return Err(Problem::new(format!(
                    "`{field}` takes a list: a comma-separated string or a list of strings, got {}",
                    type_name(value)
                )))
            }
            other => scalar(other)?,
        }
    }
    Ok(())
}
