//! The subset of Python literals that `.npy` headers use, parsed.
//!
//! Why not a crate: the maintained `.npy` crates (`npyz`, `ndarray-npy`)
//! parse this dict with `py_literal`, a `pest` grammar that recurses once
//! per nesting level with no limit of its own, on a header that can be up
//! to 4 GiB long in format 2.0 — hostile input such as `((((…` must give a
//! one-line error, not a stack overflow — and they would bring about ten
//! crates (pest and its derive macros, num-bigint, ndarray) into the core
//! for one dict of three keys. Their errors also carry no byte position.
//! This parser is small, bounded ([`MAX_NESTING`]) and property-tested
//! against arbitrary bytes (`vecio::tests`).

use super::printable;

/// Nesting limit of the `.npy` header parser, so that hostile input such as
/// `((((((…` cannot exhaust the stack.
const MAX_NESTING: usize = 16;

/// The subset of Python literals that `.npy` headers use.
#[derive(Debug, PartialEq)]
pub(super) enum PyValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
}

/// A parser for the header's Python dict literal. Errors are one-line
/// descriptions with the byte position in the header.
pub(super) struct DictParser<'a> {
    s: &'a [u8],
    pos: usize,
}

type ParseResult<T> = std::result::Result<T, String>;

impl<'a> DictParser<'a> {
    pub(super) fn parse(s: &'a [u8]) -> ParseResult<Vec<(String, PyValue)>> {
        let mut p = DictParser { s, pos: 0 };
        p.skip_ws();
        p.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            p.skip_ws();
            if p.eat(b'}') {
                break;
            }
            let key = match p.value(1)? {
                PyValue::Str(k) => k,
                _ => return Err(format!("dict key at byte {} is not a string", p.pos)),
            };
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let value = p.value(1)?;
            entries.push((key, value));
            p.skip_ws();
            if !p.eat(b',') {
                p.expect_close(b'}')?;
                break;
            }
        }
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(format!("unexpected {} after the dict", p.describe_here()));
        }
        Ok(entries)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> ParseResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' but found {}", c as char, self.describe_here()))
        }
    }

    /// The end of a dict or sequence, after an item not followed by a comma.
    fn expect_close(&mut self, close: u8) -> ParseResult<()> {
        if self.eat(close) {
            Ok(())
        } else {
            Err(format!("expected ',' or '{}' but found {}", close as char, self.describe_here()))
        }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "the end of the header".to_string(),
            Some(c) if c.is_ascii_graphic() => format!("{:?} at byte {}", c as char, self.pos),
            Some(c) => format!("byte 0x{c:02x} at byte {}", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> ParseResult<PyValue> {
        if depth > MAX_NESTING {
            return Err(format!("nested too deeply at byte {}", self.pos));
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'(') => self.sequence(b')', depth),
            Some(b'[') => self.sequence(b']', depth),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(PyValue::Bool(true)),
                    b"False" => Ok(PyValue::Bool(false)),
                    word => {
                        Err(format!("unexpected name '{}' at byte {start}", printable(&String::from_utf8_lossy(word))))
                    }
                }
            }
            _ => Err(format!("expected a value but found {}", self.describe_here())),
        }
    }

    fn string(&mut self, quote: u8) -> ParseResult<PyValue> {
        let start = self.pos;
        self.pos += 1;
        let body = self.pos;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(format!("unterminated string starting at byte {start}")),
                Some(b'\\') => {
                    return Err(format!("escape sequences in strings are not supported (byte {})", self.pos))
                }
                Some(c) if c == quote => break,
                Some(_) => self.pos += 1,
            }
        }
        let text = String::from_utf8_lossy(&self.s[body..self.pos]).into_owned();
        self.pos += 1;
        Ok(PyValue::Str(text))
    }

    fn int(&mut self) -> ParseResult<PyValue> {
        let start = self.pos;
        let negative = self.eat(b'-');
        let digits = self.pos;
        let mut n: i64 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(c - b'0')))
                .ok_or_else(|| format!("integer at byte {start} is too large"))?;
            self.pos += 1;
        }
        if self.pos == digits {
            return Err(format!("expected digits after '-' at byte {start}"));
        }
        // Python 2 long suffix, as in `(3L, 4L)`.
        let _ = self.eat(b'L') || self.eat(b'l');
        Ok(PyValue::Int(if negative { -n } else { n }))
    }

    /// A tuple `( … )` or list `[ … ]`. As in Python, `(x)` without a
    /// trailing comma is just `x`.
    fn sequence(&mut self, close: u8, depth: usize) -> ParseResult<PyValue> {
        self.pos += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.eat(close) {
                break;
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            trailing_comma = self.eat(b',');
            if !trailing_comma {
                self.expect_close(close)?;
                break;
            }
        }
        if close == b']' {
            return Ok(PyValue::List(items));
        }
        if items.len() == 1 && !trailing_comma {
            if let Some(only) = items.pop() {
                return Ok(only);
            }
        }
        Ok(PyValue::Tuple(items))
    }
}
