//! The errors every store and handler shares. Each keeps its cause as a `source`; logs print
//! the whole chain with [`chain`], clients never see it.

use std::error::Error;
use std::fmt;

/// Any cause, kept whole.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A store failed for a reason the caller cannot fix. Shown to clients only as "internal
/// error" (or "try again" for contention); the details go to the log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer, or answered with an error of its own.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// An item is not what this code wrote: a bug or a hand edit, never fixed by retrying.
    #[error("a stored item is unreadable")]
    Corrupt(#[source] BoxError),
    /// The store refused the request as made (a commit over the item limit, an item twice):
    /// a bug in the caller.
    #[error("the store refused the request: {0}")]
    Refused(String),
    /// Too many writers raced for the same items; try again later.
    #[error("too much contention; try again")]
    Contention,
    /// The store refused the request for now and did nothing: DynamoDB's throttling
    /// (`ThrottlingException`, `ProvisionedThroughputExceededException`, an item's
    /// partition over its write rate) or a transaction meeting another one on an item
    /// (`TransactionConflict`). Safe to retry. A store refusing a request makes it with
    /// [`StoreError::throttled`], which counts it.
    #[error("the store is throttling these requests; try again")]
    Throttled,
    /// A page cursor that this store did not hand out.
    #[error("the page cursor is not valid")]
    InvalidCursor,
}

impl StoreError {
    pub fn unavailable(cause: impl Into<BoxError>) -> StoreError {
        StoreError::Unavailable(cause.into())
    }

    pub fn corrupt(cause: impl Into<BoxError>) -> StoreError {
        StoreError::Corrupt(cause.into())
    }

    /// The store refuses a request as throttled, now: one `StoreThrottles` for the service
    /// running it (nothing outside an observed invocation). An error that is only passed on
    /// or answered again is not another refusal, and is not counted again.
    pub fn throttled() -> StoreError {
        crate::metrics::count(crate::metrics::Metric::StoreThrottles);
        StoreError::Throttled
    }

    /// Whether the same request may succeed later: the store was down or contended.
    /// The same error again, for another caller of one failed call (the cause as text):
    /// the same kind, so the same decision to retry or not.
    pub fn again(&self) -> StoreError {
        match self {
            StoreError::Unavailable(_) => StoreError::unavailable(chain(self).to_string()),
            StoreError::Corrupt(_) => StoreError::corrupt(chain(self).to_string()),
            StoreError::Refused(why) => StoreError::Refused(why.clone()),
            StoreError::Contention => StoreError::Contention,
            StoreError::Throttled => StoreError::Throttled,
            StoreError::InvalidCursor => StoreError::InvalidCursor,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Contention | StoreError::Throttled
        )
    }
}

/// An error and every cause under it, `: `-separated, for a log line.
pub fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl fmt::Display + 'a {
    Chain(error)
}

struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_keeps_its_cause_and_says_whether_to_retry() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        let down = StoreError::unavailable(io);
        assert_eq!(
            chain(&down).to_string(),
            "the store is unavailable: connect timed out"
        );
        assert!(down.source().is_some());
        assert!(down.is_retryable() && StoreError::Contention.is_retryable());
        assert!(StoreError::Throttled.is_retryable());
        assert!(!StoreError::corrupt("item without a version").is_retryable());
        assert!(!StoreError::Refused("too big".into()).is_retryable());
        assert!(!StoreError::InvalidCursor.is_retryable());
    }
}
