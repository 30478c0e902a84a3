//! The few Jinja/Ansible semantics Pigsty's Patroni templates rely on, over inventory values:
//! how `{{ x }}` prints a value, `| int`, `| float`, Ansible's `| bool`, and how the text of an
//! unquoted `key: {{ x }}` is then typed by a YAML 1.1 reader (Patroni reads its file with
//! PyYAML). Also the one emitter of the rendered document ([`emit`]).
//!
//! In: `serde_yaml_ng` values. Out: strings, numbers, typed scalars, YAML text. Pure.

use serde_yaml_ng::{Mapping, Number, Value};
use yaml_rust2::{Yaml, YamlEmitter};

/// What `{{ v }}` prints (Python's `str()`): `True`/`False`, `None`, numbers as Python shows them.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => number_text(n),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => {
            let inner: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Mapping(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", repr(k), repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Tagged(t) => text(&t.value),
    }
}

/// Python's `repr()` for the items of a printed list or dict.
fn repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        other => text(other),
    }
}

fn number_text(n: &Number) -> String {
    match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (None, Some(u), _) => u.to_string(),
        (_, _, Some(f)) => py_float(f),
        _ => n.to_string(),
    }
}

/// Python's `repr(float)`: `8.0`, `0.25`, `1e+16`.
fn py_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}"); // 1e16, 1.5e-5
        let (m, e) = s.split_once('e').expect("exponent");
        let e: i32 = e.parse().expect("exponent digits");
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{f:?}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Jinja's `| int`: integers, floats truncated, booleans, numeric strings; 0 otherwise.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f.trunc() as i64)
                })
                .unwrap_or(0)
        }
        Value::Tagged(t) => int(&t.value),
        _ => 0,
    }
}

/// Jinja's `| float`: numbers, booleans, numeric strings; 0.0 otherwise.
pub fn float(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse::<f64>().unwrap_or(0.0),
        Value::Tagged(t) => float(&t.value),
        _ => 0.0,
    }
}

/// Ansible's `| bool`: `true`, `yes`, `on`, `1` (any case, also as numbers) are true.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => matches!(
            s.trim().to_lowercase().as_str(),
            "yes" | "on" | "1" | "true"
        ),
        Value::Tagged(t) => truthy(&t.value),
        _ => false,
    }
}

/// Jinja's `needle in haystack`: a substring of a string, an element of a list, a key of a map.
pub fn contains(haystack: &Value, needle: &str) -> bool {
    match haystack {
        Value::String(s) => s.contains(needle),
        Value::Sequence(items) => items.iter().any(|i| i.as_str() == Some(needle)),
        Value::Mapping(m) => m.contains_key(needle),
        _ => false,
    }
}

/// The value of an unquoted `key: {{ v }}`: the printed text as a YAML 1.1 reader types a plain
/// scalar (null, booleans, decimal integers and floats), else the text as one string. Text that
/// would be YAML structure or a comment in Pigsty's file stays one string scalar here.
pub fn plain(v: &Value) -> Value {
    plain_text(&text(v))
}

/// [`plain`] for text.
pub fn plain_text(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if all_digits(digits) && (digits == "0" || !digits.starts_with('0')) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
    }
    // YAML 1.1 floats: digits '.' digits, with an exponent only if it has a sign
    if let Some((whole, frac)) = digits.split_once('.') {
        let (frac, exp) = match frac.split_once(['e', 'E']) {
            Some((f, e)) => (f, Some(e)),
            None => (frac, None),
        };
        let exp_ok = exp.is_none_or(|e| e.strip_prefix(['-', '+']).is_some_and(all_digits));
        if all_digits(whole) && (frac.is_empty() || all_digits(frac)) && exp_ok {
            if let Ok(f) = s.parse::<f64>() {
                return Value::Number(f.into());
            }
        }
    }
    Value::String(s.to_string())
}

/// A string a YAML 1.1 reader (PyYAML's resolver) would not read back as that string although
/// the emitter leaves it plain: `0b` integers, `+0x` integers, numbers with `_`, `+.inf`, and
/// dates (`2024-01-31`). Everything else it reads as a string is quoted by the emitter (YAML 1.1
/// booleans, null, numbers Rust parses, anything with `:`, a leading `-`, `.`, `=`, `<`, ...).
fn misread(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let numeric = |t: &str| {
        t.chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == '.')
    };
    let binary = body
        .strip_prefix("0b")
        .is_some_and(|b| !b.is_empty() && b.chars().all(|c| matches!(c, '0' | '1' | '_')));
    let hex = s.starts_with("+0x");
    let underscored =
        body.contains('_') && body.starts_with(|c: char| c.is_ascii_digit()) && numeric(body);
    let inf = s.starts_with('+') && matches!(body, ".inf" | ".Inf" | ".INF");
    let parts: Vec<&str> = s.split('-').collect();
    let digits = |t: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
    };
    let date = parts.len() == 3
        && digits(parts[0], 4..=4)
        && digits(parts[1], 1..=2)
        && digits(parts[2], 1..=2);
    binary || hex || underscored || inf || date
}

/// The document as YAML text that a YAML 1.1 reader (PyYAML, Patroni's) reads back as the same
/// values: `yaml-rust2`'s emitter quotes `on`, `yes`, `off`, `no` and the like, which
/// `serde_yaml_ng` writes plain. `Err(path)` names a string no quoting keeps a string.
pub fn emit(doc: &Value) -> Result<String, String> {
    let yaml = to_yaml(doc, "")?;
    let mut out = String::new();
    YamlEmitter::new(&mut out)
        .dump(&yaml)
        .map_err(|e| format!("emitter: {e}"))?;
    out.push('\n');
    Ok(out)
}

fn to_yaml(v: &Value, path: &str) -> Result<Yaml, String> {
    Ok(match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(py_float(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) if misread(s) => return Err(path.to_string()),
        Value::String(s) => Yaml::String(s.clone()),
        Value::Sequence(items) => Yaml::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_yaml(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(m) => Yaml::Hash(hash(m, path)?),
        Value::Tagged(t) => to_yaml(&t.value, path)?,
    })
}

fn hash(m: &Mapping, path: &str) -> Result<yaml_rust2::yaml::Hash, String> {
    let mut h = yaml_rust2::yaml::Hash::new();
    for (k, v) in m {
        let key = text(k);
        let at = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        h.insert(to_yaml(k, &at)?, to_yaml(v, &at)?);
    }
    Ok(h)
}
