//! Positions inside directive argument values.
//!
//! The GraphQL parser gives a position to each argument value but not to the list items and object fields inside
//! it, so `@auth(rules: [{allow: owner}, {allow: everyone}])` could only be reported at its `[`. This module
//! re-reads such a value from the source text to find where each item, key and nested value starts. The parser
//! has already accepted the text, so the scanner only needs to follow valid syntax; if it ever loses its way it
//! gives up and callers fall back to the enclosing position.

use async_graphql_parser::Pos;

/// Where a value and the parts inside it start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    /// Where the value starts.
    pub(crate) pos: Pos,
    items: Vec<Span>,
    fields: Vec<(String, Pos, Span)>,
}

impl Span {
    fn leaf(pos: Pos) -> Span {
        Span { pos, items: Vec::new(), fields: Vec::new() }
    }

    /// The span of list item `index`, or this span when unknown.
    pub(crate) fn item(&self, index: usize) -> &Span {
        self.items.get(index).unwrap_or(self)
    }

    /// Where object key `key` starts, or where this value starts when unknown.
    pub(crate) fn key_pos(&self, key: &str) -> Pos {
        self.fields.iter().rev().find(|(k, _, _)| k == key).map_or(self.pos, |(_, pos, _)| *pos)
    }

    /// The span of the value under object key `key`, or this span when unknown.
    pub(crate) fn value(&self, key: &str) -> &Span {
        self.fields.iter().rev().find(|(k, _, _)| k == key).map_or(self, |(_, _, span)| span)
    }
}

/// The span of the value that starts at `pos` in `text`.
pub(crate) fn scan(text: &str, pos: Pos) -> Span {
    Scanner::at(text, pos).and_then(|mut scanner| scanner.value()).unwrap_or_else(|| Span::leaf(pos))
}

/// A cursor over the source that counts lines and columns the way the parser does.
struct Scanner<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner positioned at `pos`.
    fn at(text: &'a str, pos: Pos) -> Option<Scanner<'a>> {
        let mut scanner = Scanner { text, offset: 0, line: 1, column: 1 };
        while scanner.pos() != pos {
            scanner.bump()?;
        }
        Some(scanner)
    }

    fn pos(&self) -> Pos {
        Pos { line: self.line, column: self.column }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.offset..].chars().next()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.text[self.offset..].starts_with(s)
    }

    /// Moves past one character. Like the parser, a carriage return restarts the column without a new line.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        match c {
            '\r' => self.column = 1,
            '\n' => {
                self.line += 1;
                self.column = 1;
            }
            _ => self.column += 1,
        }
        Some(c)
    }

    /// Skips what GraphQL ignores between tokens: white space, commas, comments and byte order marks.
    fn skip_ignored(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                    self.bump();
                }
            } else if c.is_whitespace() || c == ',' || c == '\u{feff}' {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// Reads one value and returns its span.
    fn value(&mut self) -> Option<Span> {
        self.skip_ignored();
        let mut span = Span::leaf(self.pos());
        match self.peek()? {
            '[' => {
                self.bump();
                while self.skip_ignored_then_peek()? != ']' {
                    span.items.push(self.value()?);
                }
                self.bump();
            }
            '{' => {
                self.bump();
                while self.skip_ignored_then_peek()? != '}' {
                    let key_pos = self.pos();
                    let key = self.name()?;
                    if self.skip_ignored_then_peek()? != ':' {
                        return None;
                    }
                    self.bump();
                    span.fields.push((key, key_pos, self.value()?));
                }
                self.bump();
            }
            '"' => self.string()?,
            _ => {
                self.name()?;
            }
        }
        Some(span)
    }

    fn skip_ignored_then_peek(&mut self) -> Option<char> {
        self.skip_ignored();
        self.peek()
    }

    /// Reads a name, number, boolean, `null` or enum value.
    fn name(&mut self) -> Option<String> {
        let start = self.offset;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c)) {
            self.bump();
        }
        (self.offset > start).then(|| self.text[start..self.offset].to_owned())
    }

    /// Skips a string or block string.
    fn string(&mut self) -> Option<()> {
        if self.starts_with("\"\"\"") {
            self.bump_n(3)?;
            loop {
                if self.starts_with("\\\"\"\"") {
                    self.bump_n(4)?;
                } else if self.starts_with("\"\"\"") {
                    return self.bump_n(3);
                } else {
                    self.bump()?;
                }
            }
        }
        self.bump()?;
        loop {
            match self.bump()? {
                '\\' => {
                    self.bump()?;
                }
                '"' => return Some(()),
                '\n' | '\r' => return None,
                _ => {}
            }
        }
    }

    fn bump_n(&mut self, n: usize) -> Option<()> {
        for _ in 0..n {
            self.bump()?;
        }
        Some(())
    }
}
