//! Character-level scanning of configuration text: positions, comments, keys, include
//! paths and scalar values, with nats-server's lexical rules.
//!
//! The structure (maps, arrays, separators between entries) is driven by `parse.rs`;
//! this module reads one token at a time from a [`Cursor`].

use std::sync::Arc;

use super::value::Pos;

/// A lexical error: where and what.
#[derive(Debug)]
pub(crate) struct LexError {
    pub pos: Pos,
    pub message: String,
}

/// A scalar value as written, before variables are resolved.
#[derive(Debug)]
pub(crate) enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    /// An unquoted `$NAME` (the name without the `$`).
    Var(String),
}

/// A key as read: name, position, and whether whitespace ended it (only then can a
/// bare `include` be the keyword).
pub(crate) struct RawKey {
    pub name: String,
    pub pos: Pos,
    pub ended_by_space: bool,
}

/// A read position in one text.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    /// Byte index of the last newline read (0 on the first line): columns are counted
    /// from it, as nats-server does.
    line_start: usize,
    file: Arc<str>,
}

/// Space or tab: what may separate tokens on one line.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// A number's letters that scale it: k, m, g, t, p, e (either case).
fn is_size_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

/// What may follow an integer. nats-server also ends an integer at a digit right
/// after a size suffix (`4e2` is `4e` and then an error) and does not end one at `]`
/// (`[1,2]` is an error); tenet reads `4e2x` as a string, as newer nats-server does,
/// and `[1,2]` as two integers.
fn ends_integer(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => is_newline(c) || is_blank(c) || matches!(c, '}' | ']' | ';' | ','),
    }
}

/// Describes a character (or the end of the text) for an error message.
pub(crate) fn found(c: Option<char>) -> String {
    match c {
        None => "end of file".to_string(),
        Some('\n') => "a new line".to_string(),
        Some('\r') => "a carriage return".to_string(),
        Some('\t') => "a tab".to_string(),
        Some(c) if c.is_control() => format!("{:?}", c),
        Some(c) => format!("'{c}'"),
    }
}

impl<'a> Cursor<'a> {
    pub fn new(file: Arc<str>, text: &'a str) -> Self {
        Cursor {
            text,
            pos: 0,
            line: 1,
            line_start: 0,
            file,
        }
    }

    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    pub fn peek(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|s| s.chars().next())
    }

    /// The character after the next one.
    pub fn peek2(&self) -> Option<char> {
        let mut it = self.text.get(self.pos..)?.chars();
        it.next();
        it.next()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.line_start = self.pos;
        }
        self.pos += c.len_utf8();
        Some(c)
    }

    /// The position of the next character.
    pub fn here(&self) -> Pos {
        let column = u32::try_from(self.pos - self.line_start).unwrap_or(u32::MAX);
        Pos {
            file: self.file.clone(),
            line: self.line,
            column,
        }
    }

    /// Where an error about the next character is reported. A newline is reported on
    /// the line it starts, as nats-server does (its line count has already moved on).
    pub fn offending(&self) -> Pos {
        if self.peek() == Some('\n') {
            Pos {
                file: self.file.clone(),
                line: self.line.saturating_add(1),
                column: 1,
            }
        } else {
            self.here()
        }
    }

    pub fn error(&self, message: String) -> LexError {
        LexError {
            pos: self.offending(),
            message,
        }
    }

    /// Skips spaces and tabs.
    pub fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.bump();
        }
    }

    /// Skips all whitespace, newlines included.
    pub fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Is a comment (`#` or `//`) next?
    pub fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek2() == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to (not including) the end of its line.
    pub fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| !is_newline(c)) {
            self.bump();
        }
    }

    /// A key in quotes (`"..."` or `'...'`, no escapes); the quote is next.
    pub fn quoted_key(&mut self) -> Result<RawKey, LexError> {
        let start_line = self.line;
        let quote = self.bump().unwrap_or('"');
        let pos = self.here();
        let name = self.until_quote(quote, || {
            format!("unterminated quoted key starting on line {start_line}")
        })?;
        Ok(RawKey {
            name,
            pos,
            ended_by_space: false,
        })
    }

    /// The raw text up to the closing `quote`, which is consumed; `what` names
    /// the unterminated thing for the error.
    fn until_quote(
        &mut self,
        quote: char,
        what: impl FnOnce() -> String,
    ) -> Result<String, LexError> {
        let start = self.pos;
        loop {
            match self.peek() {
                None => {
                    let what = what();
                    return Err(self.error(format!(
                        "{what}: expected a closing {quote}, found end of file"
                    )));
                }
                Some(c) if c == quote => break,
                Some(_) => {
                    self.bump();
                }
            }
        }
        let text = self.text[start..self.pos].to_string();
        self.bump();
        Ok(text)
    }

    /// A bare key: everything up to whitespace, `=` or `:` (or the end of the text).
    /// The first character is taken whatever it is.
    pub fn bare_key(&mut self) -> RawKey {
        let pos = self.here();
        let start = self.pos;
        self.bump();
        let mut ended_by_space = false;
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                ended_by_space = true;
                break;
            }
            if c == '=' || c == ':' {
                break;
            }
            self.bump();
        }
        RawKey {
            name: self.text[start..self.pos].to_string(),
            pos,
            ended_by_space,
        }
    }

    /// The path after the `include` keyword: quoted with either quote, or bare up to
    /// whitespace, a newline, `;` or `}`.
    pub fn include_path(&mut self) -> Result<(String, Pos), LexError> {
        self.skip_blanks();
        let what = match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let pos = self.here();
                let path = self.until_quote(q, || "unterminated include path".to_string())?;
                return Ok((path, pos));
            }
            Some('[') => "the start of an array",
            Some('{') => "the start of a map",
            Some('(') => "the start of a block",
            Some('-') => "the start of a number",
            Some(c) if c.is_ascii_digit() => "the start of a number",
            Some('\\') => "an escape sequence",
            Some(c) if is_newline(c) => "a new line",
            None => "end of file",
            Some(_) => "",
        };
        if !what.is_empty() {
            return Err(self.error(format!("expected a file name after include, found {what}")));
        }
        let pos = self.here();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_newline(c) || is_blank(c) || c == ';' || c == '}' {
                break;
            }
            if c == '\'' {
                let path = self.text[start..self.pos].to_string();
                self.bump();
                return Ok((path, pos));
            }
            self.bump();
        }
        Ok((self.text[start..self.pos].to_string(), pos))
    }

    /// A scalar value; blanks before it are already skipped and it is not a map or an
    /// array. Returns the value and where it starts (inside quotes or after `$`, as
    /// nats-server reports).
    pub fn scalar(&mut self) -> Result<(Scalar, Pos), LexError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                let start_line = self.line;
                self.bump();
                let pos = self.here();
                let s = if q == '"' {
                    self.double_quoted(start_line)?
                } else {
                    self.single_quoted(start_line)?
                };
                Ok((Scalar::Str(s), pos))
            }
            Some('(') => {
                let start_line = self.line;
                self.bump();
                let pos = self.here();
                Ok((Scalar::Str(self.block(start_line)?), pos))
            }
            Some('-') => {
                let pos = self.here();
                Ok((self.negative_number()?, pos))
            }
            Some(c) if c.is_ascii_digit() => {
                let pos = self.here();
                Ok((self.number()?, pos))
            }
            Some('.') => Err(self.error("a number must start with a digit, not '.'".to_string())),
            Some(c) if is_newline(c) => {
                Err(self.error(format!("expected a value, found {}", found(Some(c)))))
            }
            _ => {
                let mut pos = self.here();
                let v = self.unquoted(Vec::new(), true)?;
                if matches!(v, Scalar::Var(_)) {
                    pos.column = pos.column.saturating_add(1);
                }
                Ok((v, pos))
            }
        }
    }

    fn single_quoted(&mut self, start_line: u32) -> Result<String, LexError> {
        let start = self.pos;
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!(
                        "unterminated string starting on line {start_line}: expected a closing ', found end of file"
                    )))
                }
                Some('\'') => break,
                Some(_) => {
                    self.bump();
                }
            }
        }
        let s = self.text[start..self.pos].to_string();
        self.bump();
        Ok(s)
    }

    fn double_quoted(&mut self, start_line: u32) -> Result<String, LexError> {
        let start = self.here();
        let mut buf = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(format!(
                        "unterminated string starting on line {start_line}: expected a closing \", found end of file"
                    )))
                }
                Some('"') => {
                    self.bump();
                    break;
                }
                Some('\\') => {
                    self.bump();
                    self.escape(&mut buf)?;
                }
                Some(c) => {
                    self.bump();
                    push_char(&mut buf, c);
                }
            }
        }
        utf8(buf, start)
    }

    /// After a `\`: one escape, appended to `buf`.
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), LexError> {
        let at = self.offending();
        let c = self.bump();
        let plain = match c {
            Some('t') => b'\t',
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('"') => b'"',
            Some('\\') => b'\\',
            Some('x') => {
                let mut digits = String::new();
                for _ in 0..2 {
                    let at = self.offending();
                    match self.bump() {
                        Some(h) if is_newline(h) => {
                            return Err(LexError {
                                pos: at,
                                message: "expected two hexadecimal digits after \\x, found the end of the line"
                                    .to_string(),
                            })
                        }
                        Some(h) => digits.push(h),
                        None => break,
                    }
                }
                match u8::from_str_radix(&digits, 16) {
                    Ok(b) if digits.len() == 2 => b,
                    _ => {
                        return Err(LexError {
                            pos: at,
                            message: format!("expected two hexadecimal digits after \\x, found {digits:?}"),
                        })
                    }
                }
            }
            other => {
                return Err(LexError {
                    pos: at,
                    message: format!(
                        "invalid escape {} after '\\' (the escapes are \\t, \\n, \\r, \\\", \\\\ and \\xHH)",
                        found(other)
                    ),
                })
            }
        };
        buf.push(plain);
        Ok(())
    }

    /// `( ... )`: the text up to a `)` alone on its own line (the newline before it is
    /// part of the value).
    fn block(&mut self, start_line: u32) -> Result<String, LexError> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut i = start;
        while i < bytes.len() {
            if bytes[i] == b')'
                && i > 0
                && bytes[i - 1] == b'\n'
                && (i + 1 == bytes.len() || bytes[i + 1] == b'\n')
            {
                let value = self.text[start..i].to_string();
                while self.pos <= i {
                    self.bump();
                }
                return Ok(value);
            }
            i += 1;
        }
        while self.bump().is_some() {}
        Err(self.error(format!(
            "unterminated block starting on line {start_line}: expected ')' alone on a line, found end of file"
        )))
    }

    /// An unquoted string, a boolean or a variable reference. `buf` holds what a number
    /// scan already took; `classify` is false then (such text is always a string).
    fn unquoted(&mut self, mut buf: Vec<u8>, classify: bool) -> Result<Scalar, LexError> {
        let start = self.here();
        let mut escaped = false;
        loop {
            match self.peek() {
                None => break,
                Some(c) if is_newline(c) || is_blank(c) || matches!(c, ';' | ',' | ']' | '}') => {
                    break
                }
                Some('\'') => {
                    // A quote ends an unquoted string and is dropped (nats-server).
                    self.bump();
                    return Ok(Scalar::Str(utf8(buf, start)?));
                }
                Some('\\') => {
                    self.bump();
                    self.escape(&mut buf)?;
                    escaped = true;
                }
                Some(c) => {
                    self.bump();
                    push_char(&mut buf, c);
                }
            }
        }
        let s = utf8(buf, start)?;
        if !classify || escaped {
            return Ok(Scalar::Str(s));
        }
        match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => return Ok(Scalar::Bool(true)),
            "false" | "no" | "off" => return Ok(Scalar::Bool(false)),
            _ => {}
        }
        match s.strip_prefix('$') {
            Some(name) => Ok(Scalar::Var(name.to_string())),
            None => Ok(Scalar::Str(s)),
        }
    }

    fn take_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }

    /// A value starting with a digit: integer (maybe with a size suffix), float,
    /// datetime, IP address, or a string.
    fn number(&mut self) -> Result<Scalar, LexError> {
        let start = self.pos;
        let at = self.here();
        self.take_digits();
        match self.peek() {
            Some('-') => {
                if self.pos - start != 4 {
                    return Err(self.error(
                        "a value of digits and '-' must be a full Zulu datetime such as 2006-01-02T15:04:05Z"
                            .to_string(),
                    ));
                }
                self.bump();
                self.datetime(start, at)
            }
            Some('.') => {
                self.bump();
                self.fraction(start)
            }
            Some(c) if is_size_suffix(c) => {
                self.bump();
                self.suffix(start, at)
            }
            c if ends_integer(c) => integer(&self.text[start..self.pos], at),
            _ => {
                // Not a number after all: the whole run is a string. The character that
                // decided it is taken as is (a `\` here is not an escape, as in nats).
                self.bump();
                let buf = self.text.as_bytes()[start..self.pos].to_vec();
                self.unquoted(buf, false)
            }
        }
    }

    fn negative_number(&mut self) -> Result<Scalar, LexError> {
        let start = self.pos;
        let at = self.here();
        self.bump();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {}
            Some('.') => {
                return Err(self.error("a number must start with a digit, not '.'".to_string()))
            }
            c => return Err(self.error(format!("expected a digit after '-', found {}", found(c)))),
        }
        self.take_digits();
        match self.peek() {
            Some('.') => {
                self.bump();
                self.fraction(start)
            }
            Some(c) if is_size_suffix(c) => {
                self.bump();
                self.suffix(start, at)
            }
            _ => integer(&self.text[start..self.pos], at),
        }
    }

    /// After `digits.`: a float, or (after a second `.`) an IP address, kept as a string.
    fn fraction(&mut self, start: usize) -> Result<Scalar, LexError> {
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {}
            c => {
                return Err(self.error(format!(
                    "expected a digit after '.' in a number, found {}",
                    found(c)
                )))
            }
        }
        self.take_digits();
        if self.peek() == Some('.') {
            // An address such as 127.0.0.1:4222. Like nats-server it ends at the first
            // other character, so `10.0.0.1:foo` is an error where it stops.
            self.bump();
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
            {
                self.bump();
            }
            return Ok(Scalar::Str(self.text[start..self.pos].to_string()));
        }
        let text = &self.text[start..self.pos];
        text.parse::<f64>()
            .map(Scalar::Float)
            .map_err(|_| LexError {
                pos: self.here(),
                message: format!("{text:?} is not a valid float"),
            })
    }

    /// After `digits` and a size letter: more `b`/`i` letters, then the number must end,
    /// or the whole run is a string (`2m4x`).
    fn suffix(&mut self, start: usize, at: Pos) -> Result<Scalar, LexError> {
        while self
            .peek()
            .is_some_and(|c| matches!(c, 'b' | 'B' | 'i' | 'I'))
        {
            self.bump();
        }
        if ends_integer(self.peek()) {
            integer(&self.text[start..self.pos], at)
        } else {
            let buf = self.text.as_bytes()[start..self.pos].to_vec();
            self.unquoted(buf, false)
        }
    }

    /// After `YYYY-`: the rest of `YYYY-MM-DDTHH:MM:SSZ`.
    fn datetime(&mut self, start: usize, at: Pos) -> Result<Scalar, LexError> {
        for want in "00-00T00:00:00Z".chars() {
            let c = self.peek();
            let ok = match want {
                '0' => c.is_some_and(|c| c.is_ascii_digit()),
                w => c == Some(w),
            };
            if !ok {
                let expected = if want == '0' {
                    "a digit".to_string()
                } else {
                    format!("'{want}'")
                };
                return Err(self.error(format!(
                    "expected {expected} in a datetime (the form is 2006-01-02T15:04:05Z), found {}",
                    found(c)
                )));
            }
            self.bump();
        }
        let text = &self.text[start..self.pos];
        if valid_datetime(text) {
            Ok(Scalar::Datetime(text.to_string()))
        } else {
            Err(LexError {
                pos: at,
                message: format!("{text} is not a valid date and time"),
            })
        }
    }
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    let mut tmp = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

/// Text built from escapes must still be UTF-8 (`\xHH` can produce any byte).
fn utf8(buf: Vec<u8>, start: Pos) -> Result<String, LexError> {
    String::from_utf8(buf).map_err(|_| LexError {
        pos: start,
        message: "the \\x escapes in this string do not form valid UTF-8".to_string(),
    })
}

/// Digits (maybe negative) and an optional size suffix, to an integer.
fn integer(text: &str, at: Pos) -> Result<Scalar, LexError> {
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    let out_of_range = || LexError {
        pos: at.clone(),
        message: format!("integer {text} is out of range"),
    };
    let n: i64 = digits.parse().map_err(|_| out_of_range())?;
    let scale: i64 = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "kb" | "ki" | "kib" => 1 << 10,
        "m" => 1_000_000,
        "mb" | "mi" | "mib" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" | "gi" | "gib" => 1 << 30,
        "t" => 1_000_000_000_000,
        "tb" | "ti" | "tib" => 1 << 40,
        "p" => 1_000_000_000_000_000,
        "pb" | "pi" | "pib" => 1 << 50,
        "e" => 1_000_000_000_000_000_000,
        "eb" | "ei" | "eib" => 1 << 60,
        _ => {
            return Err(LexError {
                pos: at,
                message: format!(
                    "unknown size suffix {suffix:?} in {text} (use k, m, g, t, p, e for powers of 1000, or kb/ki/kib, mb/mi/mib, ... for powers of 1024)"
                ),
            })
        }
    };
    n.checked_mul(scale)
        .map(Scalar::Int)
        .ok_or_else(out_of_range)
}

/// Checks the calendar and clock fields of `YYYY-MM-DDTHH:MM:SSZ` (the shape is
/// already checked), as Go's time.Parse does.
fn valid_datetime(text: &str) -> bool {
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok());
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && hour < 24 && minute < 60 && second < 60
}
