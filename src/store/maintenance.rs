//! Keeping a file healthy: consistent backups while others work, and compaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Database, Durability, Store};
use crate::error::{Error, Result};

/// The result of [`Store::backup`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Backup {
    /// The copy's path.
    pub path: PathBuf,
    /// The copy's size in bytes.
    pub bytes: u64,
    /// How long the store's write lock was held for the copy: writers of every process waited
    /// at most this long.
    #[serde(serialize_with = "as_seconds")]
    pub writers_waited: Duration,
}

/// The result of [`Store::compact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Compaction {
    /// The file's size in bytes before.
    pub bytes_before: u64,
    /// The file's size in bytes after.
    pub bytes_after: u64,
}

fn as_seconds<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl Store {
    /// Writes a consistent copy of the whole file to `to`, the application's own tables
    /// included, while other threads and processes keep working.
    ///
    /// The copy is taken while this call holds the store's write lock, so no commit can change
    /// the file meanwhile. Writers of every process wait for the copy (see
    /// [`Backup::writers_waited`]), and readers do not wait. The copy is written under a
    /// temporary name beside `to`, synced, and linked into place, so `to` never contains a
    /// partial copy. It opens like the original, after redb's quick recovery of a file that
    /// was open when it was copied, and passes [`Store::check_integrity`].
    ///
    /// To restore, stop every program that uses the file, copy the backup over it, and run
    /// `eod check`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidInput`] when `to` exists, is this store's own file, or is in a
    ///   directory that does not exist; when the store was opened read-only, or is not kept in
    ///   a file; or when it uses [`Durability::None`], whose latest commits may not be in the
    ///   file yet.
    /// - [`Error::Busy`] when another process holds the write lock longer than the write
    ///   timeout.
    /// - [`Error::Io`] when the copy cannot be written.
    pub fn backup(&self, to: impl AsRef<Path>) -> Result<Backup> {
        let to = to.as_ref();
        self.check_backup_target(to)?;
        let context = format!("back up to `{}`", to.display());
        let (gate, txn) = self.begin_write(&context)?;
        let started = Instant::now();
        let copied = copy_synced(&self.path, to, &|done, total| {
            self.report_progress("copying", done, total);
        });
        let writers_waited = started.elapsed();
        txn.abort()
            .map_err(|err| Error::storage(format!("ending the {context}"), err))?;
        drop(gate);
        let bytes = copied?;
        tracing::info!(from = %self.path.display(), to = %to.display(), bytes, ?writers_waited, "backed up store");
        Ok(Backup {
            path: to.to_owned(),
            bytes,
            writers_waited,
        })
    }

    fn check_backup_target(&self, to: &Path) -> Result<()> {
        let invalid = |expected: &str| Error::InvalidInput {
            what: "backup path",
            value: to.display().to_string(),
            expected: expected.to_owned(),
        };
        if self.options.read_only || !matches!(self.db, Database::ReadWrite(_)) {
            return Err(invalid(
                "a store opened for writing, because the copy holds the write lock",
            ));
        }
        if self.options.durability == Durability::None {
            return Err(invalid(
                "a store with Durability::Immediate, because commits that are not synced may \
                 not be in the file yet",
            ));
        }
        if !self.path.is_file() {
            return Err(invalid("a store kept in a file"));
        }
        if to.exists() {
            return Err(invalid(
                "a path where nothing exists yet; choose a new name or remove the old backup",
            ));
        }
        let parent = to
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(invalid(
                "a file in an existing directory; create the directory first",
            ));
        }
        Ok(())
    }

    /// Compacts the file: moves its pages towards the start and truncates the free space at the
    /// end. Pages freed by earlier changes are reused by later ones anyway, so compaction only
    /// matters after a store has shrunk a lot, or before a backup is copied elsewhere.
    ///
    /// It needs the only handle on the file in this process. Other processes keep the file open
    /// but wait for the compaction before their next transaction.
    ///
    /// # Errors
    ///
    /// - [`Error::Busy`] when another call of this process is still using the store.
    /// - [`Error::InvalidInput`] when the store was opened read-only.
    /// - [`Error::Storage`] when redb cannot compact it.
    pub fn compact(&mut self) -> Result<Compaction> {
        let bytes_before = file_size(&self.path)?;
        let path = self.path.clone();
        let Database::ReadWrite(db) = &mut self.db else {
            return Err(super::read_only_error("compact the store"));
        };
        let Some(db) = Arc::get_mut(db) else {
            return Err(Error::Busy {
                path,
                detail: "another call of this process is still using the store; compact it \
                         when no other call is running"
                    .into(),
            });
        };
        let compacted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.compact(redb::CompactionMode::Balanced)
        }));
        match compacted {
            Ok(Ok(_)) => {}
            Ok(Err(redb::CompactionError::TransactionInProgress)) => {
                return Err(Error::Busy {
                    path,
                    detail: "a read or write of this process is still running; compact it when \
                             no other call is running"
                        .into(),
                });
            }
            Ok(Err(err)) => return Err(Error::storage("compacting the store", err)),
            Err(panic) => return Err(self.corrupt_from_panic("compacting", panic.as_ref())),
        }
        let bytes_after = file_size(&self.path)?;
        tracing::info!(path = %self.path.display(), bytes_before, bytes_after, "compacted store");
        Ok(Compaction {
            bytes_before,
            bytes_after,
        })
    }
}

fn file_size(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|metadata| metadata.len())
        .map_err(|source| Error::Io {
            action: "read the size of",
            path: path.to_owned(),
            source,
        })
}

/// Copies `from` to `to` through a temporary name beside `to`: copy, sync, link into place,
/// sync the directory. Reports the bytes copied to `progress`, and returns the size of the copy.
pub(super) fn copy_synced(from: &Path, to: &Path, progress: &dyn Fn(u64, u64)) -> Result<u64> {
    let name = to.file_name().map_or_else(
        || "backup.redb".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let partial = to.with_file_name(format!(".{name}.{}.copying", std::process::id()));
    let copied = copy_reporting(from, &partial, progress).and_then(|bytes| {
        std::fs::File::open(&partial)?.sync_all()?;
        // A hard link, unlike a rename, fails when `to` appeared meanwhile, so an existing file
        // is never replaced.
        std::fs::hard_link(&partial, to)?;
        let directory = to
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::File::open(directory)?.sync_all()?;
        Ok(bytes)
    });
    let _ = std::fs::remove_file(&partial);
    copied.map_err(|source| Error::Io {
        action: "write the backup",
        path: to.to_owned(),
        source,
    })
}

/// Copies `from` into a new file `to` in chunks of 1 MiB, reporting the bytes copied after each.
fn copy_reporting(from: &Path, to: &Path, progress: &dyn Fn(u64, u64)) -> std::io::Result<u64> {
    use std::io::{Read as _, Write as _};

    let mut source = std::fs::File::open(from)?;
    let total = source.metadata()?.len();
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let mut buffer = vec![0_u8; 1 << 20];
    let mut copied = 0_u64;
    loop {
        let read = source.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        target.write_all(&buffer[..read])?;
        copied += read as u64;
        progress(copied, total);
    }
    Ok(copied)
}
