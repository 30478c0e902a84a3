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
