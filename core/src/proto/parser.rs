//! An incremental, allocation-free parser for the client side of the NATS protocol.
//!
//! Ops borrow from the caller's read buffer. Only an op that straddles two reads is
//! copied, into one carry-over buffer that is reused for the connection's lifetime.
//! Errors and their classification (which `-ERR`, or a silent close) follow
//! nats-server 2.9.10, checked byte for byte by the differential tests.

use memchr::memchr;

use crate::errors::ClientError;

/// One client operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `CONNECT <json>`: the JSON text, unparsed.
    Connect(&'a [u8]),
    /// `INFO <json>` sent by a client: the JSON text (checked, then ignored).
    Info(&'a [u8]),
    /// `PUB` or `HPUB` with its payload.
    Pub(Publish<'a>),
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        /// Subject, not yet validated.
        subject: &'a [u8],
        /// Queue group name.
        queue: Option<&'a [u8]>,
        /// Client-chosen subscription id.
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max]`.
    Unsub {
        /// Subscription id.
        sid: &'a [u8],
        /// Auto-unsubscribe after this many messages. A non-numeric max is `None`,
        /// which unsubscribes at once, as nats-server 2.9.10 does.
        max: Option<u64>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK` (ignored by the server).
    Ok,
    /// `-ERR ...` sent by a client (the server closes the connection).
    Err(&'a [u8]),
}

/// A `PUB` or `HPUB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Subject, not yet validated.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// For `HPUB`: the header size token as the client wrote it; `None` for `PUB`.
    pub header_size_token: Option<&'a [u8]>,
    /// The (total) size token as the client wrote it; forwarded verbatim.
    pub size_token: &'a [u8],
    /// Header length in bytes (0 for `PUB`).
    pub header_len: usize,
    /// Headers followed by the payload.
    pub payload: &'a [u8],
}

/// What went wrong; the connection is closed in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Send this `-ERR`, then close.
    Err(ClientError),
    /// Close without a word (nats-server's "Protocol Violation" for malformed arguments).
    Silent,
}

/// Longest size token accepted (nats-server rejects 10+ digits).
const MAX_SIZE_DIGITS: usize = 9;

/// Op keywords and whether the keyword must be followed by a space or tab.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Connect,
    Info,
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Ok,
    Err,
}

const CONNECT: (&[u8], Keyword) = (b"CONNECT", Keyword::Connect);
const INFO: (&[u8], Keyword) = (b"INFO", Keyword::Info);
const PUB: (&[u8], Keyword) = (b"PUB", Keyword::Pub);
const HPUB: (&[u8], Keyword) = (b"HPUB", Keyword::Hpub);
const SUB: (&[u8], Keyword) = (b"SUB", Keyword::Sub);
const UNSUB: (&[u8], Keyword) = (b"UNSUB", Keyword::Unsub);
const PING: (&[u8], Keyword) = (b"PING", Keyword::Ping);
const PONG: (&[u8], Keyword) = (b"PONG", Keyword::Pong);
const OK: (&[u8], Keyword) = (b"+OK", Keyword::Ok);
const ERR: (&[u8], Keyword) = (b"-ERR", Keyword::Err);

/// The keywords a line starting with `first` can be (one table lookup per line
/// instead of comparing against every keyword).
fn candidates(first: u8) -> &'static [(&'static [u8], Keyword)] {
    match first.to_ascii_uppercase() {
        b'P' => &[PUB, PING, PONG],
        b'S' => &[SUB],
        b'H' => &[HPUB],
        b'U' => &[UNSUB],
        b'C' => &[CONNECT],
        b'I' => &[INFO],
        b'+' => &[OK],
        b'-' => &[ERR],
        _ => &[],
    }
}

impl Keyword {
    /// PUB, HPUB, SUB and UNSUB need whitespace after the keyword; the others take
    /// anything (nats-server ignores what follows PING/PONG/+OK up to the newline).
    fn needs_separator(self) -> bool {
        matches!(
            self,
            Keyword::Pub | Keyword::Hpub | Keyword::Sub | Keyword::Unsub | Keyword::Err
        )
    }

    /// Length of the keyword's text.
    fn word_len(self) -> usize {
        match self {
            Keyword::Connect => CONNECT.0.len(),
            Keyword::Info => INFO.0.len(),
            Keyword::Pub => PUB.0.len(),
            Keyword::Hpub => HPUB.0.len(),
            Keyword::Sub => SUB.0.len(),
            Keyword::Unsub => UNSUB.0.len(),
            Keyword::Ping => PING.0.len(),
            Keyword::Pong => PONG.0.len(),
            Keyword::Ok => OK.0.len(),
            Keyword::Err => ERR.0.len(),
        }
    }

    /// Whether the text after the keyword is an argument (and so counts against
    /// `max_control_line`).
    fn has_args(self) -> bool {
        !matches!(self, Keyword::Ping | Keyword::Pong | Keyword::Ok)
    }
}

/// How a (possibly partial) line starts.
enum LineStart {
    /// Too short to tell; could still become a valid op.
    Undecided,
    /// A known op; its arguments start at this offset.
    Op(Keyword, usize),
    /// Cannot become a valid op.
    Invalid,
}

fn classify(line: &[u8]) -> LineStart {
    let Some(&first) = line.first() else {
        return LineStart::Undecided;
    };
    let mut undecided = false;
    for &(word, kw) in candidates(first) {
        let n = word.len().min(line.len());
        if !line[..n].eq_ignore_ascii_case(&word[..n]) {
            continue;
        }
        if line.len() <= word.len() {
            undecided = true;
            continue;
        }
        let next = line[word.len()];
        if kw.needs_separator() && !is_space(next) {
            return LineStart::Invalid;
        }
        let args = word.len()
            + line[word.len()..]
                .iter()
                .take_while(|&&b| is_space(b))
                .count();
        return LineStart::Op(kw, args);
    }
    if undecided {
        LineStart::Undecided
    } else {
        LineStart::Invalid
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits arguments on spaces, tabs, and stray CRs or LFs (as nats-server
/// does: `SUB foo 1\r\r\n` has the sid `1`) into `out`; returns how many
/// there were (which may exceed `out.len()`: extra ones are counted, not
/// stored).
fn split_args<'a>(args: &'a [u8], out: &mut [&'a [u8]; 4]) -> usize {
    let mut n = 0;
    let separator = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    for arg in args.split(separator).filter(|a| !a.is_empty()) {
        if n < out.len() {
            out[n] = arg;
        }
        n += 1;
    }
    n
}

/// Parses a size token: 1 to 9 ASCII digits.
fn parse_size(token: &[u8]) -> Option<usize> {
    if token.is_empty() || token.len() > MAX_SIZE_DIGITS {
        return None;
    }
    token.iter().try_fold(0usize, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + usize::from(b - b'0'))
    })
}

/// A PUB/HPUB control line, parsed, waiting for its payload.
struct PubLine<'a> {
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    header_size_token: Option<&'a [u8]>,
    size_token: &'a [u8],
    header_len: usize,
    size: usize,
}

impl<'a> PubLine<'a> {
    fn parse(kw: Keyword, args: &'a [u8], limits: &Parser) -> Result<Self, ParseError> {
        if kw == Keyword::Hpub && !limits.headers {
            // nats-server closes at the control line, before any payload.
            return Err(ParseError::Silent);
        }
        let mut a: [&[u8]; 4] = [&[]; 4];
        let n = split_args(args, &mut a);
        let (subject, reply, hdr, total) = match (kw, n) {
            (Keyword::Pub, 2) => (a[0], None, None, a[1]),
            (Keyword::Pub, 3) => (a[0], Some(a[1]), None, a[2]),
            (Keyword::Hpub, 3) => (a[0], None, Some(a[1]), a[2]),
            (Keyword::Hpub, 4) => (a[0], Some(a[1]), Some(a[2]), a[3]),
            _ => return Err(ParseError::Silent),
        };
        let size = parse_size(total).ok_or(ParseError::Silent)?;
        let header_len = match hdr {
            Some(h) => parse_size(h)
                .filter(|&h| h <= size)
                .ok_or(ParseError::Silent)?,
            None => 0,
        };
        // An empty header block is no headers at all: delivered as a plain MSG.
        let hdr = hdr.filter(|_| header_len > 0);
        if size > limits.max_payload {
            return Err(ParseError::Err(ClientError::MaxPayloadViolation));
        }
        Ok(PubLine {
            subject,
            reply,
            header_size_token: hdr,
            size_token: total,
            header_len,
            size,
        })
    }

    fn with_payload(self, payload: &'a [u8]) -> Publish<'a> {
        Publish {
            subject: self.subject,
            reply: self.reply,
            header_size_token: self.header_size_token,
            size_token: self.size_token,
            header_len: self.header_len,
            payload,
        }
    }
}

/// Where the parser is between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a control line, or inside one held in `carry`.
    Line,
    /// `carry[..line_len]` is a complete PUB/HPUB control line; its payload and the
    /// CRLF after it (`payload_len + 2` bytes) are being gathered after it.
    Payload { line_len: usize, payload_len: usize },
    /// `carry` holds a complete op that was returned last time; clear it first.
    Consumed,
}

/// The per-connection parser state.
#[derive(Debug)]
pub struct Parser {
    carry: Vec<u8>,
    state: State,
    max_control_line: usize,
    max_payload: usize,
    /// HPUB is allowed (the client's CONNECT enabled headers).
    headers: bool,
}

impl Parser {
    /// A parser enforcing these limits.
    pub fn new(max_control_line: u32, max_payload: u32) -> Parser {
        Parser {
            carry: Vec::new(),
            state: State::Line,
            max_control_line: max_control_line as usize,
            max_payload: max_payload as usize,
            headers: false,
        }
    }

    /// Allows HPUB (after a CONNECT with `"headers":true`); otherwise an HPUB
    /// closes the connection silently, as in nats-server.
    pub fn set_headers(&mut self, headers: bool) {
        self.headers = headers;
    }

    /// Lowers (or raises) the payload limit, e.g. to the client's account limit.
    pub fn set_max_payload(&mut self, max_payload: u32) {
        self.max_payload = max_payload as usize;
    }

    /// Bytes held over from earlier reads (an op split across reads).
    pub fn buffered(&self) -> usize {
        self.carry.len()
    }

    /// The next complete op in `data[*pos..]`, advancing `*pos` past it.
    ///
    /// `Ok(None)` means `data` is used up: any incomplete op at its end was copied
    /// into the parser and continues with the next call. After an `Err` the
    /// connection must be closed; the parser is not usable any more.
    pub fn next<'a>(
        &'a mut self,
        data: &'a [u8],
        pos: &mut usize,
    ) -> Result<Option<Op<'a>>, ParseError> {
        if self.state == State::Consumed {
            self.carry.clear();
            self.state = State::Line;
        }
        if let State::Payload {
            line_len,
            payload_len,
        } = self.state
        {
            let want = line_len + payload_len + 2;
            let take = (want - self.carry.len()).min(data.len() - *pos);
            self.carry.extend_from_slice(&data[*pos..*pos + take]);
            *pos += take;
            let payload_end = line_len + payload_len;
            if self.carry.len() > payload_end {
                check_payload_end(&self.carry[payload_end..])?;
            }
            if self.carry.len() < want {
                return Ok(None);
            }
            self.state = State::Consumed;
            return self.finish_carried_pub(line_len, payload_len).map(Some);
        }

        let rest = &data[*pos..];
        if self.carry.is_empty() {
            if let Some((publish, len)) = self.quick_pub(rest) {
                *pos += len;
                return Ok(Some(Op::Pub(publish)));
            }
        }
        let newline = memchr(b'\n', rest);
        if !self.carry.is_empty() || newline.is_none() {
            // The line straddles reads: gather it in `carry`.
            let Some(i) = newline else {
                self.carry.extend_from_slice(rest);
                *pos = data.len();
                self.check_partial_line()?;
                return Ok(None);
            };
            // Checked (and compacted) before the newline goes in, as a partial
            // line would be, so the carry stays within the limits.
            self.carry.extend_from_slice(&rest[..i]);
            *pos += i + 1;
            self.check_partial_line()?;
            self.carry.push(b'\n');
            let line_len = self.carry.len();
            let (line, _) = split_line(&self.carry);
            let (kw, args) = self.op_line(line)?;
            if matches!(kw, Keyword::Pub | Keyword::Hpub) {
                let payload_len = PubLine::parse(kw, args, self)?.size;
                self.state = State::Payload {
                    line_len,
                    payload_len,
                };
                return self.next(data, pos);
            }
            self.state = State::Consumed;
            let (line, _) = split_line(&self.carry);
            let (kw, args) = self.op_line(line)?;
            return Ok(Some(simple_op(kw, args)?));
        }

        // The whole control line is in `data`: borrow it.
        let i = newline.unwrap_or_default();
        let (line, _) = split_line(&rest[..=i]);
        let (kw, args) = self.op_line(line)?;
        let after = *pos + i + 1;
        if !matches!(kw, Keyword::Pub | Keyword::Hpub) {
            *pos = after;
            return Ok(Some(simple_op(kw, args)?));
        }
        let publish = PubLine::parse(kw, args, self)?;
        let end = after + publish.size;
        if data.len() >= end + 2 {
            check_payload_end(&data[end..end + 2])?;
            *pos = end + 2;
            return Ok(Some(Op::Pub(publish.with_payload(&data[after..end]))));
        }
        // The payload continues in a later read: carry the line and what we have.
        let payload_len = publish.size;
        self.carry.extend_from_slice(&rest[..=i]);
        let line_len = self.carry.len();
        self.carry.extend_from_slice(&data[after..]);
        *pos = data.len();
        self.state = State::Payload {
            line_len,
            payload_len,
        };
        if self.carry.len() > line_len + payload_len {
            // The byte after the payload is already here and can be checked early.
            check_payload_end(&self.carry[line_len + payload_len..])?;
        }
        Ok(None)
    }

    /// The common publish in one pass: `PUB <subject> [reply] <size>\r\n`, upper
    /// case, single spaces, with its payload complete in `rest`. Returns the op
    /// and the bytes it spans; anything else, valid or not, returns `None` and
    /// takes the general path, which decides it exactly as before.
    fn quick_pub<'a>(&self, rest: &'a [u8]) -> Option<(Publish<'a>, usize)> {
        const KEYWORD: usize = PUB.0.len() + 1;
        let args = rest.strip_prefix(b"PUB ")?;
        // Offsets of the (at most two) single spaces between the arguments.
        let mut spaces = [0usize; 2];
        let mut n = 0;
        let mut at = 0;
        let cr = loop {
            let i = find_control_or_space(args, at)?;
            match args[i] {
                b' ' => {
                    let after_space = n > 0 && spaces[n - 1] + 1 == i;
                    if n == 2 || i == 0 || after_space {
                        return None;
                    }
                    spaces[n] = i;
                    n += 1;
                }
                b'\r' => break i,
                b'\t' | b'\n' => return None,
                _ => {}
            }
            at = i + 1;
        };
        if n == 0 || cr > self.max_control_line {
            return None;
        }
        if *args.get(cr + 1)? != b'\n' {
            return None;
        }
        let subject = &args[..spaces[0]];
        let reply = (n == 2).then(|| &args[spaces[0] + 1..spaces[1]]);
        let size_token = &args[spaces[n - 1] + 1..cr];
        let size = parse_size(size_token).filter(|&s| s <= self.max_payload)?;
        let start = KEYWORD + cr + 2;
        let end = start + size;
        if rest.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        let publish = Publish {
            subject,
            reply,
            header_size_token: None,
            size_token,
            header_len: 0,
            payload: &rest[start..end],
        };
        Some((publish, end + 2))
    }

    fn finish_carried_pub(
        &self,
        line_len: usize,
        payload_len: usize,
    ) -> Result<Op<'_>, ParseError> {
        let (line, _) = split_line(&self.carry[..line_len]);
        let (kw, args) = self.op_line(line)?;
        let publish = PubLine::parse(kw, args, self)?;
        let payload_end = line_len + payload_len;
        check_payload_end(&self.carry[payload_end..payload_end + 2])?;
        Ok(Op::Pub(
            publish.with_payload(&self.carry[line_len..payload_end]),
        ))
    }

    /// Classifies a complete control line (without its line ending).
    fn op_line<'l>(&self, line: &'l [u8]) -> Result<(Keyword, &'l [u8]), ParseError> {
        match classify(line) {
            LineStart::Op(kw, start) => {
                let args = &line[start..];
                if kw.has_args() && args.len() > self.max_control_line {
                    return Err(ParseError::Err(ClientError::MaxControlLineExceeded));
                }
                Ok((kw, args))
            }
            // A complete line that is a bare keyword: only the no-argument ops allow it.
            LineStart::Undecided => candidates(line.first().copied().unwrap_or_default())
                .iter()
                .find(|(w, kw)| w.eq_ignore_ascii_case(line) && !kw.needs_separator())
                .map(|&(_, kw)| (kw, &line[line.len()..]))
                .ok_or(ParseError::Err(ClientError::UnknownProtocolOperation)),
            LineStart::Invalid => Err(ParseError::Err(ClientError::UnknownProtocolOperation)),
        }
    }

    /// Rejects a line still missing its newline as early as nats-server would: a
    /// bad op name, or arguments already longer than `max_control_line`.
    ///
    /// Also keeps the partial line from growing without bound while it waits for
    /// its newline: what follows PING/PONG/+OK is dropped (it is ignored anyway),
    /// and whitespace after the keyword is cut to one separator.
    fn check_partial_line(&mut self) -> Result<(), ParseError> {
        // A trailing `\r` belongs to the line ending, not to the arguments.
        let line = self.carry.strip_suffix(b"\r").unwrap_or(&self.carry);
        match classify(line) {
            LineStart::Invalid => Err(ParseError::Err(ClientError::UnknownProtocolOperation)),
            LineStart::Op(kw, start)
                if kw.has_args() && line.len().saturating_sub(start) > self.max_control_line =>
            {
                Err(ParseError::Err(ClientError::MaxControlLineExceeded))
            }
            LineStart::Op(kw, start) => {
                let word = kw.word_len();
                if !kw.has_args() {
                    self.carry.truncate(word);
                } else if start > word + 1 {
                    self.carry.drain(word + 1..start);
                }
                Ok(())
            }
            LineStart::Undecided => Ok(()),
        }
    }
}

/// The index of the first byte at or below `b' '` (space, tab, CR, LF and the
/// other control bytes) in `bytes[from..]`, found eight bytes at a time: a
/// control line's arguments are mostly long runs of subject bytes.
fn find_control_or_space(bytes: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);
    while let Some(word) = bytes.get(from..from + 8) {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        // The high bit of each byte below 0x21 (exact up to the first such
        // byte, which is all that is read).
        let low = word.wrapping_sub(ONES * 0x21) & !word & HIGH_BITS;
        if low != 0 {
            return Some(from + low.trailing_zeros() as usize / 8);
        }
        from += 8;
    }
    let tail = bytes.get(from..)?;
    tail.iter().position(|&b| b <= b' ').map(|i| from + i)
}

/// Splits a line ending in `\n` (or `\r\n`) into its content and its ending.
fn split_line(line: &[u8]) -> (&[u8], &[u8]) {
    let mut end = line.len();
    if end > 0 && line[end - 1] == b'\n' {
        end -= 1;
    }
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    line.split_at(end)
}

/// The two bytes after a payload must be CRLF (the second may not have arrived yet).
fn check_payload_end(end: &[u8]) -> Result<(), ParseError> {
    if b"\r\n".starts_with(end) {
        Ok(())
    } else {
        Err(ParseError::Err(ClientError::UnknownProtocolOperation))
    }
}

fn simple_op(kw: Keyword, args: &[u8]) -> Result<Op<'_>, ParseError> {
    let mut a: [&[u8]; 4] = [&[]; 4];
    Ok(match kw {
        Keyword::Connect => Op::Connect(args),
        Keyword::Info => Op::Info(args),
        Keyword::Ping => Op::Ping,
        Keyword::Pong => Op::Pong,
        Keyword::Ok => Op::Ok,
        Keyword::Err => Op::Err(args),
        Keyword::Sub => match split_args(args, &mut a) {
            2 => Op::Sub {
                subject: a[0],
                queue: None,
                sid: a[1],
            },
            3 => Op::Sub {
                subject: a[0],
                queue: Some(a[1]),
                sid: a[2],
            },
            _ => return Err(ParseError::Silent),
        },
        Keyword::Unsub => match split_args(args, &mut a) {
            1 => Op::Unsub {
                sid: a[0],
                max: None,
            },
            2 => Op::Unsub {
                sid: a[0],
                max: parse_max(a[1]),
            },
            _ => return Err(ParseError::Silent),
        },
        Keyword::Pub | Keyword::Hpub => unreachable!("publishes are parsed with their payload"),
    })
}

fn parse_max(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 19 {
        return None;
    }
    token.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned copy of an op, for comparing parses of differently split input.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Owned {
        Op(String),
        Error(ParseError),
    }

    /// Found by the `parser` fuzz target: a PING followed by bytes without a
    /// newline, or a keyword followed by endless whitespace, was buffered
    /// without limit across reads.
    #[test]
    fn partial_line_carry_is_bounded() {
        for (start, filler, end, op) in [
            (&b"PING"[..], &b"x"[..], &b"\r\n"[..], "Ping"),
            (b"+OK", b"\xec?", b"\n", "Ok"),
            (b"SUB", b" \t", b"foo 1\r\n", "Sub"),
        ] {
            // The rest of the line arriving in the read that ends it.
            let mut p = Parser::new(16, 16);
            let mut pos = 0;
            assert_eq!(p.next(start, &mut pos), Ok(None));
            let mut last = filler.repeat(1000);
            last.extend_from_slice(end);
            pos = 0;
            let got = format!("{:?}", p.next(&last, &mut pos));
            let want = format!("Ok(Some({op}");
            assert!(got.starts_with(&want), "{got}");
            assert!(p.buffered() <= 32, "{op}: {} bytes buffered", p.buffered());

            let mut p = Parser::new(16, 16);
            let mut pos = 0;
            assert_eq!(p.next(start, &mut pos), Ok(None));
            for _ in 0..1000 {
                pos = 0;
                assert_eq!(p.next(filler, &mut pos), Ok(None));
                assert!(p.buffered() <= 8, "{op}: {} bytes buffered", p.buffered());
            }
            pos = 0;
            let got = format!("{:?}", p.next(end, &mut pos));
            let want = format!("Ok(Some({op}");
            assert!(got.starts_with(&want), "{got}");
        }
    }

    proptest! {
        /// The word-at-a-time scan finds what a byte-by-byte one does.
        #[test]
        fn control_or_space_scan_matches_a_byte_loop(
            bytes in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'\r'), 0u8..=255, 0x21u8..0x7f], 0..40),
            from in 0usize..45,
        ) {
            let expected = bytes
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, &b)| b <= b' ')
                .map(|(i, _)| i);
            prop_assert_eq!(find_control_or_space(&bytes, from), expected);
        }
    }

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<Owned> {
        parse_chunks_with(Parser::new(4096, 1024 * 1024), chunks)
    }

    fn parse_chunks_with(mut parser: Parser, chunks: &[&[u8]]) -> Vec<Owned> {
        parser.set_headers(true);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut pos = 0;
            loop {
                match parser.next(chunk, &mut pos) {
                    Ok(Some(op)) => out.push(Owned::Op(format!("{:?}", DebugOp(op)))),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Owned::Error(e));
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Formats an op with byte strings shown as text.
    struct DebugOp<'a>(Op<'a>);
    impl std::fmt::Debug for DebugOp<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            match self.0 {
                Op::Pub(p) => write!(
                    f,
                    "PUB {} {:?} {:?} {} {} {}",
                    s(p.subject),
                    p.reply.map(s),
                    p.header_size_token.map(s),
                    s(p.size_token),
                    p.header_len,
                    s(p.payload)
                ),
                Op::Sub {
                    subject,
                    queue,
                    sid,
                } => {
                    write!(f, "SUB {} {:?} {}", s(subject), queue.map(s), s(sid))
                }
                Op::Unsub { sid, max } => write!(f, "UNSUB {} {:?}", s(sid), max),
                Op::Connect(j) => write!(f, "CONNECT {}", s(j)),
                Op::Info(j) => write!(f, "INFO {}", s(j)),
                Op::Err(j) => write!(f, "ERR {}", s(j)),
                other => write!(f, "{other:?}"),
            }
        }
    }

    fn parse(input: &[u8]) -> Vec<Owned> {
        parse_chunks(&[input])
    }

    fn ops(v: &[&str]) -> Vec<Owned> {
        v.iter().map(|s| Owned::Op(s.to_string())).collect()
    }

    const UNKNOWN: Owned = Owned::Error(ParseError::Err(ClientError::UnknownProtocolOperation));

    #[test]
    fn parses_every_op() {
        let input = b"CONNECT {\"verbose\":false}\r\nPUB foo 5\r\nhello\r\nPUB foo bar 0\r\n\r\n\
            HPUB h r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nSUB foo 1\r\nSUB foo q 2\r\nUNSUB 1\r\nUNSUB 2 10\r\n\
            PING\r\nPONG\r\n+OK\r\nINFO {}\r\n-ERR 'x'\r\n";
        assert_eq!(
            parse(input),
            ops(&[
                "CONNECT {\"verbose\":false}",
                "PUB foo None None 5 0 hello",
                "PUB foo Some(\"bar\") None 0 0 ",
                "PUB h Some(\"r\") Some(\"12\") 14 12 NATS/1.0\r\n\r\nhi",
                "SUB foo None 1",
                "SUB foo Some(\"q\") 2",
                "UNSUB 1 None",
                "UNSUB 2 Some(10)",
                "Ping",
                "Pong",
                "Ok",
                "INFO {}",
                "ERR 'x'",
            ])
        );
    }

    #[test]
    fn ops_are_case_insensitive_and_take_tabs_and_bare_newlines() {
        assert_eq!(
            parse(b"ping\npub\tfoo\t\t1\r\nx\r\nSuB  foo   7 \n"),
            ops(&["Ping", "PUB foo None None 1 0 x", "SUB foo None 7"])
        );
    }

    #[test]
    fn junk_after_ping_pong_ok_is_ignored_but_not_after_pub() {
        assert_eq!(
            parse(b"PINGX\r\nPONGx\r\n+OKz\r\n"),
            ops(&["Ping", "Pong", "Ok"])
        );
        assert_eq!(parse(b"PUBX foo 1\r\n"), vec![UNKNOWN]);
        assert_eq!(parse(b"SUBx foo 1\r\n"), vec![UNKNOWN]);
        assert_eq!(parse(b"UNSUB\r\n"), vec![UNKNOWN]);
        assert_eq!(parse(b"CONNECT{}\r\n"), ops(&["CONNECT {}"]));
    }

    #[test]
    fn bad_op_names_fail_at_once_even_without_a_newline() {
        assert_eq!(parse(b"XYZ"), vec![UNKNOWN]);
        assert_eq!(parse(b"PUX"), vec![UNKNOWN]);
        assert_eq!(parse(b"+OX"), vec![UNKNOWN]);
        assert_eq!(parse(b"\r\n"), vec![UNKNOWN]);
        assert_eq!(parse(b"MSG foo 1 1\r\nx\r\n"), vec![UNKNOWN]);
        assert_eq!(parse(b"PU"), vec![]);
    }

    #[test]
    fn malformed_arguments_close_silently() {
        for input in [
            &b"PUB foo\r\n"[..],
            b"PUB foo bar\r\n",
            b"PUB foo -1\r\n",
            b"PUB foo 1234567890\r\n",
            b"SUB foo\r\n",
            b"SUB foo 1 2 3\r\n",
            b"SUB \r\n",
            b"UNSUB \r\n",
            b"UNSUB 1 2 3\r\n",
            b"HPUB foo 5 3\r\n",
            b"HPUB foo 3\r\n",
        ] {
            assert_eq!(
                parse(input),
                vec![Owned::Error(ParseError::Silent)],
                "{input:?}"
            );
        }
    }

    #[test]
    fn hpub_needs_headers_enabled_and_an_empty_header_block_is_a_plain_pub() {
        let mut parser = Parser::new(4096, 1024);
        let mut pos = 0;
        assert_eq!(
            parser.next(b"HPUB foo 12 12\r\n", &mut pos),
            Err(ParseError::Silent)
        );
        assert_eq!(
            parse(b"HPUB a 0 2\r\nhi\r\n"),
            ops(&["PUB a None None 2 0 hi"])
        );
        assert_eq!(parse(b"-ERR\r\n"), vec![UNKNOWN]);
    }

    #[test]
    fn payload_must_end_in_crlf() {
        assert_eq!(parse(b"PUB foo 1\r\nxx\r\n"), vec![UNKNOWN]);
        assert_eq!(parse(b"PUB foo 5\r\nhello\nPING\r\n"), vec![UNKNOWN]);
        assert_eq!(parse(b"PUB foo 3\r\nabc\rPING\r\n"), vec![UNKNOWN]);
        // Detected as soon as the wrong byte arrives, split or not.
        assert_eq!(parse_chunks(&[b"PUB foo 5\r\nhel", b"loX"]), vec![UNKNOWN]);
    }

    #[test]
    fn limits() {
        let long = |n: usize| [b"SUB ".to_vec(), vec![b'a'; n], b" 1\r\n".to_vec()].concat();
        // The limit applies to the arguments, not to the op name or the line ending.
        assert_eq!(parse(&long(4094)).len(), 1);
        assert_eq!(
            parse(&long(4095)),
            vec![Owned::Error(ParseError::Err(
                ClientError::MaxControlLineExceeded
            ))]
        );
        // A line still missing its newline is checked too.
        let partial = [b"PUB ".to_vec(), vec![b'a'; 4100]].concat();
        assert_eq!(
            parse(&partial),
            vec![Owned::Error(ParseError::Err(
                ClientError::MaxControlLineExceeded
            ))]
        );
        assert_eq!(
            parse(b"PUB foo 1048577\r\n"),
            vec![Owned::Error(ParseError::Err(
                ClientError::MaxPayloadViolation
            ))]
        );
        assert_eq!(parse(b"PUB foo 1048576\r\n"), vec![]);
    }

    #[test]
    fn size_tokens_are_kept_as_written() {
        assert_eq!(
            parse(b"PUB foo 005\r\nhello\r\n"),
            ops(&["PUB foo None None 005 0 hello"])
        );
    }

    #[test]
    fn unsub_with_a_non_numeric_max_unsubscribes_at_once() {
        assert_eq!(parse(b"UNSUB 1 abc\r\n"), ops(&["UNSUB 1 None"]));
    }

    #[test]
    fn one_byte_at_a_time() {
        let input: &[u8] =
            b"SUB foo 1\r\nPUB foo r 5\r\nhello\r\nPING\r\nHPUB a 12 13\r\nNATS/1.0\r\n\r\nx\r\n";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse_chunks(&chunks), parse(input));
        assert_eq!(parse(input).len(), 4);
    }

    #[test]
    fn carried_bytes_are_released_after_the_op() {
        let mut parser = Parser::new(4096, 1024);
        let mut pos = 0;
        assert_eq!(parser.next(b"PUB foo 5\r\nhe", &mut pos), Ok(None));
        assert!(parser.buffered() > 0);
        pos = 0;
        assert!(matches!(
            parser.next(b"llo\r\nPING\r\n", &mut pos),
            Ok(Some(Op::Pub(_)))
        ));
        assert!(matches!(
            parser.next(b"llo\r\nPING\r\n", &mut pos),
            Ok(Some(Op::Ping))
        ));
        assert_eq!(parser.buffered(), 0);
    }

    fn protocol_stream() -> impl Strategy<Value = Vec<u8>> {
        let op = prop_oneof![
            Just(b"PING\r\n".to_vec()),
            Just(b"pong\n".to_vec()),
            Just(b"SUB foo.* q 12\r\n".to_vec()),
            Just(b"UNSUB 12 3\r\n".to_vec()),
            Just(b"CONNECT {\"verbose\":false}\r\n".to_vec()),
            "[a-z.]{1,12}".prop_map(|s| format!("PUB {s} 3\r\nabc\r\n").into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|p| {
                let mut v = format!("PUB s r {}\r\n", p.len()).into_bytes();
                v.extend(p);
                v.extend(b"\r\n");
                v
            }),
            proptest::collection::vec(any::<u8>(), 0..20),
        ];
        proptest::collection::vec(op, 0..12).prop_map(|v| v.concat())
    }

    /// Publishes near the canonical `PUB subject [reply] size` form: the
    /// variations the one-pass path must hand over to the general one.
    fn near_canonical_pubs() -> impl Strategy<Value = Vec<u8>> {
        fn one_of(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
            proptest::sample::select(options)
        }
        let separator = || one_of(&[" ", " ", " ", "  ", "\t", " \t"]);
        let publish = (
            one_of(&["PUB ", "PUB ", "PUB ", "pub ", "PUB\t", "PUB  "]),
            one_of(&["a.b", "a.b", "_INBOX.x", ""]),
            separator(),
            one_of(&["", "", "r ", "r  ", "r\t"]),
            (0usize..14, one_of(&["", "", "", "", "", "1234567890", "x"])),
            one_of(&[
                "\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n", " \r\n", "\rx\r\n",
            ]),
            (any::<bool>(), any::<bool>()),
            one_of(&["\r\n", "\r\n", "\r\n", "\n", "xx", ""]),
        )
            .prop_map(
                |(kw, subject, sep, reply, (size, bad_size), end, (fit, _), trailer)| {
                    let size_token = if bad_size.is_empty() {
                        size.to_string()
                    } else {
                        bad_size.to_string()
                    };
                    let payload = "p".repeat(if fit { size } else { size / 2 });
                    [kw, subject, sep, reply, &size_token, end, &payload, trailer]
                        .concat()
                        .into_bytes()
                },
            );
        proptest::collection::vec(publish, 1..4).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The one-pass publish path agrees with the general parser (which a
        /// byte-by-byte feed always takes), under tight limits too.
        #[test]
        fn quick_publish_path_agrees_with_the_general_one(
            input in near_canonical_pubs(),
            max_control_line in 1u32..16,
            max_payload in 0u32..16,
        ) {
            let limits = || Parser::new(max_control_line, max_payload);
            let whole = parse_chunks_with(limits(), &[&input]);
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            prop_assert_eq!(parse_chunks_with(limits(), &bytes), whole);
        }
    }

    proptest! {
        /// However the bytes are split across reads, the parser sees the same ops.
        #[test]
        fn split_invariance(input in protocol_stream(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let whole = parse(&input);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&input[last..p]);
                last = p;
            }
            chunks.push(&input[last..]);
            prop_assert_eq!(parse_chunks(&chunks), whole);
        }
    }
}
