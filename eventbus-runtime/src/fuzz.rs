//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz), also run by
//! `eventbus-runtime/tests/fuzz_corpus.rs` over the committed corpus and its mutations. Each
//! takes any bytes and panics only on a bug. Not part of the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A payload type shaped like generated code: every kind of field the generator emits,
/// including the 64-bit integers that travel as strings (`crate::wire`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sample {
    /// A string.
    pub name: String,
    /// A 32-bit integer.
    pub count: u32,
    /// A signed 64-bit integer (a JSON string, or a safe JSON integer on input).
    #[serde(with = "crate::wire::As::<crate::wire::Int64>")]
    pub big: i64,
    /// An optional list of unsigned 64-bit integers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::wire::As::<crate::wire::Optional<crate::wire::List<crate::wire::Int64>>>"
    )]
    pub sizes: Option<Vec<u64>>,
    /// A map of unsigned 64-bit integers.
    #[serde(with = "crate::wire::As::<crate::wire::Map<crate::wire::Int64>>")]
    pub totals: BTreeMap<String, u64>,
    /// An enum.
    pub state: SampleState,
    /// A nested struct list.
    pub nested: Vec<SampleNested>,
}

/// An enum of [`Sample`], as generated code spells one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SampleState {
    /// One value.
    Running,
    /// Another.
    Stopped,
}

/// A nested struct of [`Sample`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleNested {
    /// A boolean.
    pub ok: bool,
    /// An optional unsigned 64-bit integer.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::wire::As::<crate::wire::Optional<crate::wire::Int64>>"
    )]
    pub at: Option<u64>,
}

/// Decodes `data` (JSON text) as the typed payloads a handler would get; whatever decodes must
/// serialise and decode again to the same value.
pub fn typed_payload(data: &str) {
    match serde_json::from_str::<Sample>(data) {
        Ok(sample) => {
            let text = serde_json::to_string(&sample).expect("a decoded payload serialises");
            let again: Sample = serde_json::from_str(&text).expect("a serialised payload decodes");
            assert_eq!(
                sample, again,
                "the payload changed in a round trip through {text}"
            );
        }
        Err(error) => {
            // The refusal `emit_json` makes of it (`invalid_payload` on the bridge): a path
            // and a message, also when the culprit is a lone surrogate escape.
            let lone = crate::error::LoneSurrogate::of(data, &error);
            let refusal = crate::error::DispatchError::invalid_payload("sample", data, &error);
            let crate::error::DispatchError::InvalidPayload { path, message, .. } = &refusal else {
                unreachable!("invalid_payload makes an InvalidPayload");
            };
            assert!(path.starts_with('$'), "{path}");
            assert!(!message.is_empty());
            if let Some(lone) = lone {
                assert!(message.contains("lone UTF-16 surrogate"), "{message}");
                assert_eq!(&data[lone.offset..lone.offset + 2], "\\u");
            }
            let _ = refusal.to_string();
        }
    }
    // The scan for lone surrogate escapes agrees with serde_json: text it reads as a JSON
    // value has none.
    if serde_json::from_str::<serde_json::Value>(data).is_ok() {
        assert_eq!(
            crate::error::LoneSurrogate::offsets(data).next(),
            None,
            "{data}"
        );
    }
    let _ = serde_json::from_str::<u32>(data);
    let _ = serde_json::from_str::<String>(data);
    let _ = serde_json::from_str::<Vec<SampleNested>>(data);
}

/// `fuzz/fuzz_targets/bridge_frame.rs`: a WebSocket text frame from a browser, as the bridge
/// reads it (see [`crate::bridge`]): the envelope, the error frame of a refusal, an `auth`
/// frame's token and resume point, and the payload as a typed value.
#[cfg(feature = "bridge")]
pub fn bridge_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    crate::bridge::fuzz_frame(text, typed_payload);
}

/// `fuzz/fuzz_targets/nats_message.rs`: a message from NATS as the transport reads it, the
/// CloudEvents reader and then the payload as a typed value.
#[cfg(feature = "nats")]
pub fn nats_message(data: &[u8]) {
    match crate::cloudevents::read(data) {
        Ok(received) => {
            assert!(!received.id.is_empty() && !received.source.is_empty());
            assert!(!received.kind.is_empty());
            // Lone surrogate escapes in `data` pass the envelope reader; the payload's decoder
            // refuses them (see `typed_payload`).
            typed_payload(received.data);
        }
        Err(why) => assert!(!why.is_empty()),
    }
}

/// `fuzz/fuzz_targets/stored_record.rs`: a stored row as [`SqliteStore`](crate::SqliteStore)
/// reads it and `records`/`replay` decode it. The bytes are `id \n status \n payload`: the id
/// and status columns parse (and, when they do, print back the same), the payload column is
/// read as JSON and decoded into a typed [`Record`](crate::Record). The whole input is also
/// read as an exported [`StoredEvent`](crate::StoredEvent) in JSON and as a `--since` value.
#[cfg(feature = "store")]
pub fn stored_record(data: &[u8]) {
    use crate::{EventId, Since, Status, StoredEvent, Timestamp};

    if let Ok(stored) = serde_json::from_slice::<StoredEvent>(data) {
        let _ = stored.decode::<Sample>();
        let text = serde_json::to_string(&stored).expect("a stored event serialises");
        let again: StoredEvent = serde_json::from_str(&text).expect("and reads back");
        assert_eq!(stored.id, again.id);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut columns = text.splitn(3, '\n');
    let (id, status, payload) = (
        columns.next().unwrap_or_default(),
        columns.next().unwrap_or_default(),
        columns.next().unwrap_or_default(),
    );
    let id = match id.parse::<EventId>() {
        Ok(parsed) => {
            let printed = parsed.to_string();
            assert_eq!(printed.parse::<EventId>().ok(), Some(parsed), "{printed}");
            parsed
        }
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let status = match status.parse::<Status>() {
        Ok(parsed) => {
            assert_eq!(parsed.as_str().parse::<Status>(), Ok(parsed));
            parsed
        }
        Err(_) => {
            let _ = Since::parse(status, Timestamp::from_millis(1_700_000_000_000));
            Status::Processed
        }
    };
    let Ok(payload) = serde_json::from_str::<serde_json::Value>(payload) else {
        return;
    };
    let stored = StoredEvent {
        sequence: 1,
        id,
        event: "fuzz".into(),
        time: Timestamp::from_millis(0),
        payload,
        package: "demo".into(),
        manifest_version: 1,
        fingerprint: "0123456789abcdef".into(),
        status,
    };
    match stored.decode::<Sample>() {
        Ok(record) => assert_eq!(record.sequence, 1),
        Err(error) => assert!(error.to_string().contains('1')),
    }
    let _ = stored.decode::<u32>();
    let _ = stored.decode::<Vec<SampleNested>>();
}

/// The bounded fuzzing that `cargo test` runs: `target` over every file of
/// `fuzz/corpus/<name>/` (its `seed-*` and `regression-*` files) and then over `iterations` deterministic pseudo-random mutations of
/// them (bit flips, byte changes, insertions of interesting bytes, truncation, duplication and
/// splicing of two inputs; xorshift64, fixed seed). `EVENTBUS_FUZZ_ITERATIONS` overrides
/// `iterations`. A panic names the input and writes it to
/// `target/fuzz-findings/<name>-<hash>` so that it can be added to the corpus as
/// `regression-*`. Returns the number of inputs run.
pub fn run_corpus(
    corpus: &std::path::Path,
    name: &str,
    iterations: usize,
    target: fn(&[u8]),
) -> usize {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let dir = corpus.join(name);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        // Only the committed inputs: what a local `cargo fuzz run` adds does not change the test.
        .filter(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            name.starts_with("seed-") || name.starts_with("regression-")
        })
        .collect();
    paths.sort();
    for path in &paths {
        let bytes = std::fs::read(path).expect("a corpus file");
        run_one(corpus, name, &bytes, target);
        seeds.push(bytes);
    }
    assert!(!seeds.is_empty(), "no corpus in {}", dir.display());
    let iterations = std::env::var("EVENTBUS_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(iterations);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    for _ in 0..iterations {
        let input = mutate(&seeds, &mut rng);
        run_one(corpus, name, &input, target);
    }
    seeds.len() + iterations
}

fn run_one(corpus: &std::path::Path, name: &str, input: &[u8], target: fn(&[u8])) {
    if std::panic::catch_unwind(|| target(input)).is_err() {
        let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let findings = corpus.join("../../target/fuzz-findings");
        let _ = std::fs::create_dir_all(&findings);
        let file = findings.join(format!("{name}-{hash:016x}"));
        let _ = std::fs::write(&file, input);
        panic!(
            "fuzz target `{name}` panicked on {:?} (saved to {})",
            String::from_utf8_lossy(input),
            file.display()
        );
    }
}

/// xorshift64: a deterministic generator for [`run_corpus`].
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that tend to matter to the readers: YAML and JSON syntax, quotes, escapes, digits.
const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"'",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\n",
    b"  ",
    b"- ",
    b"&a ",
    b"*a",
    b"!!",
    b"#",
    b"|",
    b">",
    b"---",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xf0\x9f\x98",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"18446744073709551616",
    b"9007199254740993",
    b"1e400",
    b"-0",
    b"*/",
    b"${x}",
    b"`",
    b"</script>",
    b"\xe2\x80\xae",
];

fn mutate(seeds: &[Vec<u8>], rng: &mut XorShift) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, piece.iter().copied());
            }
            3 => data.truncate(at),
            4 if !data.is_empty() => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
            5 => {
                let end = (at + rng.below(256)).min(data.len());
                let piece = data[at..end].to_vec();
                data.splice(at..at, piece);
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let i = rng.below(data.len() + 1);
                let digits = rng.next().to_string();
                data.splice(i..i, digits.bytes());
            }
        }
    }
    data
}
