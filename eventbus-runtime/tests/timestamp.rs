//! `Timestamp`: conversions, display and its JSON form.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventbus_runtime::Timestamp;
use eventbus_runtime::wire::MAX_SAFE_INTEGER;

#[test]
fn millis_round_trip() {
    let t = Timestamp::from_millis(-42);
    assert_eq!(t.as_millis(), -42);
    assert_eq!(t, Timestamp(-42));
    assert_eq!(Timestamp::default(), Timestamp(0));
    assert_eq!(std::mem::size_of::<Timestamp>(), 8);
}

#[test]
fn from_system_time_floors_to_milliseconds() {
    let at = |ms_after: i64, extra_nanos: u32| {
        let base = if ms_after >= 0 {
            UNIX_EPOCH + Duration::from_millis(ms_after as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(ms_after.unsigned_abs())
        };
        Timestamp::from(base + Duration::from_nanos(u64::from(extra_nanos)))
    };
    assert_eq!(Timestamp::from(UNIX_EPOCH), Timestamp(0));
    assert_eq!(at(1, 999_999), Timestamp(1));
    assert_eq!(at(1_700_000_000_123, 0), Timestamp(1_700_000_000_123));
    assert_eq!(at(-1, 0), Timestamp(-1));
    assert_eq!(at(-1, 500_000), Timestamp(-1), "0.5 ms before the epoch");
    assert_eq!(at(-2, 1), Timestamp(-2), "1.999999 ms before the epoch");
    assert_eq!(
        Timestamp::from(UNIX_EPOCH - Duration::from_nanos(1)),
        Timestamp(-1)
    );
}

#[test]
fn now_agrees_with_its_system_time_conversion() {
    // No assertion on the clock's value: only that `now` yields whole milliseconds that
    // convert back to the same timestamp.
    let t = Timestamp::now();
    let back = if t.as_millis() >= 0 {
        UNIX_EPOCH + Duration::from_millis(t.as_millis() as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(t.as_millis().unsigned_abs())
    };
    assert_eq!(Timestamp::from(back), t);
    let _: SystemTime = back;
}

#[test]
fn display_is_rfc3339_utc_like_to_iso_string() {
    let cases = [
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (951_868_799_999, "2000-02-29T23:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
        (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        (-62_198_755_200_000, "-000001-01-01T00:00:00.000Z"),
        (8_640_000_000_000_000, "+275760-09-13T00:00:00.000Z"),
        (-8_640_000_000_000_000, "-271821-04-20T00:00:00.000Z"),
    ];
    for (millis, text) in cases {
        assert_eq!(Timestamp(millis).to_string(), text, "{millis}");
    }
    // Extremes do not overflow.
    assert!(Timestamp(i64::MAX).to_string().starts_with('+'));
    assert!(Timestamp(i64::MIN).to_string().starts_with('-'));
}

#[test]
fn ordering_and_hashing_follow_the_millis() {
    let mut v = vec![Timestamp(3), Timestamp(-1), Timestamp(2)];
    v.sort();
    assert_eq!(v, [Timestamp(-1), Timestamp(2), Timestamp(3)]);
    let set: HashSet<Timestamp> = [Timestamp(1), Timestamp(1), Timestamp(2)].into();
    assert_eq!(set.len(), 2);
    assert_eq!(format!("{:?}", Timestamp(5)), "Timestamp(5)");
}

#[test]
fn json_is_an_integer_within_the_safe_range() {
    for millis in [
        0,
        -1,
        1_700_000_000_123,
        MAX_SAFE_INTEGER,
        -MAX_SAFE_INTEGER,
    ] {
        let text = serde_json::to_string(&Timestamp(millis)).unwrap();
        assert_eq!(text, millis.to_string());
        assert_eq!(
            serde_json::from_str::<Timestamp>(&text).unwrap(),
            Timestamp(millis)
        );
    }
}

#[test]
fn json_rejects_unsafe_and_non_integer_values() {
    for bad in [
        "9007199254740992",
        "-9007199254740992",
        "9223372036854775807",
        "18446744073709551615",
    ] {
        let error = serde_json::from_str::<Timestamp>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains("outside ±(2^53−1) ms"), "{bad}: {error}");
    }
    for bad in [
        "1.5",
        "1e3",
        "\"1700000000123\"",
        "null",
        "true",
        "18446744073709551616",
    ] {
        let error = serde_json::from_str::<Timestamp>(bad)
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected a timestamp"), "{bad}: {error}");
    }
}

#[test]
fn serializing_an_unsafe_value_is_an_error() {
    for millis in [
        MAX_SAFE_INTEGER + 1,
        -MAX_SAFE_INTEGER - 1,
        i64::MAX,
        i64::MIN,
    ] {
        let error = serde_json::to_string(&Timestamp(millis)).unwrap_err();
        assert!(
            error.to_string().contains("cannot travel as a JSON number"),
            "{error}"
        );
    }
}
