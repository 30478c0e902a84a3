//! Where each YAML node sits in its file.
//!
//! serde_yaml values carry no positions, so diagnostics need a second source: this module parses
//! the same text with yaml-rust2's event parser and records, for every node reachable without
//! following an alias, the 1-based line and column of its first character.
//! In: the file text. Out: a [`PositionIndex`] answering "where is `all.children.pg-meta.vars`?"
//! (the nearest indexed ancestor when the exact path is not indexed, e.g. inside an alias).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path the way users read it: `all.children.pg-meta.vars.pg_users[2].name`.
pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Default)]
pub struct PositionIndex {
    map: HashMap<Vec<Seg>, Pos>,
}

impl PositionIndex {
    /// Builds the index. A text that the event parser refuses yields an empty index; the caller
    /// reports the parse error itself (serde_yaml gives its location).
    pub fn build(text: &str) -> Self {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut rx, false);
        PositionIndex { map: rx.map }
    }

    /// Position of exactly `path` (`None` when it is not indexed, e.g. inside an alias).
    pub fn locate_exact(&self, path: &[Seg]) -> Option<Pos> {
        self.map.get(path).copied()
    }

    /// Position of `path`, or of its nearest indexed ancestor.
    pub fn locate(&self, path: &[Seg]) -> Option<Pos> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.map.get(&path[..n]).copied())
    }
}

enum Frame {
    /// The pending key and where it is written.
    Map {
        key: Option<(Seg, Pos)>,
    },
    Seq {
        next: usize,
    },
    /// Inside a complex (non-scalar) mapping key: nothing below is addressable.
    Skip {
        depth: usize,
    },
}

#[derive(Default)]
struct Receiver {
    map: HashMap<Vec<Seg>, Pos>,
    path: Vec<Seg>,
    frames: Vec<Frame>,
}

impl Receiver {
    /// Handles the start of a node (scalar, alias or collection). A collection under a key is
    /// located at its key; a scalar at itself.
    fn node(&mut self, mark: Marker, scalar: Option<&str>, opens: bool) {
        let mut pos = Pos {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match self.frames.last_mut() {
            Some(Frame::Skip { depth }) => {
                if opens {
                    *depth += 1;
                }
                return;
            }
            Some(Frame::Map { key }) if key.is_none() => {
                match scalar {
                    Some(s) => *key = Some((Seg::Key(s.to_string()), pos)),
                    None if opens => {
                        *key = Some((Seg::Key("?".into()), pos));
                        self.frames.push(Frame::Skip { depth: 1 });
                    }
                    None => *key = Some((Seg::Key("*".into()), pos)),
                }
                return;
            }
            Some(Frame::Map { key }) => {
                let (seg, key_pos) = key.take().expect("checked above");
                if opens {
                    pos = key_pos;
                }
                self.path.push(seg);
            }
            Some(Frame::Seq { next }) => {
                self.path.push(Seg::Index(*next));
                *next += 1;
            }
            None => {}
        }
        self.map.entry(self.path.clone()).or_insert(pos);
        if !opens && !self.frames.is_empty() {
            self.path.pop();
        }
    }

    fn close(&mut self) {
        if let Some(Frame::Skip { depth }) = self.frames.last_mut() {
            *depth -= 1;
            if *depth == 0 {
                self.frames.pop();
            }
            return;
        }
        self.frames.pop();
        if !self.frames.is_empty() {
            self.path.pop();
        }
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(ref s, ..) => self.node(mark, Some(s), false),
            Event::Alias(_) => self.node(mark, None, false),
            Event::MappingStart(..) => {
                let skipping = matches!(self.frames.last(), Some(Frame::Skip { .. }));
                self.node(mark, None, true);
                if !skipping && !matches!(self.frames.last(), Some(Frame::Skip { .. })) {
                    self.frames.push(Frame::Map { key: None });
                }
            }
            Event::SequenceStart(..) => {
                let skipping = matches!(self.frames.last(), Some(Frame::Skip { .. }));
                self.node(mark, None, true);
                if !skipping && !matches!(self.frames.last(), Some(Frame::Skip { .. })) {
                    self.frames.push(Frame::Seq { next: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Seg {
        Seg::Key(s.into())
    }

    #[test]
    fn block_and_flow_positions() {
        let text = "all:\n  children:\n    pg-meta:\n      hosts: { 10.0.0.1: { pg_seq: 1 } }\n      vars:\n        pg_users:\n          - name: a\n          - { name: b }\n";
        let idx = PositionIndex::build(text);
        let p = |v: Vec<Seg>| idx.locate(&v).unwrap();
        assert_eq!(
            p(vec![key("all"), key("children"), key("pg-meta")]),
            Pos { line: 3, column: 5 }
        );
        let seq = p(vec![
            key("all"),
            key("children"),
            key("pg-meta"),
            key("hosts"),
            key("10.0.0.1"),
            key("pg_seq"),
        ]);
        assert_eq!(
            seq,
            Pos {
                line: 4,
                column: 36
            }
        );
        let users = vec![
            key("all"),
            key("children"),
            key("pg-meta"),
            key("vars"),
            key("pg_users"),
        ];
        let mut b = users.clone();
        b.extend([Seg::Index(1), key("name")]);
        assert_eq!(
            p(b),
            Pos {
                line: 8,
                column: 21
            }
        );
        // unknown child falls back to the nearest ancestor
        let mut missing = users.clone();
        missing.push(Seg::Index(7));
        assert_eq!(p(missing), p(users));
    }

    #[test]
    fn complex_keys_and_aliases_do_not_derail() {
        let text = "a: &x { k: 1 }\n? [1, 2]\n: v\nb: *x\nc:\n  d: 2\n";
        let idx = PositionIndex::build(text);
        assert_eq!(
            idx.locate(&[key("c"), key("d")]),
            Some(Pos { line: 6, column: 6 })
        );
        assert_eq!(idx.locate(&[key("b")]), Some(Pos { line: 4, column: 4 }));
        assert_eq!(display_path(&[key("a"), Seg::Index(2), key("b")]), "a[2].b");
    }
}
