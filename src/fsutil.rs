//! Durable file writes shared by every stage that keeps state on disk (the per-cluster state,
//! the journal of destructive actions, the daemon's `head` file, the service's JSON views), and
//! reading a secret from the
//! environment or a file. It depends on nothing else in the crate, so any stage can use it
//! without a dependency running back up the pipeline.
//!
//! In: a target path and the bytes it must hold. Out: the file replaced atomically and durably,
//! or an [`AtomicWriteError`] naming the path and keeping the IO cause. The bytes go to a
//! temporary file with a unique name in the target's directory (so writers running at the same
//! time never share one), which is fsynced, renamed over the target, and then the directory is
//! fsynced so the rename itself survives a crash. On any failure the temporary file is removed;
//! one left by a process killed mid-write is removed by a later write of the same file once it
//! is older than [`STALE`] (no live writer keeps one that long).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Age after which a temporary file of [`write_atomic`] is taken as left by a killed writer.
pub const STALE: Duration = Duration::from_secs(600);

/// A file could not be replaced; the old content (if any) is still in place.
#[derive(Debug, thiserror::Error)]
#[error("writing {path} atomically ({step})")]
pub struct AtomicWriteError {
    pub path: PathBuf,
    /// What failed: `creating the directory`, `creating a temporary file`, `writing`, `fsync`,
    /// `rename` or `fsync of the directory`.
    pub step: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Replaces `path` with `bytes` atomically and durably: a crash leaves either the old or the new
/// content, never a mix, and no temporary file behind on an error. Creates the parent directory
/// if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    let fail = |step: &'static str| {
        move |source| AtomicWriteError {
            path: path.to_path_buf(),
            step,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(fail("creating the directory"))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let prefix = format!(".{}.", name.as_deref().unwrap_or("file"));
    remove_stale(dir, &prefix);
    // Dropping `tmp` on an early return removes the temporary file.
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail("creating a temporary file"))?;
    tmp.write_all(bytes).map_err(fail("writing"))?;
    tmp.as_file().sync_all().map_err(fail("fsync"))?;
    tmp.persist(path).map_err(|e| fail("rename")(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail("fsync of the directory"))?;
    Ok(())
}

/// Best effort: removes `<prefix>*.tmp` files in `dir` older than [`STALE`].
fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(prefix) && name.ends_with(".tmp");
        let age = e.metadata().and_then(|m| m.modified()).ok();
        let age = age.and_then(|t| t.elapsed().ok());
        if ours && age.is_some_and(|a| a > STALE) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Reads a secret from an environment variable or a file (trailing newline trimmed).
/// A record kept as JSON (the service's views: leaders, drift): what `path` holds, or the
/// default when there is none or it does not read (the next check rebuilds it).
pub fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(path: &Path) -> T {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Writes `value` as pretty JSON to `path` with [`write_atomic`].
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), AtomicWriteError> {
    let text = serde_json::to_string_pretty(value).expect("a record serializes");
    write_atomic(path, text.as_bytes())
}

pub fn secret(env: Option<&str>, file: Option<&Path>) -> Option<String> {
    if let Some(v) = env.and_then(|e| std::env::var(e).ok()) {
        return Some(v);
    }
    file.and_then(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(entries(&dir.path().join("sub")), ["state.json"]);
    }

    #[test]
    fn a_failed_rename_keeps_the_old_content_and_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory where the file should go: the rename fails.
        let path = dir.path().join("head");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "x").unwrap();
        let e = write_atomic(&path, b"new").unwrap_err();
        assert_eq!(e.step, "rename");
        assert!(e.to_string().contains("head"), "{e}");
        assert_eq!(entries(dir.path()), ["head"]);
    }

    #[test]
    fn a_temporary_file_left_by_a_killed_writer_goes_with_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let old = std::time::SystemTime::now() - STALE - Duration::from_secs(60);
        for (name, modified) in [
            (".state.json.dead01.tmp", Some(old)),
            (".state.json.live01.tmp", None),
            (".journal.json.dead02.tmp", Some(old)),
        ] {
            let f = std::fs::File::create(dir.path().join(name)).unwrap();
            if let Some(t) = modified {
                f.set_modified(t).unwrap();
            }
        }
        write_atomic(&path, b"new").unwrap();
        assert_eq!(
            entries(dir.path()),
            [
                ".journal.json.dead02.tmp",
                ".state.json.live01.tmp",
                "state.json"
            ],
            "only this file's stale temporary is removed; a recent one may be a live writer's"
        );
    }

    #[test]
    fn concurrent_writers_in_one_directory_do_not_clobber_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let path = dir.path().join(format!("entry-{i}.json"));
                std::thread::spawn(move || {
                    for n in 0..50 {
                        write_atomic(&path, format!("{i}:{n}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for i in 0..8 {
            let text = std::fs::read_to_string(dir.path().join(format!("entry-{i}.json")));
            assert_eq!(text.unwrap(), format!("{i}:49"));
        }
        assert_eq!(entries(dir.path()).len(), 8);
    }
}
