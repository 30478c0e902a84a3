//! Source: a Git repository read through git2, without a checkout.
//!
//! In: a repository path, revision expressions (`HEAD~2`, a sha, a branch or tag) and the
//! inventory location. Out: commit identities and the inventory files as they are in a commit's
//! tree ([`InventoryFiles`]): one file (`pigsty.yml`), or a directory in the Ansible split layout
//! (`hosts.yml`/`inventory.yml` + `group_vars/` + `host_vars/`).

pub mod approval;
pub mod offline;
pub mod remote;
pub mod verify;

use std::path::Path;

use git2::{ObjectType, Oid, Repository, Tree};

use crate::inventory::{InventoryFiles, SourceFile};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open git repository {path}")]
    Open { path: String, source: git2::Error },
    #[error("cannot resolve revision {rev:?}")]
    Revision { rev: String, source: git2::Error },
    #[error("{path} not found in commit {commit}")]
    NotFound { path: String, commit: String },
    #[error("{path}:{line}:{column}: not UTF-8 text (in commit {commit}); save the file as UTF-8")]
    NotUtf8 {
        path: String,
        commit: String,
        /// Where the first byte that is not UTF-8 is (1-based; the column counts characters).
        line: usize,
        column: usize,
    },
    #[error("reading {path} from commit {commit}")]
    Read {
        path: String,
        commit: String,
        source: git2::Error,
    },
}

/// A commit's identity.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: String,
    pub first_parent: Option<String>,
    pub summary: String,
    pub message: String,
}

pub struct Repo {
    repo: Repository,
}

impl Repo {
    pub fn open(path: &Path) -> Result<Repo, SourceError> {
        // libgit2 re-hashes every object it reads (SHA-1 with collision detection: a third of
        // reading a 4 MB inventory blob). Git itself trusts its own object store on reads and
        // leaves that check to fsck; objects that arrive by fetch are still hashed as they are
        // indexed, so only what is already in the store is read unchecked.
        static HASH_ON_READ: std::sync::Once = std::sync::Once::new();
        HASH_ON_READ.call_once(|| git2::opts::strict_hash_verification(false));
        let repo = Repository::open(path).map_err(|source| SourceError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Repo { repo })
    }

    /// The underlying repository (for notes).
    pub fn git(&self) -> &Repository {
        &self.repo
    }

    /// The `.git` directory (a bare repository's own directory).
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// Resolves a revision expression to a commit.
    pub fn commit(&self, rev: &str) -> Result<CommitInfo, SourceError> {
        let err = |source| SourceError::Revision {
            rev: rev.to_string(),
            source,
        };
        let commit = self
            .repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(err)?;
        Ok(CommitInfo {
            id: commit.id().to_string(),
            first_parent: commit.parent_ids().next().map(|p| p.to_string()),
            summary: commit.summary().ok().flatten().unwrap_or("").to_string(),
            message: commit.message().unwrap_or("").to_string(),
        })
    }

    /// Reads the inventory at `location` (a file, or a directory in split layout) from a commit.
    pub fn inventory(&self, commit: &str, location: &str) -> Result<InventoryFiles, SourceError> {
        let read_err = |source| SourceError::Read {
            path: location.to_string(),
            commit: commit.to_string(),
            source,
        };
        let oid = Oid::from_str(commit).map_err(read_err)?;
        let tree = self
            .repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(read_err)?;
        let location = location.trim_matches('/');
        let entry = if location.is_empty() || location == "." {
            None
        } else {
            Some(
                tree.get_path(Path::new(location))
                    .map_err(|_| SourceError::NotFound {
                        path: location.to_string(),
                        commit: commit.to_string(),
                    })?,
            )
        };
        match entry.as_ref().map(|e| e.kind()) {
            Some(Some(ObjectType::Blob)) => Ok(InventoryFiles {
                main: self.blob(commit, &tree, location)?,
                group_vars: vec![],
                host_vars: vec![],
            }),
            _ => self.split_layout(commit, &tree, location),
        }
    }

    fn blob(&self, commit: &str, tree: &Tree, path: &str) -> Result<SourceFile, SourceError> {
        let not_found = || SourceError::NotFound {
            path: path.to_string(),
            commit: commit.to_string(),
        };
        let entry = tree.get_path(Path::new(path)).map_err(|_| not_found())?;
        let blob = entry
            .to_object(&self.repo)
            .and_then(|o| o.peel_to_blob())
            .map_err(|source| SourceError::Read {
                path: path.to_string(),
                commit: commit.to_string(),
                source,
            })?;
        let text = std::str::from_utf8(blob.content()).map_err(|e| {
            let good = &blob.content()[..e.valid_up_to()];
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            SourceError::NotUtf8 {
                path: path.to_string(),
                commit: commit.to_string(),
                line: good.iter().filter(|b| **b == b'\n').count() + 1,
                column,
            }
        })?;
        // A UTF-8 byte-order mark (some Windows editors add one) is not part of the YAML;
        // Ansible ignores it too.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Ok(SourceFile {
            path: path.to_string(),
            text: text.to_string(),
        })
    }

    fn split_layout(
        &self,
        commit: &str,
        tree: &Tree,
        dir: &str,
    ) -> Result<InventoryFiles, SourceError> {
        let join = |name: &str| {
            if dir.is_empty() || dir == "." {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        let main_path = ["hosts.yml", "hosts.yaml", "inventory.yml", "inventory.yaml"]
            .into_iter()
            .map(join)
            .find(|p| tree.get_path(Path::new(p)).is_ok())
            .ok_or_else(|| SourceError::NotFound {
                path: join("hosts.yml"),
                commit: commit.to_string(),
            })?;
        let main = self.blob(commit, tree, &main_path)?;
        let group_vars = self.vars_dir(commit, tree, &join("group_vars"))?;
        let host_vars = self.vars_dir(commit, tree, &join("host_vars"))?;
        Ok(InventoryFiles {
            main,
            group_vars,
            host_vars,
        })
    }

    /// `group_vars/<name>.yml` files and `group_vars/<name>/*.yml` directories, in name order.
    fn vars_dir(
        &self,
        commit: &str,
        tree: &Tree,
        dir: &str,
    ) -> Result<Vec<(String, SourceFile)>, SourceError> {
        let Ok(entry) = tree.get_path(Path::new(dir)) else {
            return Ok(vec![]);
        };
        let read_err = |source| SourceError::Read {
            path: dir.to_string(),
            commit: commit.to_string(),
            source,
        };
        let sub = entry
            .to_object(&self.repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(read_err)?;
        let mut out = Vec::new();
        for e in sub.iter() {
            let Ok(name) = e.name() else { continue };
            let path = format!("{dir}/{name}");
            match e.kind() {
                Some(ObjectType::Blob) => {
                    let owner = ["yml", "yaml", "json"]
                        .iter()
                        .find_map(|ext| name.strip_suffix(&format!(".{ext}")))
                        .unwrap_or(name);
                    out.push((owner.to_string(), self.blob(commit, tree, &path)?));
                }
                Some(ObjectType::Tree) => {
                    let inner = e
                        .to_object(&self.repo)
                        .and_then(|o| o.peel_to_tree())
                        .map_err(read_err)?;
                    let mut files: Vec<String> = inner
                        .iter()
                        .filter_map(|f| f.name().ok().map(str::to_string))
                        .filter(|f| f.ends_with(".yml") || f.ends_with(".yaml"))
                        .collect();
                    files.sort();
                    for f in files {
                        out.push((
                            name.to_string(),
                            self.blob(commit, tree, &format!("{path}/{f}"))?,
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl Repo {
    /// Commits reachable from `to` but not from `from` (all ancestors of `to` when `from` is None).
    pub fn commits_between(
        &self,
        from: Option<&str>,
        to: &str,
    ) -> Result<Vec<CommitInfo>, SourceError> {
        let err = |source| SourceError::Revision {
            rev: to.to_string(),
            source,
        };
        let mut walk = self.repo.revwalk().map_err(err)?;
        walk.push(Oid::from_str(to).map_err(err)?).map_err(err)?;
        if let Some(f) = from {
            walk.hide(Oid::from_str(f).map_err(err)?).map_err(err)?;
        }
        let mut out = Vec::new();
        for oid in walk {
            out.push(self.commit(&oid.map_err(err)?.to_string())?);
        }
        Ok(out)
    }
}

/// Action ids approved by `Pgitops-Approve: <id>` trailers in a commit message.
pub fn approvals(message: &str) -> impl Iterator<Item = String> + '_ {
    message.lines().filter_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim().eq_ignore_ascii_case("pgitops-approve") && !v.trim().is_empty())
            .then(|| v.trim().to_string())
    })
}
