//! Values from YAML events: the one place a parsed document becomes a value tree.
//!
//! In: the events of one text (from yaml-rust2's parser or the fast reader) with where each
//! starts. Out: a [`Piece`] (the value, and what joining parts needs to know), or the first
//! problem and where it is: duplicate keys, merge keys given something other than mappings,
//! aliases to unknown anchors or expanding past [`MAX_ALIAS_VALUES`], nesting past the depth
//! limit, a second document. Plain scalars are typed as YAML 1.1 does (`resolve`). Pure.

use std::collections::HashMap;

use serde_yaml_ng::mapping::Entry;
use serde_yaml_ng::{Mapping, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{resolve_plain, Mark, Piece, MAX_ALIAS_VALUES, MAX_DEPTH};

impl Builder {
    pub(super) fn new(max_depth: usize) -> Builder {
        Builder {
            max_depth,
            ..Builder::default()
        }
    }

    /// Whether every event so far was taken (no error).
    pub(super) fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The value built, or the first problem and where it is.
    pub(super) fn piece_or_error(mut self) -> Result<Piece, (Mark, String)> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.piece()),
        }
    }

    pub(super) fn piece(self) -> Piece {
        Piece {
            value: self.root.unwrap_or(Value::Null),
            expanded: self.expanded,
            anchors: !self.anchor_lines.is_empty(),
            aliases: self.aliases,
        }
    }
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
        key: Option<(Option<Value>, Mark)>,
        merges: Vec<(Value, Mark)>,
        anchor: usize,
    },
}

#[derive(Default)]
pub(super) struct Builder {
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
    error: Option<(Mark, String)>,
    max_depth: usize,
    /// Whether an alias was met.
    aliases: bool,
}

impl Builder {
    fn fail(&mut self, mark: Mark, msg: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((mark, msg.into()));
        }
    }

    /// Adds a finished node to its parent (or makes it the document).
    fn node(&mut self, v: Value, anchor: usize, mark: Mark, merge_key: bool) {
        if anchor > 0 {
            self.anchors.insert(anchor, (v.clone(), values(&v)));
            self.anchor_lines.entry(anchor).or_insert(mark.line);
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

    fn close(&mut self, mark: Mark) {
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

    fn open(&mut self, frame: Frame, mark: Mark) {
        let anchor = match &frame {
            Frame::Seq { anchor, .. } | Frame::Map { anchor, .. } => *anchor,
        };
        if anchor > 0 {
            self.anchor_lines.insert(anchor, mark.line);
        }
        if self.stack.len() >= self.max_depth {
            self.fail(mark, format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(frame);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        self.event(ev, Mark::from(mark));
    }
}

impl Builder {
    pub(super) fn event(&mut self, ev: Event, mark: Mark) {
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
