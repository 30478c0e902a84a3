//! PyYAML's (YAML 1.1) implicit typing of plain scalars: what Ansible reads `yes`, `0755`,
//! `1e5` or `190:20:30` as.
//!
//! In: a plain scalar's text. Out: null, a boolean, a number or the string itself. Pure.

use serde_yaml_ng::{Number, Value};

/// PyYAML's (YAML 1.1) implicit resolution of a plain scalar.
pub fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Number(f64::INFINITY.into())
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Number(f64::NEG_INFINITY.into()),
        ".nan" | ".NaN" | ".NAN" => return Value::Number(f64::NAN.into()),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::String(text);
    }
    match number(&text) {
        Some(n) => Value::Number(n),
        None => Value::String(text),
    }
}

fn number(text: &str) -> Option<Number> {
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = |s: &str, ok: fn(u8) -> bool| {
        !s.is_empty() && s.bytes().all(|b| ok(b) || b == b'_') && s.bytes().any(ok)
    };
    let int = |s: &str, radix: u32| -> Option<Number> {
        let clean: String = s.chars().filter(|c| *c != '_').collect();
        let v = i128::from_str_radix(&clean, radix).ok()?;
        let v = if neg { -v } else { v };
        i64::try_from(v)
            .map(Number::from)
            .ok()
            .or_else(|| u64::try_from(v).map(Number::from).ok())
    };
    if let Some(b) = body.strip_prefix("0b") {
        return digits(b, |c| c == b'0' || c == b'1')
            .then(|| int(b, 2))
            .flatten();
    }
    if let Some(h) = body.strip_prefix("0x") {
        return digits(h, |c| c.is_ascii_hexdigit())
            .then(|| int(h, 16))
            .flatten();
    }
    if body.len() > 1 && body.starts_with('0') && digits(body, |c| (b'0'..=b'7').contains(&c)) {
        return int(&body[1..], 8);
    }
    if body == "0" || (digits(body, |c| c.is_ascii_digit()) && !body.starts_with('0')) {
        return int(body, 10);
    }
    if body.contains(':') {
        return sexagesimal(body, neg);
    }
    float(body, neg)
}

/// `190:20:30` (base 60), as YAML 1.1 reads it.
fn sexagesimal(body: &str, neg: bool) -> Option<Number> {
    let mut parts = body.split(':');
    let head = parts.next()?;
    if head.is_empty()
        || head.starts_with('0')
        || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let mut v: i64 = head.replace('_', "").parse().ok()?;
    for p in parts {
        if p.is_empty()
            || p.len() > 2
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<i64>().ok()? > 59
        {
            return None;
        }
        v = v.checked_mul(60)?.checked_add(p.parse().ok()?)?;
    }
    Some(Number::from(if neg { -v } else { v }))
}

/// `[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` or `\.[0-9_]+([eE][-+][0-9]+)?`
fn float(body: &str, neg: bool) -> Option<Number> {
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = mantissa.split_once('.')?;
    let ok_int = int_part.is_empty() && !frac.is_empty()
        || int_part.bytes().next().is_some_and(|b| b.is_ascii_digit());
    let all = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !ok_int
        || !all(int_part)
        || !all(frac)
        || (int_part.is_empty() && !frac.bytes().any(|b| b.is_ascii_digit()))
    {
        return None;
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let v: f64 = body.replace('_', "").parse().ok()?;
    Some(Number::from(if neg { -v } else { v }))
}
