//! YAML text to a plain value tree, the way Ansible reads inventories.
//!
//! In: one file's text. Out: a `serde_yaml_ng::Value`, or a [`ParseError`] with the file's 1-based
//! line and column. Values are built straight from an event stream (one pass, no event buffer;
//! `builder`): the fast reader's (`fast`) for plainly laid out text, yaml-rust2's for everything
//! else and for every error. That lets this module follow Ansible's loader (PyYAML, YAML 1.1)
//! where YAML 1.2 parsers differ: plain `yes`/`no`/`on`/`off` are booleans, `0755` is octal, `1e5` is a string.
//! Anchors and aliases are resolved, `<<` merge keys applied (explicit keys win), Ansible tags
//! (`!unsafe`, `!vault`) yield their text, and duplicate keys are refused (Ansible would keep the
//! last one silently, which hides mistakes).

use serde_yaml_ng::Value;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::Marker;

mod builder;
mod fast;
mod resolve;

use builder::Builder;

pub use resolve::resolve_plain;

/// Why a file did not parse. `message` never quotes a value from the file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Nesting deeper than this is refused (no inventory needs it; it protects the stack).
const MAX_DEPTH: usize = 128;

/// Aliases may expand to at most this many values in total (each alias is a full copy of its
/// anchor): a "billion laughs" document of a few hundred bytes is refused instead of taking the
/// memory of the machine. Pigsty's largest inventories expand to a few thousand.
pub const MAX_ALIAS_VALUES: usize = 1_000_000;

pub fn parse(file: &str, text: &str) -> Result<Value, ParseError> {
    parse_piece(file, text, 0).map(|p| p.value)
}

/// [`parse`] by yaml-rust2 alone, without the fast reader (what the fast reader is checked
/// against, in tests and by the fuzzer).
pub fn parse_reference(file: &str, text: &str) -> Result<Value, ParseError> {
    parse_with(file, text, 0, false).map(|p| p.value)
}

/// A parsed part of a file (see `chunks`), with what joining parts needs to know.
pub struct Piece {
    pub value: Value,
    /// Values copied by aliases.
    pub expanded: usize,
    /// Whether the text defines an anchor, and whether it uses an alias.
    pub anchors: bool,
    pub aliases: bool,
}

/// Whether the fast reader reads `text` whole (the tests and the fuzzer report how much of
/// their inputs it covers).
pub fn reads_fast(text: &str) -> bool {
    read_fast(text, MAX_DEPTH).is_some()
}

/// The builder fed by the fast reader, when it reads `text` and the builder takes every value.
fn read_fast(text: &str, max_depth: usize) -> Option<Builder> {
    let mut b = Builder::new(max_depth);
    fast::read(text, &mut |ev, mark| b.event(ev, mark))?;
    b.ok().then_some(b)
}

/// Parses `text` as if it sat `depth` levels deep in a document (nesting is limited to
/// [`MAX_DEPTH`] minus that).
pub fn parse_piece(file: &str, text: &str, depth: usize) -> Result<Piece, ParseError> {
    parse_with(file, text, depth, true)
}

/// With `fast`, plainly laid out text is read by [`fast`]; anything else, and any text whose
/// values the builder refuses, is read by yaml-rust2 (so every error comes from it).
fn parse_with(file: &str, text: &str, depth: usize, fast: bool) -> Result<Piece, ParseError> {
    if let Some((line, column, c)) = super::charset::first_unacceptable(text) {
        return Err(ParseError {
            file: file.to_string(),
            line,
            column,
            message: format!(
                "unacceptable character #x{:04x}: control characters are not allowed in YAML (escape it in a double-quoted string)",
                u32::from(c)
            ),
        });
    }
    let max_depth = MAX_DEPTH.saturating_sub(depth);
    if let Some(b) = fast.then(|| read_fast(text, max_depth)).flatten() {
        return Ok(b.piece());
    }
    let mut b = Builder::new(max_depth);
    let scanned = Parser::new_from_str(text).load(&mut b, true);
    let fail = |m: Mark, message: String| ParseError {
        file: file.to_string(),
        line: m.line.max(1),
        column: m.col + 1,
        message,
    };
    if let Err(e) = scanned {
        return Err(fail(Mark::from(*e.marker()), e.info().to_string()));
    }
    match b.piece_or_error() {
        Ok(piece) => Ok(piece),
        Err((m, msg)) => Err(fail(m, msg)),
    }
}

/// Where an event is in the text: 1-based line, 0-based column (as yaml-rust2 counts).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

impl From<Marker> for Mark {
    fn from(m: Marker) -> Mark {
        Mark {
            line: m.line(),
            col: m.col(),
        }
    }
}

/// A scalar rendered as text (keys like `6379` or `10.0.0.1`); `None` for collections and null.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
