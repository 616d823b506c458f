//! The boxed future the lease and coordinator stores return.
//!
//! Boxed so that `Arc<dyn LeaseStore>` and `dyn CoordinatorStore` work, and `Send` so the
//! futures can be spawned on tokio.

use std::future::Future;
use std::pin::Pin;

use crate::error::Error;

/// The future every [`LeaseStore`](crate::lease_store::LeaseStore) and
/// [`CoordinatorStore`](crate::coordinator_store::CoordinatorStore) method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;
