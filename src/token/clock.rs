//! Time as tokens see it: integer Unix seconds. Callers inject `now` so that expiry logic is
//! testable; this module only reads the system clock in `unix_now` and formats instants.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-11-26 23:14:05 UTC`; out-of-range values are shown as the raw number.
pub fn format_unix(seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        Err(_) => format!("unix time {seconds}"),
    }
}

/// "in 59 minutes", "14 minutes ago", "now".
pub fn describe_instant(at: i64, now: i64) -> String {
    let delta = at.saturating_sub(now);
    if delta == 0 {
        return "now".to_string();
    }
    let span = describe_span(delta.unsigned_abs());
    if delta > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A duration in the largest unit that keeps it readable: "45 seconds", "1 minute",
/// "3 hours", "2 days".
pub fn describe_span(seconds: u64) -> String {
    let (value, unit) = match seconds {
        0..=119 => (seconds, "second"),
        120..=7_199 => (seconds / 60, "minute"),
        7_200..=172_799 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    if value == 1 {
        format!("1 {unit}")
    } else {
        format!("{value} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_seconds_as_utc() {
        assert_eq!(format_unix(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix(1_900_000_000), "2030-03-17 17:46:40 UTC");
        assert_eq!(format_unix(i64::MAX), format!("unix time {}", i64::MAX));
    }

    #[test]
    fn describes_relative_instants() {
        assert_eq!(describe_instant(100, 100), "now");
        assert_eq!(describe_instant(1000, 100), "in 15 minutes");
        assert_eq!(describe_instant(100, 940), "14 minutes ago");
        assert_eq!(describe_instant(0, 30), "30 seconds ago");
        assert_eq!(describe_instant(0, 3 * 86_400), "3 days ago");
        assert_eq!(
            describe_instant(i64::MIN, i64::MAX),
            format!("{} days ago", (1u64 << 63) / 86_400)
        );
    }

    #[test]
    fn now_is_after_2025() {
        assert!(unix_now() > 1_735_689_600);
    }
}
