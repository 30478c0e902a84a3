//! pgitops' `pg_hba.conf` and `pgb_hba.conf` equal what Pigsty's own templates render, for
//! every host of every inventory of the shared corpus and of `hba_pigsty/edge.yml`.
//!
//! Pigsty's side: `hba_pigsty/render.py` runs under ansible's own Python and renders
//! `../shared/pigsty/roles/pgsql/templates/{pg_hba.conf,pgbouncer.hba}` with ansible's inventory
//! loader, variable manager (Pigsty's role defaults, the precedence of `pgsql.yml`) and the
//! `template` action's templating, once for all inventories, connecting nowhere and writing
//! nothing but its stdout (ansible's temp files go to this test's temp dir). pgitops' side: the
//! library function behind `pgitops render` ([`node_file`]); the binary itself is run on the
//! edge inventory from a real Git repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pgitops::inventory::{self, InventoryFiles};
use pgitops::ops::render::{node_file, NodeFile};

use crate::corpus::corpus_dir;
use crate::support::{pgitops, Repo};

pub(crate) fn pigsty_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/pigsty");
    assert!(
        dir.join("roles/pgsql/templates/pg_hba.conf").is_file(),
        "Pigsty's tree not found at {}",
        dir.display()
    );
    dir
}

fn edge_inventory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/hba_pigsty/edge.yml")
}

/// The Python interpreter ansible runs under (its launcher's shebang), so that the script
/// imports the same ansible; a missing ansible fails the test.
fn ansible_python() -> String {
    let launcher = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("ansible"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("ansible is not installed: run scripts/setup.sh (it installs ansible and python3-jmespath; CI does)")
        });
    let text = std::fs::read_to_string(&launcher).expect("read the ansible launcher");
    let shebang = text.lines().next().unwrap_or_default();
    let python = shebang.trim_start_matches("#!").trim();
    assert!(
        !python.is_empty() && shebang.starts_with("#!"),
        "cannot tell ansible's interpreter from {}",
        launcher.display()
    );
    python.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `script` (beside this file) run by ansible's own Python in `tmp`: only ansible's YAML
/// inventory plugin, an unparsable inventory an error, ansible's home, temp and config inside
/// `tmp`. The caller adds the script's arguments.
pub(crate) fn ansible_python_cmd(script: &str, tmp: &Path) -> Command {
    let python = ansible_python();
    let mut words = python.split(' ');
    let mut cmd = Command::new(words.next().unwrap());
    cmd.args(words)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/it")
                .join(script),
        )
        .current_dir(tmp)
        .env("ANSIBLE_INVENTORY_ENABLED", "yaml")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")
        .env("ANSIBLE_HOME", tmp.join("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", tmp.join("ansible-tmp"))
        .env("ANSIBLE_CONFIG", tmp.join("no-ansible.cfg"))
        .env("TMPDIR", tmp);
    cmd
}

/// Pigsty's renderings: inventory path -> host -> file name -> Ok(text) | Err(ansible error).
type Rendered = serde_json::Map<String, serde_json::Value>;

fn render_with_ansible(tmp: &Path, inventories: &[PathBuf]) -> Rendered {
    let mut cmd = ansible_python_cmd("hba_pigsty/render.py", tmp);
    cmd.arg(pigsty_dir()).args(inventories);
    let out = cmd.output().expect("run ansible's python");
    assert!(
        out.status.success(),
        "rendering Pigsty's templates failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("render.py prints JSON")
}

/// The comparable part of a file: Pigsty's header (file banner, timestamp, alias comments, up
/// to the line `# admin   :  <name>` and the blank line after it) and pgitops' one header line
/// and blank line are dropped; both carry host identity and, for Pigsty, the render time, and
/// are comments PostgreSQL and pgbouncer ignore. Everything after is compared byte for byte.
fn after_pigsty_header(text: &str) -> &str {
    let at = text
        .find("\n# admin   :  ")
        .expect("Pigsty's header ends with the admin alias");
    let rest = &text[at + 1..];
    let rest = &rest[rest.find('\n').expect("line end") + 1..];
    rest.strip_prefix('\n')
        .expect("a blank line after the header")
}

fn after_pgitops_header(text: &str) -> &str {
    let rest = text.split_once('\n').expect("a header line").1;
    rest.strip_prefix('\n')
        .expect("a blank line after the header")
}

fn rule_lines(body: &str) -> usize {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("# "))
        .count()
}

#[test]
fn pgitops_renders_hba_files_like_pigstys_templates() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    // ansible's YAML plugin wants a .yml name: copies named after their index
    let mut sources: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sources.sort();
    assert!(sources.len() >= 50, "expected the whole corpus");
    sources.push(edge_inventory());
    let copies: Vec<PathBuf> = (0..sources.len())
        .map(|i| {
            let p = tmp.path().join(format!("inv{i:02}.yml"));
            std::fs::copy(&sources[i], &p).unwrap();
            p
        })
        .collect();
    let pigsty = render_with_ansible(tmp.path(), &copies);
    let ansible_time = started.elapsed();

    let (mut hosts, mut files, mut lines, mut failures) = (0, 0, 0, Vec::new());
    for (src, copy) in sources.iter().zip(&copies) {
        let name = src.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(src).unwrap();
        let inv = inventory::load(&InventoryFiles::single(&name, &text), "corpus")
            .unwrap_or_else(|d| panic!("{name} does not load: {}", d[0]));
        let errors: Vec<String> = inv.errors().map(ToString::to_string).collect();
        assert!(errors.is_empty(), "{name}: {}", errors.join("\n"));
        let theirs = pigsty[&copy.to_string_lossy().to_string()]
            .as_object()
            .unwrap();
        let ours: BTreeSet<&String> = inv
            .model
            .pgsql
            .values()
            .flat_map(|c| c.members.keys())
            .collect();
        let their_hosts: BTreeSet<&String> = theirs.keys().collect();
        assert_eq!(ours, their_hosts, "{name}: the PGSQL hosts differ");
        for (host, rendered) in theirs {
            hosts += 1;
            for file in [NodeFile::PgHba, NodeFile::PgbHba] {
                let want = &rendered[file.name()];
                let Some(want) = want["ok"].as_str() else {
                    failures.push(format!("{name} {host} {}: Pigsty: {want}", file.name()));
                    continue;
                };
                let got = match node_file(&inv, host, file) {
                    Ok(t) => t,
                    Err(e) => {
                        failures.push(format!("{name} {host}: pgitops: {e}"));
                        continue;
                    }
                };
                let (want, got) = (after_pigsty_header(want), after_pgitops_header(&got));
                files += 1;
                lines += rule_lines(want);
                if want != got {
                    failures.push(format!(
                        "{name} {host} {}:\n--- Pigsty\n{want}\n--- pgitops\n{got}",
                        file.name()
                    ));
                }
            }
        }
    }
    let edge = pigsty[&copies.last().unwrap().to_string_lossy().to_string()]
        .as_object()
        .unwrap();
    assert_eq!(edge.len(), 4, "the edge inventory has 4 PGSQL hosts");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "{} inventories, {hosts} hosts, {files} files, {lines} rule lines equal; \
         ansible {:.1}s, total {:.1}s",
        sources.len(),
        ansible_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(hosts >= 100 && lines >= 3000, "too little compared");
}

/// `pgitops render` prints the same file from a repository, refuses unknown hosts and files
/// with exit code 2, and a revision option selects the inventory.
#[test]
fn render_command_prints_the_file() {
    let repo = Repo::new();
    let edge = std::fs::read_to_string(edge_inventory()).unwrap();
    let first = repo.commit_inventory(&edge, "edge");
    let inv = inventory::load(&InventoryFiles::single("pigsty.yml", &edge), "t").unwrap();
    for (host, file) in [
        ("10.10.10.12", "pg_hba.conf"),
        ("10.10.10.21", "pgb_hba.conf"),
    ] {
        let r = pgitops(repo.path(), &["render", "--host", host, file]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let want = node_file(&inv, host, NodeFile::parse(file).unwrap()).unwrap();
        assert_eq!(r.stdout, want);
    }
    let r = pgitops(
        repo.path(),
        &["render", "--host", "10.10.10.12", "pg_hba.conf"],
    );
    assert!(r.stdout.contains("10.10.10.99/32"), "host-level admin_ip");
    // a later commit changes the file; --revision renders the earlier one
    let changed = edge.replace("10.10.10.99", "10.10.10.98");
    repo.commit_inventory(&changed, "admin ip");
    let args = |rev: &'static str| {
        [
            "render",
            "--host",
            "10.10.10.12",
            "--revision",
            rev,
            "pg_hba.conf",
        ]
    };
    let head = pgitops(repo.path(), &args("HEAD"));
    assert!(head.stdout.contains("10.10.10.98/32") && !head.stdout.contains("10.10.10.99"));
    let old = pgitops(
        repo.path(),
        &[
            "render",
            "--host",
            "10.10.10.12",
            "--revision",
            &first,
            "pg_hba.conf",
        ],
    );
    assert!(old.stdout.contains("10.10.10.99/32"), "{}", old.stderr);

    let r = pgitops(
        repo.path(),
        &["render", "--host", "10.9.9.9", "pg_hba.conf"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("host `10.9.9.9` is not in the inventory"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    let r = pgitops(
        repo.path(),
        &["render", "--host", "10.10.10.3", "pg_hba.conf"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not a member of a PGSQL cluster"),
        "{}",
        r.stderr
    );
    let r = pgitops(
        repo.path(),
        &["render", "--host", "10.10.10.11", "postgresql.conf"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("expected one of: pg_hba.conf, pgb_hba.conf"),
        "{}",
        r.stderr
    );
    // an inventory with errors renders nothing
    repo.commit_inventory(&edge.replace("pg_role: offline", "pg_role: leader"), "bad");
    let r = pgitops(
        repo.path(),
        &["render", "--host", "10.10.10.11", "pg_hba.conf"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.is_empty() && r.stderr.contains("error"),
        "{}",
        r.stderr
    );
}
