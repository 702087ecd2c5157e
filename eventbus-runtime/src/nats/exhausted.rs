//! Messages JetStream gave up on: their `max_deliver` deliveries to this service's consumer were
//! used up without an acknowledgement (the processes handling them died or shut down before
//! settling them; a handler failure on the last attempt is dead-lettered by the delivery itself
//! and terminated, so it never gets here). The broker then stops delivering the message and
//! publishes a `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>` advisory; this
//! module turns each advisory into a local dead letter, with the message read back from the
//! stream by its sequence, so such an event is never lost silently.
//!
//! The advisory subscriptions are queue subscriptions named after the consumer: one instance
//! of the service receives each advisory, as one would have received the message. They are made
//! before the consumers start pulling, because a pull consumer only gives up on a message when
//! it next pulls (so after a crash, the restarted process hears of it).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

use super::NatsError;
use super::consume::consumer_name;
use super::link::{Link, add};
use crate::bus::WeakCore;
use crate::dead_letter::{DeadLetter, DeadLetterReason};
use crate::handler::{FailureKind, HandlerFailure};
use crate::timestamp::Timestamp;

/// The advisory subject of a consumer of a stream.
pub(crate) fn advisory_subject(stream: &str, consumer: &str) -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}")
}

/// The fields of `io.nats.jetstream.advisory.v1.max_deliver` this module reads.
#[derive(Deserialize)]
struct Advisory {
    stream_seq: u64,
    deliveries: u64,
}

/// Subscribes to the advisories of the consumers of `routes` (the persisted ones) and starts a
/// task per subscription. Returns once the server has the subscriptions.
pub(crate) async fn watch(
    link: Arc<Link>,
    core: WeakCore,
    routes: Vec<usize>,
) -> Result<(), NatsError> {
    let mut subscribers = Vec::new();
    for index in routes {
        let route = &link.routes[index];
        if !route.persist {
            continue;
        }
        let consumer = consumer_name(&link, route);
        let subject = advisory_subject(&link.stream, &consumer);
        let subscriber = link
            .client
            .queue_subscribe(subject.clone(), consumer.clone())
            .await
            .map_err(|e| NatsError::Setup(format!("subscribe `{subject}`: {e}")))?;
        subscribers.push((index, consumer, subscriber));
    }
    if subscribers.is_empty() {
        return Ok(());
    }
    link.client
        .flush()
        .await
        .map_err(|e| NatsError::Setup(format!("flush the advisory subscriptions: {e}")))?;
    for (route, consumer, subscriber) in subscribers {
        link.consuming.fetch_add(1, Ordering::AcqRel);
        let watcher = Watcher {
            route,
            consumer,
            link: link.clone(),
            core: core.clone(),
        };
        tokio::spawn(watcher.run(subscriber, link.stop.subscribe()));
    }
    Ok(())
}

/// The advisories of one consumer.
struct Watcher {
    route: usize,
    consumer: String,
    link: Arc<Link>,
    core: WeakCore,
}

impl Watcher {
    async fn run(self, mut subscriber: async_nats::Subscriber, mut stop: watch::Receiver<bool>) {
        loop {
            let message = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                message = subscriber.next() => message,
            };
            let Some(message) = message else { break };
            // Owed until the letter is written: `flush` and shutdown wait for it.
            let _owed = self.link.owed.take();
            self.dead_letter(&message.payload).await;
        }
        let _ = subscriber.unsubscribe().await;
        if self.link.consuming.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.link.consumers_done.notify_waiters();
        }
    }

    /// Reads the message the advisory names back from the stream and dead-letters it.
    async fn dead_letter(&self, advisory: &[u8]) {
        let route = &self.link.routes[self.route];
        let stream = &self.link.stream;
        let (sequence, deliveries, detail) = match serde_json::from_slice::<Advisory>(advisory) {
            Ok(a) => (a.stream_seq, a.deliveries, String::new()),
            // Not what nats-server sends: still reported, never dropped.
            Err(e) => (
                0,
                0,
                format!(
                    " (unreadable advisory: {e}: {})",
                    String::from_utf8_lossy(advisory)
                ),
            ),
        };
        let (payload, id) = match self.read(sequence).await {
            Ok(message) => match crate::cloudevents::read(&message) {
                Ok(received) => (
                    serde_json::from_str(received.data).unwrap_or(Value::Null),
                    format!("event id {}, ", received.id),
                ),
                Err(_) => (
                    Value::String(String::from_utf8_lossy(&message).into_owned()),
                    "not a CloudEvent, ".to_owned(),
                ),
            },
            Err(why) => (
                Value::Null,
                format!("its payload could not be read back: {why}; "),
            ),
        };
        let error = format!(
            "NATS JetStream stopped delivering it: its {deliveries} deliveries to consumer `{}` \
             were used up without an acknowledgement ({id}stream `{stream}` sequence \
             {sequence}){detail}. The processes handling it stopped or crashed before settling \
             it; re-dispatch it from the dead-letter queue once that is fixed",
            self.consumer
        );
        let attempts = u32::try_from(deliveries).unwrap_or(u32::MAX);
        let event = route.name;
        let core = self.core.clone();
        let counters = self.link.counters.clone();
        // The dead-letter store may write to disk: not on the link's runtime thread.
        let _ = tokio::task::spawn_blocking(move || {
            let Some(core) = core.upgrade() else { return };
            let shared = core.shared();
            let letter = shared.dead_letter(DeadLetter {
                id: 0,
                event: event.to_owned(),
                handler: None,
                handler_id: None,
                reason: DeadLetterReason::DeliveriesExhausted,
                error: error.clone(),
                attempts,
                batch: false,
                payload: payload.clone(),
                at: Timestamp::now(),
            });
            add(&counters.exhausted);
            let mut failure = HandlerFailure::other(
                event,
                None,
                FailureKind::DeliveriesExhausted,
                error,
                attempts,
                payload,
            );
            failure.dead_letter = letter;
            shared.failures.report(&failure);
        })
        .await;
    }

    /// The stored message at `sequence` (a few tries: the advisory may come while the
    /// connection is being re-established).
    async fn read(&self, sequence: u64) -> Result<bytes::Bytes, String> {
        let mut last = String::new();
        for attempt in 0..3u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            let stream = match self
                .link
                .jetstream
                .get_stream_no_info(&self.link.stream)
                .await
            {
                Ok(stream) => stream,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            match stream.get_raw_message(sequence).await {
                Ok(message) => return Ok(message.payload),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}
