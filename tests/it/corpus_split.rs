//! Split parsing (`inventory::chunks`) against whole parsing, over every inventory the project
//! has: the shared Pigsty corpus, the examples repo, the test inventories, the hostile corpus
//! and big generated inventories, each alone, beside itself and beside edited copies of itself.
//! Values, errors and error positions must be exactly the same.

use std::path::PathBuf;

use pgitops::inventory::{self, chunks, yaml, InventoryFiles};
use serde_yaml_ng::Value;

use crate::corpus::corpus_dir;
use crate::hostile::gen;

fn shown(r: &Result<Value, yaml::ParseError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {e}"),
    }
}

/// Copies of `text` with one line changed, removed, repeated, or indented differently.
fn edits(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for at in [lines.len() / 3, lines.len() / 2, lines.len() * 4 / 5] {
        if at >= lines.len() {
            continue;
        }
        let edit = |f: &dyn Fn(&str) -> Vec<String>| {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            let new = f(lines[at]);
            l.splice(at..=at, new);
            l.join("\n") + "\n"
        };
        out.push(edit(&|l| vec![format!("{l}1")]));
        out.push(edit(&|_| vec![]));
        out.push(edit(&|l| vec![l.to_string(), l.to_string()]));
        out.push(edit(&|l| vec![format!(" {l}")]));
    }
    out
}

/// Every inventory: name, text, and whether it is from the hostile corpus (or big).
fn inventories() -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.push(root.join("examples-repo/pigsty.yml"));
    paths.push(root.join("tests/it/support/base.yml"));
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        out.push((p.display().to_string(), text, false));
    }
    for case in gen::corpus() {
        if let Ok(text) = String::from_utf8(case.text.clone()) {
            out.push((case.name.clone(), text, true));
        }
    }
    out.extend(gen::big(300, 300).into_iter().map(|(n, t)| (n, t, true)));
    out
}

#[test]
fn corpus_split_parsing_is_whole_parsing() {
    let (mut compared, mut joined, mut failures) = (0, 0, Vec::new());
    for (name, text, hostile) in inventories() {
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
        let mut variants = vec![text.clone()];
        // The hostile corpus with fewer edits, and big ones with one: debug builds are slow.
        let mut more = edits(&text);
        more.truncate(if text.len() > 200_000 {
            1
        } else if hostile {
            4
        } else {
            12
        });
        variants.extend(more);
        let whole: Vec<String> = variants
            .iter()
            .map(|t| shown(&yaml::parse("pigsty.yml", t)))
            .collect();
        for (i, v) in variants.iter().enumerate() {
            // Each variant beside the original (the plan's case: one edit between revisions).
            let parsed = chunks::parse_all(&[("pigsty.yml", &text), ("pigsty.yml", v)]);
            compared += 2;
            joined += parsed.joined;
            let shared = &parsed.shared;
            let got: Vec<_> = parsed
                .files
                .into_iter()
                .map(|r| r.map(|v| shared.resolve(v)))
                .collect();
            if shown(&got[0]) != whole[0] || shown(&got[1]) != whole[i] {
                failures.push(format!("{name} (edit {i})"));
            }
        }
    }
    println!("split parsing: {compared} parses compared, {joined} joined from parts");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        joined * 4 > compared,
        "too few joined: {joined} of {compared}"
    );
}

/// Whole inventories (tree, model, diagnostics with their positions) loaded as a pair are what
/// loading each alone gives, for the shared corpus, the examples, the test base and the hostile
/// corpus, each beside an edited copy of itself.
#[test]
fn corpus_split_loading_is_whole_loading() {
    let mut compared = 0;
    let mut failures = Vec::new();
    for (name, text, hostile) in inventories() {
        if text.len() > 200_000 {
            continue;
        }
        let a = InventoryFiles::single("pigsty.yml", &text);
        for edited in edits(&text).into_iter().take(if hostile { 1 } else { 4 }) {
            let b = InventoryFiles::single("pigsty.yml", &edited);
            let (pa, pb) = inventory::load_pair((&a, "old"), (&b, "new"));
            let (wa, wb) = (inventory::load(&a, "old"), inventory::load(&b, "new"));
            compared += 2;
            if format!("{pa:?}") != format!("{wa:?}") || format!("{pb:?}") != format!("{wb:?}") {
                failures.push(name.clone());
            }
        }
    }
    println!("split loading: {compared} loads compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
