//! The daemon's mirror of the remote: a bare repository in the state directory, fetched on each
//! trigger (`+refs/heads/<branch>` and the remote's `refs/notes/pgitops`), and the notes pushed
//! back after merging whatever others wrote (never overwriting their notes).
//! In: the remote URL (a local path, `file://`, `ssh://` or `https://`), branch, credentials and
//! [`NotesSync`] (which notes ref to share and how two versions of one note merge: the record
//! format belongs to `report`, not to Git access). Out: the newest commit of the branch; notes on
//! the remote.

use std::path::{Path, PathBuf};

use git2::{Cred, FetchOptions, Oid, PushOptions, RemoteCallbacks, Repository};

/// The notes the mirror shares with the remote, given by their owner (`report::note::SYNC`).
#[derive(Debug, Clone, Copy)]
pub struct NotesSync {
    /// The notes ref, e.g. `refs/notes/pgitops`; the remote's copy is fetched to `<ref>-remote`.
    pub notes_ref: &'static str,
    /// Merges two versions of the note on one commit: `merge(theirs, ours)` keeps both sides'
    /// entries.
    pub merge: fn(&str, &str) -> String,
}

impl NotesSync {
    fn remote_ref(&self) -> String {
        format!("{}-remote", self.notes_ref)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("preparing the mirror at {path}")]
    Mirror { path: PathBuf, source: git2::Error },
    #[error("fetching {remote}")]
    Fetch { remote: String, source: git2::Error },
    #[error("the remote has no branch {branch:?}")]
    NoBranch { branch: String },
    #[error("pushing notes to {remote}")]
    Push { remote: String, source: git2::Error },
}

#[derive(Clone, Default)]
pub struct Credentials {
    pub ssh_key: Option<PathBuf>,
    pub token: Option<String>,
}

/// The token is never shown.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ssh_key", &self.ssh_key)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

pub struct Mirror {
    pub path: PathBuf,
    remote: String,
    branch: String,
    creds: Credentials,
    notes: NotesSync,
}

fn callbacks(creds: &Credentials) -> RemoteCallbacks<'_> {
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |_url, user, allowed| {
        if allowed.is_ssh_key() {
            let user = user.unwrap_or("git");
            return match &creds.ssh_key {
                Some(k) => Cred::ssh_key(user, None, k, None),
                None => Cred::ssh_key_from_agent(user),
            };
        }
        match &creds.token {
            Some(t) if allowed.is_user_pass_plaintext() => Cred::userpass_plaintext("pgitops", t),
            _ => Cred::default(),
        }
    });
    cb
}

impl Mirror {
    /// Opens the mirror under `dir`, creating it (bare, with remote `origin`) the first time.
    pub fn open(
        dir: &Path,
        remote: &str,
        branch: &str,
        creds: Credentials,
        notes: NotesSync,
    ) -> Result<Mirror, RemoteError> {
        let path = dir.join("mirror.git");
        let err = |source| RemoteError::Mirror {
            path: path.clone(),
            source,
        };
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(err)?,
        };
        let url = if Path::new(remote).is_absolute() {
            format!("file://{remote}")
        } else {
            remote.to_string()
        };
        if repo.find_remote("origin").is_err() {
            repo.remote("origin", &url).map_err(err)?;
        } else {
            repo.remote_set_url("origin", &url).map_err(err)?;
        }
        Ok(Mirror {
            path,
            remote: remote.to_string(),
            branch: branch.to_string(),
            creds,
            notes,
        })
    }

    pub fn repo(&self) -> Result<Repository, RemoteError> {
        Repository::open_bare(&self.path).map_err(|source| RemoteError::Mirror {
            path: self.path.clone(),
            source,
        })
    }

    /// Fetches the branch and the remote's notes; returns the branch's newest commit.
    pub fn fetch(&self) -> Result<String, RemoteError> {
        let repo = self.repo()?;
        let ferr = |source| RemoteError::Fetch {
            remote: self.remote.clone(),
            source,
        };
        let mut origin = repo.find_remote("origin").map_err(ferr)?;
        let branch_spec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch);
        let notes_spec = format!("+{}:{}", self.notes.notes_ref, self.notes.remote_ref());
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks(&self.creds));
        origin
            .fetch(
                &[branch_spec.as_str(), notes_spec.as_str()],
                Some(&mut opts),
                None,
            )
            .or_else(|e| {
                // A remote without notes yet: fetch the branch alone.
                let mut opts = FetchOptions::new();
                opts.remote_callbacks(callbacks(&self.creds));
                origin
                    .fetch(&[branch_spec.as_str()], Some(&mut opts), None)
                    .map_err(|_| e)
            })
            .map_err(ferr)?;
        // Approvals and runs written elsewhere (e.g. `pgitops approve`) become ours too.
        merge_remote_notes(&repo, &self.notes).map_err(ferr)?;
        let r = repo
            .find_reference(&format!("refs/remotes/origin/{}", self.branch))
            .map_err(|_| RemoteError::NoBranch {
                branch: self.branch.clone(),
            })?;
        let oid = r.peel_to_commit().map_err(ferr)?.id();
        // HEAD follows the branch, so `pgitops --repo <mirror> status` and friends work on it.
        repo.set_head_detached(oid).map_err(ferr)?;
        Ok(oid.to_string())
    }

    /// Fetches the heads of the remote's pull requests (GitHub's and Gitea's `refs/pull/*/head`,
    /// GitLab's `refs/merge-requests/*/head`) under `refs/pgitops/`, so their commits are in the
    /// mirror to plan. A remote without such refs fetches nothing.
    pub fn fetch_pulls(&self) -> Result<(), RemoteError> {
        let repo = self.repo()?;
        let ferr = |source| RemoteError::Fetch {
            remote: self.remote.clone(),
            source,
        };
        let mut origin = repo.find_remote("origin").map_err(ferr)?;
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks(&self.creds));
        let specs = [
            "+refs/pull/*/head:refs/pgitops/pull/*",
            "+refs/merge-requests/*/head:refs/pgitops/merge-requests/*",
        ];
        origin.fetch(&specs, Some(&mut opts), None).map_err(ferr)
    }

    /// Merges the remote's notes into ours (both sides' entries kept), then pushes ours.
    pub fn push_notes(&self) -> Result<(), RemoteError> {
        sync_notes(&self.repo()?, &self.remote, &self.creds, &self.notes)
    }
}

/// Fetches `origin`'s notes, merges them under ours and pushes ours: retried when someone pushed
/// in between. Never overwrites notes written by others.
pub fn sync_notes(
    repo: &Repository,
    remote: &str,
    creds: &Credentials,
    notes: &NotesSync,
) -> Result<(), RemoteError> {
    let (notes_ref, remote_ref) = (notes.notes_ref, notes.remote_ref());
    let perr = |source| RemoteError::Push {
        remote: remote.to_string(),
        source,
    };
    let mut last = None;
    for _ in 0..3 {
        let mut origin = repo.find_remote("origin").map_err(perr)?;
        let mut fopts = FetchOptions::new();
        fopts.remote_callbacks(callbacks(creds));
        let _ = origin.fetch(
            &[format!("+{notes_ref}:{remote_ref}").as_str()],
            Some(&mut fopts),
            None,
        );
        merge_remote_notes(repo, notes).map_err(perr)?;
        let mut opts = PushOptions::new();
        opts.remote_callbacks(callbacks(creds));
        match origin.push(
            &[format!("{notes_ref}:{notes_ref}").as_str()],
            Some(&mut opts),
        ) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(perr(e)),
        }
    }
    Err(last.expect("three attempts"))
}

/// Puts our notes on top of the remote's: the local notes ref then descends from the remote's,
/// so the push is a fast-forward, and a note both sides wrote keeps both sides' entries.
fn merge_remote_notes(repo: &Repository, notes: &NotesSync) -> Result<(), git2::Error> {
    let notes_ref = notes.notes_ref;
    let Ok(remote) = repo
        .find_reference(&notes.remote_ref())
        .and_then(|r| r.peel_to_commit())
    else {
        return Ok(());
    };
    let local_tip = repo.find_reference(notes_ref).ok().and_then(|r| r.target());
    if local_tip == Some(remote.id()) {
        return Ok(());
    }
    if let Some(tip) = local_tip {
        if repo.graph_descendant_of(tip, remote.id()).unwrap_or(false) {
            return Ok(());
        }
    }
    let ours: Vec<(Oid, String)> = match repo.notes(Some(notes_ref)) {
        Ok(iter) => iter
            .filter_map(Result::ok)
            .filter_map(|(_, annotated)| {
                repo.find_note(Some(notes_ref), annotated)
                    .ok()
                    .and_then(|n| n.message().ok().map(|m| (annotated, m.to_string())))
            })
            .collect(),
        Err(_) => vec![],
    };
    repo.reference(
        notes_ref,
        remote.id(),
        true,
        "pgitops: notes on top of the remote's",
    )?;
    let sig = git2::Signature::now("pgitops", "pgitops@localhost")?;
    for (oid, text) in ours {
        let theirs = repo
            .find_note(Some(notes_ref), oid)
            .ok()
            .and_then(|n| n.message().ok().map(str::to_string));
        let merged = match theirs {
            Some(t) if t == text => continue,
            Some(t) => (notes.merge)(&t, &text),
            None => text,
        };
        repo.note(&sig, &sig, Some(notes_ref), oid, &merged, true)?;
    }
    Ok(())
}
