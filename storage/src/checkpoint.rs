//! Checkpoints: the flush of the engine's minutes at a consistent cut of the log, and
//! a small file beside the log saying which position the files cover.
//!
//! A checkpoint writes the cut's rows as `sli_minute` files (numbered as every flush
//! is), then publishes `checkpoint` (the log position, the highest file number it
//! covers, the engine state; with a CRC32C) by writing a temporary file, syncing it and
//! renaming it over the old one. A crash between the two leaves files numbered above
//! the published checkpoint: at start they are deleted, since replaying the log from
//! the checkpoint's position counts their rows again. The log before the position is
//! then released.
//!
//! The checkpoint is a local file beside the log for one process, or an object in the
//! store ([`CheckpointPlace`]) for what any node of a cluster must be able to take over.

use std::io::Write;
use std::path::{Path as FsPath, PathBuf};

use super::*;

const MAGIC: &[u8; 8] = b"SLOTELCP";
const VERSION: u32 = 1;

/// A published checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every log record before this position is in the files.
    pub position: u64,
    /// The highest `sli_minute` file number the checkpoint covers; fresh files numbered
    /// above it were written by a checkpoint that was never published.
    pub committed_seq: u64,
    /// The engine's state at the position ([`slotel_compute::Engine::restore_state`]).
    pub state: Vec<u8>,
}

/// Why the checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// It cannot be read or written.
    #[error("checkpoint {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The object store cannot read or write it.
    #[error("checkpoint {path}: {source}")]
    Object {
        /// The object.
        path: String,
        /// Why.
        source: object_store::Error,
    },
    /// It is not a whole checkpoint of this version.
    #[error("checkpoint {path} is damaged ({reason}); it was kept as {backup}")]
    Damaged {
        /// The file or object.
        path: String,
        /// Where a copy was kept.
        backup: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Where a checkpoint is published.
#[derive(Clone)]
pub enum CheckpointPlace {
    /// A local file (one process: beside its write-ahead log).
    File(PathBuf),
    /// An object in a store (shared by the nodes of a cluster).
    Object {
        /// The store.
        objects: Arc<dyn ObjectStore>,
        /// The object.
        path: Path,
    },
}

impl std::fmt::Debug for CheckpointPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Object { path, .. } => write!(f, "object {path}"),
        }
    }
}

impl CheckpointPlace {
    /// The checkpoint published here; `None` when there is none. A damaged one is an
    /// error (after a copy is kept beside it): starting without it would count twice.
    pub async fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        match self {
            Self::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Checkpoint::load(&path))
                    .await
                    .expect("the checkpoint read does not panic")
            }
            Self::Object { objects, path } => {
                let err = |source| CheckpointError::Object {
                    path: path.to_string(),
                    source,
                };
                let bytes = match objects.get(path).await {
                    Ok(got) => got.bytes().await.map_err(err)?,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(err(e)),
                };
                match Checkpoint::decode(&bytes) {
                    Ok(c) => Ok(Some(c)),
                    Err(reason) => {
                        let backup = Path::from(format!("{path}.damaged"));
                        let _ = objects.copy(path, &backup).await;
                        Err(CheckpointError::Damaged {
                            path: path.to_string(),
                            backup: backup.to_string(),
                            reason,
                        })
                    }
                }
            }
        }
    }

    /// Publishes `checkpoint` here atomically: a file is written, synced and renamed; an
    /// object is put whole (object stores make a put visible whole or not at all).
    pub async fn publish(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        match self {
            Self::File(path) => {
                let (path, checkpoint) = (path.clone(), checkpoint.clone());
                tokio::task::spawn_blocking(move || checkpoint.store(&path))
                    .await
                    .expect("the checkpoint write does not panic")
            }
            Self::Object { objects, path } => objects
                .put(path, PutPayload::from(checkpoint.encode()))
                .await
                .map(|_| ())
                .map_err(|source| CheckpointError::Object {
                    path: path.to_string(),
                    source,
                }),
        }
    }
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + self.state.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.committed_seq.to_le_bytes());
        out.extend_from_slice(&(self.state.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.state);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let body_len = bytes.len().checked_sub(4).ok_or("too short")?;
        let (body, crc) = bytes.split_at(body_len);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().map_err(|_| "too short")?) {
            return Err("checksum mismatch");
        }
        if body.get(..8) != Some(MAGIC.as_slice()) {
            return Err("not a checkpoint");
        }
        let u64_at = |i: usize| -> Result<u64, &'static str> {
            Ok(u64::from_le_bytes(
                body.get(i..i + 8)
                    .ok_or("too short")?
                    .try_into()
                    .map_err(|_| "too short")?,
            ))
        };
        let version = u32::from_le_bytes(
            body.get(8..12)
                .ok_or("too short")?
                .try_into()
                .map_err(|_| "too short")?,
        );
        if version != VERSION {
            return Err("unknown version");
        }
        let (position, committed_seq, len) = (u64_at(12)?, u64_at(20)?, u64_at(28)?);
        let state = body.get(36..).ok_or("too short")?;
        if state.len() as u64 != len {
            return Err("length mismatch");
        }
        Ok(Self {
            position,
            committed_seq,
            state: state.to_vec(),
        })
    }

    /// The checkpoint at `path`; `None` when there is none. A damaged one is an error
    /// (after a copy is kept beside it): starting without it would count twice.
    pub fn load(path: &FsPath) -> Result<Option<Self>, CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        Self::decode(&bytes).map(Some).map_err(|reason| {
            let backup = path.with_extension("damaged");
            let _ = std::fs::copy(path, &backup);
            CheckpointError::Damaged {
                path: path.display().to_string(),
                backup: backup.display().to_string(),
                reason,
            }
        })
    }

    /// Publishes the checkpoint at `path` atomically: written, synced, renamed, and the
    /// directory synced.
    pub fn store(&self, path: &FsPath) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(FsPath::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&self.encode()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

/// Where checkpoints go and what publishing one releases.
pub struct CheckpointTarget {
    /// Where checkpoints are published.
    pub place: CheckpointPlace,
    /// Called with the position of each published checkpoint: the log before it may go.
    pub release: Box<dyn Fn(u64) + Send + Sync>,
    /// Bytes of log past the last checkpoint.
    pub pending_bytes: Box<dyn Fn() -> u64 + Send + Sync>,
    /// A checkpoint is taken early once `pending_bytes` reaches this.
    pub max_pending_bytes: u64,
}

impl std::fmt::Debug for CheckpointTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointTarget")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Checkpoints into `target` from now on: every flush is a checkpoint.
    pub fn set_checkpoint_target(&self, target: CheckpointTarget) {
        *self.checkpoint.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(target));
    }

    pub(crate) fn checkpoint_target(&self) -> Option<Arc<CheckpointTarget>> {
        self.checkpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the last checkpoint could not be published.
    pub fn checkpoint_behind(&self) -> bool {
        self.checkpoint_behind.load(Ordering::Acquire)
    }

    /// Whether the log past the last checkpoint has grown enough for an early one.
    pub fn checkpoint_due(&self) -> bool {
        self.checkpoint_target()
            .is_some_and(|t| (t.pending_bytes)() >= t.max_pending_bytes)
    }

    /// The highest file number given out so far.
    pub fn committed_seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire).saturating_sub(1)
    }

    /// Makes every file number given out from now on higher than `seq`.
    pub fn number_above(&self, seq: u64) {
        self.seq.fetch_max(seq.saturating_add(1), Ordering::AcqRel);
    }

    /// Deletes the `sli_minute` files a checkpoint that was never published wrote
    /// (fresh files numbered above `committed_seq`), and numbers new files above every
    /// file kept. Returns the files deleted.
    pub async fn drop_unpublished(&self, committed_seq: u64) -> Result<u64> {
        self.number_above(committed_seq);
        let mut deleted = 0;
        for (_, _, dir) in self.partitions(SLI_MINUTE, None).await? {
            for (path, range) in self.files(&dir).await? {
                self.number_above(range.last);
                if range.first == range.last && range.last > committed_seq {
                    self.objects
                        .delete(&path)
                        .await
                        .map_err(|e| Error::Storage(e.to_string()))?;
                    tracing::info!(file = %path, "Deleted a file of a checkpoint that was not published.");
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Writes the engine's minutes at a consistent cut and, when every row is written,
    /// publishes the checkpoint and releases the log before it. Returns the rows written
    /// and whether a checkpoint was published.
    pub(crate) async fn write_cut(
        &self,
        engine: &slotel_compute::Engine,
        target: &CheckpointTarget,
    ) -> (usize, bool) {
        let started = std::time::Instant::now();
        let cut = engine.cut();
        let n = cut.rows.len();
        let failed = self.write_minutes(cut.rows).await;
        let written = n - failed.len();
        if !failed.is_empty() {
            // Not published: the rows go back, and the log still holds their records.
            engine.untake_tail(failed);
            self.stats.checkpoint_errors.fetch_add(1, Ordering::Relaxed);
            return (written, false);
        }
        let checkpoint = Checkpoint {
            position: cut.position,
            committed_seq: self.committed_seq(),
            state: cut.state,
        };
        let size = checkpoint.state.len() as u64;
        match target.place.publish(&checkpoint).await {
            Ok(()) => {
                let elapsed = started.elapsed();
                tracing::debug!(
                    position = cut.position,
                    rows = n,
                    state_bytes = size,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "Checkpoint published."
                );
                self.stats
                    .checkpoint_micros
                    .store(elapsed.as_micros() as u64, Ordering::Relaxed);
                self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .checkpoint_position
                    .store(cut.position, Ordering::Relaxed);
                self.stats.checkpoint_bytes.store(size, Ordering::Relaxed);
                (target.release)(cut.position);
                (written, true)
            }
            Err(e) => {
                self.stats.checkpoint_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "Cannot publish the checkpoint; the log keeps every record since the last one.");
                (written, false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_damage_is_an_error_with_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let c = Checkpoint {
            position: 12345,
            committed_seq: 99,
            state: vec![1, 2, 3, 4, 5],
        };
        c.store(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(c.clone()));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        match Checkpoint::load(&path) {
            Err(CheckpointError::Damaged { reason, backup, .. }) => {
                assert_eq!(reason, "checksum mismatch");
                assert_eq!(std::fs::read(&backup).unwrap(), bytes);
            }
            other => panic!("{other:?}"),
        }
        // Cut anywhere, it is damaged, never silently empty.
        let whole = c.encode();
        for cut in 0..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(Checkpoint::load(&path).is_err(), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn a_checkpoint_in_an_object_store_round_trips_and_damage_is_an_error() {
        let objects: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("shards/otlp_spans-3/checkpoint");
        let place = CheckpointPlace::Object {
            objects: Arc::clone(&objects),
            path: path.clone(),
        };
        assert_eq!(place.load().await.unwrap(), None);
        let c = Checkpoint {
            position: 77,
            committed_seq: 5,
            state: vec![9; 100],
        };
        place.publish(&c).await.unwrap();
        assert_eq!(place.load().await.unwrap(), Some(c.clone()));
        let whole = c.encode();
        objects
            .put(&path, PutPayload::from(whole[..whole.len() - 1].to_vec()))
            .await
            .unwrap();
        match place.load().await {
            Err(CheckpointError::Damaged { reason, backup, .. }) => {
                assert_eq!(reason, "checksum mismatch");
                assert_eq!(backup, "shards/otlp_spans-3/checkpoint.damaged");
                let kept = objects.get(&Path::from(backup)).await.unwrap();
                assert_eq!(kept.bytes().await.unwrap(), whole[..whole.len() - 1]);
            }
            other => panic!("{other:?}"),
        }
    }
}
