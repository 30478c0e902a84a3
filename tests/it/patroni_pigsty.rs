//! pgitops' Patroni configuration equals what Pigsty's own `pg_conf` templates render, for
//! every PGSQL host of every inventory of the shared corpus, and of `patroni_pigsty/edge.yml`
//! with each of the four templates, under two sets of fixed node facts.
//!
//! Pigsty's side: `patroni_pigsty/render.py` runs under ansible's own Python and renders
//! `../shared/pigsty/roles/pgsql/templates/<pg_conf>` with ansible's inventory loader, variable
//! manager (Pigsty's role defaults and precedence) and the `template` action's templating, in
//! one process for all inventories, connecting nowhere and writing nothing (ansible's temp
//! files go to this test's temp dir). pgitops' side: [`patroni_yml`], written to the temp dir.
//!
//! Normalisation: both files are read with `yaml.safe_load`, the loader Patroni reads its
//! configuration with, and compared as the values Patroni sees (mappings regardless of key
//! order). That drops what Patroni never sees: Pigsty's comment banner (render time, host,
//! sizing summary), comments, quoting and layout. Nothing else is normalised.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pgitops::inventory::{self, InventoryFiles};
use pgitops::render::patroni::{patroni_yml, Conf, NodeFacts, PatroniError};
use serde_json::{json, Value};

use crate::corpus::corpus_dir;
use crate::hba_pigsty::{ansible_python_cmd, pigsty_dir};

fn edge_text() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/patroni_pigsty/edge.yml");
    std::fs::read_to_string(p).unwrap()
}

/// A 8-core, 16 GiB Debian 12 node with a 100 GiB data disk; a 2-core, ~3.8 GiB EL9 node
/// whose `df` failed (Pigsty's 40 GiB guess).
fn facts() -> [NodeFacts; 2] {
    [
        NodeFacts::observed(8, 16 << 30, Some(100 << 20), "deb", 12),
        NodeFacts::observed(2, 3_900_000_000, None, "rpm", 9),
    ]
}

fn facts_json(f: &NodeFacts) -> Value {
    json!({"cpu": f.cpu, "mem_mb": f.mem_mb, "mem_gb": f.mem_gb, "fs_bytes": f.fs_bytes,
           "os_package": f.os_package, "os_version": f.os_version})
}

fn run_render_py(tmp: &Path, spec: &Value) -> Vec<Value> {
    let spec_path = tmp.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let out = ansible_python_cmd("patroni_pigsty/render.py", tmp)
        .arg(&spec_path)
        .output()
        .expect("run ansible's python");
    assert!(
        out.status.success(),
        "rendering Pigsty's templates failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("render.py prints JSON")
}

/// Leaves (scalars, empty lists and maps) of a value.
fn leaves(v: &Value) -> usize {
    match v {
        Value::Object(m) if !m.is_empty() => m.values().map(leaves).sum(),
        Value::Array(a) if !a.is_empty() => a.iter().map(leaves).sum(),
        _ => 1,
    }
}

/// The first path where two values differ.
fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) if l != r => return first_difference(l, r, &p),
                    (Some(_), Some(_)) => {}
                    (l, r) => return format!("{p}: Pigsty {l:?}, pgitops {r:?}"),
                }
            }
            format!("{path}: ?")
        }
        _ => format!("{path}: Pigsty {a}, pgitops {b}"),
    }
}

struct Job {
    name: String,
    text: String,
    facts: NodeFacts,
}

/// Values Pigsty's template would write unquoted or break its YAML with; pgitops' file is read
/// with PyYAML like the others but checked against the values themselves, not Pigsty's text.
const HOSTILE: &str = r#"
all:
  vars: { admin_ip: 10.10.10.10 }
  children:
    etcd: { hosts: { 10.10.10.10: { etcd_seq: 1 } }, vars: { etcd_cluster: etcd } }
    pg-h:
      hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } }
      vars:
        pg_cluster: pg-h
        pg_parameters: { cron.database_name: "x'\n  injected: 1 # \" [a, b]" }
        pg_replication_password: "on"
        patroni_password: "p: '#q"
        pg_data: "/pg/data: {x: 1}"
        pg_listen: "*"
"#;

#[test]
fn pgitops_renders_patroni_config_like_pigstys_templates() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let [big, small] = facts();
    let mut jobs = Vec::new();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sources.sort();
    assert!(sources.len() >= 50, "expected the whole corpus");
    for src in &sources {
        jobs.push(Job {
            name: src.file_name().unwrap().to_string_lossy().into(),
            text: std::fs::read_to_string(src).unwrap(),
            facts: big.clone(),
        });
    }
    let edge = edge_text();
    assert!(edge.contains("pg_conf: oltp.yml # varied"));
    for conf in Conf::ALL {
        for f in [&big, &small] {
            let text = edge.replace(
                "pg_conf: oltp.yml # varied",
                &format!("pg_conf: {}", conf.file()),
            );
            let name = format!("edge.yml with {} on {}C", conf.file(), f.cpu);
            jobs.push(Job {
                name,
                text,
                facts: f.clone(),
            });
        }
    }

    jobs.push(Job {
        name: "hostile.yml".into(),
        text: HOSTILE.into(),
        facts: big.clone(),
    });
    let mut spec_jobs = Vec::new();
    let mut invs = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let inv = inventory::load(&InventoryFiles::single(&job.name, &job.text), "corpus")
            .unwrap_or_else(|d| panic!("{} does not load: {}", job.name, d[0]));
        // ansible's YAML plugin wants a .yml name
        let copy = tmp.path().join(format!("inv{i:02}.yml"));
        std::fs::write(&copy, &job.text).unwrap();
        let ours = tmp.path().join(format!("ours{i:02}"));
        std::fs::create_dir(&ours).unwrap();
        for host in inv.model.pgsql.values().flat_map(|c| c.members.keys()) {
            match patroni_yml(&inv, host, &job.facts) {
                Ok(text) => std::fs::write(ours.join(format!("{host}.yml")), text),
                Err(e) => std::fs::write(ours.join(format!("{host}.err")), e.to_string()),
            }
            .unwrap();
        }
        spec_jobs.push(json!({"inventory": copy, "facts": facts_json(&job.facts), "ours": ours}));
        invs.push(inv);
    }
    let spec = json!({"pigsty": pigsty_dir(), "jobs": spec_jobs});
    let rendered = run_render_py(tmp.path(), &spec);
    let ansible_time = started.elapsed();

    let hostile = &rendered.last().unwrap()["10.10.10.11"]["ours"]["ok"];
    let params = &hostile["bootstrap"]["dcs"]["postgresql"]["parameters"];
    assert_eq!(
        params["cron.database_name"],
        "x'\n  injected: 1 # \" [a, b]"
    );
    assert!(params.get("injected").is_none());
    let auth = &hostile["postgresql"]["authentication"];
    assert_eq!(auth["replication"]["password"], "on", "a string, not True");
    assert_eq!(hostile["restapi"]["authentication"]["password"], "p: '#q");
    assert_eq!(hostile["postgresql"]["data_dir"], "/pg/data: {x: 1}");
    assert_eq!(hostile["postgresql"]["listen"], "*:5432");
    let (jobs, rendered) = (&jobs[..jobs.len() - 1], &rendered[..rendered.len() - 1]);

    let (mut hosts, mut files, mut keys, mut refused) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for ((job, inv), theirs) in jobs.iter().zip(&invs).zip(rendered) {
        let theirs = theirs.as_object().unwrap();
        let ours: Vec<&String> = inv
            .model
            .pgsql
            .values()
            .flat_map(|c| c.members.keys())
            .collect();
        let mut their_hosts: Vec<&String> = theirs.keys().collect();
        their_hosts.sort();
        let mut our_hosts = ours.clone();
        our_hosts.sort();
        assert_eq!(
            our_hosts, their_hosts,
            "{}: the PGSQL hosts differ",
            job.name
        );
        for (host, r) in theirs {
            hosts += 1;
            match (&r["pigsty"]["ok"], &r["ours"]["ok"]) {
                (Value::Null, Value::Null) => {
                    refused += 1;
                    if r["pigsty"]["error"].is_null() || r["ours"]["error"].is_null() {
                        failures.push(format!("{} {host}: {r}", job.name));
                    }
                }
                (want, Value::Null) => {
                    let ours = r["ours"]["error"].as_str().unwrap_or_default();
                    // no etcd group: Pigsty writes `hosts: ''`, pgitops refuses
                    let no_etcd =
                        ours == PatroniError::NoEtcd.to_string() && want["etcd3"]["hosts"] == "";
                    refused += usize::from(no_etcd);
                    if !no_etcd {
                        failures.push(format!("{} {host}: pgitops: {ours}", job.name));
                    }
                }
                (Value::Null, _) => failures.push(format!(
                    "{} {host}: Pigsty failed, pgitops rendered: {}",
                    job.name, r["pigsty"]["error"]
                )),
                (want, got) => {
                    files += 1;
                    keys += leaves(want);
                    if want != got {
                        failures.push(format!(
                            "{} {host}: {}",
                            job.name,
                            first_difference(want, got, "")
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "{} inventories ({} corpus, {} edge renderings), {hosts} hosts, {files} files equal \
         ({keys} keys), {refused} refused by both; ansible {:.1}s, total {:.1}s",
        jobs.len(),
        sources.len(),
        jobs.len() - sources.len(),
        ansible_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(files >= 150 && keys >= 20_000, "too little compared");
}
