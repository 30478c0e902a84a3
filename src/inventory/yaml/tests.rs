//! Tests of `inventory::yaml`.
use super::*;

fn p(text: &str) -> Value {
    parse("f.yml", text).unwrap()
}

#[test]
fn an_alias_bomb_is_refused_at_the_alias_naming_the_anchor_line() {
    // Nine aliases per level, nine levels: 9^9 values if expanded (a "billion laughs").
    let mut doc = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 9].join(", ");
        doc.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    let e = parse("pigsty.yml", &doc).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(e.message.contains("aliases expand to more than"), "{e}");
    assert!(e.message.contains("anchor on line"), "{e}");
    assert!(e.line > 1, "{e}");
    // A document that uses aliases within reason still loads.
    let ok = parse("pigsty.yml", "a: &a {x: 1}\nb: *a\nc: {<<: *a, y: 2}\n").unwrap();
    assert_eq!(ok["c"]["x"], Value::from(1));
}

#[test]
fn anchors_aliases_and_merge_keys_resolve() {
    let v = p("base: &b { pg_seq: 1, pg_role: replica }\nh1: { <<: *b, pg_role: primary }\nh2: *b\nh3:\n  <<: [ *b, { x: 1 } ]\n  pg_seq: 3\n");
    assert_eq!(v["h1"]["pg_seq"], Value::from(1));
    assert_eq!(
        v["h1"]["pg_role"],
        Value::from("primary"),
        "explicit keys beat merged ones"
    );
    assert_eq!(v["h2"]["pg_role"], Value::from("replica"));
    assert!(v["h1"].get("<<").is_none());
    assert_eq!(v["h3"]["pg_seq"], Value::from(3));
    assert_eq!(v["h3"]["x"], Value::from(1));
    assert_eq!(v["h3"]["pg_role"], Value::from("replica"));
}

#[test]
fn yaml_1_1_scalars_like_ansible() {
    let v = p("a: yes\nb: Off\nc: 'yes'\nd: 0755\ne: 1e5\nf: 1.5\ng: 10.10.10.10\nh: ~\ni: 6379\nj: 0x1F\nk: -3\nl: v4.5.0\nm: 1_000\nn: 1:30\no: .5\np: !unsafe '{{ x }}'\nq: !!str 12\nr: +.inf\ns: 00\n");
    assert_eq!(v["a"], Value::Bool(true));
    assert_eq!(v["b"], Value::Bool(false));
    assert_eq!(v["c"], Value::from("yes"));
    assert_eq!(v["d"], Value::from(493));
    assert_eq!(v["e"], Value::from("1e5"));
    assert_eq!(v["f"], Value::from(1.5));
    assert_eq!(v["g"], Value::from("10.10.10.10"));
    assert_eq!(v["h"], Value::Null);
    assert_eq!(v["i"], Value::from(6379));
    assert_eq!(v["j"], Value::from(31));
    assert_eq!(v["k"], Value::from(-3));
    assert_eq!(v["l"], Value::from("v4.5.0"));
    assert_eq!(v["m"], Value::from(1000));
    assert_eq!(v["n"], Value::from(90));
    assert_eq!(v["o"], Value::from(0.5));
    assert_eq!(v["p"], Value::from("{{ x }}"));
    assert_eq!(v["q"], Value::from("12"));
    assert_eq!(v["r"], Value::from(f64::INFINITY));
    assert_eq!(v["s"], Value::from(0));
}

#[test]
/// Found by the fuzzer (split against whole parsing): yaml-rust2 reads a NUL as the end of
/// the input, so a NUL in a comment silently dropped the rest of the file.
fn a_control_character_is_refused_where_it_is() {
    let e = parse("p.yml", "all:\n  # a\0b\n  vars: { x: 1 }\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 6), "{e}");
    assert!(e.message.contains("#x0000"), "{e}");
    assert!(parse("p.yml", "a: \"\\0 escaped is data\"\n").is_ok());
}

#[test]
fn errors_carry_line_and_column() {
    let e = parse("pigsty.yml", "all:\n  vars:\n    a: [1, 2\n    b: 3\n").unwrap_err();
    assert_eq!(e.file, "pigsty.yml");
    assert!(e.line >= 3, "{e}");
    let dup = parse("p.yml", "a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
    assert_eq!((dup.line, dup.column), (4, 3), "{dup}");
    let alias = parse("p.yml", "a: *nope\n").unwrap_err();
    assert_eq!(alias.line, 1);
    let docs = parse("p.yml", "a: 1\n---\nb: 2\n").unwrap_err();
    assert!(docs.message.contains("more than one"), "{docs}");
    let deep = parse("p.yml", &format!("{}{}", "[".repeat(200), "]".repeat(200))).unwrap_err();
    assert!(deep.message.contains("nesting"), "{deep}");
    assert_eq!(
        p("a: { '<<': 1 }\n")["a"]["<<"],
        Value::from(1),
        "a quoted << is an ordinary key"
    );
    let bad_merge = parse("p.yml", "a:\n  <<: 3\n").unwrap_err();
    assert!(bad_merge.message.contains("merge"), "{bad_merge}");
}

#[test]
fn large_and_nested_collections_keep_order_and_refuse_duplicates() {
    // More keys than a small mapping holds: order kept, a late duplicate still refused.
    let keys: Vec<String> = (0..40).map(|i| format!("k{}", 39 - i)).collect();
    let doc: String = keys
        .iter()
        .map(|k| format!("{k}: [{k}, [{k}]]\n"))
        .collect();
    let v = p(&doc);
    let got: Vec<&str> = v
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(got, keys);
    assert_eq!(v["k7"][1][0], Value::from("k7"));
    let dup = parse("p.yml", &format!("{doc}k3: 1\n")).unwrap_err();
    assert_eq!((dup.line, dup.column), (41, 1), "{dup}");
    let dup = parse("p.yml", "a:\n  - {x: 1, y: [1, {z: 2, z: 3}]}\n").unwrap_err();
    assert_eq!(dup.line, 2, "{dup}");
    // Lists of mappings of lists, and merges into a small mapping.
    let v = p("b: &b {m: 1}\nl: [{a: [1, 2], <<: *b}, [3, [4]], {}]\n");
    assert_eq!(v["l"][0]["m"], Value::from(1));
    assert_eq!(v["l"][0]["a"][1], Value::from(2));
    assert_eq!(v["l"][1][1][0], Value::from(4));
    assert!(v["l"][2].as_mapping().unwrap().is_empty());
}

#[test]
fn empty_text_is_null() {
    assert_eq!(p(""), Value::Null);
    assert_eq!(p("# only a comment\n"), Value::Null);
}
