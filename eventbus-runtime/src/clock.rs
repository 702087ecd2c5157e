//! The time source of policies: tokio's clock when the `async` feature is on (so tests can pause
//! it), the standard monotonic clock otherwise.

use std::time::Instant;

/// Now, on the policies' clock.
pub(crate) fn now() -> Instant {
    #[cfg(feature = "async")]
    {
        tokio::time::Instant::now().into_std()
    }
    #[cfg(not(feature = "async"))]
    {
        Instant::now()
    }
}
