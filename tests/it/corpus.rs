//! Every inventory of the shared Pigsty corpus loads and validates without errors.

use std::path::PathBuf;

use pgitops::inventory::{self, InventoryFiles};

pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("PGITOPS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pigsty")
        });
    assert!(
        dir.is_dir(),
        "corpus not found at {} (set PGITOPS_CORPUS)",
        dir.display()
    );
    dir
}

#[test]
fn every_corpus_inventory_loads_and_validates() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "expected the whole corpus, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        match inventory::load(&InventoryFiles::single(&name, &text), "corpus") {
            Err(diags) => failures.push(format!("{name}: does not parse: {}", diags[0])),
            Ok(inv) => {
                failures.extend(inv.errors().map(|d| d.to_string()));
                for w in inv.warnings() {
                    println!("{w}");
                }
                assert!(!inv.tree.hosts.is_empty(), "{name}: no hosts");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} errors:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The fast YAML reader gives exactly what yaml-rust2 gives on every corpus inventory, whole and
/// cut into the parts a plan parses, and reads most of them itself.
#[test]
fn the_fast_yaml_reader_reads_the_corpus_as_yaml_rust2_does() {
    use pgitops::inventory::{chunks, yaml};
    let shown = |r: Result<serde_yaml_ng::Value, yaml::ParseError>| format!("{r:?}");
    let (mut texts, mut fast) = (0, 0);
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut parts = vec![text.clone()];
        if let Some(split) = chunks::split(&text) {
            parts.push(split.skeleton.clone());
            parts.extend(split.chunks.iter().map(|c| c.to_string()));
        }
        for part in &parts {
            assert_eq!(
                shown(yaml::parse("p.yml", part)),
                shown(yaml::parse_reference("p.yml", part)),
                "{}: {part}",
                path.display()
            );
            texts += 1;
            fast += usize::from(yaml::reads_fast(part));
        }
    }
    println!("read fast: {fast} of {texts} texts");
    assert!(fast * 10 >= texts * 9, "read fast: only {fast} of {texts}");
}
