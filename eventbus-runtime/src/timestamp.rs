//! `Timestamp`: the manifest's `timestamp` type.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};

use crate::wire::MAX_SAFE_INTEGER;

/// Milliseconds since the Unix epoch, UTC: the manifest's `timestamp` type.
///
/// In JSON it is an integer number (what JavaScript's `Date.now()` gives). Only values within
/// ±(2^53 − 1) ms can travel exactly through JSON to JavaScript, so deserialising rejects
/// anything else, and serialising such a value is an error rather than a silent change.
/// `Display` writes RFC 3339 / ISO 8601 in UTC, like JavaScript's `toISOString()`.
///
/// ```
/// use eventbus_runtime::Timestamp;
///
/// let t = Timestamp::from_millis(1_700_000_000_123);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.123Z");
/// assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000123");
/// assert_eq!(serde_json::from_str::<Timestamp>("1700000000123").unwrap(), t);
/// assert!(serde_json::from_str::<Timestamp>("9007199254740992").is_err());
/// println!("now: {}", Timestamp::now());
/// ```
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time, from the system clock.
    ///
    /// ```
    /// use eventbus_runtime::Timestamp;
    ///
    /// let before = Timestamp::now();
    /// let after = Timestamp::now();
    /// assert!(before <= after);
    /// assert!(before > Timestamp::from_millis(1_700_000_000_000)); // after November 2023
    /// ```
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// The timestamp `millis` milliseconds after the Unix epoch (before it if negative).
    ///
    /// ```
    /// use eventbus_runtime::Timestamp;
    ///
    /// assert_eq!(Timestamp::from_millis(0).to_string(), "1970-01-01T00:00:00.000Z");
    /// assert_eq!(Timestamp::from_millis(1_500).as_millis(), 1_500);
    /// ```
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    ///
    /// ```
    /// use eventbus_runtime::Timestamp;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let t = Timestamp::from(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
    /// assert_eq!(t.as_millis(), 1_700_000_000_123);
    /// ```
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    const fn is_json_safe(self) -> bool {
        self.0.unsigned_abs() <= MAX_SAFE_INTEGER as u64
    }
}

impl From<SystemTime> for Timestamp {
    /// Truncates to whole milliseconds towards the past (so 0.5 ms before the epoch is `-1`),
    /// saturating at `i64::MIN` / `i64::MAX`.
    fn from(time: SystemTime) -> Timestamp {
        let millis = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_nanos().div_ceil(1_000_000))
                .map_or(i64::MIN, |millis| -millis),
        };
        Timestamp(millis)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MS_PER_DAY: i64 = 86_400_000;
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // Years outside 0..=9999 use ISO 8601's expanded form, as `toISOString()` does.
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else {
            write!(f, "{year:+07}")?;
        }
        write!(
            f,
            "-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1_000 % 60,
            ms_of_day % 1_000
        )
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, after Howard
/// Hinnant's `civil_from_days`; exact for every `i64` millisecond value's day.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !self.is_json_safe() {
            return Err(ser::Error::custom(format_args!(
                "timestamp {} ms is outside ±(2^53−1) ms and cannot travel as a JSON number \
                 without losing precision",
                self.0
            )));
        }
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;

        impl TimestampVisitor {
            fn checked<E: de::Error>(millis: i64) -> Result<Timestamp, E> {
                let timestamp = Timestamp(millis);
                if timestamp.is_json_safe() {
                    Ok(timestamp)
                } else {
                    Err(Self::unsafe_number(&millis))
                }
            }

            fn unsafe_number<E: de::Error>(value: &dyn fmt::Display) -> E {
                E::custom(format_args!(
                    "timestamp {value} is outside ±(2^53−1) ms: JSON numbers beyond that lose \
                     precision in JavaScript"
                ))
            }
        }

        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a timestamp: an integer number of milliseconds since the Unix epoch, \
                     within ±(2^53−1)",
                )
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Timestamp, E> {
                Self::checked(value)
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Timestamp, E> {
                i64::try_from(value)
                    .map_or_else(|_| Err(Self::unsafe_number(&value)), Self::checked)
            }
        }

        deserializer.deserialize_i64(TimestampVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_values() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
    }
}
