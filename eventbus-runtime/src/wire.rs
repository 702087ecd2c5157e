//! serde adapters that fix how payload fields look in JSON, used by generated code as
//! `#[serde(with = "::eventbus::__private::wire::As::<…>")]`.
//!
//! The one policy they carry: **64-bit integers travel as JSON strings** (`"18446744073709551615"`),
//! because JSON numbers above 2^53 lose precision in JavaScript's `JSON.parse`. On input a
//! JSON integer is accepted too, as long as JavaScript could have produced it exactly
//! (|n| ≤ 2^53−1). Nothing ever changes value silently.
//!
//! Adapters nest like the types they describe:
//!
//! | field type | attribute |
//! | --- | --- |
//! | `u64` / `i64` | `As::<Int64>` |
//! | `Option<u64>` | `As::<Optional<Int64>>`, with `default, skip_serializing_if = "Option::is_none"` |
//! | `Vec<i64>` | `As::<List<Int64>>` |
//! | `BTreeMap<String, u64>` | `As::<Map<Int64>>` |
//! | `Option<Vec<u64>>` | `As::<Optional<List<Int64>>>` |
//! | anything else | `Same` inside a combinator, e.g. `As::<Optional<Same>>` |

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// The largest integer a JSON number carries exactly in JavaScript: 2^53 − 1
/// (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Serialises a `T` the way `Self` says. Implemented by the adapters of this module.
pub trait SerializeAs<T: ?Sized> {
    /// Serialises `value` through `serializer`.
    fn serialize_as<S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error>;
}

/// Deserialises a `T` the way `Self` says. Implemented by the adapters of this module.
pub trait DeserializeAs<'de, T>: Sized {
    /// Deserialises a `T` from `deserializer`.
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error>;
}

/// The entry point for `#[serde(with = "…")]`: `As::<W>` serialises and deserialises a field
/// through the adapter `W`.
///
/// ```
/// use eventbus_runtime::wire::{As, Int64, List, Optional};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct ChainSync {
///     #[serde(rename = "blockHeight", with = "As::<Int64>")]
///     block_height: u64,
///     #[serde(default, skip_serializing_if = "Option::is_none", with = "As::<Optional<List<Int64>>>")]
///     forks: Option<Vec<i64>>,
/// }
///
/// let sync = ChainSync { block_height: u64::MAX, forks: None };
/// let json = serde_json::to_string(&sync).unwrap();
/// assert_eq!(json, r#"{"blockHeight":"18446744073709551615"}"#);
/// assert_eq!(serde_json::from_str::<ChainSync>(&json).unwrap(), sync);
///
/// // Small integers may come as numbers; big ones must be strings.
/// let ok: ChainSync = serde_json::from_str(r#"{"blockHeight": 19000000, "forks": [-1, "2"]}"#).unwrap();
/// assert_eq!(ok.forks, Some(vec![-1, 2]));
/// assert!(serde_json::from_str::<ChainSync>(r#"{"blockHeight": 9007199254740993}"#).is_err());
/// ```
pub struct As<W>(PhantomData<W>);

impl<W> As<W> {
    /// Serialises `value` through the adapter `W` (called by serde-derived code).
    pub fn serialize<T: ?Sized, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
    where
        W: SerializeAs<T>,
        S: Serializer,
    {
        W::serialize_as(value, serializer)
    }

    /// Deserialises a value through the adapter `W` (called by serde-derived code).
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        W: DeserializeAs<'de, T>,
        D: Deserializer<'de>,
    {
        W::deserialize_as(deserializer)
    }
}

/// The type's own serde representation; the leaf of nested adapters (`Optional<Same>`).
pub struct Same;

impl<T: ?Sized + Serialize> SerializeAs<T> for Same {
    fn serialize_as<S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> DeserializeAs<'de, T> for Same {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }
}

/// `i64` / `u64` as a JSON decimal string.
///
/// Serialises to a string such as `"-9223372036854775808"`. Deserialises from
/// - a string of decimal digits, with an optional leading `-` for `i64` only, no `+`, no
///   whitespace, no leading zeros except `"0"` itself (so not `"-0"` nor `"007"`), within the
///   type's range; or
/// - a JSON integer number with absolute value at most 2^53 − 1 ([`MAX_SAFE_INTEGER`]), within
///   the type's range.
///
/// Anything else (`9007199254740993`, `1.5`, `"1e3"`, `1e3`) is an error that names the
/// policy.
pub struct Int64;

const INT64_POLICY: &str = "64-bit integers travel as JSON strings because JSON numbers above \
                            2^53 lose precision in JavaScript";

impl SerializeAs<i64> for Int64 {
    fn serialize_as<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }
}

impl SerializeAs<u64> for Int64 {
    fn serialize_as<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }
}

/// The integer types `Int64` handles.
trait Int64Target: Sized + std::str::FromStr + TryFrom<i64> + TryFrom<u64> {
    const NAME: &'static str;
    const SIGNED: bool;
}

impl Int64Target for i64 {
    const NAME: &'static str = "i64";
    const SIGNED: bool = true;
}

impl Int64Target for u64 {
    const NAME: &'static str = "u64";
    const SIGNED: bool = false;
}

struct Int64Visitor<T>(PhantomData<T>);

impl<T: Int64Target> Int64Visitor<T> {
    fn out_of_range<E: de::Error>(value: &dyn fmt::Display) -> E {
        E::custom(format_args!(
            "integer {value} is out of range for {}",
            T::NAME
        ))
    }

    fn unsafe_number<E: de::Error>(value: &dyn fmt::Display) -> E {
        E::custom(format_args!(
            "the JSON number {value} is outside ±(2^53−1); send it as the string \"{value}\" \
             ({INT64_POLICY})"
        ))
    }
}

impl<'de, T: Int64Target> Visitor<'de> for Int64Visitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} as a decimal string like \"{}\", or a JSON integer within ±(2^53−1) ({INT64_POLICY})",
            T::NAME,
            if T::SIGNED {
                "-9223372036854775808"
            } else {
                "18446744073709551615"
            },
        )
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        if value.unsigned_abs() > MAX_SAFE_INTEGER as u64 {
            return Err(Self::unsafe_number(&value));
        }
        T::try_from(value).map_err(|_| Self::out_of_range(&value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        if value > MAX_SAFE_INTEGER as u64 {
            return Err(Self::unsafe_number(&value));
        }
        T::try_from(value).map_err(|_| Self::out_of_range(&value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        let digits = match value.strip_prefix('-') {
            Some(rest) if T::SIGNED => rest,
            _ => value,
        };
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && value != "-0";
        if !canonical {
            return Err(E::invalid_value(Unexpected::Str(value), &self));
        }
        value.parse().map_err(|_| Self::out_of_range(&value))
    }
}

impl<'de> DeserializeAs<'de, i64> for Int64 {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        // `deserialize_any`: the input may be a string or a number.
        deserializer.deserialize_any(Int64Visitor::<i64>(PhantomData))
    }
}

impl<'de> DeserializeAs<'de, u64> for Int64 {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(Int64Visitor::<u64>(PhantomData))
    }
}

/// `Option<T>` whose present value goes through `W`; for fields marked
/// `#[serde(default, skip_serializing_if = "Option::is_none")]`, so `None` is an absent field.
///
/// A present value is always deserialised through `W` into `Some`: an explicit `null` is
/// therefore rejected unless `W` accepts `null` itself (as `Same` does for a
/// `serde_json::Value` field, giving `Some(Value::Null)`).
pub struct Optional<W>(PhantomData<W>);

impl<T, W: SerializeAs<T>> SerializeAs<Option<T>> for Optional<W> {
    fn serialize_as<S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_some(&SerializeWith::<T, W>::new(value)),
            None => serializer.serialize_none(),
        }
    }
}

impl<'de, T, W: DeserializeAs<'de, T>> DeserializeAs<'de, Option<T>> for Optional<W> {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
        W::deserialize_as(deserializer).map(Some)
    }
}

/// `Vec<T>` as a JSON array whose elements go through `W`.
pub struct List<W>(PhantomData<W>);

impl<T, W: SerializeAs<T>> SerializeAs<Vec<T>> for List<W> {
    fn serialize_as<S: Serializer>(value: &Vec<T>, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(value.len()))?;
        for element in value {
            seq.serialize_element(&SerializeWith::<T, W>::new(element))?;
        }
        seq.end()
    }
}

impl<'de, T, W: DeserializeAs<'de, T>> DeserializeAs<'de, Vec<T>> for List<W> {
    fn deserialize_as<D: Deserializer<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
        struct ListVisitor<T, W>(PhantomData<(T, W)>);

        impl<'de, T, W: DeserializeAs<'de, T>> Visitor<'de> for ListVisitor<T, W> {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                // Cap the pre-allocation: the size hint comes from untrusted input.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(element) = seq.next_element_seed(DeserializeWith::<T, W>::new())? {
                    out.push(element);
                }
                Ok(out)
            }
        }

        deserializer.deserialize_seq(ListVisitor::<T, W>(PhantomData))
    }
}

/// `BTreeMap<String, T>` as a JSON object whose values go through `W`.
pub struct Map<W>(PhantomData<W>);

impl<T, W: SerializeAs<T>> SerializeAs<BTreeMap<String, T>> for Map<W> {
    fn serialize_as<S: Serializer>(
        value: &BTreeMap<String, T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(value.len()))?;
        for (key, element) in value {
            map.serialize_entry(key, &SerializeWith::<T, W>::new(element))?;
        }
        map.end()
    }
}

impl<'de, T, W: DeserializeAs<'de, T>> DeserializeAs<'de, BTreeMap<String, T>> for Map<W> {
    fn deserialize_as<D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, T>, D::Error> {
        struct MapVisitor<T, W>(PhantomData<(T, W)>);

        impl<'de, T, W: DeserializeAs<'de, T>> Visitor<'de> for MapVisitor<T, W> {
            type Value = BTreeMap<String, T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<BTreeMap<String, T>, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value_seed(DeserializeWith::<T, W>::new())?;
                    // A repeated key keeps the last value, as serde's own maps and
                    // JavaScript's `JSON.parse` do.
                    out.insert(key, value);
                }
                Ok(out)
            }
        }

        deserializer.deserialize_map(MapVisitor::<T, W>(PhantomData))
    }
}

/// Serialises a borrowed `T` through `W`, for elements of the combinators.
struct SerializeWith<'a, T: ?Sized, W> {
    value: &'a T,
    adapter: PhantomData<W>,
}

impl<'a, T: ?Sized, W> SerializeWith<'a, T, W> {
    fn new(value: &'a T) -> Self {
        SerializeWith {
            value,
            adapter: PhantomData,
        }
    }
}

impl<T: ?Sized, W: SerializeAs<T>> Serialize for SerializeWith<'_, T, W> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        W::serialize_as(self.value, serializer)
    }
}

/// Deserialises a `T` through `W`, for elements of the combinators.
struct DeserializeWith<T, W>(PhantomData<(T, W)>);

impl<T, W> DeserializeWith<T, W> {
    fn new() -> Self {
        DeserializeWith(PhantomData)
    }
}

impl<'de, T, W: DeserializeAs<'de, T>> DeserializeSeed<'de> for DeserializeWith<T, W> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        W::deserialize_as(deserializer)
    }
}
