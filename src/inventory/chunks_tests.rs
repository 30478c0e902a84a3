//! Split parsing gives exactly what a whole parse gives, and splits where it can.

use super::*;

/// What a parse gave, comparable (NaN included) and showing key order.
fn shown(r: &Result<Value, ParseError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {e}"),
    }
}

/// Split parsing of `texts` together, markers resolved, shown.
fn resolved(texts: &[&str]) -> Vec<String> {
    let files: Vec<(&str, &str)> = texts.iter().map(|t| ("p.yml", *t)).collect();
    let parsed = parse_all(&files);
    parsed
        .files
        .into_iter()
        .map(|r| shown(&r.map(|v| parsed.shared.resolve(v))))
        .collect()
}

/// Every text, alone and beside every other, parses as a whole parse does.
fn same(texts: &[&str]) {
    let whole: Vec<String> = texts
        .iter()
        .map(|t| shown(&yaml::parse("p.yml", t)))
        .collect();
    for (i, a) in texts.iter().enumerate() {
        assert_eq!(resolved(&[a])[0], whole[i], "alone: {a}");
        for (j, b) in texts.iter().enumerate() {
            let got = resolved(&[a, b]);
            assert_eq!(got[0], whole[i], "first of a pair: {a}");
            assert_eq!(got[1], whole[j], "second of a pair: {b}");
        }
    }
}

const SIMPLE: &str = "---\n# x\nall:\n  vars: {x: 1}\n  children:\n    # clusters\n    pg-a:\n      hosts: {10.0.0.1: {pg_seq: 1}}\n\n    pg-b:\n      vars:\n        pg_cluster: pg-b\n  # trailing\nother: {hosts: {h: {}}}\n";

#[test]
fn a_plain_inventory_is_cut_at_its_children() {
    let s = split(SIMPLE).expect("splits");
    assert_eq!(s.chunks.len(), 2);
    assert!(s.chunks[0].starts_with("    pg-a:\n"));
    assert!(s.chunks[1].starts_with("    pg-b:\n"));
    assert!(s.chunks[1].ends_with("  # trailing\n"));
    assert!(s.skeleton.ends_with("other: {hosts: {h: {}}}\n"));
    // Children of another length leave the same skeleton (one part for both files).
    let longer = SIMPLE.replace(
        "    pg-b:\n",
        "    pg-c:\n      hosts: {10.0.0.3: {}}\n    pg-b:\n",
    );
    assert_eq!(split(&longer).expect("splits").skeleton, s.skeleton);
    same(&[SIMPLE, &longer]);
    let other = SIMPLE.replace("pg_seq: 1", "pg_seq: 2");
    same(&[SIMPLE, &other]);
    let pair = [("p.yml", SIMPLE), ("p.yml", other.as_str())];
    assert_eq!(parse_all(&pair).joined, 2, "both joined from parts");
}

#[test]
fn documents_that_are_not_plain_are_parsed_whole() {
    for text in [
        "all:\n  children:\n    - pg-a\n",
        "all:\n  children:\n    <<: {a: 1}\n",
        "all:\n\tchildren:\n    a: 1\n",
        "all:\r\n  children:\r\n    a: 1\r\n",
        "%YAML 1.1\n---\nall:\n  children:\n    a: 1\n",
        "all: &x\n  children:\n    a: 1\n",
        "all:\n  children: &c\n    a: 1\n",
        "all:\n  children:\n    a: 1\n   b: 2\n",
        "  all:\n  children:\n    a: 1\n",
        "--- {}\nall:\n  children:\n    a: 1\n",
        "---\n---\nall:\n  children:\n    a: 1\n",
        "all:\n  children:\n    __pgitops_split_children__: 0\n",
    ] {
        assert!(split(text).is_none(), "{text:?}");
        same(&[text]);
    }
}

#[test]
fn joins_that_could_differ_fall_back_to_the_whole_parse() {
    same(&[
        // A duplicate child across chunks: the whole parse's error and position.
        "all:\n  children:\n    a: {x: 1}\n    b: 2\n    a: 3\n",
        // An anchor in one chunk used in another.
        "all:\n  children:\n    a: &x {v: 1}\n    b: *x\n",
        // An anchor of the prefix used in a chunk, and one a chunk redefines before the suffix.
        "x: &x 1\nall:\n  children:\n    a: *x\n",
        "all:\n  vars: {p: &x 1}\n  children:\n    a: {q: &x 2}\n  hosts: {h: {v: *x}}\n",
        // `children:` inside a quoted scalar of the prefix (the sentinel catches it).
        "all:\n  vars: \"a\n  children:\n    b: 1\n  \"\n  children: ~\n",
        // A quoted scalar running over a cut, and a flow collection.
        "all:\n  children:\n    a: \"x\n    b: 1\"\n",
        "all:\n  children:\n    a: [x,\n    b]\n",
        // Block scalars end at a cut either way.
        "all:\n  children:\n    a: |\n      text\n    b: 1\n",
        // Errors inside a chunk and in the skeleton keep their whole-file position.
        "all:\n  children:\n    a: {x: 1}\n    b: {y: [1, 2}\n",
        "all:\n  vars: {x: [1}\n  children:\n    a: 1\n",
        "all:\n  children:\n    a: 1\n    b: {c: 1, c: 2}\n",
        "all:\n  children:\n    a: 1\n---\nb: 2\n",
        "---\nall:\n  children:\n    a: 1\n...\n",
        "---\nall:\n  children:\n    a: 1\n...\n---\nb: 1\n",
        "all:\n  children:\n    a: 1\n  children:\n    b: 2\n",
        "all:\n  children:\n    yes: 1\n    'yes': 2\n    true: 3\n",
        "all:\n  children:\n    a:\n",
        "all:\n  children:\n   a: 1\n    b: 2\n",
    ]);
}

#[test]
fn limits_count_over_the_whole_file() {
    // Nesting: a chunk sits two levels deeper than it parses alone.
    let deep = |n: usize| {
        format!(
            "all:\n  children:\n    a: 1\n    b: {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    same(&[&deep(124), &deep(125), &deep(126), &deep(127)]);
    // Alias expansion: each chunk within the limit, the file beyond it.
    let mut doc = String::from("all:\n  children:\n");
    for c in 0..3 {
        doc.push_str(&format!(
            "    c{c}:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        ));
        for i in 1..6 {
            let refs = vec![format!("*l{}", i - 1); 10].join(", ");
            doc.push_str(&format!("      l{i}: &l{i} [{refs}]\n"));
        }
    }
    let whole = yaml::parse("p.yml", &doc).unwrap_err();
    assert!(whole.message.contains("aliases expand"), "{whole}");
    same(&[&doc]);
}
