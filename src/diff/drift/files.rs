//! Drift of files and parameters on each instance (pure).
//!
//! In: the text pgitops renders for a host and the live text (`None`: no such file), or the
//! declared `pg_parameters` and the live `postgresql.auto.conf` entries. Out: [`Item`]s. Files
//! compare by content: their rules, one item per line added or removed (comments, blank lines
//! and spacing do not count). `userlist.txt` holds verifiers: it is one redacted item naming no
//! line. Parameters: a declared name whose `ALTER SYSTEM` value differs or is missing, and an
//! `ALTER SYSTEM` value the inventory does not declare (what a replica's recovery writes there,
//! `primary_conninfo` and the like, is not pgitops' to judge).

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::objects::{guc_text, same_guc};
use super::Item;

/// Names a standby's recovery (pg_basebackup -R, Patroni, pg_rewind) keeps in
/// `postgresql.auto.conf`.
const RECOVERY_GUCS: [&str; 6] = [
    "primary_conninfo",
    "primary_slot_name",
    "restore_command",
    "recovery_target_timeline",
    "archive_cleanup_command",
    "promote_trigger_file",
];

/// The rules of a file: lines without comments, trimmed, inner whitespace collapsed.
fn rules(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// The lines of `expected` missing from `live` and those `live` has in addition (each counted
/// as often as it appears).
fn line_diff(expected: &[String], live: &[String]) -> (Vec<String>, Vec<String>) {
    let count = |ls: &[String]| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        ls.iter()
            .for_each(|l| *m.entry(l.clone()).or_default() += 1);
        m
    };
    let (mut want, mut have) = (count(expected), count(live));
    let mut removed = vec![];
    for l in expected {
        match have.get_mut(l) {
            Some(n) if *n > 0 => *n -= 1,
            _ => removed.push(l.clone()),
        }
    }
    let mut added = vec![];
    for l in live {
        match want.get_mut(l) {
            Some(n) if *n > 0 => *n -= 1,
            _ => added.push(l.clone()),
        }
    }
    (removed, added)
}

/// A rendered file (`object`: `hba`, `pgbouncer database.txt`, ...) against the live one.
pub fn file(object: &str, host: &str, expected: &str, live: Option<&str>) -> Vec<Item> {
    let Some(live) = live else {
        return vec![Item::new(
            object,
            "file",
            Some("present".into()),
            Some("missing".into()),
        )
        .on(host)];
    };
    let (removed, added) = line_diff(&rules(expected), &rules(live));
    let mut out: Vec<Item> = removed
        .into_iter()
        .map(|l| Item::new(object, "line", Some(l), None).on(host))
        .collect();
    out.extend(
        added
            .into_iter()
            .map(|l| Item::new(object, "line", None, Some(l)).on(host)),
    );
    if out.is_empty() && rules(expected) != rules(live) {
        out.push(
            Item::new(
                object,
                "line order",
                Some("as rendered".into()),
                Some("reordered".into()),
            )
            .on(host),
        );
    }
    out
}

/// A file holding secrets (`userlist.txt`): one redacted item when its content differs.
pub fn secret_file(object: &str, host: &str, expected: &str, live: Option<&str>) -> Vec<Item> {
    match live {
        None => file(object, host, expected, None),
        Some(l) if rules(l) != rules(expected) => vec![Item::secret(object, "content").on(host)],
        Some(_) => vec![],
    }
}

/// Declared `pg_parameters` against the live `postgresql.auto.conf` entries (name, value; the
/// last one of a name wins, as PostgreSQL reads them).
pub fn parameters(host: &str, declared: &Mapping, live: &[(String, String)]) -> Vec<Item> {
    let live: BTreeMap<&str, &str> = live.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut out = vec![];
    let mut names = vec![];
    for (k, v) in declared {
        let Some(k) = k.as_str() else { continue };
        names.push(k.to_ascii_lowercase());
        let want = guc_text(v);
        let have = live
            .get(k.to_ascii_lowercase().as_str())
            .map(|s| s.to_string());
        let same = match (&want, &have) {
            (Some(a), Some(b)) => same_guc(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.push(Item::new(format!("parameter {k}"), "value", want, have).on(host));
        }
    }
    for (k, v) in &live {
        if !names.contains(&k.to_string()) && !RECOVERY_GUCS.contains(k) {
            out.push(
                Item::new(format!("parameter {k}"), "value", None, Some(v.to_string())).on(host),
            );
        }
    }
    out
}

/// Whether `v` is the YAML mapping `pg_parameters` should be (else: none declared).
pub fn declared_parameters(v: Option<&Value>) -> Mapping {
    v.and_then(Value::as_mapping).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hba_file_differs_by_its_rules_not_its_comments() {
        let rendered =
            "# title\nlocal all postgres ident\nhost all all 127.0.0.0/8 scram-sha-256\n";
        let same = "local   all  postgres   ident # by hand\n\n# other comment\nhost all all 127.0.0.0/8 scram-sha-256\n";
        assert_eq!(file("hba", "h", rendered, Some(same)), vec![]);
        let edited = "local all postgres ident\nhost all all 0.0.0.0/0 trust\n";
        let items = file("hba", "h", rendered, Some(edited));
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].expected.as_deref(),
            Some("host all all 127.0.0.0/8 scram-sha-256")
        );
        assert_eq!(
            items[1].live.as_deref(),
            Some("host all all 0.0.0.0/0 trust")
        );
        assert_eq!(items[1].label(), "hba h");
        let reordered = "host all all 127.0.0.0/8 scram-sha-256\nlocal all postgres ident\n";
        assert_eq!(
            file("hba", "h", rendered, Some(reordered))[0].field,
            "line order"
        );
        assert_eq!(
            file("hba", "h", rendered, None)[0].live.as_deref(),
            Some("missing")
        );
    }

    #[test]
    fn a_userlist_that_differs_shows_nothing_of_it() {
        let items = secret_file(
            "pgbouncer userlist.txt",
            "h",
            "\"app\" \"SCRAM-SHA-256$1\"\n",
            Some("\"app\" \"SCRAM-SHA-256$2\"\n"),
        );
        assert_eq!(items.len(), 1);
        assert!(items[0].redacted && !format!("{items:?}").contains("SCRAM"));
    }

    #[test]
    fn parameters_set_by_hand_or_changed_are_drift() {
        let declared: Mapping = serde_yaml_ng::from_str(
            "{ work_mem: 64MB, log_min_duration_statement: 1000, jit: false }",
        )
        .unwrap();
        let live = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ok = live(&[
            ("work_mem", "64MB"),
            ("log_min_duration_statement", "1000"),
            ("jit", "off"),
            ("primary_conninfo", "host=x"),
        ]);
        assert_eq!(parameters("h", &declared, &ok), vec![]);
        let drifted = live(&[
            ("work_mem", "1GB"),
            ("jit", "off"),
            ("shared_buffers", "1GB"),
        ]);
        let items = parameters("h", &declared, &drifted);
        let got: Vec<(&str, Option<&str>, Option<&str>)> = items
            .iter()
            .map(|i| (i.object.as_str(), i.expected.as_deref(), i.live.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("parameter work_mem", Some("64MB"), Some("1GB")),
                ("parameter log_min_duration_statement", Some("1000"), None),
                ("parameter shared_buffers", None, Some("1GB")),
            ]
        );
    }
}
