//! The fast reader's one-line constructs: quoted scalars and flow collections.
//!
//! In: the reader at a `'`, `"`, `[` or `{`. Out: the scalar's text (or the collection's
//! events) and where it ends, or `None` when it does not close on its line or steps outside the
//! layout (see the parent module). Pure: no IO.

use yaml_rust2::parser::Event;
use yaml_rust2::scanner::TScalarStyle;

use super::{plain_start, Mark, Reader};

impl<F: FnMut(Event, Mark)> Reader<'_, F> {
    /// A quoted scalar starting at `start`, closed on its line: its text, style, and where it
    /// ends.
    pub(super) fn quoted(&self, start: usize) -> Option<(String, TScalarStyle, usize)> {
        let q = self.b[start];
        let mut out = String::new();
        let mut i = start + 1;
        let mut run = i;
        loop {
            match *self.b.get(i)? {
                b'\n' => return None,
                c if c == q && q == b'\'' && self.at(i + 1) == b'\'' => {
                    out.push_str(&self.text[run..=i]);
                    i += 2;
                    run = i;
                }
                c if c == q => {
                    out.push_str(&self.text[run..i]);
                    let style = if q == b'\'' {
                        TScalarStyle::SingleQuoted
                    } else {
                        TScalarStyle::DoubleQuoted
                    };
                    return Some((out, style, i + 1));
                }
                b'\\' if q == b'"' => {
                    out.push_str(&self.text[run..i]);
                    out.push(match self.at(i + 1) {
                        b'\\' => '\\',
                        b'"' => '"',
                        b'/' => '/',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        _ => return None,
                    });
                    i += 2;
                    run = i;
                }
                _ => i += 1,
            }
        }
    }

    /// A flow sequence or mapping at `pos`, closed on its line.
    pub(super) fn flow(&mut self) -> Option<()> {
        self.nest()?;
        let mapping = self.b[self.pos] == b'{';
        let (close, end) = if mapping {
            self.put(Event::MappingStart(0, None));
            (b'}', Event::MappingEnd)
        } else {
            self.put(Event::SequenceStart(0, None));
            (b']', Event::SequenceEnd)
        };
        self.pos += 1;
        self.spaces();
        if self.at(self.pos) == close {
            self.pos += 1;
        } else {
            loop {
                if mapping && matches!(self.at(self.pos), b'[' | b'{') {
                    return None;
                }
                self.flow_node()?;
                self.spaces();
                if mapping {
                    if self.at(self.pos) != b':' || self.at(self.pos + 1) != b' ' {
                        return None;
                    }
                    self.pos += 2;
                    self.spaces();
                    self.flow_node()?;
                    self.spaces();
                }
                match self.at(self.pos) {
                    b',' => {
                        self.pos += 1;
                        self.spaces();
                        if matches!(self.at(self.pos), b',' | b']' | b'}') {
                            return None;
                        }
                    }
                    c if c == close => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.put(end);
        self.nesting -= 1;
        Some(())
    }

    /// A scalar or collection inside a flow collection.
    fn flow_node(&mut self) -> Option<()> {
        let c = self.at(self.pos);
        match c {
            b'[' | b'{' => self.flow(),
            b'\'' | b'"' => {
                let at = self.mark();
                let (text, style, end) = self.quoted(self.pos)?;
                self.scalar(text, style, at);
                self.pos = end;
                Some(())
            }
            _ if plain_start(c, self.at(self.pos + 1)) => {
                let (start, at) = (self.pos, self.mark());
                let mut i = start;
                loop {
                    match self.at(i) {
                        b',' | b'[' | b']' | b'{' | b'}' => break,
                        b':' if matches!(self.at(i + 1), b' ' | b',' | b']' | b'}') => break,
                        b':' | b'\n' => return None,
                        b'#' if self.b[i - 1] == b' ' => return None,
                        _ => i += 1,
                    }
                }
                let text = self.text[start..i].trim_end_matches(' ');
                self.pos = start + text.len();
                self.scalar(text.to_string(), TScalarStyle::Plain, at);
                Some(())
            }
            _ => None,
        }
    }
}
