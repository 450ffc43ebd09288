//! Go-style duration strings (`"2s"`, `"1m30s"`, `"100ms"`, `"1.5h"`), read as nats-server reads them and written as Go prints them.

use std::time::Duration;

/// Parses a Go `time.ParseDuration` string. Negative durations are returned as
/// `Err` with a message, since no option takes one (callers that allow
/// "negative = off" check for the leading `-` themselves).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {text:?} (use a number and a unit: ns, us, ms, s, m, h)");
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("duration {text:?} must not be negative"));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .bytes()
            .take_while(|b| !(b.is_ascii_digit() || *b == b'.'))
            .count();
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_nanos += number * scale;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// Go's `Duration.String()`: `0s`, `850ns`, `1.5µs`, `859µs`, `1.234ms`, `2m3.5s`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos().min(u128::from(u64::MAX)) as u64;
    let fraction = |value: u64, unit: u64, digits: usize| {
        let (whole, rest) = (value / unit, value % unit);
        if rest == 0 {
            whole.to_string()
        } else {
            let rest = format!("{rest:0digits$}");
            format!("{whole}.{}", rest.trim_end_matches('0'))
        }
    };
    match nanos {
        0 => "0s".to_string(),
        1..=999 => format!("{nanos}ns"),
        1_000..=999_999 => format!("{}µs", fraction(nanos, 1_000, 3)),
        1_000_000..=999_999_999 => format!("{}ms", fraction(nanos, 1_000_000, 6)),
        _ => {
            let secs = nanos / 1_000_000_000;
            let (hours, mins) = (secs / 3600, secs / 60 % 60);
            let mut text = String::new();
            if hours > 0 {
                text.push_str(&format!("{hours}h"));
            }
            if hours > 0 || mins > 0 {
                text.push_str(&format!("{mins}m"));
            }
            let in_minute = nanos % 60_000_000_000;
            text.push_str(&fraction(in_minute, 1_000_000_000, 9));
            text.push('s');
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("100ms"), Ok(ms(100)));
        assert_eq!(parse_duration("1.5h"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("2 s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("99999999999h")
            .unwrap_err()
            .contains("too large"));
    }
}
