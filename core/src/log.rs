//! nats-server's log line format, shared by every runtime (the caller supplies the wall-clock time).

use crate::server::{Level, Server, PROTOCOL_VERSION, VERSION};

/// `[pid] 2006/01/02 15:04:05.000000 [INF] text`, the time in UTC; without a
/// time (`logtime: false`), `[pid] [INF] text`.
pub fn format_line(pid: u32, unix_micros: Option<u64>, level: Level, text: &str) -> String {
    let Some(unix_micros) = unix_micros else {
        return format!("[{pid}] {} {text}", level.tag());
    };
    let secs = unix_micros / 1_000_000;
    let micros = unix_micros % 1_000_000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "[{pid}] {year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}.{micros:06} {} {text}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        level.tag()
    )
}

/// The lines a server logs when it starts, before it listens.
pub fn startup_banner(server: &Server) -> Vec<String> {
    vec![
        "Starting tenet".to_string(),
        format!("  Version:  {VERSION} (speaks the protocol of nats-server {PROTOCOL_VERSION})"),
        format!("  Name:     {}", server.server_name()),
        format!("  ID:       {}", server.server_id()),
    ]
}

/// The calendar date of a day count since 1970-01-01 (proleptic Gregorian).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_nats_server() {
        // 2026-11-23 14:32:19.141716 UTC
        let micros = 1_795_444_339_141_716;
        assert_eq!(
            format_line(4551, Some(micros), Level::Info, "Server is ready"),
            "[4551] 2026/11/23 14:32:19.141716 [INF] Server is ready"
        );
        assert_eq!(format_line(7, None, Level::Error, "x"), "[7] [ERR] x");
        // The host's start-up failures, as nats-server's Fatalf.
        assert_eq!(format_line(7, None, Level::Fatal, "x"), "[7] [FTL] x");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
