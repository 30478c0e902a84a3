//! The characters a YAML document may hold, as Ansible's loader (PyYAML) checks them.
//!
//! In: a file's text. Out: the position of the first character outside YAML's printable set
//! (`\t`, `\n`, `\r`, `#x20–#x7E`, `#x85`, `#xA0–#xD7FF`, `#xE000–#xFFFD`, above `#xFFFF`), if
//! any. PyYAML refuses such a file ("unacceptable character"); yaml-rust2 would instead read a
//! NUL as the end of the input and silently drop everything after it, so the loader checks first.

/// The 1-based line and column (in characters) of the first unacceptable character, and the
/// character.
pub fn first_unacceptable(text: &str) -> Option<(usize, usize, char)> {
    let bad = |c: char| {
        !matches!(c,
            '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}'
            | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
    };
    // Fast path: most inventories are printable ASCII.
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return None;
    }
    let (mut line, mut column) = (1, 0);
    for c in text.chars() {
        column += 1;
        if bad(c) {
            return Some((line, column, c));
        }
        if c == '\n' {
            (line, column) = (line + 1, 0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_found_where_they_are() {
        assert_eq!(first_unacceptable("all:\n  vars: {}\n"), None);
        assert_eq!(first_unacceptable("\u{feff}all: é\t\r\n"), None);
        assert_eq!(first_unacceptable("all:\n  # a\0b\n"), Some((2, 6, '\0')));
        assert_eq!(first_unacceptable("x: \u{7f}"), Some((1, 4, '\u{7f}')));
        assert_eq!(first_unacceptable("é: \u{9b}"), Some((1, 4, '\u{9b}')));
        assert_eq!(first_unacceptable("x: \u{ffff}"), Some((1, 4, '\u{ffff}')));
    }
}
