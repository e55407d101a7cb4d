//! Lifetimes as people type and read them: `30s`, `15m`, `8h`, `7d`, `1h30m`, or plain seconds.
//! One parser and one formatter for every place a lifetime is read (command-line flags, console
//! dialogs, console configuration, policy settings) or shown. `clients.toml` itself keeps
//! storing seconds; this module only reads and writes the text people see.

/// The longest lifetime accepted: ten years. Anything longer is a typo, not a policy.
pub const MAX_SECONDS: u64 = 10 * 365 * 86_400;

/// The units, largest first, as they are written after a number.
const UNITS: [(char, u64, &str); 4] = [
    ('d', 86_400, "day"),
    ('h', 3_600, "hour"),
    ('m', 60, "minute"),
    ('s', 1, "second"),
];

const HOW: &str =
    "use seconds (3600) or a number with d, h, m or s, largest unit first (8h, 15m, 1h30m, 7d)";

/// Why a text is not a lifetime; each message names the text and says what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("no duration given: {HOW}")]
    Empty,
    #[error("{text:?} is not a duration: {HOW}")]
    Malformed { text: String },
    #[error("{text:?} has an unknown unit {unit:?}: {HOW}")]
    UnknownUnit { text: String, unit: String },
    #[error("{text:?} repeats or misorders its units: write the largest first, each once (1h30m)")]
    UnitOrder { text: String },
    #[error("{text:?} is negative: a lifetime is a positive duration")]
    Negative { text: String },
    #[error("{text:?} is zero: a lifetime is a positive duration")]
    Zero { text: String },
    #[error("{text:?} is longer than ten years ({MAX_SECONDS} s), the longest lifetime accepted")]
    TooLong { text: String },
}

/// Parses a positive lifetime in seconds. Spaces between parts are allowed (`1h 30m`).
pub fn parse(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    let owned = || text.to_string();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative { text: owned() });
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total: u64 = 0;
    // Index into UNITS of the last unit used: the next must be smaller.
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(DurationError::Malformed { text: owned() });
        }
        let value = rest[..digits]
            .parse::<u64>()
            .map_err(|_| DurationError::TooLong { text: owned() })?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len() - rest.trim_start_matches(|c: char| c.is_alphabetic()).len();
        let unit = &rest[..unit_len];
        let index = match unit {
            // A bare number is seconds, and only on its own.
            "" if total == 0 && last.is_none() && rest.is_empty() => 3,
            "" => return Err(DurationError::Malformed { text: owned() }),
            _ => UNITS
                .iter()
                .position(|(symbol, _, _)| unit.len() == 1 && unit.starts_with(*symbol))
                .ok_or_else(|| DurationError::UnknownUnit {
                    text: owned(),
                    unit: unit.to_string(),
                })?,
        };
        if last.is_some_and(|previous| index <= previous) {
            return Err(DurationError::UnitOrder { text: owned() });
        }
        last = Some(index);
        total = value
            .checked_mul(UNITS[index].1)
            .and_then(|seconds| total.checked_add(seconds))
            .filter(|seconds| *seconds <= MAX_SECONDS)
            .ok_or_else(|| DurationError::TooLong { text: owned() })?;
        rest = rest[unit_len..].trim_start();
    }
    if total == 0 {
        return Err(DurationError::Zero { text: owned() });
    }
    Ok(total)
}

/// A lifetime as `parse` reads it back: `8h`, `1h30m`, `7d`, `45s` (`0s` for nothing).
pub fn format(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    parts(seconds)
        .map(|(count, (symbol, _, _))| format!("{count}{symbol}"))
        .collect()
}

/// The same in words, for comments and sentences: `8 hours`, `1 hour 30 minutes`.
pub fn describe(seconds: u64) -> String {
    if seconds == 0 {
        return "0 seconds".to_string();
    }
    parts(seconds)
        .map(|(count, (_, _, word))| {
            let plural = if count == 1 { "" } else { "s" };
            format!("{count} {word}{plural}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The non-zero parts of `seconds`, largest unit first.
fn parts(seconds: u64) -> impl Iterator<Item = (u64, (char, u64, &'static str))> {
    let mut left = seconds;
    UNITS.into_iter().filter_map(move |unit| {
        let count = left / unit.1;
        left %= unit.1;
        (count > 0).then_some((count, unit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units_combinations_and_plain_seconds() {
        let cases: [(&str, u64); 14] = [
            ("30s", 30),
            ("15m", 900),
            ("8h", 28_800),
            ("7d", 604_800),
            ("1h30m", 5_400),
            ("1h 30m", 5_400),
            ("1d2h3m4s", 93_784),
            ("90m", 5_400),
            ("3600", 3_600),
            ("  8h\n", 28_800),
            ("+5m", 300),
            ("1", 1),
            ("0h5m", 300),
            ("3650d", MAX_SECONDS),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse(text), Ok(seconds), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_positive_lifetime_and_says_why() {
        let cases: [(&str, &str); 18] = [
            ("", "no duration given"),
            ("   ", "no duration given"),
            ("h", "is not a duration"),
            ("8 hours", "unknown unit \"hours\""),
            ("1y", "unknown unit \"y\""),
            ("8H", "unknown unit \"H\""),
            ("1.5h", "is not a duration"),
            ("30m1h", "largest first"),
            ("1h1h", "largest first"),
            ("1h30", "is not a duration"),
            ("-5", "is negative"),
            ("-1h", "is negative"),
            ("0", "is zero"),
            ("0h0m", "is zero"),
            ("3651d", "longer than ten years"),
            ("99999999999999999999", "longer than ten years"),
            ("18446744073709551615s", "longer than ten years"),
            ("h8", "is not a duration"),
        ];
        for (text, why) in cases {
            let error = parse(text).expect_err(text).to_string();
            assert!(error.contains(why), "{text:?}: {error}");
        }
        assert!(
            parse("1y")
                .unwrap_err()
                .to_string()
                .contains("8h, 15m, 1h30m")
        );
    }

    #[test]
    fn formats_back_to_what_it_reads() {
        let cases: [(u64, &str, &str); 7] = [
            (28_800, "8h", "8 hours"),
            (5_400, "1h30m", "1 hour 30 minutes"),
            (604_800, "7d", "7 days"),
            (45, "45s", "45 seconds"),
            (3_601, "1h1s", "1 hour 1 second"),
            (93_784, "1d2h3m4s", "1 day 2 hours 3 minutes 4 seconds"),
            (0, "0s", "0 seconds"),
        ];
        for (seconds, short, words) in cases {
            assert_eq!(format(seconds), short);
            assert_eq!(describe(seconds), words);
            if seconds > 0 {
                assert_eq!(parse(short), Ok(seconds));
            }
        }
    }
}
