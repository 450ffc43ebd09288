//! NATS subject rules on raw bytes: tokenizing, validation and wildcard matching.

/// Separates the tokens of a subject.
pub const SEP: u8 = b'.';
/// A token that is exactly this byte matches any single token.
pub const PWC: u8 = b'*';
/// A token that is exactly this byte matches one or more trailing tokens.
pub const FWC: u8 = b'>';

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whether `tok` is a wildcard token (`*` or `>` on its own).
#[inline]
pub fn is_wildcard_token(tok: &[u8]) -> bool {
    matches!(tok, [PWC] | [FWC])
}

/// The `.`-separated tokens of `s`. An empty `s` yields one empty token, and
/// empty tokens are yielded as they occur, so callers can reject them.
#[inline]
pub fn tokens(s: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> + Clone {
    s.split(|&b| b == SEP)
}

/// Splits off the first token: `(token, rest after the separator)`, with
/// `None` for the rest when `token` was the last one.
#[inline]
pub(crate) fn split_first_token(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == SEP) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Whether `s` is usable as a SUB subject: non-empty tokens, no whitespace,
/// and `>` only as the final token.
pub fn is_valid_subject(s: &[u8]) -> bool {
    validate(s, true)
}

/// Whether `s` is a valid subject without wildcard tokens (a PUB subject
/// under pedantic checking).
pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    validate(s, false)
}

/// Whether no token of `s` is a wildcard. Does not check validity.
pub fn is_literal(s: &[u8]) -> bool {
    !tokens(s).any(is_wildcard_token)
}

fn validate(s: &[u8], allow_wildcards: bool) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut after_fwc = false;
    for tok in tokens(s) {
        // Anything after `>` would never be reachable.
        if tok.is_empty() || after_fwc || tok.iter().any(|&b| is_space(b)) {
            return false;
        }
        match tok {
            [PWC] | [FWC] if !allow_wildcards => return false,
            [FWC] => after_fwc = true,
            _ => {}
        }
    }
    true
}

/// Whether `pattern` (a valid SUB subject) matches `subject`, whose tokens are
/// all taken literally. A subject with an empty token matches nothing.
pub fn subject_matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut pats = tokens(pattern);
    let mut subs = tokens(subject);
    loop {
        match (pats.next(), subs.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) => {
                if s.is_empty() {
                    return false;
                }
                match p {
                    // `>` swallows the rest, which must still be well formed.
                    [FWC] => return subs.all(|t| !t.is_empty()),
                    [PWC] => {}
                    _ if p == s => {}
                    _ => return false,
                }
            }
            _ => return false,
        }
    }
}

/// Whether every subject `pattern` matches is also matched by `of` (both valid
/// SUB subjects): `foo.bar` and `foo.*` are within `foo.>`, `foo.>` is not
/// within `foo.*`.
pub fn is_subset(pattern: &[u8], of: &[u8]) -> bool {
    let mut pats = tokens(pattern);
    let mut ofs = tokens(of);
    loop {
        match (pats.next(), ofs.next()) {
            (None, None) => return true,
            (Some(_), Some([FWC])) => return true,
            (Some(p), Some(o)) => match (p, o) {
                ([FWC], _) => return false,
                (_, [PWC]) => {}
                ([PWC], _) => return false,
                _ if p == o => {}
                _ => return false,
            },
            _ => return false,
        }
    }
}

/// Whether some subject is matched by both patterns (both valid SUB subjects).
pub fn subjects_collide(a: &[u8], b: &[u8]) -> bool {
    let mut xs = tokens(a);
    let mut ys = tokens(b);
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return true,
            (Some([FWC]), Some(_)) | (Some(_), Some([FWC])) => return true,
            (Some(x), Some(y)) if x == [PWC] || y == [PWC] || x == y => {}
            _ => return false,
        }
    }
}

/// The wildcard tokens of `pattern` in order, e.g. `[*, >]` for `a.*.b.>`:
/// two patterns can be mapped onto each other when these agree.
pub fn wildcard_signature(pattern: &[u8]) -> impl Iterator<Item = &[u8]> {
    tokens(pattern).filter(|t| is_wildcard_token(t))
}

/// Rewrites `subject`, which `from` matches, onto `to`, appending to `out`:
/// the n-th wildcard token of `to` becomes what the n-th wildcard of `from`
/// matched (`*` one token, `>` the rest). A `to` without wildcards is copied
/// as it is. The caller ensures the wildcards of `to` are those of `from`.
pub fn map_subject(from: &[u8], to: &[u8], subject: &[u8], out: &mut Vec<u8>) {
    let mut captures = captures(from, subject);
    for (i, tok) in tokens(to).enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        if is_wildcard_token(tok) {
            out.extend_from_slice(captures.next().unwrap_or(tok));
        } else {
            out.extend_from_slice(tok);
        }
    }
}

/// What each wildcard of `pattern` matched in `subject`, in order.
fn captures<'a>(pattern: &'a [u8], subject: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(subject);
    tokens(pattern).filter_map(move |p| {
        let s = rest?;
        if p == [FWC] {
            rest = None;
            return Some(s);
        }
        let (token, after) = split_first_token(s);
        rest = after;
        (p == [PWC]).then_some(token)
    })
}

/// Whether two subjects are the same bytes, compared inline a word at a time:
/// for subject-sized strings this is cheaper than a call into the C library's
/// `memcmp`, and the hot path compares a publish subject with the last one.
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0..4 => a == b,
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 < n {
                if word(a, i) != word(b, i) {
                    return false;
                }
                i += 8;
            }
            // The last eight bytes, overlapping what was compared already.
            word(a, n - 8) == word(b, n - 8)
        }
    }
}

/// Whether no token of `s` is empty (no leading, trailing or doubled `.`;
/// an empty `s` is one empty token): eight bytes at a time, since every
/// publish that misses a cache asks.
pub fn has_no_empty_token(s: &[u8]) -> bool {
    /// `0x80` in each byte of `word` that is a `.`, nothing else.
    fn separators(word: u64) -> u64 {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let x = word ^ u64::from_le_bytes([SEP; 8]);
        !(((x & LOW7) + LOW7) | x | LOW7)
    }
    let (Some(&first), Some(&last)) = (s.first(), s.last()) else {
        return false;
    };
    if first == SEP || last == SEP {
        return false;
    }
    if s.len() < 8 {
        return !s.windows(2).any(|pair| pair == [SEP, SEP]);
    }
    let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    // Whole words, then the last eight bytes (overlapping them): every pair
    // of neighbours lies in one word, or across two (`carried`).
    let mut carried = 0;
    let mut at = 0;
    while at + 8 <= s.len() {
        let dots = separators(word(at));
        if dots & ((dots << 8) | carried) != 0 {
            return false;
        }
        carried = dots >> 56;
        at += 8;
    }
    let dots = separators(word(s.len() - 8));
    dots & (dots << 8) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subsets() {
        for (a, b) in [
            ("foo", "foo"),
            ("foo.bar", "foo.*"),
            ("foo.*", "foo.>"),
            ("foo.>", "foo.>"),
            ("foo.bar.>", "foo.>"),
            ("a.*.c", "*.*.c"),
            ("a", ">"),
        ] {
            assert!(is_subset(a.as_bytes(), b.as_bytes()), "{a} within {b}");
        }
        for (a, b) in [
            ("foo.>", "foo.*"),
            ("foo", "foo.>"),
            ("foo.*", "foo.bar"),
            ("foo.bar", "foo.baz"),
            ("foo.bar.baz", "foo.*"),
            (">", "*"),
        ] {
            assert!(!is_subset(a.as_bytes(), b.as_bytes()), "{a} not within {b}");
        }
    }

    #[test]
    fn colliding_subjects() {
        for (a, b) in [
            ("foo", "foo"),
            ("foo.*", "*.bar"),
            ("foo.>", "foo.a.b"),
            (">", "a"),
        ] {
            assert!(subjects_collide(a.as_bytes(), b.as_bytes()), "{a} {b}");
            assert!(subjects_collide(b.as_bytes(), a.as_bytes()), "{b} {a}");
        }
        for (a, b) in [
            ("foo", "bar"),
            ("foo.>", "foo"),
            ("foo.*", "foo.a.b"),
            ("a.*", "b.*"),
        ] {
            assert!(!subjects_collide(a.as_bytes(), b.as_bytes()), "{a} {b}");
            assert!(!subjects_collide(b.as_bytes(), a.as_bytes()), "{b} {a}");
        }
    }

    #[test]
    fn mapping_subjects() {
        let map = |from: &str, to: &str, subject: &str| {
            let mut out = Vec::new();
            map_subject(from.as_bytes(), to.as_bytes(), subject.as_bytes(), &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(map("svc.>", "asvc.>", "svc.a.b"), "asvc.a.b");
        assert_eq!(map("a.*.c.>", "x.*.>", "a.1.c.2.3"), "x.1.2.3");
        assert_eq!(map("a.*", "fixed", "a.1"), "fixed");
        assert_eq!(map("a.b", "c.d", "a.b"), "c.d");
    }

    #[test]
    fn valid_subjects() {
        for s in [
            "foo",
            "foo.bar",
            "*",
            ">",
            "foo.*",
            "foo.>",
            "*.bar.>",
            "foo*",
            "a>b",
            "foo.b*r.>",
            "*.*",
            ">a.b",
            "a.*>",
        ] {
            assert!(is_valid_subject(s.as_bytes()), "{s}");
        }
        for s in [
            "",
            ".",
            "foo.",
            ".foo",
            "foo..bar",
            ">.foo",
            "foo.>.bar",
            "foo bar",
            "foo\tbar",
            "foo\r",
            "\nfoo",
            "a.>.>",
            " ",
        ] {
            assert!(!is_valid_subject(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn literal_subjects() {
        for s in ["foo", "foo.bar", "foo*", "a>b", "x.*y.>z"] {
            assert!(is_valid_literal_subject(s.as_bytes()), "{s}");
            assert!(is_literal(s.as_bytes()), "{s}");
        }
        for s in ["*", ">", "foo.*", "foo.>", "*.bar", "", "a..b", "a b"] {
            assert!(!is_valid_literal_subject(s.as_bytes()), "{s:?}");
        }
        assert!(!is_literal(b"foo.*"));
    }

    #[test]
    fn matching_rules() {
        let m = |p: &str, s: &str| subject_matches(p.as_bytes(), s.as_bytes());
        assert!(m("foo", "foo"));
        assert!(!m("foo", "foo.bar"));
        assert!(!m("foo.bar", "foo"));
        assert!(m("foo.>", "foo.bar"));
        assert!(m("foo.>", "foo.bar.baz"));
        assert!(!m("foo.>", "foo"));
        assert!(m("foo.*", "foo.bar"));
        assert!(!m("foo.*", "foo"));
        assert!(!m("foo.*", "foo.bar.baz"));
        assert!(m("*.bar", "foo.bar"));
        assert!(m(">", "a"));
        assert!(m(">", "a.b.c"));
        assert!(m("*", "a"));
        assert!(!m("*", "a.b"));
        // Wildcard characters inside a longer token are literal.
        assert!(m("foo*", "foo*"));
        assert!(!m("foo*", "foox"));
        assert!(m("a>b", "a>b"));
        assert!(!m("a>b", "a.b"));
        // Wildcard tokens in the subject only meet wildcard (or equal) pattern tokens.
        assert!(m("foo.*", "foo.*"));
        assert!(m("foo.>", "foo.>"));
        assert!(!m("foo.bar", "foo.*"));
        // Empty tokens match nothing.
        assert!(!m("foo.*", "foo."));
        assert!(!m(">", ""));
        assert!(!m(">", "a..b"));
        assert!(!m("foo.>", "foo.a."));
        assert!(!m("*", ""));
    }

    #[test]
    fn tokens_and_split() {
        let t: Vec<&[u8]> = tokens(b"a.bc..d").collect();
        assert_eq!(t, [&b"a"[..], b"bc", b"", b"d"]);
        assert_eq!(tokens(b"").count(), 1);
        assert_eq!(split_first_token(b"a.b.c"), (&b"a"[..], Some(&b"b.c"[..])));
        assert_eq!(split_first_token(b"abc"), (&b"abc"[..], None));
        assert_eq!(split_first_token(b"a."), (&b"a"[..], Some(&b""[..])));
    }

    fn naive_valid(s: &[u8]) -> bool {
        let s = String::from_utf8_lossy(s);
        if s.is_empty() || s.contains([' ', '\t', '\r', '\n']) {
            return false;
        }
        let toks: Vec<&str> = s.split('.').collect();
        toks.iter().all(|t| !t.is_empty()) && !toks[..toks.len() - 1].contains(&">")
    }

    fn naive_matches(pattern: &[u8], subject: &[u8]) -> bool {
        let p: Vec<&[u8]> = pattern.split(|&b| b == b'.').collect();
        let s: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
        if s.iter().any(|t| t.is_empty()) {
            return false;
        }
        fn go(p: &[&[u8]], s: &[&[u8]]) -> bool {
            match (p.first(), s.first()) {
                (None, None) => true,
                (Some(&b">"), Some(_)) => true,
                (Some(&b"*"), Some(_)) => go(&p[1..], &s[1..]),
                (Some(pt), Some(st)) => pt == st && go(&p[1..], &s[1..]),
                _ => false,
            }
        }
        go(&p, &s)
    }

    fn valid_pattern() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "*", "a*", ">b"]), 0..4),
            prop::sample::select(vec!["a", "b", "*", ">"]),
        )
            .prop_map(|(mut toks, last)| {
                toks.push(last);
                toks.join(".").into_bytes()
            })
    }

    fn any_subject() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "*", ">", "", "a*"]),
            0..5,
        )
        .prop_map(|toks| toks.join(".").into_bytes())
    }

    proptest! {
        /// `same` is byte equality, for every length around its word sizes and
        /// for strings differing in one byte anywhere.
        #[test]
        fn same_is_byte_equality(a in proptest::collection::vec(0u8..4, 0..40), flip in any::<usize>(), other in any::<u8>()) {
            prop_assert!(same(&a, &a.clone()));
            let mut b = a.clone();
            if !b.is_empty() {
                let at = flip % b.len();
                b[at] = other;
            }
            prop_assert_eq!(same(&a, &b), a == b);
            prop_assert_eq!(same(&a, &a[..a.len() / 2]), a.is_empty());
        }

        #[test]
        fn empty_tokens_are_found_at_any_offset(
            pieces in prop::collection::vec(prop::sample::select(vec!["", "a", "bb", "ccc.", "/", ".", "-", "\u{ae}"]), 0..24),
        ) {
            let s = pieces.concat().into_bytes();
            prop_assert_eq!(has_no_empty_token(&s), !tokens(&s).any(<[u8]>::is_empty), "{:?}", String::from_utf8_lossy(&s));
        }

        #[test]
        fn matches_agrees_with_naive(p in valid_pattern(), s in any_subject()) {
            prop_assert!(is_valid_subject(&p));
            prop_assert_eq!(subject_matches(&p, &s), naive_matches(&p, &s));
        }

        #[test]
        fn validity_agrees_with_naive(
            s in prop::collection::vec(prop::sample::select(vec![b'a', b'.', b'*', b'>', b' ']), 0..9)
        ) {
            prop_assert_eq!(is_valid_subject(&s), naive_valid(&s));
            let literal = naive_valid(&s)
                && !s.split(|&b| b == b'.').any(|t| t == b"*" || t == b">");
            prop_assert_eq!(is_valid_literal_subject(&s), literal);
        }

        #[test]
        fn arbitrary_bytes_do_not_panic(p in any::<Vec<u8>>(), s in any::<Vec<u8>>()) {
            let _ = subject_matches(&p, &s);
            let _ = is_valid_subject(&p);
            let _ = is_valid_literal_subject(&s);
        }
    }
}
