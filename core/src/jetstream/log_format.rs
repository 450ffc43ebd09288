//! The on-disk form of a file stream: blocks of checksummed records (a
//! message stored, a message removed, the sequence moved on), and reading
//! them back, stopping at the first torn or corrupt record. Plain code over
//! bytes: the host does the file I/O, tests drive it with any bytes.
//!
//! Record: `u32 length` (of everything after it) · `u32 crc32` (of
//! everything after it) · `u8 kind` · body. All integers little-endian.
//! - kind 4, a message: `u64 seq · u64 time · varint subject length ·
//!   varint header length · subject · header · payload` (varints: seven
//!   bits a byte, low first, the high bit set on all but the last);
//! - kind 1, a message as tenet wrote it before: `u64 seq · u64 time · u16
//!   subject length · u32 header length · subject · header · payload`
//!   (read, not written);
//! - kind 2, a removal: `u64 seq` (of a message of the same block);
//! - kind 5, a durable consumer's state (in its own file, not a block):
//!   the JSON of its snapshot;
//! - kind 6, a block's summary (in the stream's summaries file): `u64
//!   block · the summary` ([`super::block`]);
//! - kind 3, the last sequence moved on with nothing stored (a compaction
//!   past the end, a message an interest stream keeps for nobody, and the
//!   first record of every block after the first): `u64 last · u64 time`.

const KIND_MSG_V1: u8 = 1;
const KIND_MSG: u8 = 4;
const KIND_REMOVED: u8 = 2;
const KIND_SKIPPED: u8 = 3;
const KIND_STATE: u8 = 5;
const KIND_SUMMARY: u8 = 6;

/// The longest record accepted back: a larger length is corruption.
const MAX_RECORD: usize = 64 * 1024 * 1024 + 70_000;

/// A stored message, borrowed from the bytes of its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgRef<'a> {
    pub subject: &'a [u8],
    pub seq: u64,
    /// Wall-clock time of storing, in nanoseconds since the Unix epoch.
    pub time: u64,
    /// The raw header block (`NATS/1.0\r\n...\r\n\r\n`), empty when none.
    pub hdr: &'a [u8],
    pub data: &'a [u8],
}

/// One record of a block, borrowed from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordRef<'a> {
    Msg(MsgRef<'a>),
    Removed(u64),
    /// The stream's last sequence is now this, at this time (nothing
    /// stored up to it).
    Skipped(u64, u64),
    /// A consumer's state.
    State(&'a [u8]),
    /// A block's summary: the block, the summary.
    Summary(u64, &'a [u8]),
}

/// What is at an offset of a block's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// An intact record and its length in bytes.
    Record(RecordRef<'a>, usize),
    /// Nothing: the bytes end here.
    End,
    /// Not an intact record: why.
    Bad(&'static str),
}

/// CRC-32 (IEEE), eight bytes at a time (slicing-by-8).
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLES: [[u32; 256]; 8] = {
        let mut t = [[0u32; 256]; 8];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[0][i] = c;
            i += 1;
        }
        let mut i = 0;
        while i < 256 {
            let mut k = 1;
            while k < 8 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
                k += 1;
            }
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let lo = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) ^ crc;
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = TABLES[7][(lo & 0xFF) as usize]
            ^ TABLES[6][((lo >> 8) & 0xFF) as usize]
            ^ TABLES[5][((lo >> 16) & 0xFF) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xFF) as usize]
            ^ TABLES[2][((hi >> 8) & 0xFF) as usize]
            ^ TABLES[1][((hi >> 16) & 0xFF) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Appends a record whose body `fill` writes after the kind byte.
fn encode_with(out: &mut Vec<u8>, kind: u8, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(kind);
    fill(out);
    let body_len = (out.len() - start - 8) as u32;
    let crc = crc32(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(body_len + 4).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a message record.
pub fn encode_msg(out: &mut Vec<u8>, msg: &MsgRef<'_>) {
    encode_with(out, KIND_MSG, |out| {
        out.extend_from_slice(&msg.seq.to_le_bytes());
        out.extend_from_slice(&msg.time.to_le_bytes());
        put_varint(out, msg.subject.len() as u32);
        put_varint(out, msg.hdr.len() as u32);
        out.extend_from_slice(msg.subject);
        out.extend_from_slice(msg.hdr);
        out.extend_from_slice(msg.data);
    });
}

/// Appends a removal record.
pub fn encode_removed(out: &mut Vec<u8>, seq: u64) {
    encode_with(out, KIND_REMOVED, |out| {
        out.extend_from_slice(&seq.to_le_bytes())
    });
}

/// Appends a record that moves the last sequence on.
pub fn encode_skipped(out: &mut Vec<u8>, last: u64, time: u64) {
    encode_with(out, KIND_SKIPPED, |out| {
        out.extend_from_slice(&last.to_le_bytes());
        out.extend_from_slice(&time.to_le_bytes());
    });
}

/// Appends a consumer's state record.
pub fn encode_state(out: &mut Vec<u8>, state: &[u8]) {
    encode_with(out, KIND_STATE, |out| out.extend_from_slice(state));
}

/// Appends a block's summary record.
pub fn encode_summary(out: &mut Vec<u8>, block: u64, summary: &[u8]) {
    encode_with(out, KIND_SUMMARY, |out| {
        out.extend_from_slice(&block.to_le_bytes());
        out.extend_from_slice(summary);
    });
}

/// The last intact state record of a consumer's state file (a torn or
/// corrupt end is left out), if any.
pub fn last_state(bytes: &[u8]) -> Option<&[u8]> {
    let mut last = None;
    scan(bytes, |record, _| {
        if let RecordRef::State(state) = record {
            last = Some(state);
        }
    });
    last
}

/// Appends `record`.
pub fn encode(record: &RecordRef<'_>, out: &mut Vec<u8>) {
    match record {
        RecordRef::Msg(m) => encode_msg(out, m),
        RecordRef::Removed(seq) => encode_removed(out, *seq),
        RecordRef::Skipped(last, time) => encode_skipped(out, *last, *time),
        RecordRef::State(state) => encode_state(out, state),
        RecordRef::Summary(block, summary) => encode_summary(out, *block, summary),
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The varint at `*at` (moved past it); None if it runs off the end or
/// is longer than a u32's.
fn varint_at(b: &[u8], at: &mut usize) -> Option<usize> {
    let mut n: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        n |= u32::from(byte & 0x7F).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(n as usize);
        }
    }
    None
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the record at byte `at`, checking its checksum and shape.
pub fn read(bytes: &[u8], at: usize) -> Read<'_> {
    let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) else {
        return Read::End;
    };
    if rest.len() < 8 {
        return Read::Bad("a torn record");
    }
    let len = u32_at(rest, 0) as usize;
    if !(5..=MAX_RECORD).contains(&len) {
        return Read::Bad("a corrupt record length");
    }
    if rest.len() - 4 < len {
        return Read::Bad("a torn record");
    }
    let body = &rest[8..4 + len];
    if crc32(body) != u32_at(rest, 4) {
        return Read::Bad("a checksum mismatch");
    }
    match parse_body(body) {
        Some(record) => Read::Record(record, 4 + len),
        None => Read::Bad("a malformed record"),
    }
}

/// The record at byte `at`, if an intact one is there, and its length.
pub fn record_at(bytes: &[u8], at: usize) -> Option<(RecordRef<'_>, usize)> {
    match read(bytes, at) {
        Read::Record(record, len) => Some((record, len)),
        _ => None,
    }
}

/// The record at byte `at` of bytes whose checksums were already checked
/// (a block read back, or written here): only its shape is looked at.
pub fn checked_record_at(bytes: &[u8], at: usize) -> Option<RecordRef<'_>> {
    let rest = bytes.get(at..)?;
    let len = u32_at(rest.get(..4)?, 0) as usize;
    let body = rest.get(8..4usize.checked_add(len)?)?;
    if body.is_empty() {
        return None;
    }
    parse_body(body)
}

fn parse_body(body: &[u8]) -> Option<RecordRef<'_>> {
    match (body[0], body.len()) {
        (KIND_MSG, n) if n >= 19 => {
            let mut at = 17;
            let subject_len = varint_at(body, &mut at)?;
            let hdr_len = varint_at(body, &mut at)?;
            let data_at = at.checked_add(subject_len)?.checked_add(hdr_len)?;
            if data_at > n {
                return None;
            }
            Some(RecordRef::Msg(MsgRef {
                subject: &body[at..at + subject_len],
                seq: u64_at(body, 1),
                time: u64_at(body, 9),
                hdr: &body[at + subject_len..data_at],
                data: &body[data_at..],
            }))
        }
        (KIND_MSG_V1, n) if n >= 23 => {
            let subject_len = usize::from(u16_at(body, 17));
            let hdr_len = u32_at(body, 19) as usize;
            if 23 + subject_len + hdr_len > n {
                return None;
            }
            let subject = &body[23..23 + subject_len];
            let hdr = &body[23 + subject_len..23 + subject_len + hdr_len];
            Some(RecordRef::Msg(MsgRef {
                subject,
                seq: u64_at(body, 1),
                time: u64_at(body, 9),
                hdr,
                data: &body[23 + subject_len + hdr_len..],
            }))
        }
        (KIND_REMOVED, 9) => Some(RecordRef::Removed(u64_at(body, 1))),
        (KIND_SKIPPED, 17) => Some(RecordRef::Skipped(u64_at(body, 1), u64_at(body, 9))),
        (KIND_STATE, _) => Some(RecordRef::State(&body[1..])),
        (KIND_SUMMARY, n) if n >= 9 => Some(RecordRef::Summary(u64_at(body, 1), &body[9..])),
        _ => None,
    }
}

/// How far a block's bytes read: the length of its intact records from
/// the start, and why reading stopped before the end, if it did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub valid_len: usize,
    pub problem: Option<String>,
}

/// Reads a block's records in order, handing each to `each`, up to the
/// first torn or corrupt one.
pub fn scan<'a>(bytes: &'a [u8], mut each: impl FnMut(RecordRef<'a>, usize)) -> Scan {
    let mut at = 0;
    loop {
        match read(bytes, at) {
            Read::Record(record, len) => {
                each(record, at);
                at += len;
            }
            Read::End => {
                return Scan {
                    valid_len: at,
                    problem: None,
                }
            }
            Read::Bad(why) => {
                return Scan {
                    valid_len: at,
                    problem: Some(format!("{why} at byte {at}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TIME: u64 = 1_700_000_000_000_000_000;

    fn msg<'a>(seq: u64, subject: &'a str, hdr: &'a [u8], data: &'a [u8]) -> RecordRef<'a> {
        RecordRef::Msg(MsgRef {
            subject: subject.as_bytes(),
            seq,
            time: TIME + seq,
            hdr,
            data,
        })
    }

    fn encoded(records: &[RecordRef<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    fn decoded(bytes: &[u8]) -> (Vec<RecordRef<'_>>, Scan) {
        let mut records = Vec::new();
        let scan = scan(bytes, |r, _| records.push(r));
        (records, scan)
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Past the eight-byte stride, against the bitwise definition.
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut crc = !0u32;
        for &b in &bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    0xEDB8_8320 ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        for len in [0, 1, 7, 8, 9, 63, 1000] {
            let mut want = !0u32;
            for &b in &bytes[..len] {
                want ^= u32::from(b);
                for _ in 0..8 {
                    want = if want & 1 != 0 {
                        0xEDB8_8320 ^ (want >> 1)
                    } else {
                        want >> 1
                    };
                }
            }
            assert_eq!(crc32(&bytes[..len]), !want, "length {len}");
        }
        assert_eq!(crc32(&bytes), !crc);
    }

    #[test]
    fn records_read_back() {
        let records = vec![
            msg(1, "a.b", b"", b"hello"),
            msg(2, "a.c", b"NATS/1.0\r\nX: 1\r\n\r\n", b""),
            RecordRef::Removed(1),
            RecordRef::Skipped(10, TIME),
        ];
        let bytes = encoded(&records);
        let (back, scan) = decoded(&bytes);
        assert_eq!(back, records);
        assert_eq!(scan.valid_len, bytes.len());
        assert_eq!(scan.problem, None);
    }

    #[test]
    fn long_subjects_and_headers_and_the_records_of_earlier_tenets_read_back() {
        let subject = "s.".repeat(150);
        let hdr = vec![b'h'; 70_000];
        let records = vec![msg(7, &subject, &hdr, b"x")];
        let bytes = encoded(&records);
        assert_eq!(decoded(&bytes).0, records);
        // Four bytes less than the first format for a short message.
        let short = encoded(&[msg(1, "a.b", b"", b"hello")]);
        assert_eq!(short.len(), 8 + 1 + 16 + 2 + 3 + 5);
        // A message record as tenet wrote it before (kind 1).
        let mut old = Vec::new();
        encode_with(&mut old, KIND_MSG_V1, |out| {
            out.extend_from_slice(&3u64.to_le_bytes());
            out.extend_from_slice(&(TIME + 3).to_le_bytes());
            out.extend_from_slice(&3u16.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(b"a.bhello");
        });
        assert_eq!(decoded(&old).0, [msg(3, "a.b", b"", b"hello")]);
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let records = vec![msg(1, "a", b"", b"one"), msg(2, "a", b"", b"two")];
        let bytes = encoded(&records);
        let first_len = encoded(&records[..1]).len();
        for cut in first_len..bytes.len() {
            let (back, scan) = decoded(&bytes[..cut]);
            assert_eq!(back, records[..1], "cut at {cut}");
            assert_eq!(scan.valid_len, first_len);
            assert_eq!(
                scan.problem.is_some(),
                cut > first_len,
                "cut at {cut}: {:?}",
                scan.problem
            );
        }
    }

    proptest! {
        /// Flipping any bit loses the record it falls in and everything
        /// after it, never anything before, and never reads garbage.
        #[test]
        fn a_flipped_bit_keeps_exactly_the_records_before_it(
            datas in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6),
            bit in any::<prop::sample::Index>(),
        ) {
            let records: Vec<RecordRef<'_>> = datas
                .iter()
                .enumerate()
                .map(|(i, d)| msg(i as u64 + 1, "s.x", b"", d))
                .collect();
            let mut bytes = encoded(&records);
            let ends: Vec<usize> = (1..=records.len()).map(|n| encoded(&records[..n]).len()).collect();
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            let hit = ends.iter().position(|&end| bit / 8 < end).expect("inside");
            let (back, scan) = decoded(&bytes);
            prop_assert_eq!(&back[..], &records[..hit]);
            prop_assert!(scan.problem.is_some());
        }
    }
}
