//! One client connection: first-frame auth, welcome, resume or history from the store, then
//! live frames out and client events in.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout, timeout_at};

use super::auth::constant_time_eq;
use super::frame::{self, ErrorCode, Refusal};
use super::hub::{Hub, Outgoing, RegisterError, Registration, end};
use super::start::StartRequest;
use crate::error::DispatchError;
use crate::meta::EventMeta;

/// How long a closing connection waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Most queued frames written to a client with one flush.
const BATCH: usize = 64;

/// A token bucket: `rate` tokens per second, at most `burst` saved.
struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn new(rate: u32, burst: u32) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            last: Instant::now(),
            rate: f64::from(rate),
            burst: f64::from(burst),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

struct Connection {
    hub: Arc<Hub>,
    socket: WebSocket,
    bucket: Bucket,
    /// Rate-limit refusals since the last accepted frame.
    refused_in_row: u32,
    last_heard: Instant,
    /// When the client was last sent a data frame (WebSocket pings are invisible to browsers:
    /// the heartbeat frame is sent after `ping_interval` without one).
    last_sent: Instant,
    /// The resume point: the last store sequence this client was sent (or started after).
    last_sequence: Option<u64>,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Unregisters a client when its connection ends, however it ends.
struct Registered<'a>(&'a Hub, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.unregister(self.1);
    }
}

/// Runs a connection whose upgrade was accepted. `authenticated` when the upgrade carried the
/// right token; otherwise the first frame must. `start` is what the URL asked for; the auth
/// frame's `since` / `history` fill in what it did not give.
pub(crate) async fn run(
    hub: Arc<Hub>,
    socket: WebSocket,
    authenticated: bool,
    mut start: StartRequest,
) {
    let config = &hub.config;
    let mut connection = Connection {
        bucket: Bucket::new(config.rate_per_second, config.burst),
        hub: hub.clone(),
        socket,
        refused_in_row: 0,
        last_heard: Instant::now(),
        last_sent: Instant::now(),
        last_sequence: None,
    };
    if !authenticated {
        match connection.authenticate().await {
            Some(from_frame) => start = start.or(from_frame),
            None => {
                hub.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
                connection
                    .close(frame::CLOSE_UNAUTHORIZED, "unauthorized".into())
                    .await;
                return;
            }
        }
    }
    let registration = match hub.register() {
        Ok(registration) => registration,
        Err(RegisterError::Closed) => {
            connection
                .close(frame::CLOSE_TRY_LATER, "the bridge is closed".into())
                .await;
            return;
        }
        Err(RegisterError::Store(error)) => {
            hub.counters.store_errors.fetch_add(1, Ordering::Relaxed);
            super::hub::report(&format!(
                "the bridge could not read the event store: {error}"
            ));
            connection
                .close(frame::CLOSE_INTERNAL, "cannot read the event store".into())
                .await;
            return;
        }
    };
    hub.counters.connections.fetch_add(1, Ordering::Relaxed);
    let _registered = Registered(&hub, registration.id);
    connection.serve(registration, start).await;
}

impl Connection {
    /// Waits for the `eventbus.bridge.auth` frame; returns its `since` and `history`, or `None`
    /// when the client failed to authenticate in time (or sent an invalid one of them).
    async fn authenticate(&mut self) -> Option<StartRequest> {
        let deadline = Instant::now() + self.hub.config.auth_timeout;
        loop {
            let message = match timeout_at(deadline, self.socket.recv()).await {
                Ok(Some(Ok(message))) => message,
                _ => return None,
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Ping(_) | Message::Pong(_) => continue,
                _ => return None,
            };
            if text.len() > self.hub.config.max_frame_bytes {
                return None;
            }
            let event = frame::parse(&text).ok()?;
            if event.kind != frame::AUTH {
                return None;
            }
            let data: Value = serde_json::from_str(event.data).ok()?;
            let token = data.get("token")?.as_str()?;
            if !constant_time_eq(token.as_bytes(), self.hub.config.token.as_bytes()) {
                return None;
            }
            return StartRequest::from_auth(&data);
        }
    }

    async fn serve(&mut self, mut registration: Registration, request: StartRequest) {
        let hub = self.hub.clone();
        let since = request.since;
        let (start, resumed) = match (since, registration.start) {
            (Some(since), Some(start)) if since <= start => (Some(since), true),
            (_, start) => (start, false),
        };
        // A client without a resume point may ask for recent history: the last stored events
        // up to the live stream's start, read before the welcome so that it can say how many.
        #[cfg(feature = "store")]
        let history = match (request.history(hub.config.max_history), registration.start) {
            (0, _) | (_, None) => Vec::new(),
            (count, Some(until)) => match self.history(count, until).await {
                Some(records) => records,
                None => return,
            },
        };
        // With history the stream starts just before the oldest replayed event: a client takes
        // the welcome's `sequence` as its resume point and drops stored events at or below it.
        #[cfg(feature = "store")]
        let start = history
            .first()
            .map_or(start, |first| Some(first.sequence.saturating_sub(1)));
        #[cfg(feature = "store")]
        let history_count = history.len();
        #[cfg(not(feature = "store"))]
        let history_count = 0usize;
        self.last_sequence = start;
        let manifest = hub.core.manifest();
        let config = &hub.config;
        let welcome = json!({
            "package": manifest.package,
            "fingerprint": manifest.fingerprint,
            "sequence": start.map(frame::sequence_text),
            "resumed": resumed,
            "history": history_count,
            "heartbeat": {
                "intervalMs": millis(config.ping_interval),
                "timeoutMs": millis(config.pong_timeout),
            },
            "limits": {
                "maxFrameBytes": config.max_frame_bytes,
                "framesPerSecond": config.rate_per_second,
                "burst": config.burst,
                "queue": config.queue,
            },
        });
        if !self
            .send_text(hub.control(frame::WELCOME, &welcome.to_string()))
            .await
        {
            return;
        }
        #[cfg(feature = "store")]
        if resumed && let (Some(since), Some(until)) = (since, registration.start) {
            hub.counters.resumed.fetch_add(1, Ordering::Relaxed);
            if !self.backlog(since, until).await {
                return;
            }
        }
        #[cfg(feature = "store")]
        if !history.is_empty() {
            hub.counters.history.fetch_add(1, Ordering::Relaxed);
            // Every record is at or below the live stream's start and the live stream holds
            // exactly the events after it: no gap and no duplicate at the seam.
            if !self.replay(&history).await {
                return;
            }
        }
        let interval = config.ping_interval;
        let silence = interval + config.pong_timeout;
        let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let beat = self.last_sent + interval;
            tokio::select! {
                incoming = self.socket.recv() => match incoming {
                    None => return,
                    Some(Err(error)) => {
                        if too_big(error) {
                            let reason = format!(
                                "a message exceeded {} bytes",
                                self.hub.config.hard_limit()
                            );
                            self.close(frame::CLOSE_TOO_BIG, reason).await;
                        }
                        return;
                    }
                    Some(Ok(message)) => {
                        self.last_heard = Instant::now();
                        if !self.on_message(message).await {
                            return;
                        }
                    }
                },
                outgoing = registration.rx.recv() => match outgoing {
                    Some(frame) => {
                        if !self.send_queued(frame, &mut registration.rx).await {
                            return;
                        }
                    }
                    None => {
                        // The hub let go of this client; what was queued has been sent.
                        let (code, why) = match registration.end.load(Ordering::Acquire) {
                            end::TOO_SLOW => (frame::CLOSE_TOO_SLOW, "too slow"),
                            _ => (frame::CLOSE_GOING_AWAY, "shutting down"),
                        };
                        let reason = self.resume_reason(why);
                        self.close(code, reason).await;
                        return;
                    }
                },
                _ = tokio::time::sleep_until(beat) => {
                    // Browsers cannot see WebSocket pings: this frame lets a client notice a
                    // silently dead server (docs/bridge.md, "Heartbeat").
                    let heartbeat = hub.control(frame::HEARTBEAT, "{}");
                    if !self.send_text(heartbeat).await {
                        return;
                    }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > silence {
                        return; // lost: nothing, not even a pong, for too long
                    }
                    if !self.send(Message::Ping(Bytes::new())).await {
                        return;
                    }
                }
            }
        }
    }

    /// The last `count` stored `to_ui` events at or below `until` (the live stream starts
    /// after it), oldest first; `None` when the store could not be read (the connection is
    /// then closed with 1011).
    #[cfg(feature = "store")]
    async fn history(&mut self, count: u64, until: u64) -> Option<Vec<crate::store::StoredEvent>> {
        let hub = self.hub.clone();
        let store = hub.store.clone()?;
        if hub.stored_events.is_empty() {
            return Some(Vec::new()); // an empty event list would select every stored event
        }
        let query = crate::store::Query::new()
            .events(hub.stored_events.iter().copied())
            .to_sequence(until)
            .order(crate::store::Order::Desc)
            .limit(usize::try_from(count).unwrap_or(usize::MAX));
        match tokio::task::spawn_blocking(move || store.query(&query)).await {
            Ok(Ok(mut records)) => {
                records.reverse();
                Some(records)
            }
            Ok(Err(error)) => {
                hub.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                super::hub::report(&format!(
                    "the bridge could not read the event store for a client's history: {error}"
                ));
                self.close(frame::CLOSE_INTERNAL, "cannot read the event store".into())
                    .await;
                None
            }
            Err(_) => None,
        }
    }

    /// Sends stored events (a resume's backlog or a history), counting them; `false` when the
    /// connection is gone.
    #[cfg(feature = "store")]
    async fn replay(&mut self, records: &[crate::store::StoredEvent]) -> bool {
        for record in records {
            let frame = self.hub.stored_frame(record);
            if !self.send_frame(frame).await {
                return false;
            }
            self.hub.counters.replayed.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Sends the stored events after `since` up to `until` (the live stream starts after it).
    #[cfg(feature = "store")]
    async fn backlog(&mut self, since: u64, until: u64) -> bool {
        let hub = self.hub.clone();
        let Some(store) = hub.store.clone() else {
            return true;
        };
        if hub.stored_events.is_empty() {
            // No stored event goes to the UI; an empty event list would select all of them.
            return true;
        }
        let mut cursor = since;
        while cursor < until {
            let query = crate::store::Query::new()
                .events(hub.stored_events.iter().copied())
                .after(cursor)
                .to_sequence(until)
                .limit(super::hub::PAGE);
            let store = store.clone();
            let records = match tokio::task::spawn_blocking(move || store.query(&query)).await {
                Ok(Ok(records)) => records,
                Ok(Err(error)) => {
                    hub.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                    super::hub::report(&format!(
                        "the bridge could not read the event store to resume a client: {error}"
                    ));
                    let reason = self.resume_reason("cannot read the event store");
                    self.close(frame::CLOSE_INTERNAL, reason).await;
                    return false;
                }
                Err(_) => return false,
            };
            let Some(last) = records.last().map(|r| r.sequence) else {
                break;
            };
            if !self.replay(&records).await {
                return false;
            }
            if records.len() < super::hub::PAGE {
                break;
            }
            cursor = last;
        }
        true
    }

    /// Handles one message from the client; `false` ends the connection.
    async fn on_message(&mut self, message: Message) -> bool {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                self.hub.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                if let Some(close) = self.rate_limit(None) {
                    return close.await_refusal(self).await;
                }
                let refusal = Refusal::new(
                    ErrorCode::Malformed,
                    "binary frames are not accepted: send CloudEvents as JSON text frames",
                );
                return self.refuse(refusal).await;
            }
            Message::Ping(_) | Message::Pong(_) => return true,
            Message::Close(_) => return false,
        };
        self.hub.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        let max = self.hub.config.max_frame_bytes;
        if let Some(limited) = self.rate_limit(Some(&text)) {
            return limited.await_refusal(self).await;
        }
        if text.len() > max {
            let refusal = Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "the frame has {} bytes; the limit is {max} bytes",
                    text.len()
                ),
            );
            return self.refuse(refusal).await;
        }
        let event = match frame::parse(&text) {
            Ok(event) => event,
            Err(refusal) => return self.refuse(refusal).await,
        };
        let meta = match self.allowed(&event.kind) {
            Ok(meta) => meta,
            Err(refusal) => return self.refuse(refusal.reference(Some(&event.id))).await,
        };
        let core = self.hub.core.clone();
        let data = event.data.to_owned();
        let name = meta.name;
        let emitted = tokio::task::spawn_blocking(move || core.emit_json(name, &data)).await;
        let id = event.id;
        match emitted {
            Ok(Ok(())) => {
                self.hub.counters.accepted.fetch_add(1, Ordering::Relaxed);
                let ack = json!({ "ref": id, "event": name }).to_string();
                let ack = self.hub.control(frame::ACK, &ack);
                self.send_text(ack).await
            }
            Ok(Err(error)) => {
                self.refuse(refusal_of(error, name).reference(Some(&id)))
                    .await
            }
            Err(_) => {
                let refusal = Refusal::new(ErrorCode::Unavailable, "the server is stopping")
                    .reference(Some(&id))
                    .event(name);
                self.refuse(refusal).await
            }
        }
    }

    /// `None` when the frame is within the rate limit; else what to do about it.
    fn rate_limit(&mut self, text: Option<&str>) -> Option<Limited> {
        match self.bucket.take() {
            Ok(()) => {
                self.refused_in_row = 0;
                None
            }
            Err(wait) => {
                self.refused_in_row += 1;
                if self.refused_in_row > self.hub.config.burst {
                    return Some(Limited::Close);
                }
                let reference = text
                    .filter(|t| t.len() <= self.hub.config.max_frame_bytes)
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
                    .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
                let mut refusal = Refusal::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} frames per second (burst {}): the frame was dropped",
                        self.hub.config.rate_per_second, self.hub.config.burst
                    ),
                )
                .reference(reference.as_deref());
                refusal.retry_after_ms = Some(wait.as_millis().max(1) as u64);
                Some(Limited::Refuse(refusal))
            }
        }
    }

    /// The event a client may send as `kind`, or why not.
    fn allowed(&self, kind: &str) -> Result<&'static EventMeta, Refusal> {
        let hub = &self.hub;
        let package = hub.core.manifest().package;
        let Some(name) = kind.strip_prefix(hub.prefix.as_str()) else {
            let message = if kind == frame::AUTH {
                "this connection is already authenticated".to_owned()
            } else {
                format!(
                    "`{kind}` is not an event of package `{package}`: types are `{package}.<event>`"
                )
            };
            let code = if kind == frame::AUTH {
                ErrorCode::Malformed
            } else {
                ErrorCode::UnknownEvent
            };
            return Err(Refusal::new(code, message));
        };
        let event = hub
            .core
            .find(name)
            .map_err(|error| Refusal::new(ErrorCode::UnknownEvent, error.to_string()))?;
        let meta = event.meta();
        if !meta.ui.from_ui() {
            return Err(Refusal::new(
                ErrorCode::NotAllowed,
                format!(
                    "`{name}` may not be sent by clients: its manifest says `ui: {}`",
                    meta.ui.as_str()
                ),
            )
            .event(name));
        }
        Ok(meta)
    }

    async fn refuse(&mut self, refusal: Refusal) -> bool {
        self.hub.counters.error(refusal.code);
        let text = self.hub.control(frame::ERROR, &frame::error_data(&refusal));
        self.send_text(text).await
    }

    fn resume_reason(&self, why: &str) -> String {
        json!({ "resume": self.last_sequence.map(frame::sequence_text), "reason": why }).to_string()
    }

    /// Sends one frame (a replayed stored event) and notes its sequence.
    #[cfg(feature = "store")]
    async fn send_frame(&mut self, frame: Outgoing) -> bool {
        let sequence = frame.sequence;
        if !self.send(Message::Text(frame.text)).await {
            return false;
        }
        if sequence.is_some() {
            self.last_sequence = sequence;
        }
        true
    }

    /// Sends `first` and whatever else is already queued (up to [`BATCH`] frames) with one
    /// flush: under a burst, a client's frames leave in a few large writes rather than one
    /// system call each. The write timeout covers the whole batch.
    async fn send_queued(
        &mut self,
        first: Outgoing,
        rx: &mut tokio::sync::mpsc::Receiver<Outgoing>,
    ) -> bool {
        let deadline = Instant::now() + self.hub.config.write_timeout;
        let mut next = Some(first);
        let mut count = 0;
        let mut sequence = None;
        while let Some(frame) = next.take() {
            let fed = timeout_at(deadline, self.socket.feed(Message::Text(frame.text))).await;
            if !matches!(fed, Ok(Ok(()))) {
                return false;
            }
            sequence = frame.sequence.or(sequence);
            count += 1;
            if count < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !matches!(timeout_at(deadline, self.socket.flush()).await, Ok(Ok(()))) {
            return false;
        }
        self.last_sent = Instant::now();
        self.hub
            .counters
            .frames_out
            .fetch_add(count as u64, Ordering::Relaxed);
        if sequence.is_some() {
            self.last_sequence = sequence;
        }
        true
    }

    async fn send_text(&mut self, text: String) -> bool {
        self.send(Message::Text(Utf8Bytes::from(text))).await
    }

    /// Sends a message within the write timeout; `false` when the connection is gone.
    async fn send(&mut self, message: Message) -> bool {
        let is_data = matches!(message, Message::Text(_));
        let sent = timeout(self.hub.config.write_timeout, self.socket.send(message)).await;
        let ok = matches!(sent, Ok(Ok(())));
        if ok {
            self.hub.counters.frames_out.fetch_add(1, Ordering::Relaxed);
            if is_data {
                self.last_sent = Instant::now();
            }
        }
        ok
    }

    /// Sends a close frame and waits briefly for the client's, reading (and dropping) what it
    /// still sends, so the close frame is not lost to a reset connection.
    async fn close(&mut self, code: u16, reason: String) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        if !self.send(Message::Close(Some(frame))).await {
            return;
        }
        let deadline = Instant::now() + CLOSE_WAIT.min(self.hub.config.write_timeout);
        while let Ok(Some(Ok(message))) = timeout_at(deadline, self.socket.recv()).await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    }
}

/// A frame over the rate limit: refuse it, or close a client that does not slow down.
enum Limited {
    Refuse(Refusal),
    Close,
}

impl Limited {
    async fn await_refusal(self, connection: &mut Connection) -> bool {
        match self {
            Limited::Refuse(refusal) => connection.refuse(refusal).await,
            Limited::Close => {
                connection
                    .close(frame::CLOSE_POLICY, "rate limit exceeded".into())
                    .await;
                false
            }
        }
    }
}

/// The refusal for a client event the bus did not accept.
fn refusal_of(error: DispatchError, event: &'static str) -> Refusal {
    match &error {
        DispatchError::InvalidPayload { path, .. } => {
            let mut refusal =
                Refusal::new(ErrorCode::InvalidPayload, error.to_string()).event(event);
            refusal.path = Some(path.clone());
            refusal
        }
        DispatchError::UnexpectedPayload { .. } => {
            let mut refusal =
                Refusal::new(ErrorCode::InvalidPayload, error.to_string()).event(event);
            refusal.path = Some("$".into());
            refusal
        }
        DispatchError::UnknownEvent { .. } => {
            Refusal::new(ErrorCode::UnknownEvent, error.to_string()).event(event)
        }
        _ => Refusal::new(ErrorCode::Unavailable, error.to_string()).event(event),
    }
}

/// Whether a read failed because a message exceeded the WebSocket layer's size limit.
fn too_big(error: axum::Error) -> bool {
    error
        .into_inner()
        .downcast::<tungstenite::Error>()
        .is_ok_and(|e| matches!(*e, tungstenite::Error::Capacity(_)))
}
