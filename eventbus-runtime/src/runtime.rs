//! Where timers and tasks run: the tokio runtime the bus was built in, one given to the
//! builder, or else a small internal runtime on its own thread, started on first use.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::meta::Retry;

/// How retry delays are randomised.
///
/// ```
/// use eventbus_runtime::Jitter;
/// assert_eq!(Jitter::default(), Jitter::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Jitter {
    /// "Full jitter": a uniformly random delay between zero and the exponential backoff
    /// (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015). Spreads retries of many
    /// failures apart.
    #[default]
    Full,
    /// The exponential backoff itself: `backoff × 2^(attempt − 1)`, capped. Predictable, for
    /// tests and for a single consumer.
    None,
}

/// Settings of the async layer (from the builder).
#[derive(Debug, Clone)]
pub(crate) struct AsyncSettings {
    pub(crate) jitter: Jitter,
    pub(crate) async_concurrency: usize,
    pub(crate) async_queue: usize,
    pub(crate) retry_queue: usize,
    pub(crate) rate_limit_queue: usize,
    pub(crate) shutdown_timeout: Duration,
    /// The timeout of async handler calls that set none (`BusBuilder::handler_timeout`).
    pub(crate) handler_timeout: Option<Duration>,
}

/// The scheduler of one bus, its pending-work tracker and the shutdown abandon signal.
pub(crate) struct Runtime {
    handle: OnceLock<Handle>,
    pub(crate) settings: AsyncSettings,
    tasks: AtomicUsize,
    idle: Notify,
    abandoned: AtomicBool,
    abandon: Notify,
    seed: AtomicU64,
}

static INTERNAL: OnceLock<Handle> = OnceLock::new();

/// The internal runtime: one current-thread tokio runtime with timers, on a thread of its own,
/// shared by every bus of the process that was built outside any runtime.
fn internal() -> Handle {
    INTERNAL
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("eventbus: cannot start the internal tokio runtime");
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("eventbus-runtime".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .expect("eventbus: cannot start the internal runtime thread");
            handle
        })
        .clone()
}

impl Runtime {
    /// `explicit`, else the runtime we are in, else (lazily) the internal one.
    pub(crate) fn new(explicit: Option<Handle>, settings: AsyncSettings) -> Self {
        let handle = OnceLock::new();
        if let Some(h) = explicit.or_else(|| Handle::try_current().ok()) {
            let _ = handle.set(h);
        }
        let seed = {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(0x5eed_u64) | 1
        };
        Runtime {
            handle,
            settings,
            tasks: AtomicUsize::new(0),
            idle: Notify::new(),
            abandoned: AtomicBool::new(false),
            abandon: Notify::new(),
            seed: AtomicU64::new(seed),
        }
    }

    pub(crate) fn handle(&self) -> &Handle {
        self.handle.get_or_init(internal)
    }

    /// Whether a runtime was chosen (the internal one is only started when work needs it).
    pub(crate) fn started(&self) -> bool {
        self.handle.get().is_some()
    }

    /// Spawns work that shutdown waits for (and abandons at its deadline).
    pub(crate) fn spawn_tracked(self: &Arc<Self>, work: impl Future<Output = ()> + Send + 'static) {
        let token = Token::new(self.clone());
        self.handle().spawn(async move {
            let _token = token;
            work.await;
        });
    }

    /// Spawns a timer whose pending content shutdown flushes by itself.
    pub(crate) fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.handle().spawn(work);
    }

    pub(crate) fn pending(&self) -> usize {
        self.tasks.load(Ordering::Acquire)
    }

    /// Resolves once no tracked work is pending.
    pub(crate) async fn idle(&self) {
        loop {
            let mut notified = pin!(self.idle.notified());
            notified.as_mut().enable();
            if self.pending() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Tells pending work to give up (shutdown's deadline passed).
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
        self.abandon.notify_waiters();
    }

    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    async fn abandoned(&self) {
        loop {
            let mut notified = pin!(self.abandon.notified());
            notified.as_mut().enable();
            if self.is_abandoned() {
                return;
            }
            notified.await;
        }
    }

    /// Runs `work` unless shutdown abandons it first: `None` then.
    pub(crate) async fn unless_abandoned<F: Future>(&self, work: F) -> Option<F::Output> {
        let mut work = pin!(work);
        // Not started until polled: most handler calls finish on their first poll, and only
        // one that waits pays for registering with the shutdown notification.
        let mut abandoned = pin!(self.abandoned());
        std::future::poll_fn(|cx| {
            if self.is_abandoned() {
                return Poll::Ready(None);
            }
            if let Poll::Ready(output) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            abandoned.as_mut().poll(cx).map(|()| None)
        })
        .await
    }

    /// Runs `work` for at most `limit` unless shutdown abandons it first: `None` if abandoned,
    /// `Some(Err(limit))` if the limit passed first. Either way `work` is dropped unfinished,
    /// which cancels it. The limit is measured on tokio's clock, like every policy timer, so a
    /// paused clock drives it in tests.
    pub(crate) async fn within<F: Future>(
        &self,
        limit: Option<Duration>,
        work: F,
    ) -> Option<Result<F::Output, Duration>> {
        match limit {
            None => self.unless_abandoned(work).await.map(Ok),
            Some(limit) => self
                .unless_abandoned(tokio::time::timeout(limit, work))
                .await
                .map(|finished| finished.map_err(|_| limit)),
        }
    }

    /// Sleeps unless abandoned: `false` if abandoned.
    pub(crate) async fn sleep(&self, delay: Duration) -> bool {
        self.unless_abandoned(tokio::time::sleep(delay))
            .await
            .is_some()
    }

    /// The delay before the attempt after `attempt` (1-based) failed.
    pub(crate) fn backoff(&self, retry: &Retry, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        let ceiling = retry
            .backoff
            .checked_mul(1 << exponent)
            .unwrap_or(retry.max_backoff)
            .min(retry.max_backoff);
        match self.settings.jitter {
            Jitter::None => ceiling,
            Jitter::Full => ceiling.mul_f64(self.random_unit()),
        }
    }

    /// A number in [0, 1): xorshift64* over a per-bus random seed.
    fn random_unit(&self) -> f64 {
        let mut x = self.seed.load(Ordering::Relaxed);
        loop {
            let mut next = x;
            next ^= next >> 12;
            next ^= next << 25;
            next ^= next >> 27;
            match self
                .seed
                .compare_exchange_weak(x, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let out = next.wrapping_mul(0x2545_F491_4F6C_DD1D);
                    return (out >> 11) as f64 / (1_u64 << 53) as f64;
                }
                Err(current) => x = current,
            }
        }
    }
}

/// Counts one piece of tracked work while alive.
struct Token(Arc<Runtime>);

impl Token {
    fn new(runtime: Arc<Runtime>) -> Self {
        runtime.tasks.fetch_add(1, Ordering::AcqRel);
        Token(runtime)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(jitter: Jitter) -> Runtime {
        Runtime::new(
            None,
            AsyncSettings {
                jitter,
                async_concurrency: 2,
                async_queue: 1,
                retry_queue: 1,
                rate_limit_queue: 1,
                shutdown_timeout: Duration::from_secs(1),
                handler_timeout: None,
            },
        )
    }

    const RETRY: Retry = Retry {
        attempts: 10,
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(1000),
    };

    #[test]
    fn backoff_doubles_and_is_capped() {
        let rt = runtime(Jitter::None);
        let delays: Vec<u128> = (1..=6).map(|a| rt.backoff(&RETRY, a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(rt.backoff(&RETRY, 200).as_millis(), 1000);
    }

    #[test]
    fn full_jitter_stays_below_the_ceiling_and_spreads() {
        let rt = runtime(Jitter::Full);
        let samples: Vec<Duration> = (0..1000).map(|_| rt.backoff(&RETRY, 3)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        let below_half = samples
            .iter()
            .filter(|d| **d < Duration::from_millis(200))
            .count();
        // Uniform on [0, 400ms): about half below 200ms.
        assert!((350..=650).contains(&below_half), "{below_half}");
    }
}
