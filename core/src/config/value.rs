//! The value tree a configuration file parses into, and its printer.

use std::fmt;
use std::sync::Arc;

/// Where something was written: file name, line (1-based) and column.
///
/// The column follows nats-server's convention so that messages match its own:
/// it is the byte offset from the start of the line's preceding newline, which makes
/// it 1-based on every line but the first, where it is 0-based.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    /// The file name as the resolver reported it.
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: u32,
    /// Column as nats-server reports it (see the type's documentation).
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A key of a map, with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// The key as written (quotes removed, case kept).
    pub name: String,
    /// Where the key starts (inside the quotes for a quoted key).
    pub pos: Pos,
}

/// A value with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// What the value is.
    pub kind: ValueKind,
    /// Where the value starts; for a value copied in from a `$VARIABLE`, where the
    /// reference was written.
    pub pos: Pos,
}

/// The kinds of values a configuration file holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// Key/value pairs in file order; a key written twice appears twice (the typed
    /// layer takes the last, as nats-server does).
    Map(Vec<(Key, Value)>),
    /// Elements in file order; kinds may be mixed.
    Array(Vec<Value>),
    /// A quoted, unquoted or block string.
    String(String),
    /// An integer, size suffixes (`1k`, `4MB`, ...) already applied.
    Integer(i64),
    /// A floating-point number.
    Float(f64),
    /// `true`/`false`, `yes`/`no`, `on`/`off`.
    Bool(bool),
    /// A Zulu datetime literal such as `2016-05-04T18:53:41Z`, kept as written.
    Datetime(String),
}

impl Value {
    /// The kind's name for messages: "map", "array", "string", "integer", "float",
    /// "boolean" or "datetime".
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ValueKind::Map(_) => "map",
            ValueKind::Array(_) => "array",
            ValueKind::String(_) => "string",
            ValueKind::Integer(_) => "integer",
            ValueKind::Float(_) => "float",
            ValueKind::Bool(_) => "boolean",
            ValueKind::Datetime(_) => "datetime",
        }
    }

    /// The entries if this is a map.
    pub fn as_map(&self) -> Option<&[(Key, Value)]> {
        match &self.kind {
            ValueKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The text if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number if this is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self.kind {
            ValueKind::Integer(n) => Some(n),
            _ => None,
        }
    }

    /// The flag if this is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            ValueKind::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match &self.kind {
            ValueKind::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Prints a value tree back to configuration text that parses to the same tree (for
/// the round-trip property and for tooling).
///
/// Positions are not kept. Two things the format cannot express are written as the
/// closest thing it can: a key containing both quote characters and a character that
/// needs quoting (written double-quoted, so it will not read back), and a float that is
/// not finite (written as a string).
pub fn to_text(map: &[(Key, Value)]) -> String {
    let mut out = String::new();
    write_entries(&mut out, map, 0);
    out
}

fn write_entries(out: &mut String, map: &[(Key, Value)], depth: usize) {
    for (key, value) in map {
        indent(out, depth);
        write_key(out, &key.name);
        if matches!(value.kind, ValueKind::Map(_)) {
            // A map needs no separator, and `key {` reads well.
            out.push(' ');
        } else {
            out.push_str(" = ");
        }
        write_value(out, value, depth);
        out.push('\n');
    }
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match &value.kind {
        ValueKind::Map(entries) => {
            out.push_str("{\n");
            write_entries(out, entries, depth + 1);
            indent(out, depth);
            out.push('}');
        }
        ValueKind::Array(items) => {
            // One element per line: a newline ends every kind of element, including an
            // integer, which nats-server would not end at a `]` right after it.
            out.push_str("[\n");
            for item in items {
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
                out.push('\n');
            }
            indent(out, depth);
            out.push(']');
        }
        ValueKind::String(s) => write_quoted(out, s),
        ValueKind::Integer(n) => out.push_str(&n.to_string()),
        ValueKind::Float(f) => {
            if f.is_finite() {
                // Display never uses an exponent (which the grammar lacks); add a
                // fraction so that the number reads back as a float, not an integer.
                let s = f.to_string();
                out.push_str(&s);
                if !s.contains('.') {
                    out.push_str(".0");
                }
            } else {
                write_quoted(out, &f.to_string());
            }
        }
        ValueKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ValueKind::Datetime(d) => out.push_str(d),
    }
}

/// Double-quoted with the escapes the grammar knows; other control characters as `\xHH`.
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_key(out: &mut String, name: &str) {
    let bare = !name.is_empty()
        && !name.eq_ignore_ascii_case("include")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if bare {
        out.push_str(name);
    } else if !name.contains('"') {
        // Quoted keys are raw: no escapes inside.
        out.push('"');
        out.push_str(name);
        out.push('"');
    } else if !name.contains('\'') {
        out.push('\'');
        out.push_str(name);
        out.push('\'');
    } else if !name
        .chars()
        .any(|c| c.is_whitespace() || c == '=' || c == ':')
        && !name.starts_with(['"', '\'', '#', '/', '{', '}', ']'])
    {
        // Both quotes, but nothing that ends a bare key.
        out.push_str(name);
    } else {
        out.push('"');
        out.push_str(name);
        out.push('"');
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::config::parse::{parse, MapResolver};

    /// A tree without positions, for comparing.
    #[derive(Debug, PartialEq)]
    enum Plain {
        Map(Vec<(String, Plain)>),
        Array(Vec<Plain>),
        String(String),
        Integer(i64),
        Float(f64),
        Bool(bool),
        Datetime(String),
    }

    fn strip_map(map: &[(Key, Value)]) -> Vec<(String, Plain)> {
        map.iter()
            .map(|(k, v)| (k.name.clone(), strip(v)))
            .collect()
    }

    fn strip(v: &Value) -> Plain {
        match &v.kind {
            ValueKind::Map(m) => Plain::Map(strip_map(m)),
            ValueKind::Array(a) => Plain::Array(a.iter().map(strip).collect()),
            ValueKind::String(s) => Plain::String(s.clone()),
            ValueKind::Integer(n) => Plain::Integer(*n),
            ValueKind::Float(f) => Plain::Float(*f),
            ValueKind::Bool(b) => Plain::Bool(*b),
            ValueKind::Datetime(d) => Plain::Datetime(d.clone()),
        }
    }

    fn pos() -> Pos {
        Pos {
            file: Arc::from("gen"),
            line: 1,
            column: 0,
        }
    }

    fn val(kind: ValueKind) -> Value {
        Value { kind, pos: pos() }
    }

    /// Characters that stress the printer: quotes, escapes, separators, comment
    /// starters, braces, `$`, control characters and non-ASCII.
    const AWKWARD: &[char] = &[
        'a', 'Z', '0', '9', ' ', '\t', '\n', '\r', '"', '\'', '\\', '$', '#', '/', '=', ':', ',',
        ';', '{', '}', '[', ']', '(', ')', '.', '-', '_', '\0', '\x1b', '\x7f', 'é', '€', '😀',
    ];

    fn text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(AWKWARD), 0..max)
            .prop_map(|v| v.into_iter().collect())
    }

    /// Keys with both quote characters cannot always be written (the format has no
    /// escapes in keys), so they are left out.
    fn key() -> impl Strategy<Value = Key> {
        prop_oneof![
            3 => "[a-z_][a-z0-9_.$-]{0,6}",
            1 => Just("include".to_string()),
            2 => text(8),
        ]
        .prop_filter("both quotes", |k| !(k.contains('"') && k.contains('\'')))
        .prop_map(|name| Key { name, pos: pos() })
    }

    fn datetime() -> impl Strategy<Value = String> {
        (
            1000u32..9999,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
        )
            .prop_map(|(y, mo, d, h, mi, s)| {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            })
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            text(12).prop_map(|s| val(ValueKind::String(s))),
            any::<i64>().prop_map(|n| val(ValueKind::Integer(n))),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| val(ValueKind::Float(f))),
            any::<bool>().prop_map(|b| val(ValueKind::Bool(b))),
            datetime().prop_map(|d| val(ValueKind::Datetime(d))),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(|a| val(ValueKind::Array(a))),
                prop::collection::vec((key(), inner), 0..5).prop_map(|m| val(ValueKind::Map(m))),
            ]
        })
    }

    proptest! {
        #[test]
        fn printed_trees_parse_back_to_themselves(map in prop::collection::vec((key(), value()), 0..6)) {
            let text = to_text(&map);
            let resolver = MapResolver(HashMap::new());
            let parsed = parse("rt.conf", &text, &resolver, &|_| None);
            match parsed {
                Ok(p) => prop_assert_eq!(strip_map(&p.map), strip_map(&map), "text:\n{}", text),
                Err(e) => prop_assert!(false, "{:?}\ntext:\n{}", e, text),
            }
        }
    }

    #[test]
    fn printing() {
        let key = |name: &str| Key {
            name: name.to_string(),
            pos: pos(),
        };
        let map = vec![
            (key("port"), val(ValueKind::Integer(4222))),
            (key("a b"), val(ValueKind::String("x\"y\n".into()))),
            (key("include"), val(ValueKind::Float(2.0))),
            (key("say \"hi\""), val(ValueKind::Bool(true))),
            (
                key("m"),
                val(ValueKind::Map(vec![(
                    key("l"),
                    val(ValueKind::Array(vec![val(ValueKind::Integer(-1))])),
                )])),
            ),
        ];
        assert_eq!(
            to_text(&map),
            "port = 4222\n\"a b\" = \"x\\\"y\\n\"\n\"include\" = 2.0\n'say \"hi\"' = true\nm {\n  l = [\n    -1\n  ]\n}\n"
        );
    }

    #[test]
    fn accessors() {
        let v = val(ValueKind::Integer(3));
        assert_eq!(
            (v.as_i64(), v.as_str(), v.type_name()),
            (Some(3), None, "integer")
        );
        let v = val(ValueKind::String("s".into()));
        assert_eq!(
            (v.as_str(), v.as_bool(), v.type_name()),
            (Some("s"), None, "string")
        );
        let v = val(ValueKind::Bool(false));
        assert_eq!(
            (v.as_bool(), v.as_array().is_none(), v.type_name()),
            (Some(false), true, "boolean")
        );
        let v = val(ValueKind::Array(vec![]));
        assert_eq!(
            (v.as_array().map(<[Value]>::len), v.as_map().is_none()),
            (Some(0), true)
        );
        assert_eq!(pos().to_string(), "gen:1:0");
    }
}
