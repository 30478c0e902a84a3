//! One active pgitops per state directory: an exclusive `flock` on `<state>/lock`, held for the
//! life of the process (released by the kernel on exit, also after a crash). Taken with std's
//! [`File::try_lock`] (an exclusive, non-blocking `flock` on Unix), so no `unsafe` is needed.
//! In: the state directory. Out: a [`Lock`] guard, or a [`LockError`]. While the lock is held,
//! Git lock files left in the mirror by a crashed predecessor (`kill -9` while a ref was being
//! written) are stale: [`clear_stale_git_locks`] removes them, else that ref stays unwritable.

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

/// Removes `*.lock` files under `repo`'s `refs/` and at its top (`packed-refs.lock`, ...): only
/// a process that died while writing leaves them, and the state directory's [`Lock`] (held by
/// the caller) says no other pgitops writes there now. Returns what was removed.
pub fn clear_stale_git_locks(repo: &Path, _held: &Lock) -> Vec<std::path::PathBuf> {
    let mut removed = Vec::new();
    // (directory, walk its subdirectories): the top level's files only, all of refs/.
    let mut dirs = vec![(repo.to_path_buf(), false), (repo.join("refs"), true)];
    while let Some((dir, deep)) = dirs.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if deep {
                    dirs.push((path, true));
                }
            } else if path.extension().is_some_and(|x| x == "lock")
                && std::fs::remove_file(&path).is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ref_locks_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("mirror.git");
        std::fs::create_dir_all(repo.join("refs/notes")).unwrap();
        std::fs::create_dir_all(repo.join("objects/ab")).unwrap();
        for f in [
            "refs/notes/pgitops.lock",
            "packed-refs.lock",
            "refs/notes/pgitops",
            "objects/ab/x.lock",
        ] {
            std::fs::write(repo.join(f), "").unwrap();
        }
        let held = Lock::acquire(dir.path()).unwrap();
        let mut removed = clear_stale_git_locks(&repo, &held);
        removed.sort();
        assert_eq!(
            removed,
            [
                repo.join("packed-refs.lock"),
                repo.join("refs/notes/pgitops.lock")
            ]
        );
        assert!(
            repo.join("refs/notes/pgitops").exists() && repo.join("objects/ab/x.lock").exists()
        );
    }

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
