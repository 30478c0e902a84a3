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
