//! CloudEvents 1.0 in structured JSON mode: the one envelope every wire of the bus uses (the
//! WebSocket bridge's frames, NATS messages).
//!
//! `specversion`, `id`, `source`, `type` (`<package>.<event>`), `time` (RFC 3339, UTC,
//! milliseconds), an optional `sequence` (the event's sequence number in the emitter's store, a
//! 20-digit zero-padded decimal string so that string order and numeric order agree), then
//! `datacontenttype: application/json` and `data` when there is a payload.

#[cfg(feature = "nats")]
use std::borrow::Cow;

#[cfg(feature = "nats")]
use serde::Deserialize;
#[cfg(feature = "nats")]
use serde_json::value::RawValue;

use crate::timestamp::Timestamp;

/// A sequence number as it travels: a 20-digit zero-padded decimal string, so that string
/// order and numeric order agree (the CloudEvents `sequence` extension is a string compared
/// lexicographically) and JavaScript reads it without rounding.
pub(crate) fn sequence_text(sequence: u64) -> String {
    format!("{sequence:020}")
}

/// Parses a sequence number: decimal digits (leading zeros allowed), at most `u64::MAX`.
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
pub(crate) fn parse_sequence(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// The fixed attributes of an event written to a wire.
pub(crate) struct Envelope<'a> {
    pub(crate) id: &'a str,
    pub(crate) source: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) time: Timestamp,
}

/// Writes a CloudEvent: the envelope, an optional `sequence`, and `data` (JSON text) if any.
pub(crate) fn write(envelope: &Envelope<'_>, sequence: Option<u64>, data: Option<&str>) -> String {
    let mut out = String::with_capacity(192 + data.map_or(0, str::len));
    out.push_str(r#"{"specversion":"1.0","id":"#);
    out.push_str(&quoted(envelope.id));
    out.push_str(r#","source":"#);
    out.push_str(&quoted(envelope.source));
    out.push_str(r#","type":"#);
    out.push_str(&quoted(envelope.kind));
    out.push_str(r#","time":""#);
    out.push_str(&envelope.time.to_string());
    out.push('"');
    if let Some(sequence) = sequence {
        out.push_str(r#","sequence":""#);
        out.push_str(&sequence_text(sequence));
        out.push('"');
    }
    if let Some(data) = data {
        out.push_str(r#","datacontenttype":"application/json","data":"#);
        out.push_str(data);
    }
    out.push('}');
    out
}

/// A CloudEvent read from a wire whose peers are trusted to set every attribute (NATS): all of
/// `specversion`, `id`, `source` and `type` are required.
#[cfg(feature = "nats")]
#[derive(Debug)]
pub(crate) struct Received<'a> {
    pub(crate) id: Cow<'a, str>,
    pub(crate) source: Cow<'a, str>,
    pub(crate) kind: Cow<'a, str>,
    /// The payload as JSON text; `null` when absent.
    pub(crate) data: &'a str,
}

#[cfg(feature = "nats")]
#[derive(Deserialize)]
struct Raw<'a> {
    specversion: Option<&'a str>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    datacontenttype: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    data_base64: Option<serde::de::IgnoredAny>,
}

/// Reads a CloudEvent in structured JSON mode. The error says what is wrong with it.
#[cfg(feature = "nats")]
pub(crate) fn read(text: &[u8]) -> Result<Received<'_>, String> {
    let raw: Raw<'_> = serde_json::from_slice(text).map_err(|error| {
        let lone = std::str::from_utf8(text)
            .ok()
            .and_then(|json| crate::error::LoneSurrogate::of(json, &error));
        if let Some(lone) = lone {
            format!("an attribute is not a valid string: {lone}")
        } else if error.is_syntax() || error.is_eof() {
            format!("not JSON: {error}")
        } else {
            format!("not a CloudEvent: {error}")
        }
    })?;
    match raw.specversion {
        Some("1.0") => {}
        Some(other) => return Err(format!("unsupported specversion `{other}` (expected 1.0)")),
        None => return Err("no `specversion` (expected \"1.0\")".into()),
    }
    let id = borrowed("id", raw.id)?;
    let source = borrowed("source", raw.source)?;
    let kind = borrowed("type", raw.kind)?;
    if raw.data_base64.is_some() {
        return Err("binary data (`data_base64`) is not accepted: the payload must be JSON".into());
    }
    if let Some(content_type) = &raw.datacontenttype {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(format!(
                "datacontenttype `{content_type}` is not accepted: the payload must be application/json"
            ));
        }
    }
    Ok(Received {
        id,
        source,
        kind,
        data: raw.data.map_or("null", RawValue::get),
    })
}

/// A required, non-empty string attribute.
#[cfg(feature = "nats")]
fn borrowed<'a>(name: &str, value: Option<Cow<'a, str>>) -> Result<Cow<'a, str>, String> {
    match value {
        Some(text) if !text.is_empty() => Ok(text),
        _ => Err(format!("no `{name}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_event() {
        let envelope = Envelope {
            id: "a\"b",
            source: "/demo",
            kind: "demo.ping",
            time: Timestamp::from_millis(1_700_000_000_123),
        };
        let text = write(&envelope, Some(42), Some(r#"{"n":1}"#));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["id"], "a\"b");
        assert_eq!(value["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(value["sequence"], "00000000000000000042");
        assert_eq!(value["data"]["n"], 1);
        assert_eq!(value["datacontenttype"], "application/json");
        let bare: serde_json::Value = serde_json::from_str(&write(&envelope, None, None)).unwrap();
        assert!(bare.get("data").is_none() && bare.get("sequence").is_none());
    }

    #[cfg(feature = "nats")]
    #[test]
    fn reads_what_it_writes_and_refuses_the_rest() {
        let envelope = Envelope {
            id: "7f0c",
            source: "/demo/svc/1",
            kind: "demo.ping",
            time: Timestamp::from_millis(0),
        };
        let text = write(&envelope, None, Some(r#"{"n":[1,2]}"#));
        let read_back = read(text.as_bytes()).unwrap();
        assert_eq!(
            (
                &*read_back.id,
                &*read_back.source,
                &*read_back.kind,
                read_back.data
            ),
            ("7f0c", "/demo/svc/1", "demo.ping", r#"{"n":[1,2]}"#)
        );
        let escaped = r#"{"specversion":"1.0","id":"a\u0062","source":"s","type":"t"}"#;
        assert_eq!(read(escaped.as_bytes()).unwrap().id, "ab");
        let bare = write(&envelope, None, None);
        assert_eq!(read(bare.as_bytes()).unwrap().data, "null");
        // A lone surrogate escape: in `data` it is the payload decoder's to refuse; in an
        // attribute the message says what it is, not "not JSON".
        let lone = r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":["\ud800"]}"#;
        assert_eq!(read(lone.as_bytes()).unwrap().data, r#"["\ud800"]"#);
        let lone = r#"{"specversion":"1.0","id":"1","source":"s\udc00","type":"t"}"#;
        let error = read(lone.as_bytes()).unwrap_err();
        assert!(
            error.contains("`\\udc00` at line 1 column 42 is a lone UTF-16 surrogate"),
            "{error}"
        );
        for (text, needle) in [
            ("{nope", "not JSON"),
            ("[1]", "not a CloudEvent"),
            (r#"{"id":"1","source":"s","type":"t"}"#, "specversion"),
            (
                r#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#,
                "0.3",
            ),
            (
                r#"{"specversion":"1.0","source":"s","type":"t"}"#,
                "no `id`",
            ),
            (
                r#"{"specversion":"1.0","id":"1","type":"t"}"#,
                "no `source`",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"s"}"#,
                "no `type`",
            ),
            (
                r#"{"specversion":"1.0","id":"","source":"s","type":"t"}"#,
                "no `id`",
            ),
            (
                r#"{"specversion":"1.0","id":7,"source":"s","type":"t"}"#,
                "not a CloudEvent",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AA=="}"#,
                "binary",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain"}"#,
                "text/plain",
            ),
        ] {
            let error = read(text.as_bytes()).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
