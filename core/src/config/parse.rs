//! Parses nats-server configuration text into a value tree: maps, arrays, includes and
//! `$VARIABLE` references, with nats-server's grammar (its `conf/lex.go` and
//! `conf/parse.go`).
//!
//! Nothing here reads a file or the environment: included files come from a
//! [`Resolver`] and environment variables from a lookup function.
//!
//! Every file nats-server 2.9.10 reads, this reads to the same tree, and it refuses its
//! syntax errors on the same line. Where the two differ, tenet follows newer
//! nats-server or refuses what nats-server reads as garbage:
//! - braces around top-level entries nest and may be followed by comments (2.10+);
//! - `4e2x` is a string (2.9.10 stops the number after `4e` and fails);
//! - a key with no value at the end of the file is an error (2.10+), as are a map key
//!   followed by `}` or `,` and an unknown size suffix such as `1kbb` (both silently
//!   dropped by nats-server);
//! - an integer ends at `]`, so `[1, 2]` is an array of two integers (nats-server reads
//!   `2]` as the start of a string and fails);
//! - a reference cycle through environment variables is an error (2.9.10 never returns);
//! - `\xHH` escapes must produce UTF-8 (Go strings may hold any bytes).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::lex::{found, Cursor, LexError, RawKey, Scalar};
use super::value::{Key, Pos, Value, ValueKind};

/// Maps and arrays nested deeper than this are refused (the parser recurses).
const MAX_DEPTH: usize = 64;
/// Included files nested deeper than this are refused.
const MAX_INCLUDE_DEPTH: usize = 10;
/// Environment variables whose values refer to further variables, this deep at most.
const MAX_ENV_DEPTH: usize = 16;
/// Values a parse may produce, counting copies made by variable references (which
/// could otherwise grow a small file exponentially).
const MAX_VALUES: usize = 1_000_000;

/// Supplies the text of included files.
pub trait Resolver {
    /// Contents of an included file; `path` as written, `from` the including file's
    /// name. Returns (name to report in positions, text).
    fn read(&self, path: &str, from: &str) -> Result<(String, String), String>;
}

/// For tests: looks `path` up directly, ignoring the including file.
#[derive(Clone, Debug, Default)]
pub struct MapResolver(pub HashMap<String, String>);

impl Resolver for MapResolver {
    fn read(&self, path: &str, _from: &str) -> Result<(String, String), String> {
        match self.0.get(path) {
            Some(text) => Ok((path.to_string(), text.clone())),
            None => Err("no such file".to_string()),
        }
    }
}

/// A configuration error with where it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// Where; `None` when no text is involved (a top-level file that cannot be read).
    pub pos: Option<Pos>,
    /// What went wrong, and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pos {
            Some(pos) => write!(f, "{pos}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A parsed configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    /// The top-level map, in file order (included files' keys where they were included).
    pub map: Vec<(Key, Value)>,
    /// Positions of the keys whose values some `$VAR` referenced. Keys defined only to
    /// be used as variables must not be reported as unknown fields by the typed layer:
    /// this tells which.
    pub used_variables: HashSet<Pos>,
}

/// Parses text named `file`. Variables are resolved here (block scoped, then from
/// `env`, a lookup function so the core reads no environment itself); includes through
/// `resolver`.
pub fn parse(
    file: &str,
    text: &str,
    resolver: &dyn Resolver,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, Vec<ConfigError>> {
    let mut sh = Shared {
        resolver,
        env,
        includes: vec![file.to_string()],
        env_stack: Vec::new(),
        used: HashSet::new(),
        errors: Vec::new(),
        depth: 0,
        budget: MAX_VALUES,
    };
    let result = Doc::new(file, text, true).document(&mut sh);
    match result {
        Ok(map) if sh.errors.is_empty() => Ok(Parsed {
            map,
            used_variables: sh.used,
        }),
        _ => {
            if sh.errors.is_empty() {
                sh.errors.push(ConfigError {
                    pos: None,
                    message: "invalid configuration".to_string(),
                });
            }
            Err(sh.errors)
        }
    }
}

/// As [`parse`], with the text of the top-level file `path` fetched from the resolver
/// (asked with an empty `from`).
pub fn parse_file(
    path: &str,
    resolver: &dyn Resolver,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, Vec<ConfigError>> {
    match resolver.read(path, "") {
        Ok((name, text)) => parse(&name, &text, resolver, env),
        Err(e) => Err(vec![ConfigError {
            pos: None,
            message: format!("cannot read configuration file {path:?}: {e}"),
        }]),
    }
}

/// Why a parse step stopped. The error itself is already recorded.
enum Fail {
    /// The text cannot be read further (a syntax error, an unreadable include).
    Fatal,
    /// One value is unusable (an unresolved variable): its entry is left out and
    /// parsing goes on, so that every such error is reported at once.
    Soft,
}

type Step<T> = Result<T, Fail>;

/// State shared by a file, the files it includes and the environment values it reads.
struct Shared<'r> {
    resolver: &'r dyn Resolver,
    env: &'r dyn Fn(&str) -> Option<String>,
    /// Names of the files being parsed, outermost first (for include cycles).
    includes: Vec<String>,
    /// Environment variables being expanded (for reference cycles).
    env_stack: Vec<String>,
    used: HashSet<Pos>,
    errors: Vec<ConfigError>,
    /// Maps and arrays currently open, across included files.
    depth: usize,
    /// Values that may still be produced.
    budget: usize,
}

impl Shared<'_> {
    fn fatal(&mut self, e: LexError) -> Fail {
        self.errors.push(ConfigError {
            pos: Some(e.pos),
            message: e.message,
        });
        Fail::Fatal
    }

    fn fatal_at(&mut self, pos: Pos, message: String) -> Fail {
        self.fatal(LexError { pos, message })
    }

    fn soft<T>(&mut self, pos: Pos, message: String) -> Step<T> {
        self.errors.push(ConfigError {
            pos: Some(pos),
            message,
        });
        Err(Fail::Soft)
    }

    fn charge(&mut self, n: usize, pos: &Pos) -> Step<()> {
        if n > self.budget {
            return Err(self.fatal_at(
                pos.clone(),
                format!("the configuration holds more than {MAX_VALUES} values (counting copies made by variables)"),
            ));
        }
        self.budget -= n;
        Ok(())
    }

    fn enter(&mut self, pos: &Pos) -> Step<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.fatal_at(
                pos.clone(),
                format!("maps and arrays are nested more than {MAX_DEPTH} deep"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// A map being built, indexed by key for variable lookups.
#[derive(Default)]
struct Scope {
    entries: Vec<(Key, Value)>,
    /// Where each key's latest definition is in `entries`.
    latest: HashMap<String, usize>,
}

impl Scope {
    fn push(&mut self, key: Key, value: Value) {
        self.latest.insert(key.name.clone(), self.entries.len());
        self.entries.push((key, value));
    }

    fn get(&self, name: &str) -> Option<&(Key, Value)> {
        self.latest.get(name).and_then(|&i| self.entries.get(i))
    }
}

/// One text being parsed: a file, or an environment variable's value.
struct Doc<'a> {
    cur: Cursor<'a>,
    /// The maps being built, outermost first: where variables are looked up.
    scopes: Vec<Scope>,
    /// Keys whose values are being read, outermost first (to name self-references).
    defining: Vec<String>,
    /// Environment values may not include files.
    includes_allowed: bool,
}

impl<'a> Doc<'a> {
    fn new(file: &str, text: &'a str, includes_allowed: bool) -> Self {
        Doc {
            cur: Cursor::new(Arc::from(file), text),
            scopes: Vec::new(),
            defining: Vec::new(),
            includes_allowed,
        }
    }

    fn document(&mut self, sh: &mut Shared) -> Step<Vec<(Key, Value)>> {
        self.scopes.push(Scope::default());
        let result = self.top_level(sh);
        let map = self.scopes.pop().unwrap_or_default().entries;
        result.map(|()| map)
    }

    fn lex<T>(&self, sh: &mut Shared, r: Result<T, LexError>) -> Step<T> {
        r.map_err(|e| sh.fatal(e))
    }

    fn here_error(&self, sh: &mut Shared, message: String) -> Fail {
        sh.fatal(self.cur.error(message))
    }

    /// The top level: entries separated by newlines, `;` or `,`. The whole file, or
    /// parts of it, may be wrapped in braces (JSON style). As in nats-server, a `}`
    /// that closes nothing starts a key, and such a key alone at the very end (a
    /// trailing bracket) is ignored.
    fn top_level(&mut self, sh: &mut Shared) -> Step<()> {
        // Braces open around entries, and whether a nested pair was just closed (then
        // only another `}`, `;`, `,` or a comment may follow, as in nats-server).
        let mut open = 0usize;
        let mut after_close = false;
        loop {
            self.cur.skip_space();
            if after_close {
                match self.cur.peek() {
                    None => return Ok(()),
                    Some('}') => {
                        self.cur.bump();
                        open = open.saturating_sub(1);
                        after_close = open > 0;
                    }
                    Some(';' | ',') => {
                        self.cur.bump();
                        after_close = false;
                    }
                    Some(_) if self.cur.at_comment() => {
                        self.cur.skip_comment();
                        after_close = false;
                    }
                    c => {
                        let message = format!(
                            "expected \"}}\" to close a block opened by \"{{\", found {}",
                            found(c)
                        );
                        return Err(self.here_error(sh, message));
                    }
                }
                continue;
            }
            match self.cur.peek() {
                None => return Ok(()),
                Some('{') => {
                    self.cur.bump();
                    open += 1;
                    continue;
                }
                Some('}') if open > 0 => {
                    self.cur.bump();
                    open = open.saturating_sub(1);
                    after_close = open > 0;
                    continue;
                }
                Some(_) if self.cur.at_comment() => {
                    self.cur.skip_comment();
                    continue;
                }
                Some('/') => {
                    return Err(self.here_error(
                        sh,
                        "unexpected '/' (a comment starts with '#' or '//')".to_string(),
                    ))
                }
                Some(c @ ('=' | ':')) => {
                    return Err(self.here_error(sh, format!("expected a key, found '{c}'")))
                }
                _ => {}
            }
            let key = self.key(sh)?;
            let name = key.name.clone();
            if key.ended_by_space && key.name.eq_ignore_ascii_case("include") {
                self.include(sh, key.pos)?;
            } else {
                self.cur.skip_space();
                match self.cur.peek() {
                    Some('=' | ':') => {
                        self.cur.bump();
                    }
                    None if open == 0 && key.name == "}" => return Ok(()),
                    None => {
                        return Err(self.here_error(
                            sh,
                            format!("expected a value for {:?}, found end of file", key.name),
                        ))
                    }
                    _ => {}
                }
                self.cur.skip_blanks();
                self.entry(sh, key)?;
            }
            if self.top_value_end(sh, &name, open > 0)? {
                open = open.saturating_sub(1);
                after_close = open > 0;
            }
        }
    }

    /// After a top-level value: blanks, then a newline, `;`, `,`, `}`, a comment or the
    /// end. Returns true when a `}` closed a block (`in_block`); outside blocks a `}`
    /// ends the value like a newline.
    fn top_value_end(&mut self, sh: &mut Shared, key: &str, in_block: bool) -> Step<bool> {
        loop {
            match self.cur.peek() {
                None => return Ok(false),
                Some(' ' | '\t') => {
                    self.cur.bump();
                }
                Some(_) if self.cur.at_comment() => {
                    self.cur.skip_comment();
                    return Ok(false);
                }
                Some('/') => {
                    // nats-server skips a lone '/' here.
                    self.cur.bump();
                }
                Some('\n' | '\r' | ';' | ',') => {
                    self.cur.bump();
                    return Ok(false);
                }
                Some('}') => {
                    self.cur.bump();
                    return Ok(in_block);
                }
                c => {
                    return Err(self.here_error(
                        sh,
                        format!(
                        "expected a new line, \";\" or \",\" after the value of {key:?}, found {}",
                        found(c)
                    ),
                    ))
                }
            }
        }
    }

    fn key(&mut self, sh: &mut Shared) -> Step<RawKey> {
        match self.cur.peek() {
            Some('"' | '\'') => {
                let r = self.cur.quoted_key();
                self.lex(sh, r)
            }
            _ => Ok(self.cur.bare_key()),
        }
    }

    /// Reads the value of `key` and adds the entry to the innermost map. An unusable
    /// value (already reported) leaves the entry out.
    fn entry(&mut self, sh: &mut Shared, key: RawKey) -> Step<()> {
        self.defining.push(key.name.clone());
        let value = self.value(sh);
        self.defining.pop();
        match value {
            Ok(value) => {
                if let Some(scope) = self.scopes.last_mut() {
                    let key = Key {
                        name: key.name,
                        pos: key.pos,
                    };
                    scope.push(key, value);
                }
                Ok(())
            }
            Err(Fail::Soft) => Ok(()),
            Err(Fail::Fatal) => Err(Fail::Fatal),
        }
    }

    /// A value; blanks before it are already skipped.
    fn value(&mut self, sh: &mut Shared) -> Step<Value> {
        match self.cur.peek() {
            Some('[') => {
                let pos = self.cur.here();
                self.cur.bump();
                self.array(sh, pos)
            }
            Some('{') => {
                let pos = self.cur.here();
                self.cur.bump();
                self.map(sh, pos)
            }
            _ => {
                let r = self.cur.scalar();
                let (scalar, pos) = self.lex(sh, r)?;
                let kind = match scalar {
                    Scalar::Var(name) => return self.variable(sh, &name, pos),
                    Scalar::Str(s) => ValueKind::String(s),
                    Scalar::Int(n) => ValueKind::Integer(n),
                    Scalar::Float(f) => ValueKind::Float(f),
                    Scalar::Bool(b) => ValueKind::Bool(b),
                    Scalar::Datetime(d) => ValueKind::Datetime(d),
                };
                sh.charge(1, &pos)?;
                Ok(Value { kind, pos })
            }
        }
    }

    /// After `{`: entries up to `}`.
    fn map(&mut self, sh: &mut Shared, pos: Pos) -> Step<Value> {
        sh.enter(&pos)?;
        sh.charge(1, &pos)?;
        self.scopes.push(Scope::default());
        let result = self.map_body(sh);
        let entries = self.scopes.pop().unwrap_or_default().entries;
        sh.leave();
        result?;
        Ok(Value {
            kind: ValueKind::Map(entries),
            pos,
        })
    }

    fn map_body(&mut self, sh: &mut Shared) -> Step<()> {
        loop {
            self.cur.skip_space();
            let key = match self.cur.peek() {
                None => {
                    return Err(self.here_error(
                        sh,
                        "unterminated map: expected a key or \"}\", found end of file".into(),
                    ))
                }
                Some('}') => {
                    self.cur.bump();
                    return Ok(());
                }
                Some(_) if self.cur.at_comment() => {
                    self.cur.skip_comment();
                    continue;
                }
                Some(c @ ('=' | ':' | ']')) => {
                    return Err(self.here_error(sh, format!("expected a key, found '{c}'")))
                }
                Some('/') => {
                    // nats-server drops a lone '/' before a key and takes the next
                    // character as the key's first, whatever it is.
                    self.cur.bump();
                    if self.cur.peek().is_none() {
                        return Err(self.here_error(
                            sh,
                            "unterminated map: expected a key, found end of file".into(),
                        ));
                    }
                    self.cur.bare_key()
                }
                Some(_) => self.key(sh)?,
            };
            if key.ended_by_space && key.name.eq_ignore_ascii_case("include") {
                self.include(sh, key.pos)?;
            } else {
                if self.cur.peek().is_none() {
                    return Err(self.here_error(
                        sh,
                        "unterminated map: expected a key, found end of file".into(),
                    ));
                }
                self.cur.skip_space();
                if let Some('=' | ':') = self.cur.peek() {
                    self.cur.bump();
                }
                self.cur.skip_space();
                match self.cur.peek() {
                    c @ (None | Some(',' | '}')) => {
                        let message =
                            format!("expected a value for {:?}, found {}", key.name, found(c));
                        return Err(self.here_error(sh, message));
                    }
                    _ => self.entry(sh, key)?,
                }
            }
            if self.map_value_end(sh)? {
                return Ok(());
            }
        }
    }

    /// After a map value: blanks, then `,`, `;` or a newline (false: the map goes
    /// on), or `}` (true: the map is closed). Comments may come first.
    fn map_value_end(&mut self, sh: &mut Shared) -> Step<bool> {
        loop {
            match self.cur.peek() {
                Some(' ' | '\t') => {
                    self.cur.bump();
                }
                Some(_) if self.cur.at_comment() => self.cur.skip_comment(),
                Some('/' | ',' | ';' | '\n' | '\r') => {
                    // A lone '/' separates like ',' (nats-server).
                    self.cur.bump();
                    return Ok(false);
                }
                Some('}') => {
                    self.cur.bump();
                    return Ok(true);
                }
                c => {
                    let message = format!(
                        "expected a map value terminator \",\" or \"}}\", found {}",
                        found(c)
                    );
                    return Err(self.here_error(sh, message));
                }
            }
        }
    }

    /// After `[`: values up to `]`, separated by `,` or newlines.
    fn array(&mut self, sh: &mut Shared, pos: Pos) -> Step<Value> {
        sh.enter(&pos)?;
        sh.charge(1, &pos)?;
        let mut items = Vec::new();
        let result = self.array_body(sh, &mut items);
        sh.leave();
        result?;
        Ok(Value {
            kind: ValueKind::Array(items),
            pos,
        })
    }

    fn array_body(&mut self, sh: &mut Shared, items: &mut Vec<Value>) -> Step<()> {
        loop {
            self.cur.skip_space();
            match self.cur.peek() {
                Some(']') => {
                    self.cur.bump();
                    return Ok(());
                }
                Some(_) if self.cur.at_comment() => {
                    self.cur.skip_comment();
                    continue;
                }
                c @ (None | Some(',' | '/')) => {
                    let message = format!("expected an array value or \"]\", found {}", found(c));
                    return Err(self.here_error(sh, message));
                }
                Some(_) => match self.value(sh) {
                    Ok(v) => items.push(v),
                    Err(Fail::Soft) => {}
                    Err(Fail::Fatal) => return Err(Fail::Fatal),
                },
            }
            loop {
                match self.cur.peek() {
                    Some(' ' | '\t') => {
                        self.cur.bump();
                    }
                    Some(_) if self.cur.at_comment() => self.cur.skip_comment(),
                    Some('/' | ',' | '\n' | '\r') => {
                        self.cur.bump();
                        break;
                    }
                    Some(']') => {
                        self.cur.bump();
                        return Ok(());
                    }
                    c => {
                        let message = format!(
                            "expected an array value terminator \",\" or \"]\", found {}",
                            found(c)
                        );
                        return Err(self.here_error(sh, message));
                    }
                }
            }
        }
    }

    /// After the `include` keyword: reads the named file and adds its top-level
    /// entries to the innermost map, here.
    fn include(&mut self, sh: &mut Shared, at: Pos) -> Step<()> {
        let r = self.cur.include_path();
        let (path, _) = self.lex(sh, r)?;
        if !self.includes_allowed {
            return Err(sh.fatal_at(
                at,
                "include is not allowed in the value of an environment variable".into(),
            ));
        }
        if path.is_empty() {
            return Err(sh.fatal_at(at, "include needs a file name".into()));
        }
        if sh.includes.len() > MAX_INCLUDE_DEPTH {
            return Err(sh.fatal_at(
                at,
                format!("included files are nested more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        let from = self.cur.file().to_string();
        let (name, text) = match sh.resolver.read(&path, &from) {
            Ok(found) => found,
            Err(e) => {
                return Err(sh.fatal_at(at, format!("cannot read included file {path:?}: {e}")))
            }
        };
        if sh.includes.contains(&name) {
            let chain = sh.includes.join(" -> ");
            return Err(sh.fatal_at(at, format!("include cycle: {chain} -> {name}")));
        }
        sh.includes.push(name.clone());
        let mark = sh.errors.len();
        let result = Doc::new(&name, &text, true).document(sh);
        sh.includes.pop();
        for e in sh.errors.iter_mut().skip(mark) {
            e.message
                .push_str(&format!(" (in a file included from {at})"));
        }
        let entries = result?;
        if let Some(scope) = self.scopes.last_mut() {
            for (key, value) in entries {
                scope.push(key, value);
            }
        }
        Ok(())
    }

    /// The value of `$name`: the latest definition in the innermost enclosing map that
    /// has one, else the environment variable, parsed as a value.
    fn variable(&mut self, sh: &mut Shared, name: &str, pos: Pos) -> Step<Value> {
        if name.starts_with("2a$") {
            // A bcrypt hash, not a reference (nats-server).
            sh.charge(1, &pos)?;
            return Ok(Value {
                kind: ValueKind::String(format!("${name}")),
                pos,
            });
        }
        let found = self.scopes.iter().rev().find_map(|scope| scope.get(name));
        if let Some((key, value)) = found {
            if sh.depth + value_depth(value) > MAX_DEPTH {
                let message = format!(
                    "maps and arrays are nested more than {MAX_DEPTH} deep (after copying ${name})"
                );
                return Err(sh.fatal_at(pos, message));
            }
            sh.charge(count_values(value), &pos)?;
            sh.used.insert(key.pos.clone());
            let mut value = value.clone();
            value.pos = pos;
            return Ok(value);
        }
        if let Some(text) = (sh.env)(name) {
            return self.env_variable(sh, name, &text, pos);
        }
        let message = if self.defining.iter().any(|d| d == name) {
            format!(
                "variable reference for '{name}' on line {} refers to itself: '{name}' is not defined before this point nor in the environment",
                pos.line
            )
        } else {
            format!(
                "variable reference for '{name}' on line {} can not be found: it is defined neither earlier in an enclosing block nor in the environment",
                pos.line
            )
        };
        sh.soft(pos, message)
    }

    /// An environment variable's text, parsed as the value of a key (so "4222" is an
    /// integer), with its own references resolved from the environment.
    fn env_variable(&mut self, sh: &mut Shared, name: &str, text: &str, pos: Pos) -> Step<Value> {
        if sh.env_stack.iter().any(|n| n == name) {
            let chain = sh.env_stack.join(" -> ");
            return sh.soft(
                pos,
                format!("variable reference cycle for '{name}': {chain} -> {name}"),
            );
        }
        if sh.env_stack.len() >= MAX_ENV_DEPTH {
            return sh.soft(
                pos,
                format!("environment variables refer to each other more than {MAX_ENV_DEPTH} deep"),
            );
        }
        sh.env_stack.push(name.to_string());
        let mark = sh.errors.len();
        let source = format!("pk={text}");
        let result =
            Doc::new(&format!("<environment variable {name}>"), &source, false).document(sh);
        sh.env_stack.pop();
        let inner = sh.errors.split_off(mark);
        match result {
            Ok(map) if inner.is_empty() => {
                match map.into_iter().rev().find(|(k, _)| k.name == "pk") {
                    Some((_, mut value)) => {
                        relocate(&mut value, &pos);
                        Ok(value)
                    }
                    None => sh.soft(pos, format!("environment variable '{name}' holds no value")),
                }
            }
            _ => {
                let why = inner.first().map(|e| e.message.clone()).unwrap_or_default();
                let line = pos.line;
                sh.soft(
                    pos,
                    format!(
                        "variable reference for '{name}' on line {line} could not be parsed: {why}"
                    ),
                )
            }
        }
    }
}

/// How deeply maps and arrays nest in `v` (0 for a scalar).
fn value_depth(v: &Value) -> usize {
    match &v.kind {
        ValueKind::Map(m) => 1 + m.iter().map(|(_, v)| value_depth(v)).max().unwrap_or(0),
        ValueKind::Array(a) => 1 + a.iter().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// How many values `v` holds, itself included.
fn count_values(v: &Value) -> usize {
    match &v.kind {
        ValueKind::Map(m) => 1 + m.iter().map(|(_, v)| count_values(v)).sum::<usize>(),
        ValueKind::Array(a) => 1 + a.iter().map(count_values).sum::<usize>(),
        _ => 1,
    }
}

/// Moves every position in `v` (keys included) to `pos`: values read from an
/// environment variable are reported where the reference was written.
fn relocate(v: &mut Value, pos: &Pos) {
    v.pos = pos.clone();
    match &mut v.kind {
        ValueKind::Map(m) => {
            for (k, v) in m {
                k.pos = pos.clone();
                relocate(v, pos);
            }
        }
        ValueKind::Array(a) => {
            for v in a {
                relocate(v, pos);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! Grammar cases, most of them nats-server's `conf/lex_test.go` and
    //! `conf/parse_test.go` restated as data, and a few of tenet's own.

    use super::*;

    /// A compact, position-free rendering of a tree: `k=v; k=v`, strings quoted, maps
    /// in braces, arrays in brackets, floats with a `f`, datetimes with `dt:`.
    fn show(map: &[(Key, Value)]) -> String {
        map.iter()
            .map(|(k, v)| format!("{}={}", k.name, show_value(v)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn show_value(v: &Value) -> String {
        match &v.kind {
            ValueKind::Map(m) => format!("{{{}}}", show(m)),
            ValueKind::Array(a) => format!(
                "[{}]",
                a.iter().map(show_value).collect::<Vec<_>>().join(", ")
            ),
            ValueKind::String(s) => format!("{s:?}"),
            ValueKind::Integer(n) => n.to_string(),
            ValueKind::Float(f) => format!("{f}f"),
            ValueKind::Bool(b) => b.to_string(),
            ValueKind::Datetime(d) => format!("dt:{d}"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn files(list: &[(&str, &str)]) -> MapResolver {
        MapResolver(
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn parse_with(
        text: &str,
        resolver: &MapResolver,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Parsed, Vec<ConfigError>> {
        parse("test.conf", text, resolver, env)
    }

    fn ok(text: &str) -> String {
        match parse_with(text, &MapResolver::default(), &no_env) {
            Ok(p) => show(&p.map),
            Err(e) => panic!("{text:?} failed: {e:?}"),
        }
    }

    fn err(text: &str) -> ConfigError {
        match parse_with(text, &MapResolver::default(), &no_env) {
            Ok(p) => panic!("{text:?} parsed: {}", show(&p.map)),
            Err(mut e) => e.remove(0),
        }
    }

    /// Each input parses to the rendering beside it.
    fn table(cases: &[(&str, &str)]) {
        for (text, want) in cases {
            assert_eq!(ok(text), *want, "input {text:?}");
        }
    }

    /// Each input fails on the line beside it with a message containing the text beside it.
    fn errors(cases: &[(&str, u32, &str)]) {
        for (text, line, part) in cases {
            let e = err(text);
            let pos = e.pos.clone().expect("a position");
            assert_eq!(pos.line, *line, "input {text:?}: {e}");
            assert!(
                e.message.contains(part),
                "input {text:?}: {e} lacks {part:?}"
            );
        }
    }

    #[test]
    fn key_value_separators() {
        table(&[
            ("foo = 123", "foo=123"),
            ("foo=123", "foo=123"),
            ("foo=123\r\n", "foo=123"),
            ("foo : 123", "foo=123"),
            ("foo:123", "foo=123"),
            ("foo: 123", "foo=123"),
            ("foo:  123\r\n", "foo=123"),
            ("foo 123", "foo=123"),
            ("foo\t123", "foo=123"),
            ("foo\t\t123\r\n", "foo=123"),
            ("foo = -123", "foo=-123"),
            ("foo=-123\r\n", "foo=-123"),
            ("foo = 22.2", "foo=22.2f"),
            ("foo=22.2\r\n", "foo=22.2f"),
        ]);
    }

    #[test]
    fn plain_key_without_value_is_an_error() {
        // nats-server 2.9.10 ignores such a key; newer releases refuse it, as tenet does.
        errors(&[
            ("foo", 1, "expected a value for \"foo\""),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                1,
                "expected a value",
            ),
            (
                "              aaaaaaaaaaaaaaaaaaaaaaaaaaa",
                1,
                "expected a value",
            ),
            (
                "     aaaaaaaaaaaaaaaaaaaaaaaaaaa         ",
                1,
                "expected a value",
            ),
            (
                "\n  # with comments\n  # and no value\n  aaaaaaaaaaaaaaaa\n      ",
                5,
                "expected a value",
            ),
            (
                "\n    a,a,a,a,a,a,a,a,a,a,a\n    ",
                3,
                "expected a value for \"a,a,a,a,a,a,a,a,a,a,a\"",
            ),
            ("port = 4222\nfoo\n", 3, "\"foo\""),
        ]);
    }

    #[test]
    fn empty_configurations_are_valid() {
        table(&[
            ("", ""),
            ("\n\n\n      ", ""),
            ("\n  # just comments\n  // is still valid\n  ", ""),
        ]);
    }

    #[test]
    fn strings() {
        table(&[
            ("foo = \"bar\"", "foo=\"bar\""),
            ("foo = 'bar'", "foo=\"bar\""),
            ("foo='bar'", "foo=\"bar\""),
            ("foo='bar'\r\n", "foo=\"bar\""),
            ("foo=\t'bar'\t", "foo=\"bar\""),
            // Single quotes are raw.
            (r"foo = 'bar\r\n  \t'", r#"foo="bar\\r\\n  \\t""#),
            ("foo = \"\"", "foo=\"\""),
            ("foo = ''", "foo=\"\""),
            // Unquoted strings run to whitespace, a newline, ',', ';', ']' or '}'.
            ("foo = bar", "foo=\"bar\""),
            ("foo = bar' ", "foo=\"bar\""),
            ("foo = a#b", "foo=\"a#b\""),
            ("foo = #b", "foo=\"#b\""),
            // Quoted strings may span lines.
            (
                "foo {\n  text = 'This is a multi-line\ntext block.'\n}",
                "foo={text=\"This is a multi-line\\ntext block.\"}",
            ),
            (
                "foo {\n  expr = '(true == \"false\")'\n}",
                "foo={expr=\"(true == \\\"false\\\")\"}",
            ),
            // A value may be empty: nothing before the end of the file or a '}'.
            ("foo =", "foo=\"\""),
            ("foo = ", "foo=\"\""),
            ("foo = }", "foo=\"\""),
            ("m { foo = ; }", "m={foo=\"\"}"),
        ]);
    }

    #[test]
    fn escapes() {
        table(&[
            ("foo = \\x65", "foo=\"e\""),
            (
                "\nfoo  = \\t\nbar  = \\r\nbaz  = \\n\nq    = \\\"\nbs   = \\\\\n",
                r#"foo="\t"; bar="\r"; baz="\n"; q="\""; bs="\\""#,
            ),
            (r#"foo = "\\end""#, r#"foo="\\end""#),
            (r#"foo = "start\\""#, r#"foo="start\\""#),
            (r"foo = \x45\x71", "foo=\"Eq\""),
            (r"foo = start\x45\x71", "foo=\"startEq\""),
            (r"foo = start\x7Cend", "foo=\"start|end\""),
            (r"foo = \x3c\x3eend", "foo=\"<>end\""),
            (r"foo = \x3cmiddle\x3E", "foo=\"<middle>\""),
            (r#"foo = "\xc3\xa9""#, "foo=\"é\""),
            // An escaped unquoted value is a string, never a boolean or a variable.
            (r"foo = \\true", r#"foo="\\true""#),
            (r"foo = \\$var", r#"foo="\\$var""#),
            ("foo = \"a\\tb\"", "foo=\"a\\tb\""),
        ]);
        errors(&[
            ("foo = xyz\\x\n", 2, "two hexadecimal digits"),
            ("foo = xyz\\xF\n", 2, "two hexadecimal digits"),
            (r#"foo = "[\x]""#, 1, "two hexadecimal digits"),
            (r#"foo = "[\xe]""#, 1, "two hexadecimal digits"),
            (r"foo = \y", 1, "invalid escape 'y'"),
            (r#"foo = "a\qb""#, 1, "invalid escape 'q'"),
            // Go keeps the lone byte; a Rust string cannot.
            (r"foo = \xe9", 1, "UTF-8"),
        ]);
    }

    #[test]
    fn booleans() {
        table(&[
            ("foo = true", "foo=true"),
            ("foo=true\r\n", "foo=true"),
            ("foo=TRUE", "foo=true"),
            ("foo=yes", "foo=true"),
            ("foo=on", "foo=true"),
            ("foo=False", "foo=false"),
            ("foo=NO", "foo=false"),
            ("foo=off", "foo=false"),
            // Only unquoted words are booleans.
            ("foo=\"true\"", "foo=\"true\""),
            ("foo='no'", "foo=\"no\""),
            ("foo=truex", "foo=\"truex\""),
        ]);
    }

    #[test]
    fn numbers() {
        table(&[
            ("foo = 123", "foo=123"),
            ("foo = 1k", "foo=1000"),
            ("foo = 1K", "foo=1000"),
            ("foo = 1m", "foo=1000000"),
            ("foo = 1M", "foo=1000000"),
            ("foo = 1g", "foo=1000000000"),
            ("foo = 1G", "foo=1000000000"),
            ("foo = 1MB", "foo=1048576"),
            ("foo = 1Gb", "foo=1073741824"),
            ("foo = -1m", "foo=-1000000"),
            ("foo = -1GB ", "foo=-1073741824"),
            ("foo = 0.5", "foo=0.5f"),
            ("foo = -1.5", "foo=-1.5f"),
            ("foo = 9223372036854775807", "foo=9223372036854775807"),
            ("foo = -9223372036854775808", "foo=-9223372036854775808"),
            ("foo = 2016-05-04T18:53:41Z", "foo=dt:2016-05-04T18:53:41Z"),
            ("foo = 2016-02-29T23:59:59Z", "foo=dt:2016-02-29T23:59:59Z"),
            // A value starting with a digit that is not a number is a string.
            ("foo = 2s", "foo=\"2s\""),
            ("foo = 1h30m", "foo=\"1h30m\""),
            ("foo = 1x2", "foo=\"1x2\""),
            ("foo = 3Gyz", "foo=\"3Gyz\""),
            ("foo = 12#c", "foo=\"12#c\""),
            // ... also after a size letter and a digit (newer nats-server; 2.9.10 refuses).
            ("password: 0K1abc", "password=\"0K1abc\""),
            ("password: 8m4dwr", "password=\"8m4dwr\""),
            ("password: 5e7bcd-abc10", "password=\"5e7bcd-abc10\""),
            ("password: 4e2abc", "password=\"4e2abc\""),
            (
                "authorization { user: foo, password: 4e2abc }",
                "authorization={user=\"foo\"; password=\"4e2abc\"}",
            ),
        ]);
        errors(&[
            ("foo = .2", 1, "must start with a digit"),
            ("foo = -.2", 1, "must start with a digit"),
            ("foo = -x", 1, "expected a digit after '-'"),
            ("foo = 1.x", 1, "expected a digit after '.'"),
            // A float or an IP address ends at the first other character (nats-server).
            ("foo = 1.5s", 1, "found 's'"),
            ("listen: 10.0.1.22:foo", 1, "found 'f'"),
            ("foo = -1x", 1, "found 'x'"),
            ("foo = 12-34", 1, "datetime"),
            ("foo = 2016-05-04", 1, "in a datetime"),
            ("foo = 2016-13-04T18:53:41Z", 1, "not a valid date"),
            ("foo = 2015-02-29T00:00:00Z", 1, "not a valid date"),
            ("foo = 9223372036854775808", 1, "out of range"),
            ("foo = 10E", 1, "out of range"),
            ("foo = 9EB", 1, "out of range"),
            ("foo = 1kbb", 1, "unknown size suffix"),
        ]);
    }

    #[test]
    fn convenient_numbers() {
        let text = "\nk = 8k\nkb = 4kb\nki = 3ki\nkib = 4ki\nm = 1m\nmb = 2MB\nmi = 2Mi\nmib = 64MiB\ng = 2g\ngb = 22GB\ngi = 22Gi\ngib = 22GiB\ntb = 22TB\nti = 22Ti\ntib = 22TiB\npb = 22PB\npi = 22Pi\npib = 22PiB\nt = 3t\np = 2p\ne = 1e\neb = 1EB\n";
        let want = [
            ("k", 8_000i64),
            ("kb", 4 << 10),
            ("ki", 3 << 10),
            ("kib", 4 << 10),
            ("m", 1_000_000),
            ("mb", 2 << 20),
            ("mi", 2 << 20),
            ("mib", 64 << 20),
            ("g", 2_000_000_000),
            ("gb", 22 << 30),
            ("gi", 22 << 30),
            ("gib", 22 << 30),
            ("tb", 22 << 40),
            ("ti", 22 << 40),
            ("tib", 22 << 40),
            ("pb", 22 << 50),
            ("pi", 22 << 50),
            ("pib", 22 << 50),
            ("t", 3_000_000_000_000),
            ("p", 2_000_000_000_000_000),
            ("e", 1_000_000_000_000_000_000),
            ("eb", 1 << 60),
        ];
        let want = want
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join("; ");
        assert_eq!(ok(text), want);
    }

    #[test]
    fn comments() {
        table(&[
            ("# This is a comment", ""),
            ("# This is a comment\r\n", ""),
            ("// This is a comment\r\n", ""),
            ("foo = 123 // This is a comment", "foo=123"),
            ("foo=123    # This is a comment", "foo=123"),
            ("fkey = five # This should be a string", "fkey=\"five\""),
            ("m {\n  # c\n  a = 1 // c\n  // c\n}\n# c", "m={a=1}"),
            ("a = [ # c\n 1 // c\n # c\n]", "a=[1]"),
        ]);
        errors(&[("/ c", 1, "unexpected '/'")]);
    }

    #[test]
    fn semicolons_and_chaining() {
        table(&[
            (
                "\nfoo = 123;\nbar = 'baz';\nbaz = 'boo'\nmap {\n id = 1;\n}\n",
                "foo=123; bar=\"baz\"; baz=\"boo\"; map={id=1}",
            ),
            (
                "foo='1'; bar=2.2; baz=true; boo=22",
                "foo=\"1\"; bar=2.2f; baz=true; boo=22",
            ),
            ("foo='1', bar=2", "foo=\"1\"; bar=2"),
        ]);
    }

    #[test]
    fn unquoted_strings() {
        let text = "\nfoo = 123\nbar = baz\nbaz=boo\nmap {\n id:one\n id2 : onetwo\n}\nt true\nf false\ntstr \"true\"\ntkey = two\nfkey = five # This should be a string\n";
        assert_eq!(
            ok(text),
            "foo=123; bar=\"baz\"; baz=\"boo\"; map={id=\"one\"; id2=\"onetwo\"}; t=true; f=false; tstr=\"true\"; tkey=\"two\"; fkey=\"five\""
        );
    }

    #[test]
    fn unquoted_addresses() {
        table(&[
            ("listen: 127.0.0.1:4222", "listen=\"127.0.0.1:4222\""),
            ("listen: 127.0.0.1", "listen=\"127.0.0.1\""),
            ("listen: 10.0.0.1", "listen=\"10.0.0.1\""),
            ("listen: apcera.me:80", "listen=\"apcera.me:80\""),
            ("listen: nats.io:-1", "listen=\"nats.io:-1\""),
            ("listen: -1", "listen=-1"),
            ("listen: :-1", "listen=\":-1\""),
            ("listen = :80", "listen=\":80\""),
            (
                "listen = [localhost:4222, localhost:4333]",
                "listen=[\"localhost:4222\", \"localhost:4333\"]",
            ),
            ("listen: 0.0.0.0:4222 // c", "listen=\"0.0.0.0:4222\""),
        ]);
    }

    #[test]
    fn arrays() {
        table(&[
            ("foo = [1, 2, 3, 'bar']", "foo=[1, 2, 3, \"bar\"]"),
            ("foo = [1,2,3,'bar']", "foo=[1, 2, 3, \"bar\"]"),
            ("foo = [1, 2,3,'bar']", "foo=[1, 2, 3, \"bar\"]"),
            ("\n# top level comment\nfoo = [\n 1, # One\n 2, // Two\n 3 # Three\n 'bar'     ,\n \"bar\"\n]\n", "foo=[1, 2, 3, \"bar\", \"bar\"]"),
            ("\n# top level comment\nfoo = [\n 1 // foo\n 2\n 3\n 'bar'\n \"bar\"\n]\n", "foo=[1, 2, 3, \"bar\", \"bar\"]"),
            ("a = []", "a=[]"),
            ("a = [1,]", "a=[1]"),
            ("a = [\n  1,\n  2,\n]", "a=[1, 2]"),
            ("a = [[1], [], [[]]]", "a=[[1], [], [[]]]"),
            ("a = [true, 1.5, x, \"y\", {b = 1}]", "a=[true, 1.5f, \"x\", \"y\", {b=1}]"),
            // nats-server 2.9.10 does not end an integer at ']' and refuses these.
            ("a = [1,2,3]", "a=[1, 2, 3]"),
            ("a = [1k]", "a=[1000]"),
        ]);
        errors(&[
            ("a = [,1]", 1, "found ','"),
            ("a = [1,,2]", 1, "found ','"),
            ("a = [1 2]", 1, "expected an array value terminator"),
            ("a = [1,\n2", 2, "found end of file"),
            ("a = [1.5}", 1, "found '}'"),
        ]);
    }

    #[test]
    fn maps() {
        table(&[
            (
                "foo = {ip='127.0.0.1', port = 4242}",
                "foo={ip=\"127.0.0.1\"; port=4242}",
            ),
            (
                "\nfoo = {\n  ip = '127.0.0.1' # the IP\n  port= 4242 // the port\n}\n",
                "foo={ip=\"127.0.0.1\"; port=4242}",
            ),
            (
                "\nfoo = {\n  host = {\n    ip = '127.0.0.1'\n    port= 4242\n  }\n}\n",
                "foo={host={ip=\"127.0.0.1\"; port=4242}}",
            ),
            (
                "\nfoo  {\n  host  {\n    ip = '127.0.0.1'\n    port= 4242\n  }\n}\n",
                "foo={host={ip=\"127.0.0.1\"; port=4242}}",
            ),
            ("foo = {'bar' = 4242}", "foo={bar=4242}"),
            ("foo = {\"bar\" = 4242}", "foo={bar=4242}"),
            (
                "foo = {'bar-1.2.3' = { port:4242 }}",
                "foo={bar-1.2.3={port=4242}}",
            ),
            (
                "foo = {\"bar-1.2.3\" = { port:4242 }}",
                "foo={bar-1.2.3={port=4242}}",
            ),
            (
                "\nsystems {\n  allinone {\n    description: \"This is a description.\"\n  }\n}\n",
                "systems={allinone={description=\"This is a description.\"}}",
            ),
            ("a {}", "a={}"),
            ("a {b=1;c=2,d=3\ne=4}", "a={b=1; c=2; d=3; e=4}"),
            // Inside a map a value may follow its key on the next line (nats-server).
            ("a {\n  b =\n  1\n}", "a={b=1}"),
            // Keys written twice are all kept, in order.
            ("a = 1\na = 2", "a=1; a=2"),
        ]);
        errors(&[
            (
                "a { b = 1 c = 2 }",
                1,
                "expected a map value terminator \",\" or \"}\", found 'c'",
            ),
            ("a {\n  b = 1\n", 3, "unterminated map"),
            ("a { b }", 1, "expected a value for \"b\", found '}'"),
            ("a { b = , }", 1, "found ','"),
            ("a { = 1 }", 1, "expected a key"),
            ("a { ] }", 1, "expected a key, found ']'"),
            ("a { 'b", 1, "unterminated quoted key"),
            ("a {\n  listen: 266.0.0.1:foo\n}", 2, "found 'f'"),
        ]);
    }

    #[test]
    fn quoted_keys() {
        table(&[
            ("'foo' : 123", "foo=123"),
            ("\"foo\" : 123", "foo=123"),
            ("' foo' : 123", " foo=123"),
            ("\" foo\" : 123", " foo=123"),
            ("\"a b\" = 1", "a b=1"),
            ("\"include\" = 1", "include=1"),
            ("\"\" = 1", "=1"),
        ]);
        errors(&[
            (" :foo = 22", 1, "expected a key, found ':'"),
            ("\"foo", 1, "unterminated quoted key"),
        ]);
    }

    #[test]
    fn dangling_quotes() {
        errors(&[
            (
                "\nlisten: \"localhost:4242\n\nhttp: localhost:8222\n",
                5,
                "unterminated string",
            ),
            (
                "\nlisten: 'localhost:4242\n\nhttp: localhost:8222\n",
                5,
                "unterminated string",
            ),
            (
                "\nfoo = \"\nlisten: \"\n\nhttp: localhost:8222\n\n\"\n",
                8,
                "unterminated quoted key",
            ),
            (
                "\nfoo = '\nlisten: '\n\nhttp: localhost:8222\n\n'\n",
                8,
                "unterminated quoted key",
            ),
        ]);
        assert_eq!(
            ok("\nfoo = \"\nlisten: \"\n\nhttp: localhost:8222\n"),
            "foo=\"\\nlisten: \"; http=\"localhost:8222\""
        );
    }

    #[test]
    fn block_strings() {
        table(&[
            (
                "\nnumbers (\n1234567890\n)\n",
                "numbers=\"\\n1234567890\\n\"",
            ),
            ("\nnumbers (\n1234567890\n)", "numbers=\"\\n1234567890\\n\""),
            (
                "\nnumbers (\n  12(34)56\n  (\n    7890\n  )\n)\n",
                "numbers=\"\\n  12(34)56\\n  (\\n    7890\\n  )\\n\"",
            ),
            ("a (\n)\nb = 1", "a=\"\\n\"; b=1"),
            ("m {\n  a (\nx\n)\n  b = 2\n}", "m={a=\"\\nx\\n\"; b=2}"),
        ]);
        errors(&[
            ("a (\nx)\n", 3, "unterminated block"),
            ("a = (\n x\n )\n", 4, "unterminated block"),
        ]);
    }

    #[test]
    fn values_end_at_a_line_end() {
        errors(&[
            // nats-server reports a newline where a value belongs on the next line.
            (
                "# Invalid config file\ntrace:\n",
                3,
                "expected a value, found a new line",
            ),
            (
                "trace =\r\n",
                1,
                "expected a value, found a carriage return",
            ),
            (
                "# test garbage listen address for failure\nlisten: 10.0.1.22:foo",
                2,
                "found 'f'",
            ),
            ("a = b c", 1, "after the value of \"a\", found 'c'"),
            ("a = 'b'c", 1, "found 'c'"),
            ("a = [1] x", 1, "found 'x'"),
        ]);
        // A lone '/' after a value is skipped (nats-server).
        table(&[("a = 1 / \nb = 2", "a=1; b=2")]);
    }

    #[test]
    fn array_of_maps() {
        let text = "\nauthorization {\n    users = [\n      {user: alice, password: foo}\n      {user: bob,   password: bar}\n    ]\n    timeout: 0.5\n}\n";
        assert_eq!(
            ok(text),
            "authorization={users=[{user=\"alice\"; password=\"foo\"}, {user=\"bob\"; password=\"bar\"}]; timeout=0.5f}"
        );
        table(&[(
            "\n  array [\n    { abc: 123 }\n    { xyz: \"word\" }\n  ]\n",
            "array=[{abc=123}, {xyz=\"word\"}]",
        )]);
    }

    #[test]
    fn samples() {
        table(&[
            (
                "\nfoo  {\n  host {\n    ip   = '127.0.0.1'\n    port = 4242\n  }\n  servers = [ \"a.com\", \"b.com\", \"c.com\"]\n}\n",
                "foo={host={ip=\"127.0.0.1\"; port=4242}; servers=[\"a.com\", \"b.com\", \"c.com\"]}",
            ),
            (
                "\ncluster {\n  port: 4244\n\n  authorization {\n    user: route_user\n    password: top_secret\n    timeout: 1\n  }\n\n  # Routes are actively solicited.\n\n  // Test both styles of comments\n\n  routes = [\n    nats-route://foo:bar@apcera.me:4245\n    nats-route://foo:bar@apcera.me:4246\n  ]\n}\n",
                "cluster={port=4244; authorization={user=\"route_user\"; password=\"top_secret\"; timeout=1}; routes=[\"nats-route://foo:bar@apcera.me:4245\", \"nats-route://foo:bar@apcera.me:4246\"]}",
            ),
            ("\n  now = 2016-05-04T18:53:41Z\n  gmt = false\n\n", "now=dt:2016-05-04T18:53:41Z; gmt=false"),
        ]);
    }

    #[test]
    fn json_compatibility() {
        table(&[
            ("\n   {\n     \"http_port\": 8223\n   }\n   ", "http_port=8223"),
            ("\n   {\n     \"http_port\": 8223,\n     \"port\": 4223\n   }\n   ", "http_port=8223; port=4223"),
            (
                "{\n \"http_port\": 8223,\n \"port\": 4223,\n \"max_payload\": \"5MB\",\n \"debug\": true,\n \"max_control_line\": 1024\n}\n",
                "http_port=8223; port=4223; max_payload=\"5MB\"; debug=true; max_control_line=1024",
            ),
            ("{\"http_port\": 8224,\"port\": 4224}\n   ", "http_port=8224; port=4224"),
            ("{\"http_port\": 8225,\"port\": 4225\n   }\n   ", "http_port=8225; port=4225"),
            (
                "{\"http_port\": 8227,\"port\": 4227,\"write_deadline\": \"1h\",\"cluster\": {\"port\": 6222,\"routes\": [\"nats://127.0.0.1:4222\",\"nats://127.0.0.1:4223\",\"nats://127.0.0.1:4224\"]}}\n",
                "http_port=8227; port=4227; write_deadline=\"1h\"; cluster={port=6222; routes=[\"nats://127.0.0.1:4222\", \"nats://127.0.0.1:4223\", \"nats://127.0.0.1:4224\"]}",
            ),
            (
                "{\n  \"jetstream\": {\n    \"store_dir\": \"/tmp/nats\"\n    \"max_mem\": 1000000,\n  },\n  \"port\": 4222,\n  \"server_name\": \"nats1\"\n}\n",
                "jetstream={store_dir=\"/tmp/nats\"; max_mem=1000000}; port=4222; server_name=\"nats1\"",
            ),
            ("{}", ""),
            ("\n  {\n  }\n  ", ""),
        ]);
    }

    #[test]
    fn braces_around_the_file() {
        table(&[
            // Trailing brackets are valid.
            ("{}", ""),
            ("\n  {\n  # comments in the body\n  }\n  ", ""),
            ("\n  accounts { users = [{}]}\n  }\n  ", "accounts={users=[{}]}"),
            ("{\n  accounts { users = [{}]}\n}\n", "accounts={users=[{}]}"),
            // Blocks (newer nats-server; 2.9.10 refuses a comment after the closing brace).
            ("{ listen: 0.0.0.0:4222 }", "listen=\"0.0.0.0:4222\""),
            ("{\n\t\t\t\tlisten: 0.0.0.0:4222\n\t\t\t }", "listen=\"0.0.0.0:4222\""),
            ("\n\t{\n\t\tlisten: 0.0.0.0:4222\n\t}\n\t# wibble\n\t", "listen=\"0.0.0.0:4222\""),
            (
                "\n\t{\n\t\t{\n\t\t\tlisten: 0.0.0.0:4222 // random comment\n\t\t}\n\t\t# wibble1\n\t}\n\t# wibble2\n\t",
                "listen=\"0.0.0.0:4222\"",
            ),
            (
                "\n\t{\n\t  \"debug\":              False\n\t  \"prof_port\":          8221\n\t  \"server_name\":        \"aws-useast2-natscj1-1\"\n\t}\n\t",
                "debug=false; prof_port=8221; server_name=\"aws-useast2-natscj1-1\"",
            ),
            (
                "\n\t{\n\t  \"debug\":              False\n\t  \"server_name\":        \"gcp-asianortheast3-natscj1-1\"\n\n\t  # Profile port specification.\n\t  \"prof_port\":          8221\n\t}\n\t",
                "debug=false; server_name=\"gcp-asianortheast3-natscj1-1\"; prof_port=8221",
            ),
            ("{ 'foo': 'bar' }", "foo=\"bar\""),
            ("a = 1 } b = 2", "a=1; b=2"),
        ]);
        // A '}' that closes nothing starts a key, as in nats-server (whose typed layer
        // then reports the unknown field "}").
        assert_eq!(
            ok("server_name: x\n}\ndebug=true\n"),
            "server_name=\"x\"; }=\"debug=true\""
        );
        errors(&[("{ { a = 1 } b = 2 }", 1, "expected \"}\" to close a block")]);
    }

    #[test]
    fn parser_never_loops() {
        for text in ["A@@Føøøø?˛ø:{øøøø˙˙", "include \"9/�"] {
            let e = err(text);
            assert!(e.message.contains("end of file"), "{text:?}: {e}");
        }
    }

    #[test]
    fn variables() {
        table(&[
            ("\n  index = 22\n  foo = $index\n", "index=22; foo=22"),
            ("\n  index = 22\n  nest {\n    index = 11\n    foo = $index\n  }\n  bar = $index\n", "index=22; nest={index=11; foo=11}; bar=22"),
            ("foo = 1\nfoo = 2\nbar = $foo", "foo=1; foo=2; bar=2"),
            ("a = 1\nm { a = $a }", "a=1; m={a=1}"),
            ("password: $2a$11$ooo", "password=\"$2a$11$ooo\""),
            // Quoted, a '$' is just text.
            ("a = 1\nb = \"$a\"", "a=1; b=\"$a\""),
            // Arrays are not scopes: lookups go to the enclosing maps.
            ("x = 5\na = [ { y = $x }, $x ]", "x=5; a=[{y=5}, 5]"),
            ("m = { a = [1, 2] }\nn = $m", "m={a=[1, 2]}; n={a=[1, 2]}"),
            (
                "BAR_USERS = { users = [ {user = \"bar\"} ]}\nhello = 'world'\naccounts {\n  QUUX_USERS = [ { user: quux }]\n  bar = $BAR_USERS\n  quux = { users = $QUUX_USERS }\n}\nvery { nested { env { VAR = 'NESTED', quux = $VAR }}}\n",
                "BAR_USERS={users=[{user=\"bar\"}]}; hello=\"world\"; accounts={QUUX_USERS=[{user=\"quux\"}]; bar={users=[{user=\"bar\"}]}; quux={users=[{user=\"quux\"}]}}; very={nested={env={VAR=\"NESTED\"; quux=\"NESTED\"}}}",
            ),
            // Names are case-sensitive; a later definition is not visible earlier.
        ]);
        errors(&[
            (
                "foo=$index",
                1,
                "variable reference for 'index' on line 1 can not be found",
            ),
            ("Index = 1\nfoo=$index", 2, "'index'"),
            ("foo = $bar\nbar = 1", 1, "'bar'"),
            ("foo = $foo", 1, "refers to itself"),
            ("m { a { b = $m } }", 1, "refers to itself"),
            ("a = $", 1, "variable reference for ''"),
        ]);
    }

    #[test]
    fn variable_positions_and_use() {
        let parsed = parse_with(
            "port = 4222\nmonitor_port = $port\nunused = 1\n",
            &MapResolver::default(),
            &no_env,
        )
        .unwrap();
        let (port_key, _) = &parsed.map[0];
        let (_, monitor) = &parsed.map[1];
        // The copy is reported where the reference is (after the '$', as nats-server).
        assert_eq!((monitor.pos.line, monitor.pos.column), (2, 17));
        assert_eq!(monitor.as_i64(), Some(4222));
        // The definition stays, and is marked used.
        assert_eq!(port_key.name, "port");
        assert_eq!(parsed.used_variables, HashSet::from([port_key.pos.clone()]));
        assert_eq!(port_key.pos.to_string(), "test.conf:1:0");
    }

    #[test]
    fn all_unresolved_variables_are_reported() {
        let e = parse_with(
            "a = $x\nb = 1\nc = [$y]\nd { e = $z }\n",
            &MapResolver::default(),
            &no_env,
        )
        .unwrap_err();
        let lines: Vec<u32> = e
            .iter()
            .filter_map(|e| e.pos.as_ref().map(|p| p.line))
            .collect();
        assert_eq!(lines, vec![1, 3, 4]);
    }

    #[test]
    fn environment_variables() {
        let env = |name: &str| -> Option<String> {
            match name {
                "__UNIQ22__" => Some("22".into()),
                "XYZ" => Some("xyz".into()),
                "SIZE" => Some("3Gyz".into()),
                "QUOTED" => Some("'3xyz'".into()),
                "ON" => Some("true".into()),
                "LIST" => Some("[1, 2]".into()),
                "INDIRECT" => Some("$XYZ".into()),
                "SELF" => Some("$SELF".into()),
                "PING" => Some("$PONG".into()),
                "PONG" => Some("$PING".into()),
                "BAD" => Some("a b".into()),
                "INC" => Some("{ include x.conf }".into()),
                "EMPTY" => Some(String::new()),
                _ => None,
            }
        };
        let r = MapResolver::default();
        let ok = |text: &str| show(&parse_with(text, &r, &env).unwrap().map);
        assert_eq!(ok("foo = $__UNIQ22__"), "foo=22");
        assert_eq!(ok("foo = $XYZ"), "foo=\"xyz\"");
        assert_eq!(ok("foo = $SIZE"), "foo=\"3Gyz\"");
        assert_eq!(ok("foo = $QUOTED"), "foo=\"3xyz\"");
        assert_eq!(ok("foo = $ON"), "foo=true");
        assert_eq!(ok("foo = $LIST"), "foo=[1, 2]");
        assert_eq!(ok("foo = $INDIRECT"), "foo=\"xyz\"");
        assert_eq!(ok("foo = $EMPTY"), "foo=\"\"");
        // A definition in the file wins over the environment.
        assert_eq!(ok("XYZ = 1\nfoo = $XYZ"), "XYZ=1; foo=1");
        // Values from the environment are reported where the reference is.
        let p = parse_with("\nfoo = $LIST", &r, &env).unwrap();
        let items = p.map[0].1.as_array().unwrap();
        assert!(items
            .iter()
            .all(|v| v.pos.line == 2 && &*v.pos.file == "test.conf"));
        for (text, part) in [
            ("foo = $SELF", "variable reference cycle for 'SELF'"),
            ("foo = $PING", "variable reference cycle for 'PING'"),
            ("foo = $BAD", "could not be parsed"),
            ("foo = $INC", "include is not allowed"),
        ] {
            let e = parse_with(text, &r, &env).unwrap_err();
            assert!(e[0].message.contains(part), "{text}: {}", e[0]);
            assert_eq!(e[0].pos.as_ref().unwrap().line, 1);
        }
    }

    #[test]
    fn includes() {
        let r = files(&[
            ("includes/users.conf", "# Users configuration\n\ninclude ./passwords.conf;\n\nusers = [\n  {user: alice, password: $ALICE_PASS}\n  {user: bob,   password: $BOB_PASS}\n]\n"),
            ("./passwords.conf", "# Just foo & bar for testing\nALICE_PASS: $2a$10$UHR6GhotWhpLsKtVP0/i6.Nh9.fuY73cWjLoJjb2sKT8KISBcUW5q\nBOB_PASS: $2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly\n"),
            ("users.conf", "a = 1"),
        ]);
        let simple = "# Simple configuration file\n\nlisten: 127.0.0.1:4222\n\nauthorization {\n  include 'includes/users.conf' # Pull in from file\n  timeout: 0.5\n}\n";
        let p = parse_with(simple, &r, &no_env).unwrap();
        assert_eq!(
            show(&p.map),
            "listen=\"127.0.0.1:4222\"; authorization={ALICE_PASS=\"$2a$10$UHR6GhotWhpLsKtVP0/i6.Nh9.fuY73cWjLoJjb2sKT8KISBcUW5q\"; BOB_PASS=\"$2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly\"; users=[{user=\"alice\"; password=\"$2a$10$UHR6GhotWhpLsKtVP0/i6.Nh9.fuY73cWjLoJjb2sKT8KISBcUW5q\"}, {user=\"bob\"; password=\"$2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly\"}]; timeout=0.5f}"
        );
        // Included keys name the included file.
        let auth = p.map[1].1.as_map().unwrap();
        assert_eq!(auth[0].0.pos.to_string(), "./passwords.conf:2:1");
        assert_eq!(auth[2].0.pos.to_string(), "includes/users.conf:5:1");
        // Every spelling of an include, at the top and in maps.
        for text in [
            "include \"users.conf\"",
            "include 'users.conf'",
            "include users.conf",
            "INCLUDE users.conf",
            "include \t users.conf ; b = 2",
        ] {
            assert!(
                show(&parse_with(text, &r, &no_env).unwrap().map).starts_with("a=1"),
                "{text}"
            );
        }
        for text in [
            "foo { include users.conf }",
            "foo {include users.conf}",
            "foo { include 'users.conf' }",
            "foo { include \"users.conf\"}",
        ] {
            assert_eq!(
                show(&parse_with(text, &r, &no_env).unwrap().map),
                "foo={a=1}",
                "{text}"
            );
        }
        // `include` directly followed by a separator is an ordinary key (with a space
        // between, nats-server takes the separator as the file name).
        assert_eq!(
            show(&parse_with("include= 5", &r, &no_env).unwrap().map),
            "include=5"
        );
        assert!(parse_with("include = 5", &r, &no_env).unwrap_err()[0]
            .message
            .contains("\"=\""));
    }

    #[test]
    fn variables_across_includes() {
        let r = files(&[(
            "./includes/passwords.conf",
            "# Just foo & bar for testing\nALICE_PASS: $2a$10$UHR6GhotWhpLsKtVP0/i6.Nh9.fuY73cWjLoJjb2sKT8KISBcUW5q\nBOB_PASS: $2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly\n",
        )]);
        let text = "\nauthorization {\n\n  include \"./includes/passwords.conf\"\n\n  CAROL_PASS: foo\n\n  users = [\n   {user: alice, password: $ALICE_PASS}\n   {user: bob,   password: $BOB_PASS}\n   {user: carol, password: $CAROL_PASS}\n  ]\n}\n";
        let p = parse_with(text, &r, &no_env).unwrap();
        let auth = p.map[0].1.as_map().unwrap();
        let at = |name: &str| {
            auth.iter()
                .find(|(k, _)| k.name == name)
                .map(|(k, _)| (k.pos.line, k.pos.column))
                .unwrap()
        };
        assert_eq!(at("ALICE_PASS"), (2, 1));
        assert_eq!(at("BOB_PASS"), (3, 1));
        assert_eq!(at("CAROL_PASS"), (6, 3));
        // ALICE_PASS and BOB_PASS are bcrypt hashes, not references, in the included
        // file; all three definitions are used by the users.
        assert_eq!(p.used_variables.len(), 3);
        let users = auth[3].1.as_array().unwrap();
        assert_eq!(users[2].as_map().unwrap()[1].1.as_str(), Some("foo"));
        // An included file does not see the including file's variables.
        let r = files(&[("inner.conf", "b = $a")]);
        let e = parse_with("a = 1\ninclude inner.conf", &r, &no_env).unwrap_err();
        assert_eq!(e[0].pos.as_ref().unwrap().to_string(), "inner.conf:1:5");
        assert!(
            e[0].message.contains("included from test.conf:2:1"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn include_errors() {
        let r = files(&[
            ("foo.conf", ""),
            ("quux.conf", "?????????????"),
            ("bar.conf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            (
                "comments.conf",
                "\n  # just some comments,\n  # and no key values also ok.\n",
            ),
            ("a.conf", "include b.conf"),
            ("b.conf", "x = 1\ninclude a.conf"),
            ("self.conf", "include self.conf"),
            ("bad.conf", "a = 1\nb = [\n"),
        ]);
        let check = |text: &str, at: &str, part: &str| {
            let e = parse_with(text, &r, &no_env).unwrap_err();
            assert_eq!(
                e[0].pos
                    .as_ref()
                    .map(|p| format!("{}:{}", p.file, p.line))
                    .as_deref(),
                Some(at),
                "{text}: {}",
                e[0]
            );
            assert!(e[0].message.contains(part), "{text}: {} lacks {part}", e[0]);
        };
        check(
            "accounts {\n  foo { include 'foo.conf'}\n  quux { include 'quux.conf'}\n}",
            "quux.conf:1",
            "expected a value",
        );
        check("accounts {\n  foo { include 'foo.conf'}\n  bar { include 'bar.conf'}\n  quux { include 'comments.conf'}\n}", "bar.conf:1", "expected a value");
        check(
            "include missing.conf",
            "test.conf:1",
            "cannot read included file \"missing.conf\"",
        );
        check(
            "include a.conf",
            "b.conf:2",
            "include cycle: test.conf -> a.conf -> b.conf -> a.conf",
        );
        check("include self.conf", "self.conf:1", "include cycle");
        check(
            "include bad.conf",
            "bad.conf:3",
            "found end of file (in a file included from test.conf:1:0)",
        );
        check("include", "test.conf:1", "expected a value");
        check(
            "include [",
            "test.conf:1",
            "expected a file name after include, found the start of an array",
        );
        check("include 'x", "test.conf:1", "unterminated include path");
        check("m { include\n}", "test.conf:2", "found a new line");
        // Ten levels of includes are fine, eleven are not.
        let chain: Vec<(String, String)> = (0..12)
            .map(|i| {
                (
                    format!("f{i}.conf"),
                    format!("k{i} = {i}\ninclude f{}.conf", i + 1),
                )
            })
            .collect();
        let mut map: HashMap<String, String> = chain.into_iter().collect();
        map.insert("f10.conf".into(), "k10 = 10".into());
        let deep = MapResolver(map.clone());
        let e = parse_with("include f0.conf", &deep, &no_env).unwrap_err();
        assert!(
            e[0].message.contains("nested more than 10 deep"),
            "{}",
            e[0]
        );
        map.insert("f9.conf".into(), "k9 = 9".into());
        let ok10 = MapResolver(map);
        assert_eq!(
            parse_with("include f0.conf", &ok10, &no_env)
                .unwrap()
                .map
                .len(),
            10
        );
    }

    #[test]
    fn parse_file_reads_through_the_resolver() {
        let r = files(&[("main.conf", "port = 4222\n")]);
        let p = parse_file("main.conf", &r, &no_env).unwrap();
        assert_eq!(p.map[0].0.pos.to_string(), "main.conf:1:0");
        let e = parse_file("nope.conf", &r, &no_env).unwrap_err();
        assert_eq!(e[0].pos, None);
        assert_eq!(
            e[0].to_string(),
            "cannot read configuration file \"nope.conf\": no such file"
        );
    }

    #[test]
    fn positions_follow_nats_server() {
        let p = parse_with(
            "foo = \"bar\"\n  baz = {ip='127.0.0.1', port = 4242}\n",
            &MapResolver::default(),
            &no_env,
        )
        .unwrap();
        let (k, v) = &p.map[0];
        assert_eq!((k.pos.line, k.pos.column, v.pos.column), (1, 0, 7));
        let (k, v) = &p.map[1];
        assert_eq!((k.pos.line, k.pos.column, v.pos.column), (2, 3, 9));
        let inner = v.as_map().unwrap();
        assert_eq!((inner[1].0.pos.column, inner[1].1.pos.column), (26, 33));
        // The column of an error is that of the character at fault.
        let e = err("a {\n  listen: 266.0.0.1:foo\n}");
        assert_eq!(
            e.to_string(),
            "test.conf:2:21: expected a map value terminator \",\" or \"}\", found 'f'"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("a = {}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_with(&deep(64), &MapResolver::default(), &no_env).is_ok());
        let e = err(&deep(65));
        assert!(e.message.contains("nested more than 64 deep"), "{e}");
        let e = err(&format!("a = {}", "{ b = ".repeat(100_000)));
        assert!(e.message.contains("nested more than 64 deep"), "{e}");
        // Copies made by variables count too.
        let text = format!(
            "a = {}{}\nb {{ c {{ d = $a }} }}",
            "[".repeat(63),
            "]".repeat(63)
        );
        let e = err(&text);
        assert!(e.message.contains("after copying $a"), "{e}");
    }

    #[test]
    fn copies_are_bounded() {
        // Each line doubles the size: 2^30 values if nothing stopped it.
        let mut text = String::from("v0 = [1, 1]\n");
        for i in 1..30 {
            text.push_str(&format!("v{i} = [$v{0}, $v{0}]\n", i - 1));
        }
        let e = err(&text);
        assert!(e.message.contains("more than 1000000 values"), "{e}");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap smoke test; the fuzz target does this properly.
        let alphabet: Vec<char> = "ab1.-=:{}[](),;#/\\'\"$ \t\n\rxké2kb".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse_with(&text, &files(&[("x", "y = 1")]), &|_| Some("$x".into()));
        }
    }
}
