//! The one-daemon-per-HOME lock: `flock(2)` on `~/.telepty/daemon.lock`, held for the life of
//! the daemon (or of a dashboard that embeds the engine).
//!
//! The kernel drops the lock when the holder exits, however it exits (SIGKILL included), so
//! there is no stale lock to clean up and no check-then-write race. The holder writes its pid
//! into the file, so others can name it. Only the holder writes `daemon-state.json` and
//! `sessions.json`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::config::Paths;

/// Why the lock could not be taken or inspected.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The lock, held until this value is dropped (or the process exits).
#[derive(Debug)]
pub struct DaemonLock {
    file: Flock<File>,
    path: PathBuf,
}

impl DaemonLock {
    /// Take the lock if nobody holds it: `Ok(None)` when another process does.
    pub fn try_acquire(paths: &Paths) -> Result<Option<DaemonLock>, LockError> {
        let path = lock_path(paths);
        let file = open(&path)?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => file,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, e)) => {
                return Err(LockError::Lock {
                    path,
                    source: e.into(),
                });
            }
        };
        let mut lock = DaemonLock { file, path };
        // The pid is informational (for `lock_owner_pid`); failing to write it is not fatal.
        if let Err(e) = lock.write_pid() {
            tracing::warn!("cannot write {}: {e}", lock.path.display());
        }
        Ok(Some(lock))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.sync_all()
    }
}

/// `~/.telepty/daemon.lock`.
pub fn lock_path(paths: &Paths) -> PathBuf {
    paths.telepty_dir().join("daemon.lock")
}

/// The pid of the process holding the lock, or `None` when nobody holds it. A holder that has
/// not written its pid yet reads as `Some(0)`.
pub fn lock_owner_pid(paths: &Paths) -> Option<u32> {
    let path = lock_path(paths);
    let file = File::open(&path).ok()?;
    // A shared lock is refused exactly when someone holds the exclusive one (ours is released
    // when the `Flock` drops).
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Some(text.trim().parse().unwrap_or(0))
        }
        _ => None,
    }
}

fn open(path: &Path) -> Result<File, LockError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        if std::fs::create_dir_all(dir).is_ok() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).ok();
        }
    }
    // Not truncated on open: the holder's pid must stay readable by everyone else. The fd is
    // close-on-exec (std's default), so children never inherit the lock.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let p = Paths {
            home: dir.path().to_path_buf(),
        };
        (dir, p)
    }

    #[test]
    fn one_holder_at_a_time_and_its_pid_is_readable() {
        let (_d, p) = paths();
        assert_eq!(lock_owner_pid(&p), None);
        let lock = DaemonLock::try_acquire(&p).unwrap().expect("free lock");
        // flock locks belong to the open file description: a second open in this process
        // conflicts like another process would.
        assert!(DaemonLock::try_acquire(&p).unwrap().is_none());
        assert_eq!(lock_owner_pid(&p), Some(std::process::id()));
        drop(lock);
        assert_eq!(lock_owner_pid(&p), None);
        assert!(DaemonLock::try_acquire(&p).unwrap().is_some());
    }
}
