//! YAML text to a plain value tree, the way Ansible reads inventories.
//!
//! In: one file's text. Out: a `serde_yaml_ng::Value`, or a [`ParseError`] with the file's 1-based
//! line and column. Values are built straight from yaml-rust2's event stream (one pass, no event
//! buffer), which lets this module follow Ansible's loader (PyYAML, YAML 1.1) where YAML 1.2
//! parsers differ: plain `yes`/`no`/`on`/`off` are booleans, `0755` is octal, `1e5` is a string.
//! Anchors and aliases are resolved, `<<` merge keys applied (explicit keys win), Ansible tags
//! (`!unsafe`, `!vault`) yield their text, and duplicate keys are refused (Ansible would keep the
//! last one silently, which hides mistakes).

use std::collections::HashMap;

use serde_yaml_ng::mapping::Entry;
use serde_yaml_ng::{Mapping, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

/// A parsed part of a file (see `chunks`), with what joining parts needs to know.
pub struct Piece {
    pub value: Value,
    /// Values copied by aliases.
    pub expanded: usize,
    /// Whether the text defines an anchor, and whether it uses an alias.
    pub anchors: bool,
    pub aliases: bool,
}

/// Parses `text` as if it sat `depth` levels deep in a document (nesting is limited to
/// [`MAX_DEPTH`] minus that).
pub fn parse_piece(file: &str, text: &str, depth: usize) -> Result<Piece, ParseError> {
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
    let mut b = Builder {
        max_depth: MAX_DEPTH.saturating_sub(depth),
        ..Builder::default()
    };
    let scanned = Parser::new_from_str(text).load(&mut b, true);
    let fail = |m: &Marker, message: String| ParseError {
        file: file.to_string(),
        line: m.line().max(1),
        column: m.col() + 1,
        message,
    };
    if let Err(e) = scanned {
        return Err(fail(e.marker(), e.info().to_string()));
    }
    if let Some((m, msg)) = b.error {
        return Err(fail(&m, msg));
    }
    Ok(Piece {
        value: b.root.unwrap_or(Value::Null),
        expanded: b.expanded,
        anchors: !b.anchor_lines.is_empty(),
        aliases: b.aliases,
    })
}

/// Mappings with at most this many keys are collected in [`Builder::pairs`] (duplicates found by
/// comparing keys, no hashing) and become a map of exactly their size when they close; larger
/// ones switch to a map as they grow.
const SMALL_MAP: usize = 16;

enum Frame {
    /// Items are `Builder::items[start..]`.
    Seq { start: usize, anchor: usize },
    /// `key` is the pending key; `Some((None, _))` is a `<<` merge key. Entries are
    /// `Builder::pairs[start..]` until there are more than [`SMALL_MAP`], then `big`.
    Map {
        start: usize,
        big: Option<Mapping>,
        key: Option<(Option<Value>, Marker)>,
        merges: Vec<(Value, Marker)>,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Items of the open sequences, innermost last (one buffer for all: no growth per list).
    items: Vec<Value>,
    /// Entries of the open small mappings, innermost last.
    pairs: Vec<(Value, Value)>,
    /// Each anchor's value and how many values it holds.
    anchors: HashMap<usize, (Value, usize)>,
    /// The line each anchor is defined on.
    anchor_lines: HashMap<usize, usize>,
    /// Values copied by aliases so far.
    expanded: usize,
    root: Option<Value>,
    documents: usize,
    error: Option<(Marker, String)>,
    max_depth: usize,
    /// Whether an alias was met.
    aliases: bool,
}

impl Builder {
    fn fail(&mut self, mark: Marker, msg: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((mark, msg.into()));
        }
    }

    /// Adds a finished node to its parent (or makes it the document).
    fn node(&mut self, v: Value, anchor: usize, mark: Marker, merge_key: bool) {
        if anchor > 0 {
            self.anchors.insert(anchor, (v.clone(), values(&v)));
            self.anchor_lines.entry(anchor).or_insert(mark.line());
        }
        let (start, big, pending) = match self.stack.last_mut() {
            None => return self.root = Some(v),
            Some(Frame::Seq { .. }) => return self.items.push(v),
            Some(Frame::Map {
                start,
                big,
                key,
                merges,
                ..
            }) => match key.take() {
                None if merge_key => return *key = Some((None, mark)),
                None => return *key = Some((Some(v), mark)),
                Some((None, kmark)) => return merges.push((v, kmark)),
                Some((Some(k), kmark)) => (*start, big, (k, kmark)),
            },
        };
        let (k, kmark) = pending;
        let duplicate = match big {
            // One lookup per key: the entry tells both "seen before" and where to insert.
            Some(map) => match map.entry(k) {
                Entry::Occupied(_) => true,
                Entry::Vacant(slot) => {
                    slot.insert(v);
                    false
                }
            },
            None if self.pairs[start..].iter().any(|(seen, _)| *seen == k) => true,
            None if self.pairs.len() - start < SMALL_MAP => {
                self.pairs.push((k, v));
                false
            }
            None => {
                let mut map = Mapping::with_capacity(2 * SMALL_MAP);
                map.extend(self.pairs.drain(start..));
                map.insert(k, v);
                *big = Some(map);
                false
            }
        };
        if duplicate {
            self.fail(
                kmark,
                "duplicate key in a mapping (each key may appear once)",
            );
        }
    }

    fn close(&mut self, mark: Marker) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let (v, anchor) = match frame {
            Frame::Seq { start, anchor } => {
                let mut items = Vec::with_capacity(self.items.len() - start);
                items.extend(self.items.drain(start..));
                (Value::Sequence(items), anchor)
            }
            Frame::Map {
                start,
                big,
                merges,
                anchor,
                ..
            } => {
                let mut map = match big {
                    Some(map) => map,
                    None => {
                        // Keys are distinct (checked as they came): exactly this many entries.
                        let mut map = Mapping::with_capacity(self.pairs.len() - start);
                        map.extend(self.pairs.drain(start..));
                        map
                    }
                };
                let merged = !merges.is_empty();
                for (src, m) in merges {
                    let sources = match src {
                        Value::Mapping(one) => vec![one],
                        Value::Sequence(list) if list.iter().all(Value::is_mapping) => list
                            .into_iter()
                            .filter_map(|v| {
                                if let Value::Mapping(m) = v {
                                    Some(m)
                                } else {
                                    None
                                }
                            })
                            .collect(),
                        _ => {
                            self.fail(
                                m,
                                "a merge key (<<) must be given a mapping or a list of mappings",
                            );
                            continue;
                        }
                    };
                    for source in sources {
                        for (k, v) in source {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
                // Inventories are read once and kept: trim growth slack (a third of the memory).
                if merged || map.capacity() > map.len() {
                    map.shrink_to_fit();
                }
                (Value::Mapping(map), anchor)
            }
        };
        self.node(v, anchor, mark, false);
    }

    fn open(&mut self, frame: Frame, mark: Marker) {
        let anchor = match &frame {
            Frame::Seq { anchor, .. } | Frame::Map { anchor, .. } => *anchor,
        };
        if anchor > 0 {
            self.anchor_lines.insert(anchor, mark.line());
        }
        if self.stack.len() >= self.max_depth {
            self.fail(mark, format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(frame);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        self.aliases |= matches!(ev, Event::Alias(_));
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        mark,
                        "more than one YAML document in the file; an inventory is one document",
                    );
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain && tag.is_none();
                let is_merge_key = plain
                    && text == "<<"
                    && matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                let v = scalar(text, style, tag.as_ref());
                self.node(v, anchor, mark, is_merge_key);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((_, size)) if self.expanded + size > MAX_ALIAS_VALUES => {
                    let line = self.anchor_lines.get(&id).copied().unwrap_or(0);
                    self.fail(
                        mark,
                        format!("aliases expand to more than {MAX_ALIAS_VALUES} values in total; refusing this alias of the anchor on line {line}"),
                    );
                }
                Some((v, size)) => {
                    self.expanded += size;
                    let v = v.clone();
                    self.node(v, 0, mark, false);
                }
                None => self.fail(
                    mark,
                    "alias to an anchor that is not defined before it (or refers to itself)",
                ),
            },
            Event::SequenceStart(anchor, _) => self.open(
                Frame::Seq {
                    start: self.items.len(),
                    anchor,
                },
                mark,
            ),
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map {
                    start: self.pairs.len(),
                    big: None,
                    key: None,
                    merges: Vec::new(),
                    anchor,
                },
                mark,
            ),
            Event::SequenceEnd | Event::MappingEnd => self.close(mark),
            _ => {}
        }
    }
}

/// How many values `v` holds, itself included.
fn values(v: &Value) -> usize {
    1 + match v {
        Value::Sequence(items) => items.iter().map(values).sum(),
        Value::Mapping(m) => m.iter().map(|(k, v)| values(k) + values(v)).sum(),
        Value::Tagged(t) => values(&t.value),
        _ => 0,
    }
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    match tag {
        Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix != "str" => resolve_plain(text),
        Some(_) => Value::String(text),
        None if style == TScalarStyle::Plain => resolve_plain(text),
        None => Value::String(text),
    }
}

/// PyYAML's (YAML 1.1) implicit resolution of a plain scalar.
pub fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Number(f64::INFINITY.into())
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Number(f64::NEG_INFINITY.into()),
        ".nan" | ".NaN" | ".NAN" => return Value::Number(f64::NAN.into()),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::String(text);
    }
    match number(&text) {
        Some(n) => Value::Number(n),
        None => Value::String(text),
    }
}

fn number(text: &str) -> Option<Number> {
    let (neg, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = |s: &str, ok: fn(u8) -> bool| {
        !s.is_empty() && s.bytes().all(|b| ok(b) || b == b'_') && s.bytes().any(ok)
    };
    let int = |s: &str, radix: u32| -> Option<Number> {
        let clean: String = s.chars().filter(|c| *c != '_').collect();
        let v = i128::from_str_radix(&clean, radix).ok()?;
        let v = if neg { -v } else { v };
        i64::try_from(v)
            .map(Number::from)
            .ok()
            .or_else(|| u64::try_from(v).map(Number::from).ok())
    };
    if let Some(b) = body.strip_prefix("0b") {
        return digits(b, |c| c == b'0' || c == b'1')
            .then(|| int(b, 2))
            .flatten();
    }
    if let Some(h) = body.strip_prefix("0x") {
        return digits(h, |c| c.is_ascii_hexdigit())
            .then(|| int(h, 16))
            .flatten();
    }
    if body.len() > 1 && body.starts_with('0') && digits(body, |c| (b'0'..=b'7').contains(&c)) {
        return int(&body[1..], 8);
    }
    if body == "0" || (digits(body, |c| c.is_ascii_digit()) && !body.starts_with('0')) {
        return int(body, 10);
    }
    if body.contains(':') {
        return sexagesimal(body, neg);
    }
    float(body, neg)
}

/// `190:20:30` (base 60), as YAML 1.1 reads it.
fn sexagesimal(body: &str, neg: bool) -> Option<Number> {
    let mut parts = body.split(':');
    let head = parts.next()?;
    if head.is_empty()
        || head.starts_with('0')
        || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let mut v: i64 = head.replace('_', "").parse().ok()?;
    for p in parts {
        if p.is_empty()
            || p.len() > 2
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<i64>().ok()? > 59
        {
            return None;
        }
        v = v.checked_mul(60)?.checked_add(p.parse().ok()?)?;
    }
    Some(Number::from(if neg { -v } else { v }))
}

/// `[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` or `\.[0-9_]+([eE][-+][0-9]+)?`
fn float(body: &str, neg: bool) -> Option<Number> {
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = mantissa.split_once('.')?;
    let ok_int = int_part.is_empty() && !frac.is_empty()
        || int_part.bytes().next().is_some_and(|b| b.is_ascii_digit());
    let all = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !ok_int
        || !all(int_part)
        || !all(frac)
        || (int_part.is_empty() && !frac.bytes().any(|b| b.is_ascii_digit()))
    {
        return None;
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let v: f64 = body.replace('_', "").parse().ok()?;
    Some(Number::from(if neg { -v } else { v }))
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
#[path = "yaml_tests.rs"]
mod tests;
