//! A fast reader for plainly laid out block YAML: the events yaml-rust2 gives, several times
//! faster.
//!
//! In: one text. Out: its events (stream, document, scalars, sequences, mappings, each with
//! where it starts) fed to `emit`, or `None` as soon as the text steps outside the plain layout
//! Pigsty inventories are written in; the caller then drops what was emitted and reads the text
//! with yaml-rust2, so errors, and everything rarer, always come from the full parser.
//!
//! In the layout: block mappings and sequences indented by spaces, keys that are plain or quoted
//! scalars, plain scalars on one line, single- and double-quoted scalars on one line (double
//! with the escapes `\\ \" \/ \n \t \r`), flow sequences and mappings on one line, comments and
//! blank lines. Outside it: tabs, carriage returns and other line breaks or control characters,
//! a byte-order mark, directives, document markers (but a first `---`), anchors, aliases, tags, block scalars,
//! scalars or flow collections over several lines, complex keys, empty flow entries, plain
//! scalars starting with an indicator, and everything yaml-rust2 refuses. Checked against
//! yaml-rust2 on the Pigsty corpus by the tests and on mutated inventories by the fuzzer.
//! Pure: no IO.

use yaml_rust2::parser::Event;
use yaml_rust2::scanner::TScalarStyle;

use super::Mark;

mod flow;

/// An implicit key is at most this long (YAML's limit).
const MAX_KEY: usize = 1024;

/// Collections nested deeper than this are left to yaml-rust2 (it bounds nesting without
/// recursion; this reader recurses).
const MAX_NESTING: usize = 200;

/// Reads `text`, or `None` when it is not plainly laid out (see the module's text).
pub fn read(text: &str, emit: &mut impl FnMut(Event, Mark)) -> Option<()> {
    if !plain_text(text.as_bytes()) {
        return None;
    }
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        pos: 0,
        line: 1,
        line_start: 0,
        nesting: 0,
        emit,
    };
    r.document()
}

/// No control character but the line feed, no byte-order mark, no NEL, LS or PS line break.
fn plain_text(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {}
            0..=0x1f | 0x7f => return false,
            0xc2 if b.get(i + 1) == Some(&0x85) => return false,
            0xe2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xa8 | 0xa9)) => {
                return false
            }
            0xef if b.get(i + 1) == Some(&0xbb) && b.get(i + 2) == Some(&0xbf) => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

/// Whether a plain scalar may start with `c` (followed by `next`) in this layout.
fn plain_start(c: u8, next: u8) -> bool {
    match c {
        b'-' => next.is_ascii_alphanumeric() || matches!(next, b'.' | b'-'),
        b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' | b'?' | b':' | b' ' | b'\n' => false,
        _ => true,
    }
}

/// What follows the blank and comment lines.
enum Next {
    End,
    /// A line with content, indented this much.
    At(usize),
}

/// A block mapping's key, read up to its `:`.
struct Key {
    text: String,
    style: TScalarStyle,
    at: Mark,
    /// Just past the `:`.
    after: usize,
}

struct Reader<'a, F> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    /// 1-based line of `pos`, and where that line starts.
    line: usize,
    line_start: usize,
    nesting: usize,
    emit: &'a mut F,
}

impl<F: FnMut(Event, Mark)> Reader<'_, F> {
    /// The byte at `i`; the end of the text reads as a line break.
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(b'\n')
    }

    fn mark(&self) -> Mark {
        Mark {
            line: self.line,
            col: self.pos - self.line_start,
        }
    }

    fn put(&mut self, ev: Event) {
        let m = self.mark();
        (self.emit)(ev, m);
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, at: Mark) {
        (self.emit)(Event::Scalar(text, style, 0, None), at);
    }

    fn is_dash(&self, i: usize) -> bool {
        self.at(i) == b'-' && matches!(self.at(i + 1), b' ' | b'\n')
    }

    fn spaces(&mut self) {
        while self.at(self.pos) == b' ' {
            self.pos += 1;
        }
    }

    /// Moves past the next line break (or to the end).
    fn next_line(&mut self) {
        match self.b[self.pos..].iter().position(|&c| c == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
                self.line_start = self.pos;
            }
            None => self.pos = self.b.len(),
        }
    }

    /// From the start of a line, past blank and comment lines; `pos` stays at the start of the
    /// line with content. A document marker (`---`, `...`) ends the content; `None` at a
    /// directive, or anything else starting like a marker.
    fn next_content(&mut self) -> Option<Next> {
        loop {
            let start = self.pos;
            let mut i = start;
            while self.b.get(i) == Some(&b' ') {
                i += 1;
            }
            match self.b.get(i) {
                None => {
                    self.pos = self.b.len();
                    return Some(Next::End);
                }
                Some(b'\n' | b'#') => self.next_line(),
                Some(&c) => {
                    let rest = &self.b[i..];
                    if i == start && (rest.starts_with(b"---") || rest.starts_with(b"...")) {
                        return matches!(self.at(i + 3), b' ' | b'\n').then_some(Next::End);
                    }
                    if i == start && c == b'%' {
                        return None;
                    }
                    return Some(Next::At(i - start));
                }
            }
        }
    }

    /// Past the blank and comment lines, and a `marker` line (`---`, `...`) after them; whether
    /// there was one.
    fn marker_line(&mut self, marker: &str) -> bool {
        while self.pos < self.b.len() {
            let rest = &self.text[self.pos..];
            let line = rest.split('\n').next().unwrap_or_default();
            let content = line.trim_start_matches(' ');
            if content.is_empty() || content.starts_with('#') {
                self.next_line();
                continue;
            }
            let Some(after) = line.strip_prefix(marker) else {
                return false;
            };
            let comment = after.trim_start_matches(' ');
            let marker =
                comment.is_empty() || (comment.len() < after.len() && comment.starts_with('#'));
            if marker {
                self.next_line();
            }
            return marker;
        }
        false
    }

    fn document(&mut self) -> Option<()> {
        self.put(Event::StreamStart);
        let explicit = self.marker_line("---");
        match self.next_content()? {
            Next::At(indent) => {
                self.put(Event::DocumentStart);
                self.pos += indent;
                self.node(indent)?;
                self.marker_line("...");
                if !matches!(self.next_content()?, Next::End) || self.pos < self.b.len() {
                    return None;
                }
                self.put(Event::DocumentEnd);
            }
            Next::End if self.pos < self.b.len() => return None,
            Next::End if explicit => {
                self.put(Event::DocumentStart);
                self.scalar(String::new(), TScalarStyle::Plain, self.mark());
                self.put(Event::DocumentEnd);
            }
            Next::End => {}
        }
        self.put(Event::StreamEnd);
        Some(())
    }

    /// A block node whose first line has content at `pos`, column `col`.
    fn node(&mut self, col: usize) -> Option<()> {
        if self.is_dash(self.pos) {
            return self.sequence(col);
        }
        if let Some(key) = self.key()? {
            return self.mapping(col, key);
        }
        self.inline()
    }

    /// The key at `pos` when the line is `key: …` (`Some(None)`: it is not).
    fn key(&mut self) -> Option<Option<Key>> {
        let start = self.pos;
        let at = self.mark();
        let c = self.b[start];
        let (text, style, end) = match c {
            b'\'' | b'"' => {
                let (text, style, end) = self.quoted(start)?;
                let mut i = end;
                while self.at(i) == b' ' {
                    i += 1;
                }
                if self.at(i) != b':' || !matches!(self.at(i + 1), b' ' | b'\n') {
                    return Some(None);
                }
                (text, style, i)
            }
            _ if plain_start(c, self.at(start + 1)) => {
                let mut i = start;
                loop {
                    match self.at(i) {
                        b'\n' => return Some(None),
                        b':' if matches!(self.at(i + 1), b' ' | b'\n') => break,
                        b'#' if self.b[i - 1] == b' ' => return Some(None),
                        _ => i += 1,
                    }
                }
                let text = self.text[start..i].trim_end_matches(' ').to_string();
                (text, TScalarStyle::Plain, i)
            }
            _ => return Some(None),
        };
        if end - start > MAX_KEY {
            return None;
        }
        Some(Some(Key {
            text,
            style,
            at,
            after: end + 1,
        }))
    }

    fn nest(&mut self) -> Option<()> {
        self.nesting += 1;
        (self.nesting <= MAX_NESTING).then_some(())
    }

    fn mapping(&mut self, col: usize, mut key: Key) -> Option<()> {
        self.nest()?;
        self.put(Event::MappingStart(0, None));
        loop {
            self.scalar(key.text, key.style, key.at);
            self.pos = key.after;
            self.value(col, false)?;
            match self.next_content()? {
                Next::At(i) if i == col => {
                    self.pos += i;
                    key = self.key()??;
                }
                Next::At(i) if i > col => return None,
                _ => break,
            }
        }
        self.put(Event::MappingEnd);
        self.nesting -= 1;
        Some(())
    }

    fn sequence(&mut self, col: usize) -> Option<()> {
        self.nest()?;
        self.put(Event::SequenceStart(0, None));
        loop {
            self.pos += 1;
            self.value(col, true)?;
            match self.next_content()? {
                Next::At(i) if i == col && self.is_dash(self.pos + i) => self.pos += i,
                Next::At(i) if i > col => return None,
                _ => break,
            }
        }
        self.put(Event::SequenceEnd);
        self.nesting -= 1;
        Some(())
    }

    /// The value after a mapping's `:` or a sequence's `-` (`pos` just past it), whose
    /// collection sits at column `col`; ends at the start of a line.
    fn value(&mut self, col: usize, in_sequence: bool) -> Option<()> {
        self.spaces();
        if matches!(self.at(self.pos), b'\n' | b'#') {
            self.next_line();
            return match self.next_content()? {
                Next::At(i) if i > col => {
                    self.pos += i;
                    self.node(i)
                }
                // A mapping's sequence may sit at the mapping's own indentation.
                Next::At(i) if i == col && !in_sequence && self.is_dash(self.pos + i) => {
                    self.pos += i;
                    self.sequence(i)
                }
                _ => {
                    self.scalar(String::new(), TScalarStyle::Plain, self.mark());
                    Some(())
                }
            };
        }
        if self.is_dash(self.pos) {
            return None;
        }
        match self.key()? {
            // `- key: value`: a mapping starting on the sequence's line.
            Some(key) if in_sequence => {
                let c = self.pos - self.line_start;
                self.mapping(c, key)
            }
            Some(_) => None,
            None => self.inline(),
        }
    }

    /// A scalar or flow collection that ends its line.
    fn inline(&mut self) -> Option<()> {
        let c = self.b[self.pos];
        match c {
            b'\'' | b'"' => {
                let at = self.mark();
                let (text, style, end) = self.quoted(self.pos)?;
                self.scalar(text, style, at);
                self.pos = end;
            }
            b'[' | b'{' => self.flow()?,
            _ if plain_start(c, self.at(self.pos + 1)) => {
                let (start, at) = (self.pos, self.mark());
                let mut i = start;
                loop {
                    match self.at(i) {
                        b'\n' => break,
                        b'#' if self.b[i - 1] == b' ' => break,
                        b':' if matches!(self.at(i + 1), b' ' | b'\n') => return None,
                        _ => i += 1,
                    }
                }
                let text = self.text[start..i].trim_end_matches(' ');
                self.pos = start + text.len();
                self.scalar(text.to_string(), TScalarStyle::Plain, at);
            }
            _ => return None,
        }
        // Only spaces and a comment may follow on the line.
        let end = self.pos;
        self.spaces();
        match self.at(self.pos) {
            b'\n' => {}
            b'#' if self.pos > end => {}
            _ => return None,
        }
        self.next_line();
        Some(())
    }
}

#[cfg(test)]
mod tests;
