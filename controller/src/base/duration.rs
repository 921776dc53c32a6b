//! Durations as people write them in specs and flags: Go's `time.ParseDuration` syntax (`90s`,
//! `5m`, `1h30m`), parsed and printed back. Pure, so the plans can use it as well as the flags.

use std::fmt;
use std::time::Duration;

/// Why a Go-style duration was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: use a number with a unit, e.g. 90s, 5m or 1h30m")]
    Empty,
    #[error(
        "invalid duration {input:?}: expected numbers with units (ms, s, m, h), e.g. 90s, 5m or 1h30m"
    )]
    Invalid { input: String },
    #[error("duration {input:?} is too large")]
    TooLarge { input: String },
    #[error("duration {input:?} is shorter than the minimum of {}", HumanDuration(*minimum))]
    TooShort { input: String, minimum: Duration },
}

/// Parses a Go-style duration (`time.ParseDuration`): a sequence of decimal numbers, each with
/// an optional fraction and a unit: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`. Examples: `90s`,
/// `5m`, `1h30m`, `1.5h`, `250ms`. Signs are not accepted (a negative interval means nothing
/// here); a bare `0` is accepted as Go does.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = || DurationError::Invalid {
        input: input.to_owned(),
    };
    let too_large = || DurationError::TooLarge {
        input: input.to_owned(),
    };

    let mut total_nanos: u128 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, after_number) = rest.split_at(number_len);
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 60 * 60 * 1_000_000_000,
            _ => return Err(invalid()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(too_large)?;
        // The fraction is scaled digit by digit so that "1.5h" is exact; digits below a
        // nanosecond are dropped, as Go does.
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            nanos += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(too_large)?;
        rest = after_unit;
    }

    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| too_large())?;
    let subsec = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| too_large())?;
    Ok(Duration::new(secs, subsec))
}

/// Formats a duration the way it is written on the command line (`5m`, `1h30m`, `90s`).
#[derive(Clone, Copy, Debug)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_secs();
        let millis = self.0.subsec_millis();
        if total == 0 && millis == 0 {
            return f.write_str("0s");
        }
        let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60);
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        if seconds > 0 || millis > 0 {
            if millis > 0 {
                write!(f, "{seconds}.{millis:03}s")?;
            } else {
                write!(f, "{seconds}s")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn go_durations_parse_like_go() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("90s", secs(90)),
            ("5m", secs(300)),
            ("1h", secs(3600)),
            ("1h30m", secs(5400)),
            ("1h30m15s", secs(5415)),
            ("2m30s", secs(150)),
            ("1.5h", secs(5400)),
            ("0.5m", secs(30)),
            (".5m", secs(30)),
            ("5.m", secs(300)),
            ("250ms", Duration::from_millis(250)),
            ("1s500ms", Duration::from_millis(1500)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("1m1m", secs(120)),
            ("1.000000000001s", secs(1)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_go_duration(input), Ok(*expected), "input {input:?}");
        }
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for input in [
            "5", "m", "5x", "-5m", "+5m", "5 m", " 5m", "5m ", "1h30", "1..5s", ".s", "5M", "1d",
            "h1",
        ] {
            assert_eq!(
                parse_go_duration(input),
                Err(DurationError::Invalid {
                    input: input.to_owned()
                }),
                "input {input:?}"
            );
        }
        assert_eq!(parse_go_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_go_duration("99999999999999999999999999999999999999999h"),
            Err(DurationError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_go_duration("9999999999999999999h"),
            Err(DurationError::TooLarge { .. })
        ));
    }

    #[test]
    fn human_durations_round_trip() {
        for text in ["5m", "1h30m", "90s", "1h", "1h0m5s", "30s", "0s", "1.500s"] {
            let parsed = parse_go_duration(text).unwrap();
            let shown = HumanDuration(parsed).to_string();
            assert_eq!(parse_go_duration(&shown), Ok(parsed), "{text} -> {shown}");
        }
        assert_eq!(HumanDuration(secs(5400)).to_string(), "1h30m");
        assert_eq!(HumanDuration(secs(90)).to_string(), "1m30s");
    }
}
