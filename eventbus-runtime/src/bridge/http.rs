//! The upgrade request: origin, token, `since` / `history` and subprotocol checks, before any
//! frame.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::header::{HOST, ORIGIN, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{bearer, constant_time_eq};
use super::frame::SUBPROTOCOL;
use super::hub::Hub;
use super::start::StartRequest;

/// Bytes read from a client at a time. tungstenite's default (128 KiB) is zero-filled on the
/// first read, so every connection would hold 128 KiB of resident memory for the few small
/// frames a client sends; the buffer still grows to fit a larger frame when one comes.
const READ_BUFFER: usize = 4 * 1024;

/// Bytes of frames gathered before a write to the socket (a flush writes the rest): a burst
/// leaves in writes of this size. The buffer only grows this large while a client is sent a
/// burst.
const WRITE_BUFFER: usize = 16 * 1024;

#[derive(Deserialize, Default)]
struct Params {
    token: Option<String>,
    since: Option<String>,
    history: Option<String>,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// `GET <path>`: checks the request, then upgrades it.
pub(crate) async fn upgrade(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let counters = &hub.counters;
    if hub.is_closed() {
        counters.refused_other.fetch_add(1, Ordering::Relaxed);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the event bridge is closed",
        );
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| hub.config.origins.allows(origin, host));
        if !allowed {
            counters.refused_origin.fetch_add(1, Ordering::Relaxed);
            return refuse(StatusCode::FORBIDDEN, "this origin may not connect");
        }
    }
    let params = match Query::<Params>::try_from_uri(&uri) {
        Ok(Query(params)) => params,
        Err(_) => Params::default(),
    };
    let token = bearer(&headers).or(params.token.as_deref());
    let authenticated = match token {
        Some(token) if constant_time_eq(token.as_bytes(), hub.config.token.as_bytes()) => true,
        None if hub.config.first_frame_auth => false,
        _ => {
            counters.refused_token.fetch_add(1, Ordering::Relaxed);
            let mut response = refuse(StatusCode::UNAUTHORIZED, "a valid token is required");
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                "Bearer realm=\"eventbus\"".parse().expect("a valid header"),
            );
            return response;
        }
    };
    let start = match StartRequest::from_query(params.since.as_deref(), params.history.as_deref()) {
        Ok(start) => start,
        Err(problem) => {
            counters.refused_other.fetch_add(1, Ordering::Relaxed);
            return refuse(StatusCode::BAD_REQUEST, problem);
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            counters.refused_other.fetch_add(1, Ordering::Relaxed);
            return rejection.into_response();
        }
    };
    if !ws.requested_protocols().any(|p| p == SUBPROTOCOL) {
        counters.refused_other.fetch_add(1, Ordering::Relaxed);
        return refuse(
            StatusCode::BAD_REQUEST,
            "offer the `cloudevents.json` WebSocket subprotocol (Sec-WebSocket-Protocol)",
        );
    }
    // Reserved last, so a refused request never holds a slot; released when the connection
    // ends, or when the upgrade never completes (the callback is dropped).
    let Some(slot) = Slot::take(&hub) else {
        counters.refused_busy.fetch_add(1, Ordering::Relaxed);
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections to the event bridge; try again later",
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, "5".parse().expect("a valid header"));
        return response;
    };
    let limit = hub.config.hard_limit();
    ws.protocols([SUBPROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            super::conn::run(hub, socket, authenticated, start).await;
            drop(slot);
        })
}

/// One of the [`max_connections`](super::BridgeConfig::max_connections) open connections.
struct Slot(Arc<Hub>);

impl Slot {
    fn take(hub: &Arc<Hub>) -> Option<Slot> {
        let max = hub.config.max_connections;
        hub.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(hub.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}
