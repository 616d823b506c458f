//! Reading request bodies within a budget of in-flight bytes shared by all
//! requests, so that many large bodies at once cannot exhaust memory.
//!
//! A request reserves room for its announced length (or for the largest
//! body, when no length is announced) before reading a byte, holds it while
//! the body is in use, and gives back what it did not need.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request waits for room in the budget before it is turned away:
/// long enough to ride out a burst, short enough that waiting requests do not
/// pile up behind slow ones.
pub const BUDGET_WAIT: Duration = Duration::from_secs(1);

/// The `Content-Length` a request announces, if any.
pub fn announced_length(parts: &http::request::Parts) -> Option<u64> {
    parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The in-flight body bytes all requests share.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

/// A body read in full, and its share of the budget (given back on drop).
#[derive(Debug)]
pub struct HeldBody {
    /// The body.
    pub bytes: Bytes,
    _reserved: OwnedSemaphorePermit,
}

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the largest body accepted.
    TooLarge,
    /// No room in the budget within [`BUDGET_WAIT`].
    Busy,
    /// Not all there within the body-read timeout.
    TimedOut,
    /// The connection failed while reading.
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge => f.write_str("the body is larger than allowed"),
            BodyError::Busy => f.write_str("too many request bodies are being read; retry shortly"),
            BodyError::TimedOut => f.write_str("the body did not arrive in time"),
            BodyError::Read(e) => write!(f, "{e}"),
        }
    }
}

impl BodyBudget {
    /// A budget of `bytes` in-flight body bytes.
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Read all of `body`, at most `max` bytes, within `timeout`, reserving
    /// `announced` bytes (or `max` when unknown) first.
    pub async fn read<B>(
        &self,
        body: B,
        announced: Option<u64>,
        max: usize,
        timeout: Duration,
    ) -> Result<HeldBody, BodyError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let want = match announced {
            Some(n) if n > max as u64 => return Err(BodyError::TooLarge),
            Some(n) => n as usize,
            None => max,
        };
        let want = u32::try_from(want).map_err(|_| BodyError::TooLarge)?;
        let mut reserved = tokio::time::timeout(
            BUDGET_WAIT,
            Arc::clone(&self.bytes).acquire_many_owned(want),
        )
        .await
        .map_err(|_| BodyError::Busy)?
        .map_err(|_| BodyError::Busy)?;
        let collected = tokio::time::timeout(timeout, Limited::new(body, max).collect())
            .await
            .map_err(|_| BodyError::TimedOut)?;
        let bytes = match collected {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(BodyError::TooLarge);
            }
            Err(e) => return Err(BodyError::Read(e.to_string())),
        };
        // Give back what an unannounced (or over-announced) body did not use.
        if let Some(unused) = reserved.num_permits().checked_sub(bytes.len().max(1))
            && unused > 0
        {
            drop(reserved.split(unused));
        }
        Ok(HeldBody {
            bytes,
            _reserved: reserved,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[tokio::test]
    async fn reserves_while_held_and_gives_back() {
        let budget = BodyBudget::new(100);
        let held = budget
            .read(
                Full::new(Bytes::from_static(b"hello")),
                None,
                60,
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(&held.bytes[..], b"hello");
        assert_eq!(budget.available(), 95);
        // No room for another 60 unannounced bytes: turned away, not queued forever.
        let second = budget
            .read(
                Full::new(Bytes::from_static(b"x")),
                Some(96),
                100,
                Duration::from_secs(1),
            )
            .await;
        assert!(matches!(second, Err(BodyError::Busy)), "{second:?}");
        drop(held);
        assert_eq!(budget.available(), 100);
        let too_long = budget
            .read(
                Full::new(Bytes::from(vec![0u8; 61])),
                None,
                60,
                Duration::from_secs(1),
            )
            .await;
        assert!(matches!(too_long, Err(BodyError::TooLarge)));
        assert_eq!(budget.available(), 100);
    }
}
