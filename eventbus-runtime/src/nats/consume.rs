//! The receiving side: this service's durable consumers and plain subscriptions (tasks on the
//! link's runtime), and the thread that hands what they receive to the bus's handlers.
//!
//! Handlers never run on the link's runtime: a handler that emits a persisted distributed
//! event waits for that runtime to publish it. They run on the `eventbus-nats-deliver`
//! thread, one event at a time in arrival order (async handlers on the bus's runtime).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::link::{Counters, Link, OwedToken, Route, add};
use super::{NatsError, Outcome, RemoteDelivery};
use crate::bus::{BusCore, WeakCore};
use crate::handler::{FailureKind, HandlerFailure};
use crate::store::track::{self, Delivery};

/// Received messages waiting for the delivery thread, at most.
const QUEUE: usize = 256;

/// The durable consumer name of a persisted distributed event: `<service>_<eventName>`.
pub(crate) fn consumer_name(link: &Link, route: &Route) -> String {
    format!("{}_{}", link.config.service, route.name)
}

/// A received message on its way to the delivery thread.
struct Inbound {
    route: usize,
    payload: Bytes,
    /// For a JetStream delivery: the broker's delivery count and where its outcome goes.
    stream: Option<(u32, oneshot::Sender<Outcome>)>,
}

/// Where the messages of one route come from.
enum Feed {
    Stream(Box<jetstream::consumer::PullConsumer>),
    Plain(async_nats::Subscriber),
}

pub(crate) async fn start(core: &BusCore, link: &Arc<Link>) -> Result<(), NatsError> {
    let mut started = link.started.lock().await;
    if *started {
        return Ok(());
    }
    link.wait_ready().await?;
    // Only the events this bus has (a generated subset may lack some).
    let routes: Vec<usize> = (0..link.routes.len())
        .filter(|&i| core.find(link.routes[i].name).is_ok())
        .collect();
    let setup = link.handle.spawn(feeds(link.clone(), routes.clone()));
    let feeds = match setup.await {
        Ok(feeds) => feeds?,
        Err(_) => return Err(NatsError::Setup("the NATS runtime stopped".into())),
    };
    // Before any pull: a consumer gives up on a message when it next pulls.
    let watching = link.handle.spawn(super::exhausted::watch(
        link.clone(),
        core.downgrade(),
        routes,
    ));
    match watching.await {
        Ok(watching) => watching?,
        Err(_) => return Err(NatsError::Setup("the NATS runtime stopped".into())),
    }
    let (sender, receiver) = mpsc::channel(QUEUE);
    let weak = core.downgrade();
    let delivering = link.clone();
    std::thread::Builder::new()
        .name("eventbus-nats-deliver".into())
        .spawn(move || deliver_all(receiver, weak, delivering))
        .map_err(|e| NatsError::Setup(format!("cannot start the delivery thread: {e}")))?;
    for (route, feed) in feeds {
        link.consuming.fetch_add(1, Ordering::AcqRel);
        let stop = link.stop.subscribe();
        let task = Consumer {
            route,
            sender: sender.clone(),
            link: link.clone(),
        };
        link.handle.spawn(task.run(feed, stop));
    }
    *started = true;
    Ok(())
}

/// Creates (or resumes) the durable consumers and the subscriptions.
async fn feeds(link: Arc<Link>, routes: Vec<usize>) -> Result<Vec<(usize, Feed)>, NatsError> {
    let mut feeds = Vec::new();
    let stream = if routes.iter().any(|&i| link.routes[i].persist) {
        Some(
            link.jetstream
                .get_stream(&link.stream)
                .await
                .map_err(|e| NatsError::Setup(format!("stream `{}`: {e}", link.stream)))?,
        )
    } else {
        None
    };
    for index in routes {
        let route = &link.routes[index];
        let feed =
            match &stream {
                Some(stream) if route.persist => {
                    let name = consumer_name(&link, route);
                    // One extra delivery beyond the event's attempts: it is only used when a
                    // process died during the last attempt (a handler failure on the last
                    // attempt is dead-lettered and terminated, not redelivered).
                    let attempts = route.retry.map_or(1, |r| r.attempts);
                    let config = jetstream::consumer::pull::Config {
                        durable_name: Some(name.clone()),
                        description: Some(format!(
                            "eventbus: `{}` for service `{}`",
                            route.name, link.config.service
                        )),
                        deliver_policy: link.deliver_policy(),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: link.config.ack_wait,
                        max_deliver: i64::from(attempts) + 1,
                        filter_subject: route.subject.to_string(),
                        max_ack_pending: i64::from(link.config.max_ack_pending),
                        ..Default::default()
                    };
                    let consumer = stream.create_consumer(config).await.map_err(|e| {
                        NatsError::Setup(format!(
                            "consumer `{name}` on stream `{}`: {e}",
                            link.stream
                        ))
                    })?;
                    Feed::Stream(Box::new(consumer))
                }
                _ => {
                    let subject = route.subject.to_string();
                    let subscribed = if route.queue_group {
                        let group = link.config.service.clone();
                        link.client.queue_subscribe(subject, group).await
                    } else {
                        link.client.subscribe(subject).await
                    };
                    Feed::Plain(subscribed.map_err(|e| {
                        NatsError::Setup(format!("subscribe `{}`: {e}", route.subject))
                    })?)
                }
            };
        feeds.push((index, feed));
    }
    Ok(feeds)
}

/// One route's receiving task.
struct Consumer {
    route: usize,
    sender: mpsc::Sender<Inbound>,
    link: Arc<Link>,
}

impl Consumer {
    async fn run(self, feed: Feed, mut stop: watch::Receiver<bool>) {
        match feed {
            Feed::Plain(mut subscriber) => {
                loop {
                    let message = tokio::select! {
                        _ = stop.wait_for(|stop| *stop) => break,
                        message = subscriber.next() => message,
                    };
                    let Some(message) = message else { break };
                    if !self.forward(message.payload, None).await {
                        break;
                    }
                }
                let _ = subscriber.unsubscribe().await;
            }
            Feed::Stream(consumer) => 'pull: loop {
                if *stop.borrow() {
                    break;
                }
                let mut messages = match consumer.messages().await {
                    Ok(messages) => messages,
                    Err(_) => {
                        // Not connected, or JetStream is restarting: try again shortly.
                        tokio::select! {
                            _ = stop.wait_for(|stop| *stop) => break,
                            _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                        }
                    }
                };
                loop {
                    let next = tokio::select! {
                        _ = stop.wait_for(|stop| *stop) => break 'pull,
                        next = messages.next() => next,
                    };
                    let message = match next {
                        None => continue 'pull,
                        // Missed heartbeats, a reconnection: the stream goes on.
                        Some(Err(_)) => continue,
                        Some(Ok(message)) => message,
                    };
                    let attempt = message
                        .info()
                        .map(|info| u32::try_from(info.delivered).unwrap_or(u32::MAX))
                        .unwrap_or(1)
                        .max(1);
                    let (outcome, settled) = oneshot::channel();
                    let owed = self.link.owed.take();
                    let payload = message.payload.clone();
                    self.link.handle.spawn(settle(
                        message,
                        settled,
                        self.link.config.ack_wait,
                        self.link.counters.clone(),
                        owed,
                    ));
                    if !self.forward(payload, Some((attempt, outcome))).await {
                        break 'pull;
                    }
                }
            },
        }
        if self.link.consuming.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.link.consumers_done.notify_waiters();
        }
    }

    /// Hands a message to the delivery thread: `false` once that thread is gone.
    async fn forward(
        &self,
        payload: Bytes,
        stream: Option<(u32, oneshot::Sender<Outcome>)>,
    ) -> bool {
        add(&self.link.counters.received);
        self.link.queued.fetch_add(1, Ordering::AcqRel);
        let inbound = Inbound {
            route: self.route,
            payload,
            stream,
        };
        if self.sender.send(inbound).await.is_err() {
            self.link.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }
}

/// Tells the broker what became of a JetStream delivery, once its outcome is known; until
/// then, keeps it from being redelivered (progress signals every half `ack_wait`).
async fn settle(
    message: jetstream::Message,
    outcome: oneshot::Receiver<Outcome>,
    ack_wait: Duration,
    counters: Arc<Counters>,
    _owed: OwedToken,
) {
    let period = (ack_wait / 2).max(Duration::from_millis(100));
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(outcome);
    let outcome = loop {
        tokio::select! {
            outcome = &mut outcome => break outcome.unwrap_or(Outcome::Release),
            _ = progress.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    };
    // Acks and terms are confirmed by the server (retried a few times across a reconnect):
    // a lost ack would mean a redelivery.
    let message = &message;
    let confirmed = |kind: AckKind| async move {
        for attempt in 0..3u64 {
            if message.double_ack_with(kind).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        false
    };
    let done = match outcome {
        Outcome::Ack => {
            let done = confirmed(AckKind::Ack).await;
            if done {
                add(&counters.acked);
            }
            done
        }
        Outcome::Term => {
            let done = confirmed(AckKind::Term).await;
            if done {
                add(&counters.terminated);
            }
            done
        }
        Outcome::Nak(delay) => {
            let done = message.ack_with(AckKind::Nak(Some(delay))).await.is_ok();
            if done {
                add(&counters.redelivery_requested);
            }
            done
        }
        Outcome::Release => message.ack_with(AckKind::Nak(None)).await.is_ok(),
    };
    if !done {
        add(&counters.ack_failed);
    }
}

/// The delivery thread: hands each received message to the bus, in arrival order.
fn deliver_all(mut receiver: mpsc::Receiver<Inbound>, core: WeakCore, link: Arc<Link>) {
    while let Some(inbound) = receiver.blocking_recv() {
        match core.upgrade() {
            Some(core) => deliver(&core, &link, inbound),
            None => {
                // The bus was dropped without a shutdown: stop consuming, and let the broker
                // give what arrives meanwhile to someone else. The thread ends with the
                // consumers, and the link with it.
                link.stop.send_replace(true);
                release(inbound);
            }
        }
        link.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

fn release(inbound: Inbound) {
    if let Some((_, outcome)) = inbound.stream {
        let _ = outcome.send(Outcome::Release);
    }
}

fn deliver(core: &BusCore, link: &Link, inbound: Inbound) {
    let route = &link.routes[inbound.route];
    if core.is_shut_down() {
        return release(inbound);
    }
    let attempt = inbound.stream.as_ref().map_or(1, |(attempt, _)| *attempt);
    let refuse = |inbound: Inbound, why: String| {
        add(&link.counters.malformed);
        let payload = serde_json::from_slice::<Value>(&inbound.payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&inbound.payload).into()));
        let failure = HandlerFailure::other(
            route.name,
            None,
            FailureKind::Malformed,
            format!(
                "refused a message on `{}`: {why}; it was not delivered",
                route.subject
            ),
            attempt,
            payload,
        );
        core.shared().failures.report(&failure);
        if let Some((_, outcome)) = inbound.stream {
            let _ = outcome.send(Outcome::Term);
        }
    };
    let received = match crate::cloudevents::read(&inbound.payload) {
        Ok(received) => received,
        Err(why) => return refuse(inbound, format!("not a CloudEvent of this bus: {why}")),
    };
    if received.kind != route.kind {
        let why = format!(
            "its type is `{}`, not `{}` as its subject says",
            received.kind, route.kind
        );
        return refuse(inbound, why);
    }
    // Emitted here (or, when the service's instances share the event — a stream, a queue
    // group — by an instance of this service): delivered already.
    let shared = inbound.stream.is_some() || route.queue_group;
    let own =
        received.source == link.source || (shared && same_service(&received.source, &link.source));
    if own {
        add(&link.counters.skipped_own);
        if let Some((_, outcome)) = inbound.stream {
            let _ = outcome.send(Outcome::Ack);
        }
        return;
    }
    let delivery = core
        .find(route.name)
        .map_err(|e| e.to_string())
        .and_then(|event| {
            event
                .remote(received.data)
                .map_err(|e| format!("event {}: {e}", received.id))
        });
    let deliver = match delivery {
        Ok(deliver) => deliver,
        Err(why) => return refuse(inbound, why),
    };
    add(&link.counters.delivered);
    match inbound.stream {
        None => deliver(),
        Some((attempt, outcome)) => {
            let attempts = route.retry.map_or(1, |r| r.attempts);
            let delay = route.retry.map_or(Duration::ZERO, |retry| {
                core.shared().runtime.backoff(&retry, attempt)
            });
            let remote = RemoteDelivery::new(attempt, attempt >= attempts, delay, outcome);
            let _entered = track::enter(Some(Delivery::remote(route.name, remote)));
            deliver();
        }
    }
}

/// Whether two sources `/<package>/<service>/<instance>` name the same service.
fn same_service(a: &str, b: &str) -> bool {
    let service = |s: &str| s.rsplit_once('/').map(|(service, _)| service.to_owned());
    matches!((service(a), service(b)), (Some(x), Some(y)) if x == y)
}

impl Link {
    /// Stops taking messages and waits (at most `timeout`) until the consumers stopped and
    /// what they received reached the bus. `false` if the timeout passed.
    pub(crate) async fn quiesce(&self, timeout: Duration) -> bool {
        self.stop.send_replace(true);
        let consuming = self.consuming.clone();
        let queued = self.queued.clone();
        let done = self.consumers_done.clone();
        let wait = self.handle.spawn(async move {
            tokio::time::timeout(timeout, async {
                loop {
                    let notified = done.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if consuming.load(Ordering::Acquire) == 0 {
                        break;
                    }
                    notified.await;
                }
                while queued.load(Ordering::Acquire) > 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await
            .is_ok()
        });
        wait.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::same_service;

    #[test]
    fn sources_of_one_service() {
        assert!(same_service("/demo/installer/a1", "/demo/installer/b2"));
        assert!(!same_service("/demo/installer/a1", "/demo/monitor/a1"));
        assert!(!same_service("/other/installer/a1", "/demo/installer/a1"));
        assert!(!same_service("nonsense", "/demo/installer/a1"));
    }
}
