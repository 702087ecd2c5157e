//! Where a client's stream starts, as asked at the handshake: after a resume point (`since`),
//! or with the last stored events (`history=N`) when it has none.

use serde_json::Value;

use super::frame;

/// What a client asked for in the query string or in its auth frame's `data`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StartRequest {
    /// Resume after this store sequence.
    pub(crate) since: Option<u64>,
    /// Without `since`: first the last this many stored `to_ui` events.
    pub(crate) history: Option<u64>,
}

impl StartRequest {
    /// The query parameters' values (`?since=…&history=…`); an empty value counts as absent.
    /// `Err` is the body of the 400 answer.
    pub(crate) fn from_query(
        since: Option<&str>,
        history: Option<&str>,
    ) -> Result<StartRequest, &'static str> {
        let number = |text: Option<&str>, problem| match text {
            None | Some("") => Ok(None),
            Some(text) => frame::parse_sequence(text).map(Some).ok_or(problem),
        };
        Ok(StartRequest {
            since: number(since, "`since` must be a sequence number (decimal digits)")?,
            history: number(
                history,
                "`history` must be a number of events (decimal digits)",
            )?,
        })
    }

    /// The `since` and `history` of an auth frame's `data` (each a decimal string or a JSON
    /// integer, or absent / `null`); `None` when one is something else.
    pub(crate) fn from_auth(data: &Value) -> Option<StartRequest> {
        Some(StartRequest {
            since: number(data.get("since"))?,
            history: number(data.get("history"))?,
        })
    }

    /// Each value of `self`, or else `other`'s (the URL's values win over the auth frame's).
    pub(crate) fn or(self, other: StartRequest) -> StartRequest {
        StartRequest {
            since: self.since.or(other.since),
            history: self.history.or(other.history),
        }
    }

    /// How many stored events to replay as history, at most `max`: none when the client
    /// resumes (`since` wins) or did not ask.
    pub(crate) fn history(&self, max: u64) -> u64 {
        match (self.since, self.history) {
            (None, Some(n)) => n.min(max),
            _ => 0,
        }
    }
}

/// A number of an auth frame: `Some(None)` when absent or `null`, `None` when invalid.
fn number(value: Option<&Value>) -> Option<Option<u64>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(text)) => frame::parse_sequence(text).map(Some),
        Some(Value::Number(n)) => n.as_u64().map(Some),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_values_are_decimal_digits_or_absent() {
        let request = StartRequest::from_query(Some("7"), Some("00030")).unwrap();
        assert_eq!((request.since, request.history), (Some(7), Some(30)));
        assert_eq!(
            StartRequest::from_query(Some(""), None).unwrap(),
            StartRequest::default()
        );
        for bad in ["-1", "1.5", "ten", "18446744073709551616"] {
            let error = StartRequest::from_query(None, Some(bad)).unwrap_err();
            assert!(error.contains("`history`"), "{error}");
            let error = StartRequest::from_query(Some(bad), None).unwrap_err();
            assert!(error.contains("`since`"), "{error}");
        }
    }

    #[test]
    fn auth_values_are_strings_or_integers() {
        let request = StartRequest::from_auth(&json!({"token": "t", "history": 5})).unwrap();
        assert_eq!((request.since, request.history), (None, Some(5)));
        let request = StartRequest::from_auth(&json!({"since": "3", "history": null})).unwrap();
        assert_eq!((request.since, request.history), (Some(3), None));
        for bad in [json!(-1), json!(2.5), json!("x"), json!([1]), json!({})] {
            assert_eq!(StartRequest::from_auth(&json!({ "history": bad })), None);
        }
    }

    #[test]
    fn since_wins_and_history_is_clamped() {
        let both = StartRequest {
            since: Some(4),
            history: Some(10),
        };
        assert_eq!(both.history(100), 0);
        let history = StartRequest {
            since: None,
            history: Some(5_000),
        };
        assert_eq!(history.history(1_000), 1_000);
        assert_eq!(history.history(0), 0);
        assert_eq!(StartRequest::default().history(1_000), 0);
        let url = StartRequest {
            since: None,
            history: Some(3),
        };
        let frame = StartRequest {
            since: Some(9),
            history: Some(8),
        };
        assert_eq!(
            url.or(frame),
            StartRequest {
                since: Some(9),
                history: Some(3)
            }
        );
    }
}
