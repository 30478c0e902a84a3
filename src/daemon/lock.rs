//! One active pgitops per state directory: an exclusive `flock` on `<state>/lock`, held for the
//! life of the process (released by the kernel on exit, also after a crash).

use std::fs::File;
use std::os::fd::AsRawFd;
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
        // SAFETY: flock on a file descriptor this process owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(LockError::Held {
                dir: dir.display().to_string(),
                path: path.display().to_string(),
            });
        }
        Ok(Lock(file))
    }
}
