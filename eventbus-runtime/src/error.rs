//! Errors of dispatching by name ([`BusCore::emit_json`](crate::BusCore::emit_json)), and the
//! marker of a handler error that no retry can fix.

use std::error::Error;
use std::fmt;

/// A handler error that retrying cannot fix (bad input, a rule the payload breaks): the bus
/// skips the remaining retries and sends the event straight to the dead-letter queue. Made by
/// [`HandlerFailure::permanent`](crate::HandlerFailure::permanent); shows as the error it
/// wraps (same text, same sources).
#[derive(Debug)]
pub(crate) struct Permanent(pub(crate) Box<dyn Error + Send + Sync>);

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for Permanent {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl Permanent {
    /// Whether a handler's error is marked permanent (only retries care).
    #[cfg(feature = "async")]
    pub(crate) fn marks(error: &(dyn Error + Send + Sync + 'static)) -> bool {
        error.is::<Permanent>()
    }
}

/// Why [`BusCore::emit_json`](crate::BusCore::emit_json) refused to emit. Nothing was
/// dispatched when this is returned.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32")), ("refresh", None)]);
/// use eventbus_runtime::{BusCore, DispatchError, Event, Signal};
///
/// let core = BusCore::new(manifest);
/// let _ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let _refresh = Signal::new(&core, manifest.event("refresh").unwrap());
///
/// let err = core.emit_json("refresh", "1").unwrap_err();
/// assert_eq!(err, DispatchError::UnexpectedPayload { event: "refresh" });
///
/// match core.emit_json("pnig", "1").unwrap_err() {
///     DispatchError::UnknownEvent { suggestion, known, .. } => {
///         assert_eq!(suggestion, Some("ping"));
///         assert_eq!(known, ["ping", "refresh"]);
///     }
///     other => panic!("unexpected: {other}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchError {
    /// No event of that name is registered on the bus.
    UnknownEvent {
        /// The name that was asked for.
        name: String,
        /// A registered name close to it, if any (`"packageInstall"` for `"packageInstal"`).
        suggestion: Option<&'static str>,
        /// Every registered event name, in registration (manifest) order.
        known: Vec<&'static str>,
    },
    /// The JSON is malformed or does not match the event's payload type.
    InvalidPayload {
        /// The event's manifest name.
        event: &'static str,
        /// Where in the JSON the problem was found, as a JSONPath (`$.tags[2]`, `$` for the
        /// root). For a missing field it is the object that lacks it.
        path: String,
        /// serde's message, with line and column.
        message: String,
    },
    /// The event takes no payload, but the JSON is neither `null` nor `{}`.
    UnexpectedPayload {
        /// The event's manifest name.
        event: &'static str,
    },
    /// The bus is shut down and accepts no more events.
    ShutDown {
        /// The event's manifest name.
        event: &'static str,
    },
    /// A `persist: true` event could not be written to the event store; nothing was
    /// dispatched (see [`PersistError`](crate::PersistError)).
    NotStored {
        /// The event's manifest name.
        event: &'static str,
        /// What the store said.
        message: String,
    },
}

impl fmt::Display for DispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchError::UnknownEvent {
                name,
                suggestion,
                known,
            } => {
                write!(f, "unknown event `{name}`")?;
                if let Some(suggestion) = suggestion {
                    write!(f, "; did you mean `{suggestion}`?")?;
                }
                if known.is_empty() {
                    write!(f, " (this bus has no events)")
                } else {
                    write!(f, " (known events: {})", known.join(", "))
                }
            }
            DispatchError::InvalidPayload {
                event,
                path,
                message,
            } => write!(
                f,
                "invalid payload for event `{event}` at {path}: {message}"
            ),
            DispatchError::UnexpectedPayload { event } => write!(
                f,
                "event `{event}` takes no payload; send `null` or `{{}}` as its JSON"
            ),
            DispatchError::ShutDown { event } => {
                write!(f, "event `{event}` not emitted: the bus is shut down")
            }
            DispatchError::NotStored { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for DispatchError {}

impl DispatchError {
    pub(crate) fn unknown_event(name: &str, known: Vec<&'static str>) -> Self {
        DispatchError::UnknownEvent {
            name: name.to_owned(),
            suggestion: closest(name, &known),
            known,
        }
    }

    /// A JSON value (not text) that does not match the payload type: no position to point at.
    pub(crate) fn invalid_value(event: &'static str, error: &serde_json::Error) -> Self {
        DispatchError::InvalidPayload {
            event,
            path: "$".to_owned(),
            message: error.to_string(),
        }
    }

    pub(crate) fn invalid_payload(
        event: &'static str,
        json: &str,
        error: &serde_json::Error,
    ) -> Self {
        // A lone surrogate escape is valid JSON grammar that no Rust string can hold: serde's
        // message for it ("unexpected end of hex escape") does not say so, and points past it.
        if let Some(lone) = LoneSurrogate::of(json, error) {
            return DispatchError::InvalidPayload {
                event,
                path: json_path_at(json, lone.line, lone.column - 1),
                message: lone.to_string(),
            };
        }
        DispatchError::InvalidPayload {
            event,
            path: json_path_at(json, error.line(), error.column()),
            message: error.to_string(),
        }
    }
}

/// A `\uXXXX` escape in JSON text that is a lone UTF-16 surrogate (`\ud800` not followed by a
/// trailing `\udc00`–`\udfff`, or a trailing one alone): the JSON grammar allows it (and
/// JavaScript's `JSON.stringify` writes one for a string holding a lone surrogate), but the
/// string is not Unicode text, so serde_json refuses it wherever it reads a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoneSurrogate {
    /// The escape as written, e.g. `\ud800`.
    pub(crate) escape: String,
    /// Byte offset of the escape's backslash.
    pub(crate) offset: usize,
    /// 1-based line of the escape.
    pub(crate) line: usize,
    /// 1-based column (in bytes) of the escape's backslash.
    pub(crate) column: usize,
}

impl LoneSurrogate {
    /// The byte offsets of every lone surrogate escape in `json`, in order, in one linear scan.
    /// Backslashes only occur inside strings in JSON text, so no string tracking is needed; on
    /// text that is not JSON the answer is meaningless but harmless.
    pub(crate) fn offsets(json: &str) -> impl Iterator<Item = usize> + '_ {
        let bytes = json.as_bytes();
        // `\u` then four hex digits at `at`.
        let unicode = move |at: usize| -> Option<u16> {
            let escape = bytes.get(at..at + 6)?;
            if escape[0] != b'\\' || escape[1] != b'u' {
                return None;
            }
            escape[2..].iter().try_fold(0u16, |n, &b| {
                let digit = (b as char).to_digit(16)?;
                Some(n << 4 | digit as u16)
            })
        };
        let mut i = 0;
        std::iter::from_fn(move || {
            while i < bytes.len() {
                if bytes[i] != b'\\' {
                    i += 1;
                    continue;
                }
                let Some(unit) = unicode(i) else {
                    // Another escape (`\"`, `\\`, ...): skip the escaped byte too.
                    i += 2;
                    continue;
                };
                let at = i;
                i += 6;
                let lone = match unit {
                    0xD800..=0xDBFF => match unicode(i) {
                        Some(0xDC00..=0xDFFF) => {
                            i += 6;
                            false
                        }
                        _ => true,
                    },
                    0xDC00..=0xDFFF => true,
                    _ => false,
                };
                if lone {
                    return Some(at);
                }
            }
            None
        })
    }

    /// The lone surrogate escape at byte `offset` of `json` (one of [`offsets`](Self::offsets)).
    pub(crate) fn at(json: &str, offset: usize) -> LoneSurrogate {
        let before = &json.as_bytes()[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1);
        LoneSurrogate {
            escape: json[offset..offset + 6].to_owned(),
            offset,
            line: 1 + before[..line_start].iter().filter(|&&b| b == b'\n').count(),
            column: offset - line_start + 1,
        }
    }

    /// The lone surrogate that made serde_json fail with `error` on `json`, if that is why it
    /// failed. serde_json reports it up to one escape past the culprit (`\ud800` followed by a
    /// quote, by another escape or by a non-trailing `\uXXXX`).
    pub(crate) fn of(json: &str, error: &serde_json::Error) -> Option<LoneSurrogate> {
        if !error.is_syntax() {
            return None;
        }
        let bytes = json.as_bytes();
        let line_start = if error.line() <= 1 {
            0
        } else {
            bytes
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .nth(error.line() - 2)
                .map(|(i, _)| i + 1)?
        };
        let at = line_start + error.column();
        LoneSurrogate::offsets(json)
            .take_while(|offset| offset + 6 <= at)
            .filter(|offset| at - (offset + 6) <= 6)
            .last()
            .map(|offset| LoneSurrogate::at(json, offset))
    }
}

impl fmt::Display for LoneSurrogate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the string is not valid Unicode: `{}` at line {} column {} is a lone UTF-16 surrogate",
            self.escape, self.line, self.column
        )
    }
}

/// The known name closest to `name` by edit distance, if close enough to be a likely typo.
/// The runtime's only "did you mean" (`emit_json`, the builder, the bridge through
/// `DispatchError`): the runtime does not depend on `eventbus-codegen`, whose `did_you_mean`
/// serves the manifest checks.
pub(crate) fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|&candidate| (edit_distance(&lower, &candidate.to_lowercase()), candidate))
        .filter(|&(distance, candidate)| distance <= (candidate.chars().count() / 3).max(1))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, the typical
/// typo (`pnig` for `ping` is 1, not 2).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d: Vec<usize> = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

/// The JSONPath of the position serde_json reported (`line` 1-based, `column` = bytes consumed
/// on that line), found by scanning the JSON text up to there.
///
/// serde_json reports positions but not paths, and this crate keeps its dependencies to serde,
/// serde_json and arc-swap, so the path is recovered from the text: serde_json reports a type
/// error right after the offending value, an unknown field right after its key, and a missing
/// field right after the object lacking it, so the innermost open key/index at that position
/// names the culprit.
fn json_path_at(json: &str, line: usize, column: usize) -> String {
    let bytes = json.as_bytes();
    let line_start = if line <= 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(line - 2)
            .map_or(bytes.len(), |(i, _)| i + 1)
    };
    let end = (line_start + column).min(bytes.len());

    enum Frame {
        Object {
            key: Option<String>,
            expect_key: bool,
        },
        Array {
            index: usize,
        },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'"' => {
                // Find the closing quote, skipping escapes.
                let start = i;
                i += 1;
                while i < end && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut()
                    && *expect_key
                    && i < end
                {
                    *key = serde_json::from_str::<String>(&json[start..=i]).ok();
                    *expect_key = false;
                }
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, expect_key }) => {
                    *key = None;
                    *expect_key = true;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }

    let mut path = String::from("$");
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                let plain = key
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    path.push('.');
                    path.push_str(key);
                } else {
                    path.push('[');
                    path.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    path.push(']');
                }
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of_error<T: serde::de::DeserializeOwned + fmt::Debug>(json: &str) -> String {
        let error = serde_json::from_str::<T>(json).unwrap_err();
        json_path_at(json, error.line(), error.column())
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
        #[serde(rename = "odd key")]
        odd: Option<u8>,
    }

    #[test]
    fn paths_point_at_the_culprit() {
        assert_eq!(
            path_of_error::<Outer>(r#"{"name": 1, "items": []}"#),
            "$.name"
        );
        assert_eq!(
            path_of_error::<Outer>(r#"{"name": "a", "items": [{"n": 1}, {"n": "x"}]}"#),
            "$.items[1].n"
        );
        // Missing field: the object that lacks it.
        assert_eq!(
            path_of_error::<Outer>("{\"name\": \"a\",\n \"items\": [{\"n\": 1},\n {}]}"),
            "$.items[1]"
        );
        assert_eq!(path_of_error::<Outer>(r#"{"items": []}"#), "$");
        // Unknown field: the field itself.
        assert_eq!(
            path_of_error::<Outer>(r#"{"name": "a", "items": [{"n": 1, "m": 2}]}"#),
            "$.items[0].m"
        );
        assert_eq!(
            path_of_error::<Outer>(r#"{"name": "a", "items": [], "odd key": 300}"#),
            r#"$["odd key"]"#
        );
        // Escaped quotes inside strings do not confuse the scan.
        assert_eq!(
            path_of_error::<Outer>(r#"{"name": "a\"}{[", "items": 5}"#),
            "$.items"
        );
    }

    #[test]
    fn lone_surrogates_are_found_and_named() {
        let found = |json: &str| LoneSurrogate::offsets(json).collect::<Vec<_>>();
        assert_eq!(found(r#""\ud800""#), [1]);
        assert_eq!(found(r#""\udc00""#), [1]);
        assert_eq!(found(r#""a\uD83D\uDE00b""#), [] as [usize; 0]);
        assert_eq!(found(r#""\ud800\ud800\udc00""#), [1]);
        assert_eq!(found(r#""\ud800\n""#), [1]);
        assert_eq!(found(r#""\\ud800""#), [] as [usize; 0]);
        assert_eq!(found(r#""\u0041\u12""#), [] as [usize; 0]);
        assert_eq!(found("\\"), [] as [usize; 0]);
        // Whatever serde_json reports for it, the culprit is found and named, with the path
        // of its string.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Text {
            name: String,
            tags: Vec<String>,
            map: std::collections::BTreeMap<String, u8>,
        }
        for (json, column, path) in [
            (
                r#"{"name": "ok \ud800", "tags": [], "map": {}}"#,
                14,
                "$.name",
            ),
            (
                r#"{"name": "\udfff x", "tags": [], "map": {}}"#,
                11,
                "$.name",
            ),
            (
                r#"{"name": "x\ud800\u0041", "tags": [], "map": {}}"#,
                12,
                "$.name",
            ),
            (
                r#"{"name": "x\ud800\t", "tags": [], "map": {}}"#,
                12,
                "$.name",
            ),
            (
                r#"{"name": "", "tags": ["a", "\ud800"], "map": {}}"#,
                29,
                "$.tags[1]",
            ),
            (
                r#"{"name": "", "tags": [], "map": {"\ud800": 1}}"#,
                35,
                "$.map",
            ),
            (
                "{\"name\": \"\",\n\"tags\": [\"\\uDBFF\"], \"map\": {}}",
                11,
                "$.tags[0]",
            ),
        ] {
            let error = serde_json::from_str::<Text>(json).unwrap_err();
            let lone = LoneSurrogate::of(json, &error).expect(json);
            assert_eq!(lone.column, column, "{json}");
            let DispatchError::InvalidPayload {
                path: at, message, ..
            } = DispatchError::invalid_payload("e", json, &error)
            else {
                unreachable!()
            };
            assert_eq!(at, path, "{json}");
            assert!(message.contains("is a lone UTF-16 surrogate"), "{message}");
            assert!(message.contains(&lone.escape), "{message}");
        }
        // Other errors keep serde's message, even with a lone surrogate elsewhere.
        let json = r#"{"name": 1, "x": "\ud800"}"#;
        let error = serde_json::from_str::<Text>(json).unwrap_err();
        assert_eq!(LoneSurrogate::of(json, &error), None);
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let known = vec!["packageInstall", "chainSync", "requestPackages"];
        assert_eq!(closest("packageInstal", &known), Some("packageInstall"));
        assert_eq!(closest("chainsync", &known), Some("chainSync"));
        assert_eq!(closest("notification", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("pnig", "ping"), 1);
        assert_eq!(closest("pnig", &["ping", "count"]), Some("ping"));
    }
}
