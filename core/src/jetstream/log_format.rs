//! The on-disk form of a file stream: a log of checksummed records (a
//! message stored, a message removed, the sequence moved on), and reading
//! it back, stopping at the first torn or corrupt record. Plain code over
//! bytes: the host does the file I/O, tests drive it with any bytes.
//!
//! Record: `u32 length` (of everything after it) · `u32 crc32` (of
//! everything after it) · `u8 kind` · body. All integers little-endian.
//! - kind 1, a message: `u64 seq · u64 time · u16 subject length · u32
//!   header length · subject · header · payload`;
//! - kind 2, a removal: `u64 seq`;
//! - kind 3, the last sequence moved on with nothing stored (a compaction
//!   past the end, a message an interest stream keeps for nobody): `u64
//!   last · u64 time`.

use super::store::StoredMsg;

const KIND_MSG: u8 = 1;
const KIND_REMOVED: u8 = 2;
const KIND_SKIPPED: u8 = 3;

/// The longest record accepted back: a larger length is corruption.
const MAX_RECORD: usize = 64 * 1024 * 1024 + 70_000;

/// One record of a stream's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Msg(StoredMsg),
    Removed(u64),
    /// The stream's last sequence is now this, at this time (nothing
    /// stored up to it).
    Skipped(u64, u64),
}

/// CRC-32 (IEEE), table-driven.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
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
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Appends `record`'s bytes to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    match record {
        Record::Msg(m) => {
            out.push(KIND_MSG);
            out.extend_from_slice(&m.seq.to_le_bytes());
            out.extend_from_slice(&m.time.to_le_bytes());
            out.extend_from_slice(&(m.subject.len() as u16).to_le_bytes());
            out.extend_from_slice(&(m.hdr.len() as u32).to_le_bytes());
            out.extend_from_slice(&m.subject);
            out.extend_from_slice(&m.hdr);
            out.extend_from_slice(&m.data);
        }
        Record::Removed(seq) => {
            out.push(KIND_REMOVED);
            out.extend_from_slice(&seq.to_le_bytes());
        }
        Record::Skipped(last, time) => {
            out.push(KIND_SKIPPED);
            out.extend_from_slice(&last.to_le_bytes());
            out.extend_from_slice(&time.to_le_bytes());
        }
    }
    let body_len = (out.len() - start - 8) as u32;
    let crc = crc32(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(body_len + 4).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading a log found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// Bytes of whole, intact records from the start: the rest is cut off.
    pub valid_len: usize,
    /// Why reading stopped before the end, if it did.
    pub problem: Option<String>,
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

/// Reads a log: every intact record up to the first torn (incomplete) or
/// corrupt (bad checksum or shape) one.
pub fn decode(bytes: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    let mut at = 0;
    while at < bytes.len() {
        let stop = |out: &mut Decoded, why: String| {
            out.problem = Some(why);
        };
        if bytes.len() - at < 8 {
            stop(&mut out, format!("a torn record at byte {at}"));
            break;
        }
        let len = u32_at(bytes, at) as usize;
        if !(5..=MAX_RECORD).contains(&len) {
            stop(&mut out, format!("a corrupt record length at byte {at}"));
            break;
        }
        if bytes.len() - at - 4 < len {
            stop(&mut out, format!("a torn record at byte {at}"));
            break;
        }
        let body = &bytes[at + 8..at + 4 + len];
        if crc32(body) != u32_at(bytes, at + 4) {
            stop(&mut out, format!("a checksum mismatch at byte {at}"));
            break;
        }
        let record = match (body[0], body.len()) {
            (KIND_MSG, n) if n >= 23 => {
                let seq = u64_at(body, 1);
                let time = u64_at(body, 9);
                let subject_len = usize::from(u16_at(body, 17));
                let hdr_len = u32_at(body, 19) as usize;
                if 23 + subject_len + hdr_len > n {
                    None
                } else {
                    let subject = &body[23..23 + subject_len];
                    let hdr = &body[23 + subject_len..23 + subject_len + hdr_len];
                    let data = &body[23 + subject_len + hdr_len..];
                    Some(Record::Msg(StoredMsg {
                        subject: subject.into(),
                        seq,
                        time,
                        hdr: hdr.into(),
                        data: data.into(),
                    }))
                }
            }
            (KIND_REMOVED, 9) => Some(Record::Removed(u64_at(body, 1))),
            (KIND_SKIPPED, 17) => Some(Record::Skipped(u64_at(body, 1), u64_at(body, 9))),
            _ => None,
        };
        let Some(record) = record else {
            stop(&mut out, format!("a malformed record at byte {at}"));
            break;
        };
        out.records.push(record);
        at += 4 + len;
        out.valid_len = at;
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn msg(seq: u64, subject: &str, hdr: &[u8], data: &[u8]) -> Record {
        Record::Msg(StoredMsg {
            subject: subject.as_bytes().into(),
            seq,
            time: 1_700_000_000_000_000_000 + seq,
            hdr: hdr.into(),
            data: data.into(),
        })
    }

    fn encoded(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_read_back() {
        let records = vec![
            msg(1, "a.b", b"", b"hello"),
            msg(2, "a.c", b"NATS/1.0\r\nX: 1\r\n\r\n", b""),
            Record::Removed(1),
            Record::Skipped(10, 1_700_000_000_000_000_000),
        ];
        let bytes = encoded(&records);
        let back = decode(&bytes);
        assert_eq!(back.records, records);
        assert_eq!(back.valid_len, bytes.len());
        assert_eq!(back.problem, None);
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let records = vec![msg(1, "a", b"", b"one"), msg(2, "a", b"", b"two")];
        let bytes = encoded(&records);
        let first_len = encoded(&records[..1]).len();
        for cut in first_len..bytes.len() {
            let back = decode(&bytes[..cut]);
            assert_eq!(back.records, records[..1], "cut at {cut}");
            assert_eq!(back.valid_len, first_len);
            assert_eq!(
                back.problem.is_some(),
                cut > first_len,
                "cut at {cut}: {:?}",
                back.problem
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
            let records: Vec<Record> = datas
                .iter()
                .enumerate()
                .map(|(i, d)| msg(i as u64 + 1, "s.x", b"", d))
                .collect();
            let mut bytes = encoded(&records);
            let ends: Vec<usize> = (1..=records.len()).map(|n| encoded(&records[..n]).len()).collect();
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            let hit = ends.iter().position(|&end| bit / 8 < end).expect("inside");
            let back = decode(&bytes);
            prop_assert_eq!(&back.records[..], &records[..hit]);
            prop_assert!(back.problem.is_some());
        }
    }
}
