//! Diagnostics: what is wrong with an inventory, and where.
//!
//! Stages record a diagnostic against a file and a YAML path; [`locate`] later fills in line and
//! column from a [`PositionIndex`] of that file, built only when there is something to report.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::positions::{display_path, PositionIndex, Seg};
use super::SourceFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    #[serde(skip)]
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The YAML path of the offending node, e.g. `all.children.pg-test.hosts.10.0.0.1.pg_role`.
    pub path: String,
    pub message: String,
    /// The revision the inventory was read from (a commit id or "worktree").
    #[serde(skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(skip)]
    pub yaml_path: Vec<Seg>,
    /// A string was expected where YAML read a boolean or a number: [`locate`] appends the
    /// token as written, quoted (`(quote it: 'yes')`). Never set for secrets.
    #[serde(skip)]
    pub quote_hint: bool,
    /// Kept only if the node is written as a plain (unquoted) scalar: [`locate`] drops it when
    /// the source has it quoted (the parsed value cannot tell the two apart).
    #[serde(skip)]
    pub only_if_plain: bool,
}

impl Diagnostic {
    pub fn new(severity: Severity, file: &str, path: Vec<Seg>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            file: file.to_string(),
            line: 0,
            column: 0,
            path: display_path(&path),
            message: message.into(),
            revision: String::new(),
            yaml_path: path,
            quote_hint: false,
            only_if_plain: false,
        }
    }
}

impl Diagnostic {
    /// An error about the node at `origin`.
    pub fn error_at(origin: &super::Origin, message: impl Into<String>) -> Self {
        Diagnostic::new(Severity::Error, &origin.file, origin.path.clone(), message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        if !self.revision.is_empty() {
            write!(f, " [revision {}]", short(&self.revision))?;
        }
        Ok(())
    }
}

fn short(rev: &str) -> &str {
    if rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        &rev[..12]
    } else {
        rev
    }
}

/// The plain scalar written at `line`:`column` (1-based), as typed: up to the next `,`, `]`, `}`,
/// ` #` or the end of the line. `None` for quoted, tagged or aliased nodes and long tokens.
fn plain_token(text: &str, line: usize, column: usize) -> Option<String> {
    let rest: String = text
        .lines()
        .nth(line.checked_sub(1)?)?
        .chars()
        .skip(column.checked_sub(1)?)
        .collect();
    if rest.starts_with(['\'', '"', '*', '&', '!', '|', '>']) {
        return None;
    }
    let end = rest.find([',', ']', '}']).unwrap_or(rest.len());
    let token = rest[..end].split(" #").next()?.trim();
    let plain = !token.is_empty()
        && token.len() <= 40
        && token.chars().all(|c| c.is_ascii_graphic() && c != '\'');
    plain.then(|| token.to_string())
}

/// Fills line/column and revision, sorts errors first then by file and position, and drops
/// exact duplicates (the same node reported twice through two hosts).
pub fn locate(diags: &mut Vec<Diagnostic>, files: &[&SourceFile], revision: &str) {
    let mut indexes: HashMap<&str, PositionIndex> = HashMap::new();
    for d in diags.iter_mut() {
        if d.line == 0 {
            if let Some(file) = files.iter().find(|f| f.path == d.file) {
                let idx = indexes
                    .entry(file.path.as_str())
                    .or_insert_with(|| PositionIndex::build(&file.text));
                if let Some(p) = idx.locate(&d.yaml_path) {
                    d.line = p.line;
                    d.column = p.column;
                }
                if d.only_if_plain {
                    let token = idx
                        .locate_exact(&d.yaml_path)
                        .and_then(|p| plain_token(&file.text, p.line, p.column));
                    d.only_if_plain = token.is_none();
                }
                if d.quote_hint {
                    let token = idx
                        .locate_exact(&d.yaml_path)
                        .and_then(|p| plain_token(&file.text, p.line, p.column));
                    match token {
                        Some(t) => d.message.push_str(&format!(" (quote it: '{t}')")),
                        None => d.message.push_str(" (quote it)"),
                    }
                }
            }
            d.line = d.line.max(1);
            d.column = d.column.max(1);
        }
        d.revision = revision.to_string();
    }
    // Still marked: written quoted after all (or not found), so not what the warning is about.
    diags.retain(|d| !d.only_if_plain);
    diags.sort_by(|a, b| {
        (a.severity, &a.file, a.line, a.column, &a.message)
            .cmp(&(b.severity, &b.file, b.line, b.column, &b.message))
    });
    diags.dedup_by(|a, b| {
        a.severity == b.severity && a.file == b.file && a.path == b.path && a.message == b.message
    });
}
