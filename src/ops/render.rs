//! `pgitops render`: the exact text of a file pgitops writes on a node, for one host and one
//! revision, so a reviewer sees the file itself rather than a summary.
//!
//! In: the repository options, a revision, an inventory host and a [`NodeFile`]. Out: the file's
//! text, or an error naming the host, the file or the inventory errors. [`node_file`] is the
//! pure part (a loaded inventory in, text out) shared with tests and the equivalence suite;
//! [`render`] opens the repository and loads the revision like `pgitops validate` does.
//!
//! Adding a file: a [`NodeFile`] variant, its name in [`NodeFile::name`], and its renderer in
//! [`node_file`]'s match. No secret is ever rendered: HBA and pgbouncer option files carry none,
//! and `userlist.txt` shows a placeholder where each verifier goes.

use anyhow::{bail, Result};

use super::{errors, load_revision, RepoOptions};
use crate::inventory::model::PgCluster;
use crate::inventory::Inventory;
use crate::render::hba::{HbaError, Target};
use crate::render::hba_for;
use crate::render::pgbouncer::{self, PgbError};

/// The files `pgitops render` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFile {
    /// `<pg_data>/pg_hba.conf`.
    PgHba,
    /// pgbouncer's `/etc/pgbouncer/pgb_hba.conf`.
    PgbHba,
    /// pgbouncer's `/etc/pgbouncer/useropts.txt`.
    Useropts,
    /// pgbouncer's `/etc/pgbouncer/database.txt`.
    Databases,
    /// pgbouncer's `/etc/pgbouncer/userlist.txt`, each verifier shown as a placeholder: the
    /// executor reads them from `pg_authid` on the live primary when it writes the file.
    Userlist,
}

impl NodeFile {
    pub const ALL: [NodeFile; 5] = [
        NodeFile::PgHba,
        NodeFile::PgbHba,
        NodeFile::Useropts,
        NodeFile::Databases,
        NodeFile::Userlist,
    ];

    /// The file's name as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NodeFile::PgHba => "pg_hba.conf",
            NodeFile::PgbHba => "pgb_hba.conf",
            NodeFile::Useropts => "useropts.txt",
            NodeFile::Databases => "database.txt",
            NodeFile::Userlist => "userlist.txt",
        }
    }

    pub fn parse(name: &str) -> Option<NodeFile> {
        NodeFile::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Why a file cannot be rendered for a host.
#[derive(Debug, thiserror::Error)]
pub enum NodeFileError {
    #[error("host `{0}` is not in the inventory")]
    UnknownHost(String),
    #[error("host `{host}` is not a member of a PGSQL cluster (no `pg_cluster`), so pgitops writes no {file} there")]
    NotPgsql { host: String, file: &'static str },
    #[error("{file} of host `{host}`: {source}")]
    Hba {
        host: String,
        file: &'static str,
        source: HbaError,
    },
    #[error(transparent)]
    Pgbouncer(#[from] PgbError),
}

fn cluster_of<'a>(inv: &'a Inventory, host: &str) -> Option<&'a PgCluster> {
    inv.model
        .pgsql
        .values()
        .find(|c| c.members.contains_key(host))
}

/// The text of `file` for `host` in a loaded inventory, for the host's declared `pg_role`.
/// (The native executor renders `pg_hba.conf` for the instance's live role: a declared primary
/// that is in recovery gets the file of a replica.)
pub fn node_file(inv: &Inventory, host: &str, file: NodeFile) -> Result<String, NodeFileError> {
    if !inv.tree.hosts.contains_key(host) {
        return Err(NodeFileError::UnknownHost(host.to_string()));
    }
    let name = file.name();
    let cluster = cluster_of(inv, host).ok_or_else(|| NodeFileError::NotPgsql {
        host: host.to_string(),
        file: name,
    })?;
    let hba = |target| {
        hba_for(inv, cluster, host, target, None).map_err(|source| NodeFileError::Hba {
            host: host.to_string(),
            file: name,
            source,
        })
    };
    match file {
        NodeFile::PgHba => hba(Target::Postgres),
        NodeFile::PgbHba => hba(Target::Pgbouncer),
        NodeFile::Useropts => Ok(pgbouncer::useropts(inv, host)?),
        NodeFile::Databases => Ok(pgbouncer::database_txt(inv, host)?),
        NodeFile::Userlist => Ok(pgbouncer::userlist_preview(inv, host)?),
    }
}

/// Loads `rev` and renders `file` for `host`. A revision whose inventory does not load or
/// fails validation is refused (pgitops would write nothing from it); the error lists why.
pub fn render(opts: &RepoOptions, rev: &str, host: &str, file: NodeFile) -> Result<String> {
    let repo = opts.open()?;
    let commit = repo.commit(rev)?;
    let loaded = load_revision(&repo, opts, &commit.id, false)?;
    let errs = errors(&loaded);
    let inv = match loaded {
        Ok(inv) if errs.is_empty() => inv,
        _ => {
            let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
            bail!(
                "the inventory at {} has {} error(s); pgitops applies nothing from it:\n{}",
                &commit.id[..12.min(commit.id.len())],
                list.len(),
                list.join("\n")
            )
        }
    };
    Ok(node_file(&inv, host, file)?)
}
