//! Plan output: human text (grouped by cluster, a class badge per action, the YAML diff of each
//! changed entity, colour only on a TTY) and the JSON document other tools read.
//!
//! In: the plan, the diff and the diagnostics. Out: a string. Every value passes through
//! [`redact`] first, so no password reaches either form.

use serde::Serialize;
use serde_yaml_ng::Value;
use similar::{ChangeTag, TextDiff};

use super::{Action, Class, Plan, PlanWarning};
use crate::diff::{Change, Diff, Entity};
use crate::inventory::secrets::redact;
use crate::inventory::Diagnostic;

/// Everything a plan run reports.
pub struct Report<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub diff: &'a Diff,
    pub plan: &'a Plan,
    pub errors: &'a [Diagnostic],
    pub warnings: &'a [Diagnostic],
}

#[derive(Serialize)]
struct JsonCluster<'a> {
    name: &'a str,
    module: &'static str,
    changes: Vec<&'a Change>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonWarning<'a> {
    Inventory(&'a Diagnostic),
    Plan(&'a PlanWarning),
}

#[derive(Serialize)]
struct Json<'a> {
    from: &'a str,
    to: &'a str,
    clusters: Vec<JsonCluster<'a>>,
    actions: &'a [Action],
    errors: &'a [Diagnostic],
    warnings: Vec<JsonWarning<'a>>,
}

/// The plan as JSON, whole (for tests and small plans; the CLI streams with [`write_json`]).
pub fn json(r: &Report) -> String {
    let mut out = Vec::new();
    write_json(r, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// The plan as JSON written to `w` as it is serialized: a plan of thousands of clusters is
/// never held twice in memory.
pub fn write_json(r: &Report, w: impl std::io::Write) -> std::io::Result<()> {
    let clusters = r
        .diff
        .by_cluster()
        .into_iter()
        .map(|((m, name), changes)| JsonCluster {
            name,
            module: m.as_str(),
            changes,
        })
        .collect();
    let warnings = r
        .warnings
        .iter()
        .map(JsonWarning::Inventory)
        .chain(r.plan.warnings.iter().map(JsonWarning::Plan))
        .collect();
    let doc = Json {
        from: r.from,
        to: r.to,
        clusters,
        actions: &r.plan.actions,
        errors: r.errors,
        warnings,
    };
    let mut w = std::io::BufWriter::new(w);
    serde_json::to_writer_pretty(&mut w, &doc)?;
    std::io::Write::write_all(&mut w, b"\n")?;
    std::io::Write::flush(&mut w)
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn badge(&self, class: Class) -> String {
        let code = match class {
            Class::Online => "32",
            Class::Reload => "36",
            Class::Restart => "33",
            Class::Destructive => "1;31",
            Class::Manual => "35",
        };
        self.wrap(code, &format!("[{}]", class.as_str()))
    }
}

/// A commit id shortened for display (12 hex digits).
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

pub fn text(r: &Report, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    for e in r.errors {
        out.push_str(&format!("{e}\n"));
    }
    if !r.errors.is_empty() {
        out.push_str("Nothing planned: the inventory has errors.\n");
        return out;
    }
    let by_cluster = r.diff.by_cluster();
    out.push_str(&format!(
        "Plan {}..{}: {} change(s) in {} cluster(s), {} action(s)\n",
        short(r.from),
        short(r.to),
        r.diff.changes.len(),
        by_cluster.len(),
        r.plan.actions.len()
    ));
    for ((module, name), changes) in &by_cluster {
        out.push_str(&format!("\n{} ({})\n", p.wrap("1", name), module.as_str()));
        for c in changes {
            let fields = if c.fields.is_empty() {
                String::new()
            } else {
                format!(" [{}]", c.fields.join(", "))
            };
            let hosts = if c.hosts.is_empty() || c.entity == Entity::Member {
                String::new()
            } else {
                format!(" on {}", c.hosts.join(", "))
            };
            out.push_str(&format!(
                "  {} {} {}{fields}{hosts}\n",
                c.entity.as_str(),
                c.name,
                c.op.as_str()
            ));
            out.push_str(&entity_diff(c, &p));
        }
        for a in r
            .plan
            .actions
            .iter()
            .filter(|a| a.module == *module && a.cluster == *name)
        {
            out.push_str(&action_text(a, &p));
        }
    }
    let warnings = warning_lines(r);
    if !warnings.is_empty() {
        out.push_str("\nWarnings:\n");
        for w in warnings {
            out.push_str(&format!("  {w}\n"));
        }
    }
    if r.plan.actions.is_empty() && r.diff.is_empty() {
        out.push_str("No changes.\n");
    }
    out
}

/// The inventory's warnings, then the plan's (`<cluster>: <message>`).
pub(super) fn warning_lines(r: &Report) -> Vec<String> {
    r.warnings
        .iter()
        .map(|w| w.to_string())
        .chain(
            r.plan
                .warnings
                .iter()
                .map(|w| format!("{}: {}", w.cluster, w.message)),
        )
        .collect()
}

fn action_text(a: &Action, p: &Paint) -> String {
    let mut s = format!("  {} {}", p.badge(a.class), a.id);
    if !a.hosts.is_empty() {
        s.push_str(&format!(" on {}", a.hosts.join(", ")));
    }
    if a.revision == super::Revision::Old {
        s.push_str(" (reads the old revision)");
    }
    s.push('\n');
    match a.approval {
        super::Approval::Required => s.push_str(&format!(
            "      {} add the trailer `Pgitops-Approve: {}` or run `pgitops approve`\n",
            p.wrap("1;31", "held until approved:"),
            a.id
        )),
        super::Approval::Approved => {
            s.push_str("      approved (a Pgitops-Approve trailer or `pgitops approve`)\n")
        }
        super::Approval::NotNeeded => {}
    }
    if let Some(reason) = &a.reason {
        s.push_str(&format!("      {reason}\n"));
    }
    if let Some(p) = &a.pigsty {
        s.push_str(&format!("      pigsty: {p}\n"));
    }
    for step in a.preview() {
        for line in step.lines() {
            s.push_str(&format!("      | {line}\n"));
        }
    }
    s
}

/// Redacted text of a changed value: YAML, or the text itself for rendered files.
fn value_text(c: &Change, v: Option<&Value>) -> String {
    let key = matches!(c.entity, Entity::Var | Entity::Parameter).then_some(c.name.as_str());
    match v {
        None => String::new(),
        Some(Value::String(s)) if c.entity == Entity::Hba => s.clone(),
        Some(v) => serde_yaml_ng::to_string(&redact(key, v)).unwrap_or_default(),
    }
}

/// What changed in an entity's value, redacted: nothing, only a secret, or diff lines
/// (`'-'`, `'+'`, `' '` and the line), grouped with two lines of context.
pub(super) enum ValueDiff {
    Same,
    SecretOnly,
    Lines(Vec<(char, String)>),
}

pub(super) fn value_diff(c: &Change) -> ValueDiff {
    let (a, b) = (value_text(c, c.old.as_ref()), value_text(c, c.new.as_ref()));
    if a == b {
        // Equal once redacted, different before: only secrets changed.
        return if c.old != c.new {
            ValueDiff::SecretOnly
        } else {
            ValueDiff::Same
        };
    }
    let diff = TextDiff::from_lines(&a, &b);
    let mut lines = Vec::new();
    for group in diff.grouped_ops(2) {
        for op in group {
            for change in diff.iter_changes(&op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                lines.push((sign, change.value().trim_end_matches('\n').to_string()));
            }
        }
    }
    ValueDiff::Lines(lines)
}

fn entity_diff(c: &Change, p: &Paint) -> String {
    let lines = match value_diff(c) {
        ValueDiff::Same => return String::new(),
        ValueDiff::SecretOnly => return "      (a secret changed (values redacted))\n".to_string(),
        ValueDiff::Lines(lines) => lines,
    };
    let mut out = String::new();
    for (sign, text) in lines {
        let line = format!("      {sign} {text}");
        out.push_str(&match sign {
            '-' => p.wrap("31", &line),
            '+' => p.wrap("32", &line),
            _ => line,
        });
        out.push('\n');
    }
    out
}
