//! Tests of the fast reader: it gives exactly what yaml-rust2 gives, or leaves the text to it.
use super::super::{parse, parse_reference, reads_fast};
use serde_yaml_ng::Value;

/// The fast reader's value for `text`, or `None` when it leaves the text to yaml-rust2.
fn fast(text: &str) -> Option<Value> {
    reads_fast(text).then(|| parse("f.yml", text).expect("read fast"))
}

fn shown(text: &str) -> String {
    format!("{:?}", parse("f.yml", text))
}

fn same_as_reference(text: &str) {
    assert_eq!(
        shown(text),
        format!("{:?}", parse_reference("f.yml", text)),
        "{text:?}"
    );
}

#[test]
fn plainly_laid_out_yaml_is_read_fast_and_as_yaml_rust2_reads_it() {
    let texts = [
        "all:\n  vars:\n    admin_ip: 10.10.10.10\n    version: v4.5.0\n  children:\n    pg-meta:\n      hosts: { 10.10.10.10: { pg_seq: 1, pg_role: primary } }\n      vars:\n        pg_cluster: pg-meta\n",
        "pg_users:\n  - { name: dbuser_meta ,password: DBUser.Meta   ,pgbouncer: true ,roles: [dbrole_admin]    ,comment: pigsty admin user }\n  - {name: x, roles: [], comment: 'it''s \"q\"'}\n",
        "a:\n- x\n- y\nb: 1\n",
        "- a: 1\n  b:\n  - x\n  c: [1, 2]\n- \n- z\n-\n  k: v\n",
        "- a:\n    b: 1\n  c: 2\n- a:\n  - x\n  - y\n  b: 1\n",
        "k: \"tab\\there \\\"q\\\" back\\\\slash \\/ nl\\n\"\n'quoted key': 1\n\"dq key\"  : 2\n",
        "# comment\n\nk: v # trailing\nl: a#b\nm: 'x' # c\nn:   # nothing\no:\n",
        "sexa: 190:20:30\nints: [0755, 0x1F, 1_000, -5, +3, 1e5, 1.5e+3, .5, yes, No, on, OFF, ~, null]\n",
        "url: http://example.com:8080/x?y=1\nweird: a[b]{c},d\nneg: -1\ndots: ...x\ncolon: a:b\n",
        "base: &b 1\n",
        "m:\n  <<: {a: 1, b: 2}\n  b: 3\n",
        "中文: 值 # 注释\nkey: \"ünïcödé\"\n",
        "",
        "# only a comment\n",
        "scalar\n",
        "  indented:\n    deeper: 1\n  next: 2\n",
        "a: {b: {c: [d, {e: f}]}, g: []}\nh: {}\n",
        "trailing:    spaced   \n",
        "k: v\n\n\n",
        "k: v",
        "- x\n",
        "x: 'a: b'\ny: \"c # d\"\n",
        "---\na: 1\n",
        "# c\n--- # c\na: 1\n...\n# end\n",
        "---\n",
        "a: --storage x\n",
    ];
    for text in texts {
        same_as_reference(text);
        if text.contains('&') {
            assert!(fast(text).is_none(), "anchors are left to yaml-rust2");
            continue;
        }
        let got = fast(text).unwrap_or_else(|| panic!("not read fast: {text:?}"));
        assert_eq!(got, parse_reference("f.yml", text).unwrap(), "{text:?}");
    }
}

#[test]
fn anything_else_is_left_to_yaml_rust2_with_the_same_result() {
    let deep = format!("{}1{}\n", "[".repeat(300), "]".repeat(300));
    let texts = [
        "a:\tb\n",
        "\u{feff}all: 1\n",
        "---\n---\na: 1\n",
        "a: 1\n...\nb: 2\n",
        "--- a: 1\n",
        "---x: 1\n",
        "%YAML 1.1\n---\na: 1\n",
        "a: &x 1\nb: *x\n",
        "a: !unsafe '{{ x }}'\n",
        "a: |\n  text\n",
        "a: >\n  text\n",
        "a: multi\n  line\n",
        "- multi\n  line\n",
        "a: [1,\n  2]\n",
        "? complex\n: key\n",
        "a: b: c\n",
        "a: [x, ]\n",
        "a: {x}\n",
        "a: {x: }\n",
        "a: \"\\x41\"\n",
        "a: 'unterminated\n",
        "a: 'x'#c\n",
        "a: 1\na: 2\n",
        "a: 1\n  b: 2\n",
        "a:\n  b: 1\n c: 2\n",
        "- a\nb: 1\n",
        "a: - b\n",
        "- - a\n",
        "a: [b: c]\n",
        "a: {b:c}\n",
        "a: @x\n",
        "a: `x`\n",
        "a: b\r\n",
        "a: \u{2028}\n",
        deep.as_str(),
        "a:\n  - x\n  b: 1\n",
        "[a]: 1\n",
        "a: {[b]: c}\n",
    ];
    for text in texts {
        same_as_reference(text);
        assert!(fast(text).is_none(), "read fast: {text:?}");
    }
}

/// Random texts from YAML's building blocks, laid out in lines and indented at random: whatever
/// the fast reader reads must be what yaml-rust2 reads (values and errors), and it must read a
/// fair share of them (so the comparison is not vacuous).
#[test]
fn random_layouts_read_as_yaml_rust2_reads_them() {
    const TOKENS: &[&str] = &[
        "a",
        "b1",
        "key",
        "- ",
        "-",
        ": ",
        ":",
        " #c",
        "#",
        "'q'",
        "\"d\"",
        "'it''s'",
        "\"e\\\"\\n\"",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ",",
        " ",
        "  ",
        "yes",
        "0755",
        "~",
        "x y",
        "-1",
        "--x",
        "é",
        "[a, b]",
        "{k: v}",
        "{ n: x ,p: y }",
        "- k: v",
        "k:",
        "k: v",
        "<<: {m: 1}",
        "a:b",
        "1.5",
        "'a: b'",
        "?",
        "!",
        "&",
        "*",
        "|",
        ">",
        "---",
        "...",
        "%",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let (mut fast_read, runs) = (0, 40_000);
    for _ in 0..runs {
        let mut text = String::new();
        let shaped = next(2) == 0;
        let mut indent = 0usize;
        for line in 0..1 + next(10) {
            indent = match next(8) {
                0 | 1 => indent + 2,
                2 | 3 => indent.saturating_sub(2),
                4 => next(7),
                _ => indent,
            };
            text.push_str(&" ".repeat(indent));
            if shaped {
                // Mostly well formed: one line of a mapping or a sequence, distinct keys.
                let key = format!("k{}", line * 7 + next(3));
                let value = TOKENS[next(TOKENS.len())];
                text.push_str(&match next(7) {
                    0 => format!("{key}: {value}"),
                    1 => format!("{key}:"),
                    2 => format!("- {value}"),
                    3 => format!("- {key}: {value}"),
                    4 => "-".to_string(),
                    5 => format!("{key}: [{value}, {}]", TOKENS[next(TOKENS.len())]),
                    _ => format!("{key}: {{x: {value}}}"),
                });
            } else {
                for _ in 0..1 + next(4) {
                    text.push_str(TOKENS[next(TOKENS.len())]);
                }
            }
            text.push('\n');
        }
        same_as_reference(&text);
        fast_read += usize::from(reads_fast(&text));
    }
    assert!(
        fast_read * 20 > runs,
        "read fast: only {fast_read} of {runs}"
    );
}
