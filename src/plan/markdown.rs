//! The plan as a Markdown document for a pull request comment (and `pgitops plan --output
//! markdown`): a summary table per cluster, the held destructive actions with the exact
//! `Pgitops-Approve:` trailers, the manual actions with their reasons, then per cluster the
//! semantic changes and each action's preview folded in `<details>`.
//!
//! In: a [`Report`], an introduction (Markdown pgitops wrote, e.g. which merge was planned),
//! the size limit and where the full plan is. Out: a string of at most `max_chars` characters.
//! When the whole document does not fit, clusters' details are left out whole (never cut inside
//! an action) and the document says how many and where to read them. Values pass through the
//! same redaction as the text plan; every inventory value sits in a code span, a fenced block or
//! escaped HTML, so a name cannot change the comment's markup.

use std::collections::BTreeMap;

use super::output::{short, value_diff, warning_lines, Report, ValueDiff};
use super::{Action, Approval, Class, Step};
use crate::diff::Entity;

/// GitHub's limit for an issue or pull request comment.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Counts a forge's commit status can say in one line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub actions: usize,
    pub clusters: usize,
    /// Destructive actions waiting for a `Pgitops-Approve:` trailer.
    pub held: usize,
    pub manual: usize,
    pub errors: usize,
}

impl Summary {
    pub fn of(r: &Report) -> Summary {
        let clusters: std::collections::BTreeSet<&str> =
            r.plan.actions.iter().map(|a| a.cluster.as_str()).collect();
        Summary {
            actions: r.plan.actions.len(),
            clusters: clusters.len(),
            held: r.plan.actions.iter().filter(|a| held(a)).count(),
            manual: r
                .plan
                .actions
                .iter()
                .filter(|a| a.class == Class::Manual)
                .count(),
            errors: r.errors.len(),
        }
    }

    /// One line for a commit status (at most 140 characters).
    pub fn line(&self) -> String {
        if self.errors > 0 {
            return format!(
                "the inventory has {} error(s): nothing would apply",
                self.errors
            );
        }
        let mut s = format!("{} action(s) in {} cluster(s)", self.actions, self.clusters);
        if self.held > 0 {
            s = format!("{} destructive action(s) need approval; {s}", self.held);
        }
        if self.manual > 0 {
            s.push_str(&format!(", {} manual", self.manual));
        }
        s
    }
}

fn held(a: &Action) -> bool {
    a.approval == Approval::Required
}

/// An inline code span holding `s` literally (a longer backtick run than any inside; line
/// breaks shown as `⏎`).
pub fn code(s: &str) -> String {
    let s = s.replace(['\r', '\n'], "⏎");
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A fenced block holding `body` literally.
fn fence(lang: &str, body: &str) -> String {
    let ticks = "`".repeat((longest_run(body, '`') + 1).max(3));
    format!("{ticks}{lang}\n{}\n{ticks}\n", body.trim_end_matches('\n'))
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Text for HTML (a `<summary>`): `&`, `<`, `>` and `"` escaped, line breaks shown as `⏎`.
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace(['\r', '\n'], "⏎")
}

/// A table cell: a code span with `|` escaped (GitHub splits cells on it even in code).
fn cell(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// The document, at most `max_chars` characters. `intro`: Markdown lines put under the
/// heading. `full_plan`: where a reader finds what was left out (Markdown).
pub fn markdown(r: &Report, intro: &[String], max_chars: usize, full_plan: &str) -> String {
    let mut head = String::from("### pgitops plan\n\n");
    for l in intro {
        head.push_str(l);
        head.push('\n');
    }
    if !intro.is_empty() {
        head.push('\n');
    }
    head.push_str(&format!(
        "Planned {}..{}.\n\n",
        code(short(r.from)),
        code(short(r.to))
    ));
    if !r.errors.is_empty() {
        head.push_str(&format!(
            "**The inventory has {} error(s): nothing would be applied.**\n\n",
            r.errors.len()
        ));
        let mut lines = String::new();
        for e in r.errors {
            lines.push_str(&format!("{e}\n"));
        }
        return fit(head, vec![fence("text", &lines)], max_chars, full_plan);
    }
    if r.plan.actions.is_empty() && r.diff.is_empty() {
        head.push_str("No changes: merging this applies nothing.\n");
        return fit(head, vec![], max_chars, full_plan);
    }
    head.push_str(&table(r));
    head.push_str(&held_section(r));
    head.push_str(&manual_section(r));
    head.push_str(&warnings_section(r));
    let details = clusters(r);
    fit(head, details, max_chars, full_plan)
}

/// `head` whole, then as many `sections` as fit, then a line about the rest.
fn fit(head: String, sections: Vec<String>, max: usize, full_plan: &str) -> String {
    let chars = |s: &str| s.chars().count();
    let total: usize = chars(&head) + sections.iter().map(|s| chars(s)).sum::<usize>();
    if total <= max {
        return sections.into_iter().fold(head, |acc, s| acc + &s);
    }
    let note = |n: usize| {
        format!(
            "\n---\n**{n} more section(s) left out**: the comment is limited to {max} characters. \
             The full plan: {full_plan}\n"
        )
    };
    let reserve = chars(&note(sections.len())) + 8;
    let mut out = head;
    let mut used = chars(&out);
    let mut kept = 0;
    for s in &sections {
        let n = chars(s);
        if used + n + reserve > max {
            break;
        }
        out.push_str(s);
        used += n;
        kept += 1;
    }
    out.push_str(&note(sections.len() - kept));
    if chars(&out) > max {
        // The summary alone is over the limit (thousands of clusters): cut at a line break
        // before the limit and point to the full plan.
        let note = note(sections.len());
        let budget = max.saturating_sub(chars(&note) + 8);
        let cut: String = out.chars().take(budget).collect();
        let cut = cut.rsplit_once('\n').map(|(a, _)| a).unwrap_or("");
        // A fence the cut left open (the held trailers' block) is closed before the note.
        let close = open_fence(cut)
            .map(|f| format!("\n{f}"))
            .unwrap_or_default();
        return format!("{cut}{close}\n{note}");
    }
    out
}

/// The fence of a code block `text` leaves open (its opening run of backticks), if any.
fn open_fence(text: &str) -> Option<&str> {
    let mut open: Option<&str> = None;
    for line in text.lines() {
        let ticks = &line[..line.len() - line.trim_start_matches('`').len()];
        match open {
            None if ticks.len() >= 3 => open = Some(ticks),
            Some(f) if line.trim_end() == f => open = None,
            _ => {}
        }
    }
    open
}

fn table(r: &Report) -> String {
    let mut rows: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
    for a in &r.plan.actions {
        let i = match a.class {
            Class::Online => 0,
            Class::Reload => 1,
            Class::Restart => 2,
            Class::Destructive => 3,
            Class::Manual => 4,
        };
        rows.entry(&a.cluster).or_default()[i] += 1;
    }
    let mut s = String::from(
        "| cluster | actions | online | reload | restart | destructive | manual | held |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (cluster, n) in &rows {
        let held = r
            .plan
            .actions
            .iter()
            .filter(|a| a.cluster == *cluster && held(a))
            .count();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(cluster),
            n.iter().sum::<usize>(),
            n[0],
            n[1],
            n[2],
            n[3],
            n[4],
            held
        ));
    }
    s.push('\n');
    s
}

fn held_section(r: &Report) -> String {
    let held: Vec<&Action> = r.plan.actions.iter().filter(|a| held(a)).collect();
    if held.is_empty() {
        return String::new();
    }
    let trailers: String = held
        .iter()
        .map(|a| format!("Pgitops-Approve: {}\n", a.id.replace(['\r', '\n'], " ")))
        .collect();
    format!(
        "**{} destructive action(s) need approval.** They are held (the rest applies) until a \
         commit of the merged range carries these trailers (or `pgitops approve` runs after \
         the merge):\n\n{}\n",
        held.len(),
        fence("text", &trailers)
    )
}

fn manual_section(r: &Report) -> String {
    let manual: Vec<&Action> = r
        .plan
        .actions
        .iter()
        .filter(|a| a.class == Class::Manual)
        .collect();
    if manual.is_empty() {
        return String::new();
    }
    let mut s = String::from("**Manual actions** (never applied automatically):\n\n");
    for a in manual {
        let reason = a.reason.as_deref().unwrap_or("no reason recorded");
        s.push_str(&format!("- {}: {}\n", code(&a.id), code(reason)));
    }
    s.push('\n');
    s
}

fn warnings_section(r: &Report) -> String {
    let lines = warning_lines(r);
    if lines.is_empty() {
        return String::new();
    }
    format!("**Warnings**\n\n{}\n", fence("text", &lines.join("\n")))
}

/// One section per cluster: its changes, then its actions folded.
fn clusters(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for ((module, name), changes) in r.diff.by_cluster() {
        let mut s = format!("\n#### {} ({})\n\n", code(name), module.as_str());
        for c in changes {
            let mut line = format!(
                "- {} {} {}",
                c.entity.as_str(),
                code(&c.name),
                c.op.as_str()
            );
            if !c.fields.is_empty() {
                line.push_str(&format!(": {}", code(&c.fields.join(", "))));
            }
            if !c.hosts.is_empty() && c.entity != Entity::Member {
                line.push_str(&format!(" on {}", code(&c.hosts.join(", "))));
            }
            s.push_str(&line);
            s.push('\n');
            match value_diff(c) {
                ValueDiff::Same => {}
                ValueDiff::SecretOnly => s.push_str("  (a secret changed; values redacted)\n"),
                ValueDiff::Lines(lines) => {
                    let body: Vec<String> = lines
                        .iter()
                        .map(|(sign, t)| format!("{sign} {t}"))
                        .collect();
                    let block = fence("diff", &body.join("\n"));
                    for l in block.lines() {
                        s.push_str(&format!("  {l}\n"));
                    }
                }
            }
        }
        let actions = r
            .plan
            .actions
            .iter()
            .filter(|a| a.module == module && a.cluster == name);
        for a in actions {
            s.push_str(&action(a));
        }
        out.push(s);
    }
    out
}

fn action(a: &Action) -> String {
    let mut summary = format!("[{}] <code>{}</code>", a.class.as_str(), html(&a.id));
    if !a.hosts.is_empty() {
        summary.push_str(&format!(" on <code>{}</code>", html(&a.hosts.join(", "))));
    }
    match a.approval {
        Approval::Required => summary.push_str(" — <b>held until approved</b>"),
        Approval::Approved => summary.push_str(" — approved"),
        Approval::NotNeeded => {}
    }
    let mut body = String::new();
    if let Some(reason) = &a.reason {
        body.push_str(&format!("{}\n\n", code(reason)));
    }
    if let Some(p) = &a.pigsty {
        body.push_str(&format!("Pigsty: {}\n\n", code(&p.to_string())));
    }
    let preview = a.preview();
    if !preview.is_empty() {
        let lang = if matches!(a.step, Step::Object(_)) {
            "sql"
        } else {
            ""
        };
        body.push_str(&fence(lang, &preview.join("\n")));
    }
    format!("\n<details><summary>{summary}</summary>\n\n{body}\n</details>\n")
}

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;
