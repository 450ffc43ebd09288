//! Encoding of server-to-client protocol lines: MSG, HMSG, INFO, `-ERR`, and Go-style quoting.

use serde::Serialize;

/// Writes `n` in decimal into `buf`, returning the digits.
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    // Two digits per division: JetStream writes four numbers (one of 19
    // digits) into every ack subject.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut i = buf.len();
    let mut n = n;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    &buf[i..]
}

/// Appends `n` in decimal to `out`.
pub fn push_decimal(out: &mut String, n: u64) {
    let mut buf = [0u8; 20];
    let digits = decimal(n, &mut buf);
    out.push_str(std::str::from_utf8(digits).expect("decimal digits are ASCII"));
}

/// Appends `s` quoted as Go's `%q` does (the form permission errors use).
pub fn go_quote(s: &[u8], out: &mut String) {
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let n = c as u32;
                    if n < 0x80 {
                        out.push_str(&format!("\\x{n:02x}"));
                    } else if n <= 0xFFFF {
                        out.push_str(&format!("\\u{n:04x}"));
                    } else {
                        out.push_str(&format!("\\U{n:08x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
}

/// The fields of an INFO line, in nats-server's order.
#[derive(Serialize, Clone, Debug)]
pub struct Info<'a> {
    /// The server's id.
    pub server_id: &'a str,
    /// The server's name.
    pub server_name: &'a str,
    /// The nats-server version whose protocol this server speaks.
    pub version: &'a str,
    /// Protocol level.
    pub proto: u8,
    /// Implementation (nats-server puts its Go version here).
    pub go: &'a str,
    /// Listen host.
    pub host: &'a str,
    /// Listen port.
    pub port: u16,
    /// Headers supported.
    pub headers: bool,
    /// Clients must authenticate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// Clients must start TLS after this INFO.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_required: bool,
    /// Clients must present a certificate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_verify: bool,
    /// Clients may start TLS (`allow_non_tls`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_available: bool,
    /// Largest accepted payload.
    pub max_payload: u32,
    /// The server runs JetStream (said to every client, whatever its account).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub jetstream: bool,
    /// Connection id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The client's address as the server sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<&'a str>,
    /// Random text nkey users sign to authenticate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    /// Set in the INFO sent when the server enters lame duck mode.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ldm: bool,
    /// Set in the INFO that follows the first PING.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub connect_info: bool,
    /// The account the client is bound to (with `connect_info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<&'a str>,
}

impl Info<'_> {
    /// `INFO <json> \r\n`, with nats-server's space before the CRLF.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = b"INFO ".to_vec();
        serde_json::to_writer(&mut line, self).expect("INFO serializes");
        line.extend_from_slice(b" \r\n");
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(1048576, &mut buf), b"1048576");
        for n in (0..2000).chain([99_999, 100_000, 1_796_613_139_215_944_397]) {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
        let mut s = String::from("x");
        push_decimal(&mut s, 907);
        assert_eq!(s, "x907");
        assert_eq!(decimal(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn go_quoting() {
        let q = |s: &[u8]| {
            let mut out = String::new();
            go_quote(s, &mut out);
            out
        };
        assert_eq!(q(b"foo.bar"), "\"foo.bar\"");
        assert_eq!(q(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(q("caf\u{e9}".as_bytes()), "\"caf\u{e9}\"");
        assert_eq!(q(b"\xff\x01"), "\"\\xff\\x01\"");
    }

    #[test]
    fn info_line_has_the_trailing_space() {
        let info = Info {
            server_id: "N1",
            server_name: "N1",
            version: "2.9.10",
            proto: 1,
            go: "rust",
            host: "0.0.0.0",
            port: 4222,
            headers: true,
            auth_required: false,
            tls_required: false,
            tls_verify: false,
            tls_available: false,
            max_payload: 1048576,
            jetstream: false,
            client_id: Some(3),
            nonce: None,
            client_ip: Some("127.0.0.1"),
            ldm: false,
            connect_info: false,
            remote_account: None,
        };
        let line = info.to_line();
        assert!(line.starts_with(b"INFO {\"server_id\":\"N1\",\"server_name\":\"N1\",\"version\":\"2.9.10\",\"proto\":1,"));
        assert!(line.ends_with(b"\"client_id\":3,\"client_ip\":\"127.0.0.1\"} \r\n"));
    }
}
