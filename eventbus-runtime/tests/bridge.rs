//! The WebSocket bridge against real clients (tokio-tungstenite) over loopback TCP: the
//! handshake checks, every refusal, slow clients, resume and history from the store, shutdown.
//!
//! No assertion depends on timing: waits are for frames or conditions, each bounded, and fail
//! with a message saying what did not come.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventbus_runtime::bridge::{self, AllowedOrigins, Bridge, BridgeConfig};
use eventbus_runtime::{
    BusCore, Event, EventMeta, ManifestMeta, PersistedEvent, Policies, Signal, SqliteStore,
    UiDirection,
};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const TOKEN: &str = "test-token-0123456789";
/// The longest any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

const fn event(
    name: &'static str,
    payload: Option<&'static str>,
    persist: bool,
    ui: UiDirection,
) -> EventMeta {
    EventMeta {
        name,
        category: "test",
        description: "",
        payload,
        persist,
        ui,
        scope: eventbus_runtime::Scope::Local,
        deprecated: None,
        policies: Policies::NONE,
    }
}

static EVENTS: [EventMeta; 5] = [
    event("notice", Some("Notice"), true, UiDirection::ToUi),
    event("status", Some("Status"), false, UiDirection::ToUi),
    event("refresh", None, false, UiDirection::FromUi),
    event("level", Some("Level"), false, UiDirection::Both),
    event("audit", Some("u32"), true, UiDirection::None),
];
static MANIFEST: ManifestMeta = ManifestMeta {
    package: "demo",
    version: 1,
    fingerprint: "0123456789abcdef",
    events: &EVENTS,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Notice {
    title: String,
    n: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Status {
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Level {
    value: u8,
}

/// A bus with a SQLite store, its bridge served on an ephemeral loopback port, and counters of
/// what the handlers of the client-sent events saw.
struct Server {
    _dir: tempfile::TempDir,
    core: BusCore,
    notice: PersistedEvent<Notice>,
    status: Event<Status>,
    audit: PersistedEvent<u32>,
    refreshes: Arc<AtomicUsize>,
    levels: Arc<std::sync::Mutex<Vec<u8>>>,
    bridge: Bridge,
    addr: std::net::SocketAddr,
}

fn temp_dir() -> tempfile::TempDir {
    // tmpfs when there is one: every persisted emit waits for an fsync.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("a temporary directory")
}

async fn start(config: BridgeConfig) -> Server {
    let dir = temp_dir();
    let store = SqliteStore::open(dir.path().join("events.db")).expect("the store opens");
    let core: BusCore = BusCore::builder(&MANIFEST)
        .event_store(store)
        .build()
        .expect("the bus builds");
    let meta = |name| MANIFEST.event(name).unwrap();
    let notice = PersistedEvent::new(&core, meta("notice"));
    let status = Event::new(&core, meta("status"));
    let refresh = Signal::new(&core, meta("refresh"));
    let level: Event<Level> = Event::new(&core, meta("level"));
    let audit = PersistedEvent::new(&core, meta("audit"));
    let refreshes = Arc::new(AtomicUsize::new(0));
    let count = refreshes.clone();
    refresh.on(move || {
        count.fetch_add(1, Ordering::SeqCst);
    });
    let levels = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = levels.clone();
    level.on(move |l: &Level| seen.lock().unwrap().push(l.value));
    let bridge = Bridge::new(&core, config);
    let addr = listen(bridge.router().merge(bridge.metrics_router())).await;
    Server {
        _dir: dir,
        core,
        notice,
        status,
        audit,
        refreshes,
        levels,
        bridge,
        addr,
    }
}

/// Serves `router` on an ephemeral loopback port: its address.
async fn listen(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn config() -> BridgeConfig {
    BridgeConfig::new(TOKEN)
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a test client presents itself.
#[derive(Default, Clone)]
struct Hello {
    query: String,
    bearer: Option<String>,
    origin: Option<String>,
    no_subprotocol: bool,
}

impl Hello {
    fn token() -> Hello {
        Hello {
            bearer: Some(TOKEN.into()),
            ..Hello::default()
        }
    }

    fn query(mut self, query: &str) -> Hello {
        self.query = query.into();
        self
    }
}

async fn upgrade(server: &Server, hello: Hello) -> Result<Socket, tungstenite::Error> {
    upgrade_at(server.addr, hello).await
}

/// [`upgrade`] for a bridge served at `addr`.
async fn upgrade_at(
    addr: std::net::SocketAddr,
    hello: Hello,
) -> Result<Socket, tungstenite::Error> {
    let url = format!("ws://{addr}/events{}", hello.query);
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    if !hello.no_subprotocol {
        headers.insert(
            "Sec-WebSocket-Protocol",
            "cloudevents.json".parse().unwrap(),
        );
    }
    if let Some(token) = &hello.bearer {
        headers.insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(origin) = &hello.origin {
        headers.insert("Origin", origin.parse().unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.to_str().unwrap()),
        Some("cloudevents.json")
    );
    Ok(socket)
}

/// The HTTP status of a refused upgrade.
async fn refused(server: &Server, hello: Hello) -> u16 {
    match upgrade(server, hello).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

/// Connects with the token in the header and reads the welcome frame.
async fn connect(server: &Server, query: &str) -> (Socket, Value) {
    connect_at(server.addr, query).await
}

/// [`connect`] to a bridge served at `addr`.
async fn connect_at(addr: std::net::SocketAddr, query: &str) -> (Socket, Value) {
    let mut socket = upgrade_at(addr, Hello::token().query(query))
        .await
        .expect("the upgrade succeeds");
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["type"], "eventbus.bridge.welcome", "{welcome}");
    (socket, welcome)
}

/// The next text frame, as JSON.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("no frame came within the wait")
            .expect("the connection ended while a frame was expected")
            .expect("the connection failed while a frame was expected");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("frames are JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame; returns its code and reason.
async fn closed(socket: &mut Socket) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the server did not close the connection within the wait");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("the connection failed instead of closing: {error}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::text(frame.to_string()))
        .await
        .expect("the frame is sent");
}

fn client_event(id: &str, kind: &str, data: Option<Value>) -> Value {
    let mut frame = json!({
        "specversion": "1.0", "id": id, "source": "/test-client", "type": kind,
    });
    if let Some(data) = data {
        frame["data"] = data;
        frame["datacontenttype"] = "application/json".into();
    }
    frame
}

fn seq(frame: &Value) -> u64 {
    frame["sequence"]
        .as_str()
        .unwrap_or_else(|| panic!("no sequence in {frame}"))
        .parse()
        .unwrap()
}

/// Waits (bounded) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn notice_of(n: u32) -> Notice {
    Notice {
        title: format!("notice {n}"),
        n,
    }
}

#[tokio::test]
async fn sends_to_ui_events_as_cloudevents() {
    let server = start(config()).await;
    let (mut socket, welcome) = connect(&server, "").await;
    assert_eq!(welcome["specversion"], "1.0");
    assert_eq!(welcome["source"], "/demo");
    assert_eq!(welcome["data"]["package"], "demo");
    assert_eq!(welcome["data"]["fingerprint"], "0123456789abcdef");
    assert_eq!(welcome["data"]["sequence"], "00000000000000000000");
    assert_eq!(welcome["data"]["resumed"], false);
    assert_eq!(welcome["data"]["limits"]["maxFrameBytes"], 65536);

    let receipt = server.notice.emit(notice_of(1)).unwrap();
    server.status.emit(Status {
        text: "syncing".into(),
    });

    let frame = next(&mut socket).await;
    assert_eq!(frame["specversion"], "1.0");
    assert_eq!(frame["type"], "demo.notice");
    assert_eq!(frame["source"], "/demo");
    assert_eq!(frame["datacontenttype"], "application/json");
    assert_eq!(frame["data"], json!({"title": "notice 1", "n": 1}));
    assert_eq!(frame["sequence"], "00000000000000000001");
    assert_eq!(
        frame["id"].as_str().unwrap(),
        receipt.id().unwrap().to_string()
    );
    let time = frame["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.len() == 24,
        "RFC 3339 time: {time}"
    );

    let frame = next(&mut socket).await;
    assert_eq!(frame["type"], "demo.status");
    assert_eq!(frame["data"], json!({"text": "syncing"}));
    assert!(
        frame.get("sequence").is_none(),
        "live-only events have no sequence"
    );
    assert!(!frame["id"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn only_events_the_manifest_sends_to_the_ui_cross() {
    let server = start(config()).await;
    let (mut socket, _) = connect(&server, "").await;
    // `audit` is `ui: none` (and persisted), `refresh` is `from_ui`: neither reaches clients.
    server.audit.emit(7).unwrap();
    server.core.emit_json("refresh", "null").unwrap();
    server.status.emit(Status {
        text: "after".into(),
    });
    let frame = next(&mut socket).await;
    assert_eq!(frame["type"], "demo.status", "{frame}");
    // The persisted `audit` took sequence 1; the next notice is 2 and nothing else came.
    server.notice.emit(notice_of(2)).unwrap();
    let frame = next(&mut socket).await;
    assert_eq!(
        (frame["type"].as_str(), seq(&frame)),
        (Some("demo.notice"), 2)
    );
}

#[tokio::test]
async fn accepts_from_ui_events_validated_and_acknowledged() {
    let server = start(config()).await;
    let (mut socket, _) = connect(&server, "").await;
    send(&mut socket, client_event("r1", "demo.refresh", None)).await;
    let ack = next(&mut socket).await;
    assert_eq!(ack["type"], "eventbus.bridge.ack");
    assert_eq!(ack["data"], json!({"ref": "r1", "event": "refresh"}));
    assert_eq!(server.refreshes.load(Ordering::SeqCst), 1);

    // `level` is `both`: accepted, and sent to the clients like any `to_ui` event.
    send(
        &mut socket,
        client_event("l1", "demo.level", Some(json!({"value": 3}))),
    )
    .await;
    let mut frames = [next(&mut socket).await, next(&mut socket).await];
    frames.sort_by_key(|f| f["type"].as_str().unwrap().to_owned());
    assert_eq!(frames[0]["type"], "demo.level");
    assert_eq!(frames[0]["data"], json!({"value": 3}));
    assert_eq!(frames[1]["type"], "eventbus.bridge.ack");
    assert_eq!(*server.levels.lock().unwrap(), [3]);
    assert_eq!(server.bridge.stats().accepted, 2);
}

/// Every kind of bad frame: an error frame with its code (and `ref`, `event`, `path` where
/// they apply), nothing emitted, and the connection and the bus still work.
#[tokio::test]
async fn refuses_bad_frames_and_keeps_working() {
    let server = start(config().max_frame_bytes(1024)).await;
    let (mut socket, _) = connect(&server, "").await;
    let cases: Vec<(Message, &str, Option<&str>, Option<&str>)> = vec![
        (Message::text("not json"), "malformed", None, None),
        (Message::text("[1, 2]"), "malformed", None, None),
        (
            Message::text(json!({"id": "m1", "type": "demo.refresh"}).to_string()),
            "malformed",
            Some("m1"),
            None,
        ),
        (
            Message::text(
                json!({"specversion": "0.3", "id": "m2", "type": "demo.refresh"}).to_string(),
            ),
            "malformed",
            Some("m2"),
            None,
        ),
        (
            Message::text(json!({"specversion": "1.0", "type": "demo.refresh"}).to_string()),
            "malformed",
            None,
            None,
        ),
        (
            Message::text(
                client_event("m3", "demo.level", Some(json!({"value": 1})))
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert("datacontenttype".into(), "text/plain".into());
                        Value::Object(o)
                    })
                    .unwrap()
                    .to_string(),
            ),
            "malformed",
            Some("m3"),
            None,
        ),
        (Message::binary(vec![1u8, 2, 3]), "malformed", None, None),
        (
            Message::text(client_event("u1", "demo.refesh", None).to_string()),
            "unknown_event",
            Some("u1"),
            None,
        ),
        (
            Message::text(client_event("u2", "other.refresh", None).to_string()),
            "unknown_event",
            Some("u2"),
            None,
        ),
        (
            Message::text(
                client_event("d1", "demo.status", Some(json!({"text": "x"}))).to_string(),
            ),
            "not_allowed",
            Some("d1"),
            Some("status"),
        ),
        (
            Message::text(
                client_event("d2", "demo.notice", Some(json!({"title": "x", "n": 1}))).to_string(),
            ),
            "not_allowed",
            Some("d2"),
            Some("notice"),
        ),
        (
            Message::text(client_event("d3", "demo.audit", Some(json!(1))).to_string()),
            "not_allowed",
            Some("d3"),
            Some("audit"),
        ),
        (
            Message::text(
                client_event("p1", "demo.level", Some(json!({"value": 300}))).to_string(),
            ),
            "invalid_payload",
            Some("p1"),
            Some("level"),
        ),
        (
            Message::text(client_event("p2", "demo.level", Some(json!({}))).to_string()),
            "invalid_payload",
            Some("p2"),
            Some("level"),
        ),
        (
            Message::text(client_event("p3", "demo.level", None).to_string()),
            "invalid_payload",
            Some("p3"),
            Some("level"),
        ),
        (
            Message::text(client_event("p4", "demo.refresh", Some(json!([1]))).to_string()),
            "invalid_payload",
            Some("p4"),
            Some("refresh"),
        ),
        (
            Message::text(
                client_event(
                    "big",
                    "demo.level",
                    Some(json!({"value": 1, "pad": "x".repeat(2000)})),
                )
                .to_string(),
            ),
            "too_large",
            None,
            None,
        ),
    ];
    let total = cases.len();
    for (message, code, reference, event) in cases {
        let shown = format!("{message:?}");
        socket.send(message).await.unwrap();
        let error = next(&mut socket).await;
        assert_eq!(error["type"], "eventbus.bridge.error", "{shown}: {error}");
        let data = &error["data"];
        assert_eq!(data["code"], code, "{shown}: {error}");
        assert!(
            data["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        assert_eq!(data["ref"].as_str(), reference, "{shown}: {error}");
        assert_eq!(data["event"].as_str(), event, "{shown}: {error}");
    }
    // Nothing was emitted.
    assert_eq!(server.refreshes.load(Ordering::SeqCst), 0);
    assert!(server.levels.lock().unwrap().is_empty());
    // The messages say what was wrong.
    send(&mut socket, client_event("u3", "demo.refesh", None)).await;
    let error = next(&mut socket).await;
    assert!(
        error["data"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `refresh`?"),
        "{error}"
    );
    send(
        &mut socket,
        client_event("p5", "demo.level", Some(json!({"value": -1}))),
    )
    .await;
    let error = next(&mut socket).await;
    assert_eq!(error["data"]["path"], "$.value", "{error}");

    // The connection and the bus still work, both ways.
    send(&mut socket, client_event("ok", "demo.refresh", None)).await;
    assert_eq!(next(&mut socket).await["data"]["ref"], "ok");
    assert_eq!(server.refreshes.load(Ordering::SeqCst), 1);
    server.status.emit(Status {
        text: "still here".into(),
    });
    assert_eq!(next(&mut socket).await["data"]["text"], "still here");
    let stats = server.bridge.stats();
    let errors: u64 = stats.errors.iter().map(|(_, n)| n).sum();
    assert_eq!(errors, total as u64 + 2);
    assert_eq!(stats.errors_of(bridge::ErrorCode::NotAllowed), 3);
}

/// A lone UTF-16 surrogate escape (`"\ud800"`, which `JSON.stringify` writes for a string
/// holding one) is JSON by the grammar but not a string Rust can hold. In `data` it is the
/// payload that is wrong: `invalid_payload`, with the path of the string, as the generated
/// TypeScript guards report it. In an attribute of the envelope it is `malformed`.
#[tokio::test]
async fn lone_surrogates_are_invalid_payload_in_data_and_malformed_in_the_envelope() {
    let server = start(config()).await;
    let (mut socket, _) = connect(&server, "").await;
    // (frame, code, `ref`, `event`, `path`)
    let cases = [
        (
            r#"{"specversion":"1.0","id":"s1","type":"demo.level","data":{"value":"\ud800"}}"#,
            "invalid_payload",
            Some("s1"),
            Some("level"),
            Some("$.value"),
        ),
        (
            r#"{"specversion":"1.0","id":"s2","type":"demo.level","data":{"value":1,"\udc00":2}}"#,
            "invalid_payload",
            Some("s2"),
            Some("level"),
            Some("$"),
        ),
        (
            r#"{"specversion":"1.0","id":"s3","type":"demo.refresh","data":{"\ud800\u0041":1}}"#,
            "invalid_payload",
            Some("s3"),
            Some("refresh"),
            Some("$"),
        ),
        (
            r#"{"specversion":"1.0","id":"s4","type":"demo.nope","data":"\ud800"}"#,
            "unknown_event",
            Some("s4"),
            None,
            None,
        ),
        (
            r#"{"specversion":"1.0","id":"s5","type":"demo.refresh\ud800"}"#,
            "malformed",
            Some("s5"),
            None,
            None,
        ),
        (
            r#"{"specversion":"1.0","id":"s6\udbff","type":"demo.refresh"}"#,
            "malformed",
            None,
            None,
            None,
        ),
    ];
    for (text, code, reference, event, path) in cases {
        socket.send(Message::text(text)).await.unwrap();
        let error = next(&mut socket).await;
        assert_eq!(error["type"], "eventbus.bridge.error", "{text}: {error}");
        let data = &error["data"];
        assert_eq!(data["code"], code, "{text}: {error}");
        assert_eq!(data["ref"].as_str(), reference, "{text}: {error}");
        assert_eq!(data["event"].as_str(), event, "{text}: {error}");
        assert_eq!(data["path"].as_str(), path, "{text}: {error}");
        if code != "unknown_event" {
            let message = data["message"].as_str().unwrap();
            assert!(message.contains("lone UTF-16 surrogate"), "{text}: {error}");
        }
    }
    assert!(server.levels.lock().unwrap().is_empty());
    assert_eq!(server.refreshes.load(Ordering::SeqCst), 0);
    // A surrogate pair is an ordinary character; the value of an unknown field is skipped
    // unread, like the field, lone surrogate or not.
    socket
        .send(Message::text(
            r#"{"specversion":"1.0","id":"ok","type":"demo.level","data":{"value":2,"note":"\ud83d\ude00 \ud800"}}"#,
        ))
        .await
        .unwrap();
    let mut frames = [next(&mut socket).await, next(&mut socket).await];
    frames.sort_by_key(|f| f["type"].as_str().unwrap().to_owned());
    assert_eq!(frames[0]["data"], json!({"value": 2}));
    assert_eq!(frames[1]["data"]["ref"], "ok");
    assert_eq!(*server.levels.lock().unwrap(), [2]);
    let stats = server.bridge.stats();
    assert_eq!(stats.errors_of(bridge::ErrorCode::InvalidPayload), 3);
    assert_eq!(stats.errors_of(bridge::ErrorCode::Malformed), 2);
    assert_eq!(stats.errors_of(bridge::ErrorCode::UnknownEvent), 1);
}

#[tokio::test]
async fn unauthenticated_upgrades_get_401() {
    let server = start(config().first_frame_auth(false)).await;
    assert_eq!(refused(&server, Hello::default()).await, 401);
    let wrong = Hello {
        bearer: Some("test-token-0123456788".into()),
        ..Hello::default()
    };
    assert_eq!(refused(&server, wrong).await, 401);
    assert_eq!(
        refused(&server, Hello::default().query("?token=nope")).await,
        401
    );
    // A right query token works too.
    let mut socket = upgrade(&server, Hello::default().query(&format!("?token={TOKEN}")))
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await["type"], "eventbus.bridge.welcome");
    assert_eq!(server.bridge.stats().refused_token, 3);

    // Even with first-frame auth allowed, a wrong token at the upgrade is refused.
    let server = start(config()).await;
    assert_eq!(
        refused(&server, Hello::default().query("?token=nope")).await,
        401
    );
}

#[tokio::test]
async fn first_frame_auth_sends_nothing_before_the_token() {
    let server = start(config()).await;
    let mut socket = upgrade(&server, Hello::default()).await.unwrap();
    // Events emitted before the client authenticated never reach it.
    server.status.emit(Status {
        text: "secret".into(),
    });
    server.notice.emit(notice_of(1)).unwrap();
    send(
        &mut socket,
        json!({"specversion": "1.0", "id": "a1", "type": "eventbus.bridge.auth",
               "data": {"token": TOKEN}}),
    )
    .await;
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["type"], "eventbus.bridge.welcome");
    assert_eq!(welcome["data"]["sequence"], "00000000000000000001");
    server.status.emit(Status {
        text: "public".into(),
    });
    assert_eq!(next(&mut socket).await["data"]["text"], "public");

    // A wrong token in the first frame: closed with 4001, nothing sent.
    let mut socket = upgrade(&server, Hello::default()).await.unwrap();
    send(
        &mut socket,
        json!({"specversion": "1.0", "id": "a2", "type": "eventbus.bridge.auth",
               "data": {"token": "nope"}}),
    )
    .await;
    assert_eq!(closed(&mut socket).await.0, 4001);
    // Any other first frame: the same.
    let mut socket = upgrade(&server, Hello::default()).await.unwrap();
    send(&mut socket, client_event("r", "demo.refresh", None)).await;
    assert_eq!(closed(&mut socket).await.0, 4001);
    assert_eq!(server.refreshes.load(Ordering::SeqCst), 0);

    // No frame at all within the auth timeout: the same.
    let server = start(config().auth_timeout(Duration::from_millis(50))).await;
    let mut socket = upgrade(&server, Hello::default()).await.unwrap();
    assert_eq!(closed(&mut socket).await.0, 4001);
    assert_eq!(server.bridge.stats().auth_failures, 1);
}

#[tokio::test]
async fn origins_are_checked() {
    let server = start(config()).await;
    let evil = Hello {
        origin: Some("http://evil.example".into()),
        ..Hello::token()
    };
    assert_eq!(refused(&server, evil).await, 403);
    let same = Hello {
        origin: Some(format!("http://{}", server.addr)),
        ..Hello::token()
    };
    let mut socket = upgrade(&server, same).await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "eventbus.bridge.welcome");

    let server =
        start(config().allowed_origins(AllowedOrigins::List(vec!["http://localhost:5173".into()])))
            .await;
    let listed = Hello {
        origin: Some("http://localhost:5173".into()),
        ..Hello::token()
    };
    assert!(upgrade(&server, listed).await.is_ok());
    let same = Hello {
        origin: Some(format!("http://{}", server.addr)),
        ..Hello::token()
    };
    assert_eq!(refused(&server, same).await, 403);
    assert_eq!(server.bridge.stats().refused_origin, 1);
}

#[tokio::test]
async fn the_subprotocol_and_since_are_checked() {
    let server = start(config()).await;
    let bare = Hello {
        no_subprotocol: true,
        ..Hello::token()
    };
    assert_eq!(refused(&server, bare).await, 400);
    assert_eq!(
        refused(&server, Hello::token().query("?since=-1")).await,
        400
    );
    assert_eq!(
        refused(&server, Hello::token().query("?since=abc")).await,
        400
    );
}

#[tokio::test]
async fn rate_limits_incoming_frames() {
    // One frame per second, bursts of 2: six frames sent at once cannot all pass.
    let server = start(config().rate_limit(1, 2)).await;
    let (mut socket, _) = connect(&server, "").await;
    for i in 0..4 {
        send(
            &mut socket,
            client_event(&format!("r{i}"), "demo.refresh", None),
        )
        .await;
    }
    let mut limited = Vec::new();
    for _ in 0..4 {
        let frame = next(&mut socket).await;
        if frame["type"] == "eventbus.bridge.error" {
            assert_eq!(frame["data"]["code"], "rate_limited", "{frame}");
            assert!(frame["data"]["retryAfterMs"].as_u64().unwrap() >= 1);
            limited.push(frame["data"]["ref"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        !limited.is_empty(),
        "four frames at once passed a burst of two"
    );
    assert_eq!(
        server.refreshes.load(Ordering::SeqCst) + limited.len(),
        4,
        "every frame was either emitted or refused"
    );
    // After waiting, the client may send again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(&mut socket, client_event("later", "demo.refresh", None)).await;
    assert_eq!(next(&mut socket).await["data"]["ref"], "later");

    // A client that does not slow down is disconnected (1008).
    for i in 0..50 {
        if socket
            .send(Message::text(
                client_event(&format!("f{i}"), "demo.refresh", None).to_string(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(closed(&mut socket).await.0, 1008);
}

#[tokio::test]
async fn a_message_too_large_to_read_closes_with_1009() {
    let server = start(config().max_frame_bytes(1024)).await;
    let (mut socket, _) = connect(&server, "").await;
    let huge = "x".repeat((1 << 20) + 1);
    let _ = socket.send(Message::text(huge)).await;
    assert_eq!(closed(&mut socket).await.0, 1009);
}

/// A client that does not read while events pile up is disconnected with its resume point,
/// and resuming from it gets every stored event it missed, once.
#[tokio::test(flavor = "current_thread")]
async fn slow_clients_are_disconnected_with_their_resume_point() {
    let server = start(config().queue(4)).await;
    let (mut socket, welcome) = connect(&server, "").await;
    assert_eq!(welcome["data"]["sequence"], "00000000000000000000");
    // On this single-threaded runtime the connection cannot run while we emit: its queue of 4
    // overflows at the fifth event.
    for n in 1..=20 {
        server.notice.emit(notice_of(n)).unwrap();
    }
    server.status.emit(Status {
        text: "live only".into(),
    });
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(seq(&next(&mut socket).await));
    }
    assert_eq!(seen, [1, 2, 3, 4]);
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4008);
    let reason: Value = serde_json::from_str(&reason).unwrap();
    assert_eq!(reason["resume"], "00000000000000000004");
    assert_eq!(server.bridge.stats().too_slow, 1);

    let (mut socket, welcome) = connect(&server, "?since=00000000000000000004").await;
    assert_eq!(welcome["data"]["resumed"], true);
    assert_eq!(welcome["data"]["sequence"], "00000000000000000004");
    for n in 5..=20u32 {
        let frame = next(&mut socket).await;
        assert_eq!(seq(&frame), u64::from(n));
        assert_eq!(frame["data"]["n"], n);
    }
    // Then live events, and nothing was sent twice.
    server.status.emit(Status {
        text: "back".into(),
    });
    let frame = next(&mut socket).await;
    assert_eq!(frame["data"]["text"], "back", "{frame}");
}

/// Resuming while events keep coming: every stored event after `since` arrives exactly once
/// and in order, across the seam between the store and the live stream.
#[tokio::test]
async fn resume_has_no_gap_and_no_duplicate_at_the_seam() {
    let server = start(config()).await;
    let (socket, welcome) = connect(&server, "").await;
    assert_eq!(welcome["data"]["sequence"], "00000000000000000000");
    drop(socket);
    // 600 events while away (more than two pages of the store).
    let notices: Vec<Notice> = (1..=600).map(notice_of).collect();
    for chunk in notices.chunks(100) {
        std::thread::scope(|scope| {
            for n in chunk {
                let event = server.notice.clone();
                let n = n.clone();
                scope.spawn(move || event.emit(n).unwrap());
            }
        });
    }
    // Reconnect from the start while another thread keeps emitting.
    let emitter = {
        let event = server.notice.clone();
        std::thread::spawn(move || {
            for n in 601..=800 {
                event.emit(notice_of(n)).unwrap();
            }
        })
    };
    let (mut socket, welcome) = connect(&server, "?since=0").await;
    assert_eq!(welcome["data"]["resumed"], true);
    let mut sequences = Vec::new();
    let mut payloads = std::collections::HashSet::new();
    while sequences.len() < 800 {
        let frame = next(&mut socket).await;
        assert_eq!(frame["type"], "demo.notice", "{frame}");
        sequences.push(seq(&frame));
        assert!(
            payloads.insert(frame["data"]["n"].as_u64().unwrap()),
            "duplicate {frame}"
        );
    }
    emitter.join().unwrap();
    let expected: Vec<u64> = (1..=800).collect();
    assert_eq!(sequences, expected);
    // Nothing more is pending: the next frame is a fresh live event.
    server.status.emit(Status { text: "end".into() });
    assert_eq!(next(&mut socket).await["type"], "demo.status");
    assert_eq!(server.bridge.stats().resumed, 1);
}

#[tokio::test]
async fn resume_via_the_auth_frame_and_from_the_future() {
    let server = start(config()).await;
    for n in 1..=3 {
        server.notice.emit(notice_of(n)).unwrap();
    }
    let mut socket = upgrade(&server, Hello::default()).await.unwrap();
    send(
        &mut socket,
        json!({"specversion": "1.0", "id": "a", "type": "eventbus.bridge.auth",
               "data": {"token": TOKEN, "since": "00000000000000000001"}}),
    )
    .await;
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["data"]["resumed"], true);
    assert_eq!(seq(&next(&mut socket).await), 2);
    assert_eq!(seq(&next(&mut socket).await), 3);

    // A resume point beyond the store (another database): a fresh start, said so.
    let (_socket, welcome) = connect(&server, "?since=999").await;
    assert_eq!(welcome["data"]["resumed"], false);
    assert_eq!(welcome["data"]["sequence"], "00000000000000000003");
}

/// Connects with first-frame auth, sending `data` (with the token added) as the auth frame, and
/// reads the welcome.
async fn connect_with_auth(server: &Server, query: &str, mut data: Value) -> (Socket, Value) {
    let mut socket = upgrade(server, Hello::default().query(query))
        .await
        .expect("the upgrade succeeds");
    data["token"] = TOKEN.into();
    send(
        &mut socket,
        json!({"specversion": "1.0", "id": "auth", "type": "eventbus.bridge.auth", "data": data}),
    )
    .await;
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["type"], "eventbus.bridge.welcome", "{welcome}");
    (socket, welcome)
}

/// Reads `count` frames, each a stored notice; returns their `n` and sequences.
async fn notices(socket: &mut Socket, count: usize) -> (Vec<u64>, Vec<u64>) {
    let mut ns = Vec::new();
    let mut sequences = Vec::new();
    for _ in 0..count {
        let frame = next(socket).await;
        assert_eq!(frame["type"], "demo.notice", "{frame}");
        ns.push(frame["data"]["n"].as_u64().unwrap());
        sequences.push(seq(&frame));
    }
    (ns, sequences)
}

/// Emits a live-only event and checks it is the next frame: nothing stored is still pending.
async fn nothing_pending(server: &Server, socket: &mut Socket) {
    server.status.emit(Status { text: "end".into() });
    let frame = next(socket).await;
    assert_eq!(frame["type"], "demo.status", "{frame}");
}

/// `history=N` without a resume point: the last N stored `to_ui` events (non-UI stored events
/// do not count), in order, then live ones — each once, with no gap at the seam even while
/// events are emitted during the replay.
#[tokio::test]
async fn history_replays_the_last_ui_events_then_live_ones_without_a_seam() {
    let server = start(config()).await;
    // 300 notices, each followed by a stored event that never reaches the UI.
    for n in 1..=300 {
        server.notice.emit(notice_of(n)).unwrap();
        server.audit.emit(n).unwrap();
    }
    let emitter = {
        let (notice, audit) = (server.notice.clone(), server.audit.clone());
        std::thread::spawn(move || {
            for n in 301..=500 {
                notice.emit(notice_of(n)).unwrap();
                audit.emit(n).unwrap();
            }
        })
    };
    let (mut socket, welcome) = connect(&server, "?history=100").await;
    assert_eq!(welcome["data"]["resumed"], false, "{welcome}");
    assert_eq!(welcome["data"]["history"], 100, "{welcome}");
    let (ns, sequences) = notices(&mut socket, 100).await;
    let first = ns[0];
    assert!(
        first >= 201,
        "history starts at notice {first}, not among the last 100"
    );
    assert_eq!(ns, (first..first + 100).collect::<Vec<_>>(), "the history");
    // The welcome's `sequence` is the resume point just before the first replayed event.
    assert_eq!(seq(&welcome["data"]) + 1, sequences[0]);
    // Then the live stream: every later notice once, in order.
    let rest = usize::try_from(500 - (first + 99)).unwrap();
    let (live, live_sequences) = notices(&mut socket, rest).await;
    emitter.join().unwrap();
    assert_eq!(
        live,
        (first + 100..=500).collect::<Vec<_>>(),
        "after the history"
    );
    let all: Vec<u64> = sequences.into_iter().chain(live_sequences).collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "in sequence order");
    nothing_pending(&server, &mut socket).await;

    // Nothing emitted meanwhile: exactly notices 401..=500, though 200 stored events are newer
    // than the 100th last notice.
    let (mut socket, welcome) = connect(&server, "?history=100").await;
    assert_eq!(welcome["data"]["history"], 100);
    let (ns, sequences) = notices(&mut socket, 100).await;
    assert_eq!(ns, (401..=500).collect::<Vec<_>>());
    assert_eq!(seq(&welcome["data"]) + 1, sequences[0]);
    assert_eq!(
        sequences[99] - sequences[0],
        198,
        "audits sit between the notices"
    );
    nothing_pending(&server, &mut socket).await;
    let stats = server.bridge.stats();
    assert_eq!((stats.history, stats.replayed, stats.resumed), (2, 200, 0));
}

/// A history longer than the store gets everything stored; one over `max_history` is clamped;
/// `history=0` is a live-only start, as no `history` at all.
#[tokio::test]
async fn history_is_bounded_by_the_store_and_by_max_history() {
    let server = start(config().max_history(3)).await;
    for n in 1..=5 {
        server.audit.emit(n).unwrap();
        server.notice.emit(notice_of(n)).unwrap();
    }
    let (mut socket, welcome) = connect(&server, "?history=10").await;
    assert_eq!(welcome["data"]["history"], 3, "clamped to max_history");
    assert_eq!(notices(&mut socket, 3).await.0, [3, 4, 5]);
    nothing_pending(&server, &mut socket).await;

    let server = start(config()).await;
    for n in 1..=5 {
        server.audit.emit(n).unwrap();
        server.notice.emit(notice_of(n)).unwrap();
    }
    let (mut socket, welcome) = connect(&server, "?history=1000").await;
    assert_eq!(welcome["data"]["history"], 5, "everything stored");
    // The first notice is sequence 2 (after an audit): the stream starts after 1.
    assert_eq!(welcome["data"]["sequence"], "00000000000000000001");
    let (ns, sequences) = notices(&mut socket, 5).await;
    assert_eq!(ns, [1, 2, 3, 4, 5]);
    assert_eq!(sequences, [2, 4, 6, 8, 10]);
    nothing_pending(&server, &mut socket).await;

    for query in ["?history=0", ""] {
        let (mut socket, welcome) = connect(&server, query).await;
        assert_eq!(welcome["data"]["history"], 0, "{query}");
        assert_eq!(welcome["data"]["resumed"], false, "{query}");
        assert_eq!(welcome["data"]["sequence"], "00000000000000000010");
        nothing_pending(&server, &mut socket).await;
    }
    assert_eq!(server.bridge.stats().history, 1);
}

/// `since` wins over `history`, from the URL or the auth frame; the auth frame's `history`
/// works as the URL's.
#[tokio::test]
async fn since_wins_over_history_and_the_auth_frame_carries_history() {
    let server = start(config()).await;
    for n in 1..=5 {
        server.notice.emit(notice_of(n)).unwrap();
    }
    let (mut socket, welcome) = connect(&server, "?since=2&history=1").await;
    assert_eq!(welcome["data"]["resumed"], true);
    assert_eq!(welcome["data"]["history"], 0);
    assert_eq!(notices(&mut socket, 3).await.0, [3, 4, 5]);
    nothing_pending(&server, &mut socket).await;

    let data = json!({"since": "00000000000000000003", "history": 5});
    let (mut socket, welcome) = connect_with_auth(&server, "", data).await;
    assert_eq!(welcome["data"]["resumed"], true);
    assert_eq!(notices(&mut socket, 2).await.0, [4, 5]);
    nothing_pending(&server, &mut socket).await;

    // The URL's `history`, the auth frame's `since`: `since` still wins.
    let (mut socket, welcome) = connect_with_auth(&server, "?history=4", json!({"since": 4})).await;
    assert_eq!(welcome["data"]["resumed"], true);
    assert_eq!(notices(&mut socket, 1).await.0, [5]);
    nothing_pending(&server, &mut socket).await;

    for history in [json!(2), json!("2")] {
        let (mut socket, welcome) =
            connect_with_auth(&server, "", json!({ "history": history })).await;
        assert_eq!(welcome["data"]["history"], 2);
        assert_eq!(welcome["data"]["sequence"], "00000000000000000003");
        assert_eq!(notices(&mut socket, 2).await.0, [4, 5]);
        nothing_pending(&server, &mut socket).await;
    }
    let stats = server.bridge.stats();
    assert_eq!((stats.resumed, stats.history), (3, 2));
}

/// A `history` that is not decimal digits is refused as a bad `since` is: 400 at the upgrade,
/// 4001 in the auth frame.
#[tokio::test]
async fn invalid_history_is_refused() {
    let server = start(config()).await;
    for query in [
        "?history=-1",
        "?history=ten",
        "?history=1.5",
        "?history=18446744073709551616",
    ] {
        let mut response = match upgrade(&server, Hello::token().query(query)).await {
            Err(tungstenite::Error::Http(response)) => response,
            other => panic!("{query}: expected an HTTP refusal, got {other:?}"),
        };
        assert_eq!(response.status().as_u16(), 400, "{query}");
        let body = String::from_utf8(response.body_mut().take().unwrap_or_default()).unwrap();
        assert!(
            body.contains("`history` must be a number"),
            "{query}: {body}"
        );
    }
    for history in [json!(-1), json!("ten"), json!(1.5), json!([3])] {
        let mut socket = upgrade(&server, Hello::default()).await.unwrap();
        send(
            &mut socket,
            json!({"specversion": "1.0", "id": "a", "type": "eventbus.bridge.auth",
                   "data": {"token": TOKEN, "history": history}}),
        )
        .await;
        assert_eq!(closed(&mut socket).await.0, 4001, "{history}");
    }
    assert_eq!(server.bridge.stats().refused_other, 4);
    assert_eq!(server.bridge.stats().auth_failures, 4);
}

#[tokio::test]
async fn closing_the_bridge_sends_resume_points_and_refuses_new_clients() {
    let server = start(config()).await;
    let (mut socket, _) = connect(&server, "").await;
    server.notice.emit(notice_of(1)).unwrap();
    assert_eq!(seq(&next(&mut socket).await), 1);
    server.bridge.close();
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 1001);
    let reason: Value = serde_json::from_str(&reason).unwrap();
    assert_eq!(reason["resume"], "00000000000000000001");
    assert_eq!(refused(&server, Hello::token()).await, 503);
}

#[tokio::test]
async fn lost_clients_are_dropped_by_the_heartbeat() {
    let server = start(config().ping(Duration::from_millis(50), Duration::from_millis(50))).await;
    // A client that never reads never answers pings.
    let (_socket, _) = connect(&server, "").await;
    assert_eq!(server.bridge.stats().clients, 1);
    let bridge = server.bridge.clone();
    eventually("the silent client is dropped", || {
        bridge.stats().clients == 0
    })
    .await;
    // A client that reads answers pings and stays.
    let (mut socket, _) = connect(&server, "").await;
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message
                && !text.contains(bridge::HEARTBEAT)
            {
                return text.to_string();
            }
        }
        String::new()
    });
    // Many heartbeats later it is still there and receives events.
    let bridge = server.bridge.clone();
    let before = bridge.stats().frames_sent;
    eventually("ten pings were sent", || {
        bridge.stats().frames_sent >= before + 10
    })
    .await;
    assert_eq!(server.bridge.stats().clients, 1);
    server.status.emit(Status {
        text: "alive".into(),
    });
    let text = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert!(text.contains("alive"), "{text}");
}

#[tokio::test]
async fn the_bridge_listens_only_while_it_exists() {
    let core = BusCore::new(&MANIFEST);
    let status: Event<Status> = Event::new(&core, MANIFEST.event("status").unwrap());
    let level: Event<Level> = Event::new(&core, MANIFEST.event("level").unwrap());
    let audit: Event<u32> = Event::new(&core, MANIFEST.event("audit").unwrap());
    let bridge = Bridge::new(&core, config());
    // One listener on each event that goes to the UI; none elsewhere.
    assert_eq!((status.listener_count(), level.listener_count()), (1, 1));
    assert_eq!(audit.listener_count(), 0);
    assert_eq!(
        core.stats().event("status").unwrap().handlers[0].label,
        "eventbus-bridge"
    );
    let router = bridge.router();
    drop(bridge);
    assert_eq!(
        status.listener_count(),
        1,
        "the router still uses the bridge"
    );
    drop(router);
    assert_eq!((status.listener_count(), level.listener_count()), (0, 0));
}

/// A bus whose stored events never go to the UI: neither a resume nor a history replays any of
/// them (an empty event list must not read as "every stored event").
#[tokio::test]
async fn stored_events_that_never_cross_are_not_replayed() {
    static LOCAL: [EventMeta; 2] = [
        event("status", Some("Status"), false, UiDirection::ToUi),
        event("audit", Some("u32"), true, UiDirection::None),
    ];
    static LOCAL_MANIFEST: ManifestMeta = ManifestMeta {
        package: "demo",
        version: 1,
        fingerprint: "0123456789abcdef",
        events: &LOCAL,
    };
    let dir = temp_dir();
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let core = BusCore::builder(&LOCAL_MANIFEST)
        .event_store(store)
        .build()
        .unwrap();
    let status: Event<Status> = Event::new(&core, LOCAL_MANIFEST.event("status").unwrap());
    let audit: PersistedEvent<u32> =
        PersistedEvent::new(&core, LOCAL_MANIFEST.event("audit").unwrap());
    for n in 1..=3 {
        audit.emit(n).unwrap();
    }
    let bridge = Bridge::new(&core, config());
    let addr = listen(bridge.router()).await;
    for query in ["since=0", "history=10"] {
        let (mut socket, welcome) = connect_at(addr, &format!("?{query}")).await;
        assert_eq!(welcome["data"]["history"], 0, "{query}: {welcome}");
        status.emit(Status { text: query.into() });
        let frame = next(&mut socket).await;
        assert_eq!(frame["type"], "demo.status", "{query}: {frame}");
        assert_eq!(frame["data"]["text"], query);
    }
    assert_eq!(bridge.stats().replayed, 0);
}

/// Without an event store, persisted events go to clients live, without a sequence, and a
/// `since` cannot resume anything.
#[tokio::test]
async fn without_a_store_every_event_is_live_only() {
    let core = BusCore::new(&MANIFEST);
    let notice: PersistedEvent<Notice> =
        PersistedEvent::new(&core, MANIFEST.event("notice").unwrap());
    let bridge = Bridge::new(&core, config());
    let addr = listen(bridge.router()).await;
    let (mut socket, welcome) = connect_at(addr, "?since=5").await;
    assert_eq!(welcome["data"]["sequence"], Value::Null);
    assert_eq!(welcome["data"]["resumed"], false);
    notice.emit(notice_of(1)).unwrap();
    let frame = next(&mut socket).await;
    assert_eq!(frame["type"], "demo.notice");
    assert!(frame.get("sequence").is_none(), "{frame}");

    // `history` has nothing to replay: said so, and only live events follow.
    let (mut socket, welcome) = connect_at(addr, "?history=5").await;
    assert_eq!(welcome["data"]["sequence"], Value::Null);
    assert_eq!(welcome["data"]["resumed"], false);
    assert_eq!(welcome["data"]["history"], 0);
    notice.emit(notice_of(2)).unwrap();
    let frame = next(&mut socket).await;
    assert_eq!(frame["data"]["n"], 2, "only the live event: {frame}");
    assert_eq!(bridge.stats().history, 0);
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text() {
    let server = start(config()).await;
    let (mut socket, _) = connect(&server, "").await;
    send(&mut socket, client_event("x", "demo.nope", None)).await;
    next(&mut socket).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("text/plain; version=0.0.4"), "{response}");
    assert!(
        response.contains("eventbus_bridge_clients 1\n"),
        "{response}"
    );
    assert!(
        response.contains("eventbus_bridge_errors_total{code=\"unknown_event\"} 1\n"),
        "{response}"
    );
    assert!(
        response.contains("eventbus_listeners{event=\"status\"} 1\n"),
        "{response}"
    );
}

#[tokio::test]
async fn quiet_connections_get_heartbeat_frames_browsers_can_see() {
    let server = start(config().ping(Duration::from_millis(100), Duration::from_millis(300))).await;
    let (mut socket, welcome) = connect(&server, "").await;
    assert_eq!(
        welcome["data"]["heartbeat"],
        json!({ "intervalMs": 100, "timeoutMs": 300 }),
        "{welcome}"
    );
    // Nothing is emitted: what comes is a heartbeat, an ordinary text frame.
    let beat = next(&mut socket).await;
    assert_eq!(beat["type"], bridge::HEARTBEAT, "{beat}");
    assert_eq!(beat["specversion"], "1.0");
    assert_eq!(beat["data"], json!({}));
    // Events still arrive between heartbeats.
    server.status.emit(Status {
        text: "still here".into(),
    });
    loop {
        let frame = next(&mut socket).await;
        if frame["type"] != bridge::HEARTBEAT {
            assert_eq!(frame["type"], "demo.status", "{frame}");
            assert_eq!(frame["data"]["text"], "still here");
            break;
        }
    }
}

/// Upgrades until one is not refused with 503 (the server frees a slot once it has seen a
/// connection close).
async fn upgrade_when_free(server: &Server, hello: Hello) -> Socket {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match upgrade(server, hello.clone()).await {
            Ok(socket) => return socket,
            Err(tungstenite::Error::Http(response)) if response.status() == 503 => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no connection slot was freed"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("the upgrade failed: {other}"),
        }
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503() {
    let server = start(config().max_connections(2)).await;
    assert_eq!(
        BridgeConfig::new(TOKEN).max_connections_value(),
        bridge::DEFAULT_MAX_CONNECTIONS
    );
    // One authenticated client, and one still waiting for its first-frame token: both count.
    let (mut first, _) = connect(&server, "").await;
    let pending = upgrade(&server, Hello::default())
        .await
        .expect("an upgrade without a token waits for the first frame");
    match upgrade(&server, Hello::token()).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            assert_eq!(
                response
                    .headers()
                    .get("Retry-After")
                    .map(|v| v.to_str().unwrap()),
                Some("5")
            );
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("too many connections"), "{body}");
        }
        Err(other) => panic!("expected 503, got {other}"),
        Ok(_) => panic!("expected 503, the third upgrade succeeded"),
    }
    let stats = server.bridge.stats();
    assert_eq!((stats.refused_busy, stats.refused_other), (1, 0));
    assert!(
        server
            .bridge
            .prometheus_text()
            .contains("eventbus_bridge_upgrades_refused_total{reason=\"busy\"} 1\n")
    );
    // The connected client is unaffected.
    server.status.emit(Status { text: "one".into() });
    assert_eq!(next(&mut first).await["data"]["text"], "one");
    // A closed connection frees its slot.
    drop(pending);
    let (mut third, welcome) = {
        let mut socket = upgrade_when_free(&server, Hello::token()).await;
        let welcome = next(&mut socket).await;
        (socket, welcome)
    };
    assert_eq!(welcome["type"], "eventbus.bridge.welcome");
    server.status.emit(Status { text: "two".into() });
    assert_eq!(next(&mut third).await["data"]["text"], "two");
    assert_eq!(next(&mut first).await["data"]["text"], "two");
}

#[tokio::test]
async fn serve_runs_the_bridge_on_its_own() {
    let core = BusCore::new(&MANIFEST);
    let status: Event<Status> = Event::new(&core, MANIFEST.event("status").unwrap());
    // A free port: bound, read and released, then given to `serve`.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let serving = core.clone();
    let server = tokio::spawn(async move { bridge::serve(addr, &serving, config()).await });
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut socket = loop {
        match upgrade_at(addr, Hello::token()).await {
            Ok(socket) => break socket,
            Err(tungstenite::Error::Io(_)) if !server.is_finished() => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "serve did not listen on {addr}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("connecting to serve failed: {other}; serve: {server:?}"),
        }
    };
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["type"], "eventbus.bridge.welcome", "{welcome}");
    status.emit(Status {
        text: "served".into(),
    });
    let frame = next(&mut socket).await;
    assert_eq!(frame["type"], "demo.status", "{frame}");
    assert_eq!(frame["data"]["text"], "served");
    // A second `serve` on the same address reports the bind error.
    let error = bridge::serve(addr, &core, config())
        .await
        .expect_err("the address is taken");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    server.abort();
}
