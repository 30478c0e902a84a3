//! YAML text to a plain value tree.
//!
//! In: one file's text. Out: a `serde_yaml_ng::Value` with anchors and aliases resolved, `<<`
//! merge keys applied and Ansible tags (`!unsafe`, `!vault`) stripped to their inner value, or a
//! [`ParseError`] that carries the file's 1-based line and column.

use serde_yaml_ng::Value;

/// Why a file did not parse. `message` comes from the YAML parser and never quotes values.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub fn parse(file: &str, text: &str) -> Result<Value, ParseError> {
    let fail = |line: usize, column: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        column,
        message,
    };
    let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
        fail(line, column, parser_message(&e.to_string()))
    })?;
    value.apply_merge().map_err(|e| fail(1, 1, format!("invalid merge key (<<): {}", parser_message(&e.to_string()))))?;
    strip_tags(&mut value);
    Ok(value)
}

/// serde_yaml appends " at line L column C" to its messages; the location is reported separately.
fn parser_message(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn strip_tags(v: &mut Value) {
    match v {
        Value::Tagged(t) => {
            let mut inner = std::mem::replace(&mut t.value, Value::Null);
            strip_tags(&mut inner);
            *v = inner;
        }
        Value::Sequence(s) => s.iter_mut().for_each(strip_tags),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| strip_tags(v)),
        _ => {}
    }
}

/// A scalar rendered as text (keys like `6379` or `10.0.0.1`); `None` for collections and null.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_aliases_and_merge_keys_resolve() {
        let text = "base: &b { pg_seq: 1, pg_role: replica }\nh1: { <<: *b, pg_role: primary }\nh2: *b\n";
        let v = parse("f.yml", text).unwrap();
        assert_eq!(v["h1"]["pg_seq"], Value::from(1));
        assert_eq!(v["h1"]["pg_role"], Value::from("primary"));
        assert_eq!(v["h2"]["pg_role"], Value::from("replica"));
        assert!(v["h1"].get("<<").is_none());
    }

    #[test]
    fn tags_are_stripped() {
        let v = parse("f.yml", "a: !unsafe '{{ x }}'\n").unwrap();
        assert_eq!(v["a"], Value::from("{{ x }}"));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse("pigsty.yml", "all:\n  vars:\n    a: [1, 2\n    b: 3\n").unwrap_err();
        assert_eq!(e.file, "pigsty.yml");
        assert!(e.line >= 3, "{e}");
        let dup = parse("p.yml", "a: 1\na: 2\n").unwrap_err();
        assert_eq!(dup.line, 2, "{dup}");
    }
}
