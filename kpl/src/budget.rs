//! The memory budget: bytes and user records buffered or in flight. `put` waits for room,
//! `try_put` refuses; room comes back when records resolve. Fair: waiters are served in order,
//! so a large record is not starved by small ones.

use tokio::sync::{Semaphore, TryAcquireError};

/// Why a budget could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not enough room now.
    Full,
    /// The producer is shutting down.
    Closed,
}

/// Two counting budgets taken together: one record and its bytes.
#[derive(Debug)]
pub(crate) struct Budget {
    records: Semaphore,
    bytes: Semaphore,
    max_records: usize,
    max_bytes: usize,
}

impl Budget {
    /// A budget of `max_records` records and `max_bytes` bytes.
    pub(crate) fn new(max_records: usize, max_bytes: usize) -> Self {
        let max_records = max_records.min(Semaphore::MAX_PERMITS);
        let max_bytes = max_bytes.min(Semaphore::MAX_PERMITS);
        Budget {
            records: Semaphore::new(max_records),
            bytes: Semaphore::new(max_bytes),
            max_records,
            max_bytes,
        }
    }

    /// Waits for room for one record of `cost` bytes (which must not exceed the byte budget).
    pub(crate) async fn acquire(&self, cost: usize) -> Result<(), Refused> {
        self.acquire_many(1, cost).await
    }

    /// Waits for room for `records` records of `cost` bytes in all (neither may exceed its
    /// budget): one wait for a whole batch of `put_all`.
    pub(crate) async fn acquire_many(&self, records: usize, cost: usize) -> Result<(), Refused> {
        let records = u32::try_from(records).map_err(|_| Refused::Closed)?;
        let cost = u32::try_from(cost).map_err(|_| Refused::Closed)?;
        // Held (not forgotten) until both are taken, so a cancelled `put` gives them back.
        let record = self
            .records
            .acquire_many(records)
            .await
            .map_err(|_| Refused::Closed)?;
        let bytes = self
            .bytes
            .acquire_many(cost)
            .await
            .map_err(|_| Refused::Closed)?;
        record.forget();
        bytes.forget();
        Ok(())
    }

    /// Takes room for one record of `cost` bytes if there is some now.
    pub(crate) fn try_acquire(&self, cost: usize) -> Result<(), Refused> {
        let cost = u32::try_from(cost).map_err(|_| Refused::Full)?;
        let refused = |e| match e {
            TryAcquireError::Closed => Refused::Closed,
            TryAcquireError::NoPermits => Refused::Full,
        };
        let record = self.records.try_acquire().map_err(refused)?;
        let bytes = self.bytes.try_acquire_many(cost).map_err(refused)?;
        record.forget();
        bytes.forget();
        Ok(())
    }

    /// Gives back room for `records` records totalling `bytes` bytes.
    pub(crate) fn release(&self, records: usize, bytes: usize) {
        if records > 0 {
            self.records.add_permits(records);
        }
        if bytes > 0 {
            self.bytes.add_permits(bytes);
        }
    }

    /// Refuses every later request (waiters too).
    pub(crate) fn close(&self) {
        self.records.close();
        self.bytes.close();
    }

    /// Most records one `acquire_many` may ask for.
    pub(crate) fn max_records(&self) -> usize {
        self.max_records
    }

    /// Most bytes one `acquire_many` may ask for.
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Records taken and not given back.
    pub(crate) fn records_in_use(&self) -> usize {
        self.max_records
            .saturating_sub(self.records.available_permits())
    }

    /// Bytes taken and not given back.
    pub(crate) fn bytes_in_use(&self) -> usize {
        self.max_bytes
            .saturating_sub(self.bytes.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_room_and_refuses_when_closed() {
        let b = std::sync::Arc::new(Budget::new(2, 100));
        b.acquire(60).await.unwrap();
        assert_eq!(b.try_acquire(50), Err(Refused::Full));
        assert_eq!((b.records_in_use(), b.bytes_in_use()), (1, 60));
        b.try_acquire(40).unwrap();
        assert_eq!(b.try_acquire(0), Err(Refused::Full), "record budget");
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire(100).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        b.release(2, 100);
        waiter.await.unwrap().unwrap();
        assert_eq!((b.records_in_use(), b.bytes_in_use()), (1, 100));
        b.close();
        assert_eq!(b.try_acquire(0), Err(Refused::Closed));
        assert_eq!(b.acquire(0).await, Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_batch_waits_until_all_of_it_fits() {
        let b = std::sync::Arc::new(Budget::new(10, 1000));
        b.acquire_many(7, 700).await.unwrap();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.acquire_many(5, 100).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "5 records do not fit beside 7 of 10");
        b.release(2, 200);
        waiter.await.unwrap().unwrap();
        assert_eq!((b.records_in_use(), b.bytes_in_use()), (10, 600));
    }

    #[tokio::test]
    async fn a_cancelled_wait_gives_the_record_back() {
        let b = Budget::new(5, 10);
        b.acquire(10).await.unwrap();
        let fut = b.acquire(5);
        // Polled once (takes the record permit, waits for bytes), then dropped.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(1), fut)
                .await
                .is_err()
        );
        assert_eq!(b.records_in_use(), 1);
    }
}
