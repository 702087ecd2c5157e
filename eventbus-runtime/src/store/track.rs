//! Which stored event the current code is delivering, so its outcome can be recorded.
//!
//! A persisted emit stores the event, then dispatches it inside a *delivery scope*: a
//! thread-local pointer to a [`Delivery`] of that sequence number. Work that outlives the emit
//! (a retry, a call queued for an async handler) [`capture`]s the scope and re-enters it while
//! it runs ([`scope`]), holding the `Delivery` alive. A dead letter created inside a scope of
//! the same event marks the delivery failed ([`dead_lettered`]). When the last holder lets go,
//! the delivery records its outcome in the store: processed, or failed.
//!
//! The same scope follows an event received from a NATS JetStream consumer (feature `nats`):
//! there its outcome acknowledges the message (ack, nak with the retry delay, or term), and the
//! failure pipeline asks [`remote`] whether the broker, not the bus, retries a failed handler.
//!
//! Without the `store` and `nats` features every function here is a no-op and [`Carried`] is
//! `()`, so the hooks in the dispatch code cost nothing.

#[cfg(any(feature = "store", feature = "nats"))]
pub(crate) use enabled::*;

#[cfg(not(any(feature = "store", feature = "nats")))]
pub(crate) use disabled::*;

#[cfg(not(any(feature = "store", feature = "nats")))]
mod disabled {
    #[cfg(feature = "async")]
    use std::future::Future;

    /// A captured delivery scope (nothing without the `store` feature).
    #[cfg(feature = "async")]
    pub(crate) type Carried = ();

    /// The current delivery scope.
    #[cfg(feature = "async")]
    #[inline(always)]
    pub(crate) fn capture() -> Carried {}

    /// Runs `work` inside `carried`.
    #[cfg(feature = "async")]
    #[inline(always)]
    pub(crate) fn scope<F: Future>(_carried: Carried, work: F) -> F {
        work
    }

    /// Runs `work` inside the current scope.
    #[cfg(feature = "async")]
    #[inline(always)]
    pub(crate) fn carry<F: Future>(work: F) -> F {
        work
    }

    /// A dead letter of `event` was created.
    #[inline(always)]
    pub(crate) fn dead_lettered(_event: &'static str) {}
}

#[cfg(any(feature = "store", feature = "nats"))]
mod enabled {
    use std::cell::RefCell;
    #[cfg(feature = "async")]
    use std::future::Future;
    #[cfg(feature = "async")]
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    #[cfg(feature = "async")]
    use std::task::{Context, Poll};

    #[cfg(feature = "store")]
    use crate::store::journal::Queue;
    #[cfg(feature = "store")]
    use crate::store::record::Status;

    /// One event being delivered: stored (its outcome goes to the store) or received from a
    /// JetStream consumer (its outcome acknowledges the message). Dropped by its last holder,
    /// it records the outcome.
    pub(crate) struct Delivery {
        pub(crate) event: &'static str,
        failed: AtomicBool,
        finish: Finish,
    }

    enum Finish {
        #[cfg(feature = "store")]
        Journal {
            queue: Arc<Queue>,
            sequence: u64,
            /// A dead letter of the event is being re-dispatched: success resolves the event
            /// (processed once no letter of it remains) rather than marking it processed.
            resolves: bool,
        },
        #[cfg(feature = "nats")]
        Remote(crate::nats::RemoteDelivery),
    }

    impl Delivery {
        #[cfg(feature = "store")]
        pub(crate) fn new(queue: Arc<Queue>, event: &'static str, sequence: u64) -> Arc<Self> {
            Self::journal(queue, event, sequence, false)
        }

        /// The delivery of a dead letter of the stored event `sequence`, re-dispatched: a new
        /// failure marks the event failed again (its new letter is linked to it), success
        /// resolves it.
        #[cfg(feature = "store")]
        pub(crate) fn resolving(
            queue: Arc<Queue>,
            event: &'static str,
            sequence: u64,
        ) -> Arc<Self> {
            Self::journal(queue, event, sequence, true)
        }

        #[cfg(feature = "store")]
        fn journal(
            queue: Arc<Queue>,
            event: &'static str,
            sequence: u64,
            resolves: bool,
        ) -> Arc<Self> {
            Arc::new(Delivery {
                event,
                failed: AtomicBool::new(false),
                finish: Finish::Journal {
                    queue,
                    sequence,
                    resolves,
                },
            })
        }

        /// The delivery of a message from a JetStream consumer.
        #[cfg(feature = "nats")]
        pub(crate) fn remote(
            event: &'static str,
            remote: crate::nats::RemoteDelivery,
        ) -> Arc<Self> {
            Arc::new(Delivery {
                event,
                failed: AtomicBool::new(false),
                finish: Finish::Remote(remote),
            })
        }

        /// What the broker's delivery says, for a delivery from a JetStream consumer.
        #[cfg(feature = "nats")]
        pub(crate) fn as_remote(&self) -> Option<&crate::nats::RemoteDelivery> {
            match &self.finish {
                Finish::Remote(remote) => Some(remote),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
    }

    impl Drop for Delivery {
        fn drop(&mut self) {
            let failed = self.failed.load(Ordering::Acquire);
            match &self.finish {
                #[cfg(feature = "store")]
                Finish::Journal {
                    queue,
                    sequence,
                    resolves,
                } => match (failed, resolves) {
                    (true, _) => queue.finish(*sequence, Status::Failed),
                    (false, true) => queue.resolve(*sequence),
                    (false, false) => queue.finish(*sequence, Status::Processed),
                },
                #[cfg(feature = "nats")]
                Finish::Remote(remote) => remote.finish(failed),
            }
        }
    }

    thread_local! {
        static CURRENT: RefCell<Option<Arc<Delivery>>> = const { RefCell::new(None) };
    }

    /// A captured delivery scope.
    pub(crate) type Carried = Option<Arc<Delivery>>;

    #[cfg(feature = "async")]
    /// The current delivery scope, to re-enter later.
    pub(crate) fn capture() -> Carried {
        CURRENT
            .try_with(|current| current.borrow().clone())
            .unwrap_or(None)
    }

    /// The sequence number of the delivery of the stored event `event` in progress on this
    /// thread.
    #[cfg(feature = "store")]
    pub(crate) fn current_sequence(event: &str) -> Option<u64> {
        CURRENT
            .try_with(|current| {
                current
                    .borrow()
                    .as_ref()
                    .filter(|d| d.event == event)
                    .and_then(|d| match &d.finish {
                        Finish::Journal { sequence, .. } => Some(*sequence),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    })
            })
            .unwrap_or(None)
    }

    /// The delivery of `event` from a JetStream consumer in progress on this thread, if any:
    /// the failure pipeline leaves its retries to the broker.
    #[cfg(feature = "nats")]
    pub(crate) fn remote(event: &str) -> Option<Arc<Delivery>> {
        CURRENT
            .try_with(|current| {
                current
                    .borrow()
                    .as_ref()
                    .filter(|d| d.event == event && d.as_remote().is_some())
                    .cloned()
            })
            .unwrap_or(None)
    }

    /// Restores the previous scope when dropped.
    pub(crate) struct Entered {
        previous: Carried,
    }

    /// Makes `carried` the current scope until the guard drops.
    pub(crate) fn enter(carried: Carried) -> Entered {
        // During thread-local destruction there is no scope to enter: `carried` is dropped.
        let previous = CURRENT
            .try_with(|current| current.replace(carried))
            .unwrap_or(None);
        Entered { previous }
    }

    impl Drop for Entered {
        fn drop(&mut self) {
            let previous = self.previous.take();
            // Dropping what was current may record an outcome; do it outside the borrow.
            let _finished = CURRENT
                .try_with(|current| current.replace(previous))
                .unwrap_or(None);
        }
    }

    /// A dead letter of `event` was created: the delivery in scope, if it is of that event,
    /// failed. (A handler emitting another event does so in its own scope, or in none.)
    pub(crate) fn dead_lettered(event: &'static str) {
        let _ = CURRENT.try_with(|current| {
            if let Some(delivery) = current.borrow().as_ref()
                && delivery.event == event
            {
                delivery.failed.store(true, Ordering::Release);
            }
        });
    }

    #[cfg(feature = "async")]
    /// `work`, polled and dropped inside `carried`.
    pub(crate) fn scope<F: Future>(carried: Carried, work: F) -> Scoped<F> {
        Scoped {
            carried,
            work: Some(Box::pin(work)),
        }
    }

    #[cfg(feature = "async")]
    /// `work`, polled and dropped inside the current scope.
    pub(crate) fn carry<F: Future>(work: F) -> Scoped<F> {
        scope(capture(), work)
    }

    #[cfg(feature = "async")]
    /// A future that runs in a delivery scope.
    pub(crate) struct Scoped<F: Future> {
        carried: Carried,
        work: Option<Pin<Box<F>>>,
    }

    #[cfg(feature = "async")]
    impl<F: Future> Future for Scoped<F> {
        type Output = F::Output;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = &mut *self;
            let _entered = enter(this.carried.clone());
            let work = this.work.as_mut().expect("polled after completion");
            let poll = work.as_mut().poll(cx);
            if poll.is_ready() {
                this.work = None;
            }
            poll
        }
    }

    #[cfg(feature = "async")]
    impl<F: Future> Drop for Scoped<F> {
        fn drop(&mut self) {
            if let Some(work) = self.work.take() {
                // Unfinished work dead-letters what it owed while dropping: in scope.
                let _entered = enter(self.carried.clone());
                drop(work);
            }
        }
    }
}
