//! The frames: CloudEvents 1.0 in structured JSON mode, events and control frames alike.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::LoneSurrogate;

/// The WebSocket subprotocol a client must offer: CloudEvents' JSON format.
pub const SUBPROTOCOL: &str = "cloudevents.json";
/// `type` of the frame the server sends first, once a connection is authenticated.
pub const WELCOME: &str = "eventbus.bridge.welcome";
/// `type` of the frame that accepts a client's event.
pub const ACK: &str = "eventbus.bridge.ack";
/// `type` of the frame that refuses a client's frame.
pub const ERROR: &str = "eventbus.bridge.error";
/// `type` of the frame the server sends when it sent nothing else for the ping interval, so
/// a client can tell a quiet server from a dead one (data: `{}`).
pub const HEARTBEAT: &str = "eventbus.bridge.heartbeat";
/// `type` of the frame with which a client authenticates (when it gave no token at the
/// upgrade).
pub const AUTH: &str = "eventbus.bridge.auth";

/// Close code: the first-frame authentication failed or did not come in time.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: the client fell [`queue`](super::BridgeConfig::queue) frames behind; the reason
/// carries its resume point.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code (standard): the server is shutting down; the reason carries the resume point.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code (standard): the client kept sending over its rate limit.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code (standard): a message too large to read at all.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code (standard): the server could not read the event store.
pub const CLOSE_INTERNAL: u16 = 1011;
/// Close code (standard): the server does not accept connections now (the bridge is closed).
pub const CLOSE_TRY_LATER: u16 = 1013;

/// Why a client's frame was refused: the `code` of an error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not a CloudEvent (`specversion` `1.0`, string `id` and `type`), binary, or a
    /// `datacontenttype` other than JSON. Also an attribute the bridge reads holding a lone
    /// UTF-16 surrogate escape (`"\ud800"`): JSON by the grammar, but not a string.
    Malformed,
    /// The `type` is not `<package>.<event>` of an event of the manifest.
    UnknownEvent,
    /// The event exists but its manifest `ui` does not let browsers send it.
    NotAllowed,
    /// The `data` does not match the event's payload type. A lone UTF-16 surrogate escape in a
    /// string or key of `data` is one of these (the manifest's `string` excludes them, as the
    /// generated TypeScript guards do), with the `path` of that string.
    InvalidPayload,
    /// The frame is larger than [`max_frame_bytes`](super::BridgeConfig::max_frame_bytes).
    TooLarge,
    /// The client sent faster than its [`rate_limit`](super::BridgeConfig::rate_limit).
    RateLimited,
    /// The bus refused the event: it is shut down, or the store could not write it.
    Unavailable,
}

impl ErrorCode {
    /// Every code, for metrics.
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::Malformed,
        ErrorCode::UnknownEvent,
        ErrorCode::NotAllowed,
        ErrorCode::InvalidPayload,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
    ];

    /// The wire spelling: `malformed`, `unknown_event`, `not_allowed`, `invalid_payload`,
    /// `too_large`, `rate_limited`, `unavailable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::InvalidPayload => "invalid_payload",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

/// A refusal, before it becomes an error frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// The `id` of the refused frame, when it had one.
    pub(crate) reference: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) retry_after_ms: Option<u64>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            reference: None,
            event: None,
            path: None,
            retry_after_ms: None,
        }
    }

    pub(crate) fn reference(mut self, id: Option<&str>) -> Refusal {
        self.reference = id.map(str::to_owned);
        self
    }

    pub(crate) fn event(mut self, name: &str) -> Refusal {
        self.event = Some(name.to_owned());
        self
    }
}

// The envelope is shared with the other wires (NATS): see `crate::cloudevents`.
pub(crate) use crate::cloudevents::{Envelope, parse_sequence, sequence_text, write};

/// The `data` of an error frame.
pub(crate) fn error_data(refusal: &Refusal) -> String {
    let mut data = serde_json::Map::new();
    data.insert("code".into(), refusal.code.as_str().into());
    data.insert("message".into(), refusal.message.clone().into());
    data.insert(
        "ref".into(),
        refusal.reference.clone().map_or(Value::Null, Value::String),
    );
    if let Some(event) = &refusal.event {
        data.insert("event".into(), event.clone().into());
    }
    if let Some(path) = &refusal.path {
        data.insert("path".into(), path.clone().into());
    }
    if let Some(ms) = refusal.retry_after_ms {
        data.insert("retryAfterMs".into(), ms.into());
    }
    Value::Object(data).to_string()
}

/// A frame from a client, as far as the envelope goes.
#[derive(Debug, Deserialize)]
pub(crate) struct Incoming<'a> {
    specversion: Option<String>,
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    datacontenttype: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    data_base64: Option<serde::de::IgnoredAny>,
}

/// The `id` a refusal of a frame that is not a CloudEvent quotes: the frame's string `id`
/// when the frame is JSON, whatever else is wrong with it (other attributes are skipped
/// unread, so a lone surrogate elsewhere does not hide the `id`).
fn id_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        id: Option<Value>,
    }
    match serde_json::from_str::<Id>(text).ok()?.id? {
        Value::String(id) => Some(id),
        _ => None,
    }
}

/// A client frame that is a well-formed CloudEvent.
#[derive(Debug)]
pub(crate) struct ClientEvent<'a> {
    pub(crate) id: String,
    pub(crate) kind: String,
    /// The payload as JSON text; `null` when absent.
    pub(crate) data: &'a str,
}

/// Reads a client frame's envelope. Errors are `malformed` refusals carrying the frame's `id`
/// when it could be read.
pub(crate) fn parse(text: &str) -> Result<ClientEvent<'_>, Refusal> {
    let incoming: Incoming<'_> = match serde_json::from_str(text) {
        Ok(incoming) => incoming,
        Err(error) => {
            let message = if let Some(lone) = LoneSurrogate::of(text, &error) {
                // JSON by the grammar (and to `JSON.parse`), but an attribute the bridge reads
                // is not a string it can hold.
                format!("an attribute of the frame is not a valid string: {lone}")
            } else if error.is_syntax() || error.is_eof() {
                format!("the frame is not JSON: {error}")
            } else {
                format!("the frame is not a CloudEvent: {error}")
            };
            return Err(
                Refusal::new(ErrorCode::Malformed, message).reference(id_of(text).as_deref())
            );
        }
    };
    let id = incoming.id.filter(|id| !id.is_empty());
    let malformed =
        |message: &str| Refusal::new(ErrorCode::Malformed, message).reference(id.as_deref());
    match incoming.specversion.as_deref() {
        Some("1.0") => {}
        Some(other) => {
            return Err(malformed(&format!(
                "unsupported specversion `{other}`: the bridge speaks CloudEvents 1.0"
            )));
        }
        None => {
            return Err(malformed(
                "the frame has no `specversion` (expected \"1.0\")",
            ));
        }
    }
    let Some(kind) = incoming.kind.filter(|k| !k.is_empty()) else {
        return Err(malformed("the frame has no `type`"));
    };
    if incoming.data_base64.is_some() {
        return Err(malformed(
            "binary data (`data_base64`) is not accepted: send the payload as JSON in `data`",
        ));
    }
    if let Some(content_type) = &incoming.datacontenttype {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(malformed(&format!(
                "datacontenttype `{content_type}` is not accepted: the payload must be application/json"
            )));
        }
    }
    let Some(id) = id.clone() else {
        return Err(malformed("the frame has no `id`"));
    };
    Ok(ClientEvent {
        id,
        kind,
        data: incoming.data.map_or("null", RawValue::get),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_envelopes() {
        let ok =
            parse(r#"{"specversion":"1.0","id":"1","type":"demo.ping","data":{"a":[1]}}"#).unwrap();
        assert_eq!(
            (ok.id.as_str(), ok.kind.as_str(), ok.data),
            ("1", "demo.ping", r#"{"a":[1]}"#)
        );
        assert_eq!(
            parse(r#"{"specversion":"1.0","id":"1","type":"x"}"#)
                .unwrap()
                .data,
            "null"
        );
        for (text, needle) in [
            ("nope", "not JSON"),
            ("[1]", "not a CloudEvent"),
            (r#"{"id":"1","type":"x"}"#, "specversion"),
            (r#"{"specversion":"0.3","id":"1","type":"x"}"#, "0.3"),
            (r#"{"specversion":"1.0","type":"x"}"#, "no `id`"),
            (r#"{"specversion":"1.0","id":"1"}"#, "no `type`"),
            (
                r#"{"specversion":"1.0","id":7,"type":"x"}"#,
                "not a CloudEvent",
            ),
            (
                r#"{"specversion":"1.0","id":"1","type":"x","data_base64":"AA=="}"#,
                "binary",
            ),
            (
                r#"{"specversion":"1.0","id":"1","type":"x","datacontenttype":"text/plain"}"#,
                "text/plain",
            ),
        ] {
            let refusal = parse(text).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::Malformed, "{text}");
            assert!(
                refusal.message.contains(needle),
                "{text}: {}",
                refusal.message
            );
        }
        let refusal = parse(r#"{"specversion":"2","id":"x7","type":"t"}"#).unwrap_err();
        assert_eq!(refusal.reference.as_deref(), Some("x7"));
    }

    /// A lone UTF-16 surrogate escape is JSON by the grammar (`JSON.stringify` writes one) but
    /// no Rust string holds it. In `data` the envelope passes it on, so the payload's decoder
    /// refuses it as `invalid_payload` with the path of its string (`tests/bridge.rs`); in an
    /// attribute the envelope reads it is `malformed`, saying so and quoting the frame's `id`.
    #[test]
    fn lone_surrogates_in_attributes_are_malformed_and_in_data_left_to_the_payload() {
        let ok =
            parse(r#"{"specversion":"1.0","id":"1","type":"demo.level","data":{"v":"\ud800"}}"#)
                .unwrap();
        assert_eq!(ok.data, r#"{"v":"\ud800"}"#);
        // Attributes the bridge ignores are not read either.
        assert!(parse(r#"{"specversion":"1.0","id":"1","type":"t","subject":"\udc00"}"#).is_ok());
        for (text, reference, column) in [
            (
                r#"{"specversion":"1.0","id":"a\ud800","type":"t"}"#,
                None,
                29,
            ),
            (
                r#"{"specversion":"1.0","id":"7","type":"t\udfff"}"#,
                Some("7"),
                40,
            ),
            (
                r#"{"specversion":"1.0","id":"8","type":"t","datacontenttype":"\ud800\u0041"}"#,
                Some("8"),
                61,
            ),
            (
                r#"{"specversion":"1.\ud800","id":"9","type":"t"}"#,
                Some("9"),
                19,
            ),
        ] {
            let refusal = parse(text).unwrap_err();
            assert_eq!(refusal.code, ErrorCode::Malformed, "{text}");
            assert_eq!(refusal.reference.as_deref(), reference, "{text}");
            assert!(
                refusal.message.contains("lone UTF-16 surrogate")
                    && refusal.message.contains(&format!("column {column} ")),
                "{text}: {}",
                refusal.message
            );
            assert!(!refusal.message.contains("not JSON"), "{}", refusal.message);
        }
        // A syntax error after a lone surrogate in `data` is not blamed on it.
        let refusal = parse(
            r#"{"specversion":"1.0","id":"1","type":"t","data":"\ud800","other":[1, 2],"x":}"#,
        )
        .unwrap_err();
        assert!(refusal.message.contains("not JSON"), "{}", refusal.message);
    }

    #[test]
    fn sequences_are_padded_and_parsed() {
        assert_eq!(sequence_text(7), "00000000000000000007");
        assert_eq!(sequence_text(u64::MAX), "18446744073709551615");
        assert_eq!(parse_sequence("00000000000000000007"), Some(7));
        assert_eq!(parse_sequence("18446744073709551616"), None);
        assert_eq!(parse_sequence("-1"), None);
        assert_eq!(parse_sequence(""), None);
    }
}
