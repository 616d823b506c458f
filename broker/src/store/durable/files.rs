//! File-system steps the durable store builds on: atomic replacement,
//! directory syncs, quarantine of damaged segments, and error wrapping.

use super::config::RecoverCorrupt;
use crate::store::StoreError;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The suffix a quarantined segment file gets.
pub const QUARANTINE_SUFFIX: &str = "quarantined";

pub(super) fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

/// Make a directory entry (a new file, a rename) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("cannot sync directory", dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Replace `path` with `bytes` so that a crash leaves either the old or the new content.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("cannot write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io("cannot rename onto", path, e))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Refuse to go on past a damaged sealed segment, or keep a copy of it aside,
/// as `policy` says; the copy's path.
pub(super) fn quarantine(
    path: &Path,
    offset: u64,
    reason: &str,
    policy: RecoverCorrupt,
) -> Result<PathBuf, StoreError> {
    if policy == RecoverCorrupt::Refuse {
        return Err(StoreError::Io(format!(
            "sealed segment {} is damaged at byte {offset} ({reason}); cutting it there would drop \
             the intact records behind the damage, so the broker will not start. Restore the \
             file from a copy, or start with --recover-corrupt=quarantine to keep a copy aside \
             and lose only the records from the damage to the end of that segment",
            path.display()
        )));
    }
    let mut aside = path.as_os_str().to_owned();
    aside.push(".");
    aside.push(QUARANTINE_SUFFIX);
    let aside = PathBuf::from(aside);
    // The whole damaged file is kept for whoever can repair it; the segment
    // itself keeps serving the records before the damage.
    fs::copy(path, &aside)
        .and_then(|_| File::open(&aside))
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot quarantine", path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(aside)
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot remove", path, e)),
    }
}
