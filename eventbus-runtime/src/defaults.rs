//! The defaults of the reliability layer, each with where it comes from. `docs/reliability.md`
//! has the same table.

#[cfg(feature = "async")]
use std::time::Duration;

#[cfg(feature = "async")]
use crate::meta::Batch;

/// Letters the in-memory dead-letter queue keeps before evicting the oldest (our choice: a
/// bound on memory; NServiceBus and MassTransit error queues are unbounded because they live in
/// a broker).
pub const DEAD_LETTER_CAPACITY: usize = 10_000;

/// Buffer of a `subscribe()` stream before it lags (our choice; tokio's `broadcast` has no
/// default).
#[cfg(feature = "async")]
pub const STREAM_CAPACITY: usize = 1_024;

/// Buffer of an `errors()` stream before it lags (our choice).
#[cfg(feature = "async")]
pub const ERRORS_CAPACITY: usize = 1_024;

/// Events an async handler holds waiting for a free slot; more are dead-lettered (our choice).
#[cfg(feature = "async")]
pub const ASYNC_QUEUE: usize = 1_024;

/// Retries one sync or batch handler may have pending (scheduled, each holding a copy of its
/// payload); a failure the retry policy would retry beyond that is dead-lettered as an
/// overflow (our choice: the same bound as an async handler's queue).
#[cfg(feature = "async")]
pub const RETRY_QUEUE: usize = 1_024;

/// Events a rate-limited event holds waiting for a token; more are dead-lettered (our choice).
#[cfg(feature = "async")]
pub const RATE_LIMIT_QUEUE: usize = 1_024;

/// How long `shutdown()` waits for pending work (Kubernetes' default
/// `terminationGracePeriodSeconds`).
#[cfg(feature = "async")]
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Batch size and window of `on_batch` handlers when neither the manifest nor the code sets
/// them (MassTransit's `BatchOptions`: `MessageLimit` 10, `TimeLimit` 1 s).
#[cfg(feature = "async")]
pub const BATCH: Batch = Batch {
    max_size: 10,
    max_wait: Duration::from_secs(1),
};

/// Calls of one async handler that may run at once: `max(2, available cores)` (NServiceBus's
/// default concurrency limit).
///
/// ```
/// use eventbus_runtime::defaults;
///
/// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
/// assert_eq!(defaults::async_concurrency(), cores.max(2));
/// ```
#[cfg(feature = "async")]
pub fn async_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(2)
}
