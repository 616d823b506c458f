//! The checkpoint file: per flow, per file, the offset up to which every record is in the
//! stream. Written whole and atomically (temporary file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new checkpoint, never a torn one.

use crate::file_tracker::{FileId, Fingerprint, Saved};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize, Deserialize, Default)]
struct FileOnDisk {
    path: PathBuf,
    dev: u64,
    ino: u64,
    #[serde(rename = "fingerprintLen")]
    fingerprint_len: usize,
    #[serde(rename = "fingerprintCrc32")]
    fingerprint_crc: u32,
    offset: u64,
    seq: u64,
}

#[derive(Debug, Serialize, Deserialize, Default)]
struct OnDisk {
    version: u32,
    flows: BTreeMap<String, Vec<FileOnDisk>>,
}

/// Every flow's saved files, by flow key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Flow key → its files.
    pub flows: BTreeMap<String, Vec<Saved>>,
}

impl Checkpoint {
    /// Reads `path`; a missing file is an empty checkpoint (first start).
    pub fn load(path: &Path) -> std::io::Result<Option<Checkpoint>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("checkpoint {}: {e}", path.display()),
            )
        })?;
        let flows = disk
            .flows
            .into_iter()
            .map(|(k, files)| {
                let files = files
                    .into_iter()
                    .map(|f| Saved {
                        seq: f.seq,
                        path: f.path,
                        id: FileId {
                            dev: f.dev,
                            ino: f.ino,
                        },
                        fingerprint: Fingerprint {
                            len: f.fingerprint_len,
                            crc: f.fingerprint_crc,
                        },
                        offset: f.offset,
                    })
                    .collect();
                (k, files)
            })
            .collect();
        Ok(Some(Checkpoint { flows }))
    }

    /// Writes the checkpoint to `path` atomically.
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        let disk = OnDisk {
            version: 1,
            flows: self
                .flows
                .iter()
                .map(|(k, files)| {
                    let files = files
                        .iter()
                        .map(|s| FileOnDisk {
                            path: s.path.clone(),
                            dev: s.id.dev,
                            ino: s.id.ino,
                            fingerprint_len: s.fingerprint.len,
                            fingerprint_crc: s.fingerprint.crc,
                            offset: s.offset,
                            seq: s.seq,
                        })
                        .collect();
                    (k.clone(), files)
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&disk).map_err(std::io::Error::other)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoints".into());
        let tmp = dir.join(format!(".{name}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable only once the directory is.
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cp");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let mut cp = Checkpoint::default();
        cp.flows.insert(
            "/l/a*|s".into(),
            vec![Saved {
                seq: 3,
                path: "/l/a".into(),
                id: FileId { dev: 1, ino: 2 },
                fingerprint: Fingerprint { len: 10, crc: 99 },
                offset: 1234,
            }],
        );
        cp.store(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        assert!(!dir.path().join("sub/.cp.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(Checkpoint::load(&path).is_err());
    }
}
