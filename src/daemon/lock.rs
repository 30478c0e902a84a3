//! One active pgitops per state directory: an exclusive `flock` on `<state>/lock`, held for the
//! life of the process (released by the kernel on exit, also after a crash). Taken with std's
//! [`File::try_lock`] (an exclusive, non-blocking `flock` on Unix), so no `unsafe` is needed.
//! In: the state directory. Out: a [`Lock`] guard, or a [`LockError`].

use std::fs::{File, TryLockError};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("opening {path}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("another pgitops already runs on the state directory {dir} (lock {path} is held)")]
    Held { dir: String, path: String },
    #[error("locking {path}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
}

pub struct Lock(#[allow(dead_code)] File);

impl Lock {
    pub fn acquire(dir: &Path) -> Result<Lock, LockError> {
        let path = dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.display().to_string(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: dir.display().to_string(),
                    path: path.display().to_string(),
                })
            }
            Err(TryLockError::Error(source)) => {
                return Err(LockError::Lock {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
        Ok(Lock(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path()).unwrap();
        let e = Lock::acquire(dir.path())
            .err()
            .expect("second lock refused");
        assert!(matches!(e, LockError::Held { .. }), "{e}");
        drop(first);
        Lock::acquire(dir.path()).expect("free again after the holder is gone");
    }
}
