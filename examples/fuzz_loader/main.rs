//! A self-contained, structure-aware mutation fuzzer for the loader (YAML -> validated model ->
//! plan -> rendered SQL and HBA), for the stable toolchain: no nightly, no libFuzzer, no download.
//!
//! In: seed inventories (`--seeds DIR`, repeatable; `.yml`/`.yaml` files, recursively), a time
//! budget (`--seconds`, default 600), an RNG seed (`--seed`), an output directory (`--out`, default
//! `target/fuzz`). Each input is a mutation of a seed or of an earlier input: lines deleted,
//! duplicated, moved, re-indented or spliced from another input; scalars swapped for other types
//! and for injection strings; keys swapped for the fields pgitops reads; anchors, aliases, merge
//! keys, BOMs, tabs, brackets and raw bytes inserted. What counts as a crash, saved under
//! `OUT/crashes/` with the reason in its first line (a YAML comment):
//! * a panic anywhere (caught per input);
//! * a diagnostic without file:line:column inside the file;
//! * an inventory that validates but whose SQL or HBA does not render ("passed by validate,
//!   failed later");
//! * an input that runs longer than 10 s (a watchdog saves it and exits with status 3).
//!
//! `--replay DIR` runs saved inputs once, to check a fix.
//!
//! Memory: `setrlimit(RLIMIT_AS)` caps the process at 2 GiB, so an allocation bomb aborts the
//! process instead of the machine; the input being run is always in `OUT/current.yml` (see
//! `scripts/fuzz.sh`, which keeps it as a crash). Inputs slower than `--slow-ms` (default 1000)
//! are reported and saved under `OUT/slow/`. Prints execs, execs/s, crashes and the slowest input.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{Seek, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgitops::inventory::{self, chunks, yaml, Inventory, InventoryFiles};
use pgitops::render::{self, hba::Target};
use pgitops::{diff, plan};

mod mutate;

use mutate::{mutate, Rng};

const TIMEOUT: Duration = Duration::from_secs(10);
const MEMORY: u64 = 2 << 30;

/// A parse result as text, for comparing two ways of parsing.
fn shown(r: Result<serde_yaml_ng::Value, yaml::ParseError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {e}"),
    }
}

/// Split parsing (a plan's two revisions, `parent` and `text`, parsed in shared chunks) must
/// give exactly what whole parsing gives, values and error positions, and whole parsing (with
/// the fast reader) exactly what yaml-rust2 alone gives.
fn split_is_whole(parent: &str, text: &str) -> Result<(), String> {
    let split = chunks::parse_all(&[("pigsty.yml", parent), ("pigsty.yml", text)]);
    let shared = split.shared.clone();
    let got: Vec<String> = split
        .files
        .into_iter()
        .map(|r| shown(r.map(|v| shared.resolve(v))))
        .collect();
    for (i, t) in [parent, text].into_iter().enumerate() {
        let whole = shown(yaml::parse("pigsty.yml", t));
        if got[i] != whole {
            return Err(format!(
                "split parsing differs from whole parsing (revision {i})"
            ));
        }
        if whole != shown(yaml::parse_reference("pigsty.yml", t)) {
            return Err(format!(
                "the fast YAML reader differs from yaml-rust2 (revision {i})"
            ));
        }
    }
    Ok(())
}

/// Runs one input (mutated from `parent`) through the pipeline; `Err(reason)` is a crash.
fn run(text: &str, parent: &str, seeds: &[Inventory]) -> Result<bool, String> {
    split_is_whole(parent, text)?;
    let files = InventoryFiles::single("pigsty.yml", text);
    let loaded = inventory::load(&files, "fuzz");
    let lines = text.lines().count() + 1;
    let diags = match &loaded {
        Ok(inv) => &inv.diagnostics,
        Err(d) => d,
    };
    if let Some(d) = diags
        .iter()
        .find(|d| d.file != "pigsty.yml" || d.line == 0 || d.column == 0 || d.line > lines)
    {
        return Err(format!("diagnostic not located in the file: {d}"));
    }
    let Ok(new) = loaded else { return Ok(false) };
    if !new.is_valid() {
        return Ok(false);
    }
    let empty = Inventory::empty("0");
    let old = if seeds.is_empty() {
        &empty
    } else {
        &seeds[text.len() % seeds.len()]
    };
    for old in [&empty, old] {
        let d = diff::diff(old, &new);
        let p = plan::build(&d, old, &new, &Default::default(), &Default::default());
        for a in &p.actions {
            let preview = a.step.to_string();
            if let Some(l) = preview.lines().find(|l| l.contains("cannot render")) {
                return Err(format!("validated but not renderable: {l}"));
            }
        }
    }
    for c in new.model.pgsql.values() {
        for host in c.members.keys() {
            for t in [Target::Postgres, Target::Pgbouncer] {
                if let Err(e) = render::hba_for(&new, c, host, t, None) {
                    return Err(format!("validated but HBA does not render: {e}"));
                }
            }
        }
    }
    Ok(true)
}

fn seeds(dirs: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = dirs.to_vec();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            if let Ok(t) = std::fs::read_to_string(&p) {
                out.push(t);
            }
        }
    }
    out.sort();
    out
}

fn save(dir: &Path, reason: &str, text: &str) -> PathBuf {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    std::fs::create_dir_all(dir).expect("output directory");
    let path = dir.join(format!("{:016x}.yml", h.finish()));
    let first = reason.lines().next().unwrap_or_default();
    std::fs::write(&path, format!("# {first}\n{text}")).expect("write crash");
    path
}

/// `--replay DIR`: runs every saved input once (after a fix) and exits 1 if any still crashes.
fn replay(dir: &Path) {
    let (mut n, mut bad) = (0, 0);
    for text in seeds(&[dir.to_path_buf()]) {
        n += 1;
        match catch_unwind(AssertUnwindSafe(|| run(&text, &text, &[]))) {
            Ok(Ok(_)) => {}
            Ok(Err(reason)) => {
                bad += 1;
                println!("still crashes: {reason}");
            }
            Err(_) => {
                bad += 1;
                println!("still panics: {}", text.lines().next().unwrap_or_default());
            }
        }
    }
    println!("replayed {n} inputs: {bad} still crash");
    std::process::exit(i32::from(bad > 0));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut secs, mut seed, mut slow_ms) = (600u64, 1u64, 1000u128);
    let mut out = PathBuf::from("target/fuzz");
    let mut dirs = Vec::new();
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => secs = val().parse().expect("seconds"),
            "--seed" => seed = val().parse().expect("seed"),
            "--slow-ms" => slow_ms = val().parse().expect("milliseconds"),
            "--out" => out = PathBuf::from(val()),
            "--seeds" => dirs.push(PathBuf::from(val())),
            "--replay" => return replay(&PathBuf::from(val())),
            _ => panic!("unknown argument {a}"),
        }
    }
    let lim = libc::rlimit {
        rlim_cur: MEMORY,
        rlim_max: MEMORY,
    };
    // SAFETY: setrlimit on this process with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
    let mut pool = seeds(&dirs);
    assert!(!pool.is_empty(), "no seed inventories found in {dirs:?}");
    let seed_invs: Vec<Inventory> = pool
        .iter()
        .filter_map(|t| inventory::load(&InventoryFiles::single("pigsty.yml", t), "seed").ok())
        .filter(Inventory::is_valid)
        .collect();
    let n_seeds = pool.len();
    std::fs::create_dir_all(&out).expect("output directory");
    let mut current = std::fs::File::create(out.join("current.yml")).expect("current.yml");
    // Watchdog: an input running past the timeout is saved as a crash and the process exits.
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    let clock = Instant::now();
    {
        let started_ms = started_ms.clone();
        let out = out.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = started_ms.load(Ordering::Relaxed);
            if s != u64::MAX && clock.elapsed().as_millis() as u64 > s + TIMEOUT.as_millis() as u64
            {
                let text = std::fs::read_to_string(out.join("current.yml")).unwrap_or_default();
                let p = save(&out.join("crashes"), "timeout: ran past 10 s", &text);
                eprintln!("TIMEOUT: input saved as {}", p.display());
                std::process::exit(3);
            }
        });
    }
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut execs, mut crashes, mut valid, mut fast) = (0u64, 0u64, 0u64, 0u64);
    let mut slowest = (0u128, String::new());
    while Instant::now() < deadline {
        let parent = rng.below(pool.len());
        let other = rng.below(pool.len());
        let mut text = mutate(&mut rng, &pool[parent], &pool[other]);
        for _ in 0..rng.below(4) {
            text = mutate(&mut rng, &text, &pool[other]);
        }
        current
            .set_len(0)
            .and_then(|_| current.rewind())
            .and_then(|_| current.write_all(text.as_bytes()))
            .expect("current.yml");
        started_ms.store(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| run(&text, &pool[parent], &seed_invs)));
        let ms = t.elapsed().as_millis();
        started_ms.store(u64::MAX, Ordering::Relaxed);
        execs += 1;
        fast += u64::from(yaml::reads_fast(&text));
        let verdict = match result {
            Ok(Ok(ok)) => Ok(ok),
            Ok(Err(reason)) => Err(reason),
            Err(p) => Err(format!(
                "panic: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        };
        match verdict {
            Ok(is_valid) => {
                valid += u64::from(is_valid);
                // Keep some inputs as parents: valid ones, and a few others for broken shapes.
                if pool.len() < n_seeds + 2_000
                    && text.len() < 256 << 10
                    && (is_valid || rng.below(50) == 0)
                {
                    pool.push(text.clone());
                }
            }
            Err(reason) => {
                crashes += 1;
                let p = save(&out.join("crashes"), &reason, &text);
                eprintln!("CRASH ({reason}): {}", p.display());
            }
        }
        if ms > slowest.0 {
            slowest = (ms, text.clone());
        }
        if ms > slow_ms {
            let p = save(&out.join("slow"), &format!("{ms} ms"), &text);
            eprintln!("SLOW ({ms} ms): {}", p.display());
        }
    }
    let secs = clock.elapsed().as_secs_f64();
    println!(
        "seeds: {n_seeds} ({} valid), corpus grown to {}",
        seed_invs.len(),
        pool.len()
    );
    println!("execs: {execs}, valid inventories: {valid}, read by the fast YAML reader: {fast}");
    println!("execs/s: {:.0}", execs as f64 / secs);
    println!("crashes: {crashes}");
    let kept = save(
        &out.join("slowest"),
        &format!("{} ms", slowest.0),
        &slowest.1,
    );
    println!(
        "slowest input: {} ms ({} bytes, {})",
        slowest.0,
        slowest.1.len(),
        kept.display()
    );
    std::process::exit(if crashes > 0 { 1 } else { 0 });
}
