//! A test hook: faults injected into the durable store's disk operations, so
//! tests can make an fsync or the creation of a shard log fail (or stall) at a
//! chosen moment and watch what the broker tells its clients. Production
//! configurations never set one; every method defaults to "no fault".

use std::path::Path;
use std::sync::Arc;

/// Decides, before a disk operation of the durable store, whether it fails.
/// Implementations may block (they run on blocking threads, never on the async runtime).
pub trait DiskFaults: Send + Sync + 'static {
    /// Before fsyncing a shard log's segment file in `log_dir`: an error is
    /// reported as that fsync's failure.
    fn before_fsync(&self, _log_dir: &Path) -> std::io::Result<()> {
        Ok(())
    }

    /// Before reading records from the shard log in `log_dir`: an error fails the read.
    fn before_read(&self, _log_dir: &Path) -> std::io::Result<()> {
        Ok(())
    }

    /// Before creating a shard log in `log_dir`: an error fails the creation.
    fn before_create_log(&self, _log_dir: &Path) -> std::io::Result<()> {
        Ok(())
    }

    /// Before saving the description of stream `name`: an error fails the save.
    fn before_save_stream(&self, _name: &str) -> std::io::Result<()> {
        Ok(())
    }
}

/// A [`DiskFaults`] in a config: shared, and printed only as a marker.
#[derive(Clone)]
pub struct DiskFaultHook(pub Arc<dyn DiskFaults>);

impl std::fmt::Debug for DiskFaultHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiskFaultHook")
    }
}
