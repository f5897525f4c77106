//! Text printed to the terminal: file names and messages can hold escape
//! sequences, control characters and newlines (a file may be named
//! "\e]0;owned\a.jpg"), which must not reach the terminal raw. JSON and
//! HTML output escape in their own way and do not use this.

use std::borrow::Cow;
use std::path::Path;

/// `s` with every control character (C0, DEL, C1) written as an escape:
/// `\n`, `\r`, `\t`, else `\x1b`-style (`\u{9b}` above 0x7f), so that it
/// prints as one line of inert text.
pub fn safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A path for the terminal: lossy UTF-8, control characters escaped.
pub fn path(p: &Path) -> String {
    safe(&p.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(safe("plain é.jpg"), "plain é.jpg");
        assert_eq!(safe("a\x1b]0;x\x07b\nc\td\r\u{9b}e\x7f"), "a\\x1b]0;x\\x07b\\nc\\td\\r\\u{9b}e\\x7f");
        assert!(!safe("\x1b[2J").contains('\x1b'));
    }
}
