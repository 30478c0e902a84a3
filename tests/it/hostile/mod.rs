//! The hostile corpus (issue 9): hundreds of generated inventories ([`gen`]) through the real
//! loader (YAML -> validated model) and the plan against the empty and the base revision.
//!
//! Every case, in-process: no panic, under 10 s, every diagnostic located (file:line:column
//! inside the file) and never quoting a secret; refused or accepted as the case expects; an
//! accepted case renders every SQL script and HBA file and its hostile values come out quoted
//! ([`gen::Proof`]). A representative subset (and every non-UTF-8 file) runs through the real
//! binary on a real Git repository, `validate` and `plan`, under a 1 GiB address-space limit and
//! a 10 s timeout ([`binary`]). The 10,000-cluster and 50,000-user inventories run in-process.

mod binary;
pub mod gen;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use pgitops::diff;
use pgitops::inventory::{self, Diagnostic, Inventory, InventoryFiles};
use pgitops::plan::{self, output};
use pgitops::render::{self, hba::Target, sql};

use gen::{Case, Expect, Proof};

pub const LIMIT: Duration = Duration::from_secs(10);

/// Checks one case in-process; `Ok(refused)` or what went wrong.
fn check(case: &Case, base: &Inventory) -> Result<bool, String> {
    let Ok(text) = std::str::from_utf8(&case.text) else {
        return Ok(true); // not text: only the binary can be given it (see `binary`)
    };
    let started = Instant::now();
    let files = InventoryFiles::single("pigsty.yml", text);
    let loaded = catch_unwind(AssertUnwindSafe(|| inventory::load(&files, "hostile")))
        .map_err(|_| "the loader panicked".to_string())?;
    let diags: &[Diagnostic] = match &loaded {
        Ok(inv) => &inv.diagnostics,
        Err(d) => d,
    };
    let lines = text.lines().count() + 1;
    for d in diags {
        if d.file != "pigsty.yml" || d.line == 0 || d.column == 0 || d.line > lines {
            return Err(format!("not located in the file: {d}"));
        }
        leaks(case, &d.to_string())?;
    }
    let refused = match &loaded {
        Err(_) => true,
        Ok(inv) => !inv.is_valid(),
    };
    if let (true, Some(at), Ok(inv)) = (refused, &case.at, &loaded) {
        if !inv.errors().any(|d| d.path.contains(at.as_str())) {
            let errors: Vec<String> = inv.errors().map(|d| d.to_string()).collect();
            return Err(format!("no error at {at}: {errors:?}"));
        }
    }
    if let Ok(inv) = &loaded {
        if inv.is_valid() {
            catch_unwind(AssertUnwindSafe(|| prove(case, base, inv)))
                .map_err(|_| "planning or rendering panicked".to_string())??;
        }
    }
    if started.elapsed() > LIMIT {
        return Err(format!("took {:?}", started.elapsed()));
    }
    Ok(refused)
}

fn leaks(case: &Case, out: &str) -> Result<(), String> {
    match case.secrets.iter().find(|s| out.contains(s.as_str())) {
        Some(s) => Err(format!(
            "a secret ({} bytes) appears in the output",
            s.len()
        )),
        None => Ok(()),
    }
}

/// Plans `new` against the empty and the base revision, renders every script and every HBA
/// file, and checks the case's proofs.
fn prove(case: &Case, base: &Inventory, new: &Inventory) -> Result<(), String> {
    let empty = Inventory::empty("0");
    let mut sql_text = String::new();
    for old in [&empty, base] {
        let d = diff::diff(old, new);
        let p = plan::build(&d, old, new, &Default::default(), &Default::default());
        let report = output::Report {
            from: &old.revision,
            to: &new.revision,
            diff: &d,
            plan: &p,
            errors: &[],
            warnings: &[],
        };
        let text = output::text(&report, false);
        let json = output::json(&report);
        leaks(case, &text)?;
        leaks(case, &json)?;
        if let Some(line) = text.lines().find(|l| l.contains("cannot render")) {
            return Err(format!("accepted but not renderable: {line}"));
        }
        for a in &p.actions {
            sql_text.push_str(&a.step.to_string());
        }
    }
    let mut hba = String::new();
    for c in new.model.pgsql.values() {
        for host in c.members.keys() {
            for target in [Target::Postgres, Target::Pgbouncer] {
                let file = render::hba_for(new, c, host, target, None)
                    .map_err(|e| format!("accepted but HBA does not render: {e}"))?;
                let bad = file.lines().find(|l| {
                    let first = l.split_whitespace().next().unwrap_or("#");
                    !first.starts_with('#') && !["local", "host", "hostssl"].contains(&first)
                });
                if let Some(l) = bad {
                    return Err(format!(
                        "an HBA line that is not a rule or a comment: {l:?}"
                    ));
                }
                if c.name == "pg-meta" && target == Target::Postgres {
                    hba.push_str(&file);
                }
            }
        }
    }
    for proof in &case.proofs {
        let ok = match proof {
            Proof::Literal(v) => sql_text.contains(&sql::quote_literal(v).unwrap()),
            Proof::Ident(v) => sql_text.contains(&sql::quote_ident(v).unwrap()),
            Proof::HbaLine(v) => hba
                .lines()
                .any(|l| !l.starts_with('#') && l.split_whitespace().any(|w| w == v)),
            Proof::System(v) => {
                let value = serde_yaml_ng::Value::from(v.as_str());
                let script = sql::alter_system(&[("work_mem", &value)], &[]).unwrap();
                let lit = sql::quote_literal(v).unwrap();
                script
                    .statements
                    .iter()
                    .any(|s| s.sql.ends_with(&format!("TO {lit};")))
            }
        };
        if !ok {
            return Err(format!("proof failed: {proof:?}"));
        }
    }
    Ok(())
}

fn load_base() -> Inventory {
    let files = InventoryFiles::single("pigsty.yml", crate::support::BASE);
    inventory::load(&files, "base").expect("the base parses")
}

#[test]
fn hostile_corpus_in_process() {
    let cases = gen::corpus();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let base = load_base();
    let (mut failures, mut refused, mut accepted) = (Vec::new(), 0, 0);
    let mut slowest = (Duration::ZERO, String::new());
    for case in &cases {
        let t = Instant::now();
        match check(case, &base) {
            Ok(r) => {
                let want = case.expect == Expect::Refuse;
                if r != want {
                    let (w, g) = (
                        if want { "refused" } else { "accepted" },
                        if r { "refused" } else { "accepted" },
                    );
                    failures.push(format!("{}: expected {w}, {g}", case.name));
                }
                if r {
                    refused += 1
                } else {
                    accepted += 1
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
        if t.elapsed() > slowest.0 {
            slowest = (t.elapsed(), case.name.clone());
        }
    }
    println!(
        "hostile corpus: {} cases, {refused} refused, {accepted} accepted; slowest {} in {:?}",
        cases.len(),
        slowest.1,
        slowest.0
    );
    assert!(std::path::Path::new("/tmp/pwned").metadata().is_err());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hostile_corpus_through_the_binary() {
    let cases = gen::corpus();
    let subset: Vec<&Case> = cases
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            i % 8 == 0 || ["non-utf8", "empty", "bom", "alias-bomb", "nesting"].contains(&c.class)
        })
        .map(|(_, c)| c)
        .collect();
    let mut failures = Vec::new();
    for case in &subset {
        if let Err(e) = binary::check(case) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    println!("hostile corpus through the binary: {} cases", subset.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// 10,000 clusters and 50,000 users (one cluster) through a fresh release binary (newer than
/// every source file: `cargo build --release`, which `scripts/test.sh` runs first), `validate`
/// and `plan`, each under 1 GiB and [`LIMIT`]. Without one, in-process in this debug build at
/// 5,000 clusters and 10,000 users with a 30 s limit (a debug build is about ten times slower).
#[test]
fn hostile_big_inventories_load_and_plan_in_time() {
    if let Some(bin) = binary::fresh_release() {
        for (name, text) in gen::big(10_000, 50_000) {
            let repo = crate::support::Repo::new();
            repo.commit_inventory(&text, &name);
            for args in [&["validate"][..], &["plan", "--output", "json"]] {
                let r = binary::run_within(&bin, repo.path(), args, LIMIT)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    [0, 1].contains(&r.code),
                    "{name}: {:?} exited {}: {}",
                    args,
                    r.code,
                    r.stderr
                );
                println!(
                    "{name} ({} bytes), release `pgitops {}`: {:?}",
                    text.len(),
                    args[0],
                    r.elapsed
                );
            }
        }
        return;
    }
    println!("no fresh release binary: the big inventories run in-process, smaller");
    for (name, text) in gen::big(5_000, 10_000) {
        let started = Instant::now();
        let inv =
            inventory::load(&InventoryFiles::single("pigsty.yml", &text), "big").expect("parses");
        assert!(inv.is_valid(), "{name}: {:?}", inv.errors().next());
        let loaded = started.elapsed();
        let empty = Inventory::empty("0");
        let d = diff::diff(&empty, &inv);
        let p = plan::build(&d, &empty, &inv, &Default::default(), &Default::default());
        assert!(
            p.actions.len() >= 5_000,
            "{name}: {} actions",
            p.actions.len()
        );
        println!(
            "{name} ({} bytes), debug in-process: loaded in {loaded:?}, planned by {:?}",
            text.len(),
            started.elapsed()
        );
        assert!(
            started.elapsed() < LIMIT * 3,
            "{name} took {:?}",
            started.elapsed()
        );
    }
}
