//! SQL rendering for `pg_users`, `pg_databases`, `pg_default_roles` and `pg_default_privileges`
//! entries (reference §2 and §3).
//!
//! This is the one audited place where SQL text is built from inventory values:
//! * every identifier goes through [`quote_ident`] and every literal through [`quote_literal`]
//!   (both in `quote`, the only code that quotes);
//! * integers and booleans are formatted only after being read as real YAML ints/bools;
//! * GUC names must match `^[A-Za-z_][A-Za-z0-9_.]*$` (and are then quoted as well);
//! * inventory text never reaches SQL comments or psql meta-commands.
//!
//! In: a user or database name, its inventory mapping and a [`SqlContext`]. Out: a [`Script`]
//! (or, for databases, [`DbScripts`]) or a [`SqlError`] naming the refused field.
//!
//! Scripts are fed to `psql -X -v ON_ERROR_STOP=1 -f -` on stdin ([`Script::to_psql_input`]).
//! A script runs in one transaction (`BEGIN` ... `COMMIT`) unless it holds a statement that
//! PostgreSQL refuses inside a transaction block (`CREATE`/`DROP DATABASE`, `ALTER DATABASE ...
//! SET TABLESPACE`, `ALTER SYSTEM`): a statement that fails leaves nothing of the script behind.
//! They are idempotent without DO blocks: conditionals are `SELECT ... \gset` plus `\if`. The only
//! DO block is a constant one (no inventory text) that raises the message a preceding query stored
//! in the custom setting `pgitops.error`. The executor must connect as a superuser (the dbsu).
//!
//! This module owns the public types and errors; the work is split into:
//! * `quote`: identifier and literal quoting;
//! * `out` (the statement list builder) and `def` (typed access to an inventory mapping);
//! * `params`: `parameters` (GUC) rendering, shared by users and databases;
//! * `user`: `pg_users` and `pg_default_roles` scripts, and the drop as Pigsty's `pg-drop-role`;
//!   `database`: `pg_databases` scripts; `privileges`: `pg_default_privileges` for an owner.
//!
//! Decisions:
//! * Quoting refuses NUL, and identifiers must be 1..=63 bytes (PostgreSQL would silently truncate
//!   a longer one). Literals containing a backslash use `E'...'` with `\` doubled, so they mean the
//!   same whatever `standard_conforming_strings` is.
//! * The definition's `password` key only decides *whether* a password statement is emitted; its
//!   value is never read here. A [`Secret::Verifier`] must look like a SCRAM-SHA-256 or md5 verifier,
//!   so a plaintext password is never sent (nor logged) by mistake.
//! * Decisions about single fields (`expire_in`, list GUCs, where database scripts run) are
//!   documented in the module that renders them: `user`, `params`, `database`.

mod database;
mod def;
mod out;
mod params;
mod privileges;
mod quote;
mod system;
mod template;
mod user;
pub mod verify;

#[cfg(test)]
mod tests;

pub use database::{database_drop, database_upsert};
pub use quote::{conninfo_value, quote_ident, quote_literal};

/// Pigsty's comment on a user that declares none (`pgsql-user.yml`).
pub fn default_user_comment(name: &str) -> String {
    format!("business user {name}")
}

/// Pigsty's comment on a database that declares none (`pgsql-db.yml`).
pub fn default_database_comment(name: &str) -> String {
    format!("business database {name}")
}
pub use system::{alter_system, pending_restart_query};
pub use template::{available_extensions, template_init, TemplateInit};
pub use user::{
    default_roles, user_drop, user_drop_prepare, user_drop_role, user_ownership_check,
    user_reassign, user_upsert, DefaultRole, CREATED_MARK,
};

use std::fmt;

use crate::inventory::default_privilege::DefaultPrivilege;

/// A refused input. Names the field and what was expected; never carries a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("{field}: expected {expected}")]
    Invalid { field: String, expected: String },
    #[error("{field}: requires PostgreSQL {min}+, target is PostgreSQL {actual}")]
    Unsupported {
        field: String,
        min: u32,
        actual: u32,
    },
    #[error("refusing to {action} `{name}`: it is protected")]
    Protected { action: &'static str, name: String },
}

type Result<T> = std::result::Result<T, SqlError>;

fn invalid(field: impl Into<String>, expected: impl Into<String>) -> SqlError {
    let (field, expected) = (field.into(), expected.into());
    SqlError::Invalid { field, expected }
}

fn protected(action: &'static str, name: &str) -> SqlError {
    let name = name.to_string();
    SqlError::Protected { action, name }
}

/// How a password is rendered.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
    /// `PASSWORD <redacted>`: for previews only, deliberately not valid SQL.
    Redacted,
    /// `PASSWORD '<verifier>'`: a SCRAM-SHA-256 or md5 verifier computed elsewhere.
    Verifier(&'a str),
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Redacted => "Redacted",
            Secret::Verifier(_) => "Verifier(<redacted>)",
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SqlContext<'a> {
    pub pg_major: u32,
    /// `pg_admin_username`, `pg_monitor_username`, `pg_replication_username`.
    pub admin: &'a str,
    pub monitor: &'a str,
    pub replicator: &'a str,
    /// `YYYY-MM-DD` for `expire_in`; `None` lets the server compute the date at run time.
    pub today: Option<&'a str>,
    /// `pg_default_privileges` (Pigsty's when unset), granted for every database owner; the
    /// error of an entry that does not parse (validation refuses such inventories).
    pub default_privileges: std::result::Result<&'a [DefaultPrivilege], &'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct Script {
    pub statements: Vec<Statement>,
    /// Run as one transaction: psql stops at the first error and the server rolls the open
    /// transaction back when the connection ends, so nothing of a failed script stays.
    pub transaction: bool,
}

/// One SQL statement or psql meta-command line.
#[derive(Clone)]
pub struct Statement {
    pub sql: String,
    /// The password statement (also when redacted): never log or echo it.
    pub secret: bool,
}

impl fmt::Debug for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.secret {
            true => f.write_str("Statement(<secret>)"),
            false => write!(f, "Statement({:?})", self.sql),
        }
    }
}

/// Wrapped around secret statements so neither the server log, pg_stat_statements nor psql's echo
/// records them (requires superuser, like Pigsty's own `SET log_statement`).
const SECRET_ON: &str = "SET log_statement = 'none';\nSET log_min_duration_statement = -1;\n\
SET log_min_error_statement = 'panic';\nSET pg_stat_statements.track_utility = off;\n\
\\set pgitops_echo :ECHO\n\\set ECHO none\n";
const SECRET_OFF: &str = "\\set ECHO :pgitops_echo\nRESET log_statement;\n\
RESET log_min_duration_statement;\nRESET log_min_error_statement;\n\
RESET pg_stat_statements.track_utility;\n";

impl Script {
    /// Text for `psql -X -v ON_ERROR_STOP=1 -f -`. Stops at the first error even without `-v`
    /// (a [`Script::transaction`] is then rolled back). The executor must not pass `-a`/`-e`,
    /// which would echo secret statements.
    pub fn to_psql_input(&self) -> String {
        let mut out = String::from("\\set ON_ERROR_STOP on\nSET client_encoding = 'UTF8';\n");
        if self.transaction {
            out.push_str("BEGIN;\n");
        }
        for st in &self.statements {
            if st.secret {
                out.push_str(SECRET_ON);
            }
            out.push_str(&st.sql);
            out.push('\n');
            if st.secret {
                out.push_str(SECRET_OFF);
            }
        }
        if self.transaction {
            out.push_str("COMMIT;\n");
        }
        out
    }
}

/// Scripts for one `pg_databases` entry, run in this order.
#[derive(Debug, Clone)]
pub struct DbScripts {
    /// Where `create` and `finish` run: `postgres`, or `template1` when the template is `postgres`.
    pub admin_db: &'static str,
    /// In `admin_db`, outside a transaction: CREATE DATABASE if missing, re-enable connections,
    /// move tablespace. Prints [`DB_CREATED`] when it created the database.
    pub create: Script,
    /// Inside the database itself (refuses to run anywhere else), in one transaction.
    pub provision: Script,
    /// In `admin_db`, in one transaction: `ALLOW_CONNECTIONS false` when requested; often empty.
    pub finish: Script,
}

/// The line [`DbScripts::create`] prints (psql `\echo`) when it created the database: the
/// executor says so when a later script fails, since CREATE DATABASE cannot be rolled back.
pub const DB_CREATED: &str = "pgitops: database created";

impl DbScripts {
    /// Whether the output of [`DbScripts::create`] says it created the database.
    pub fn created(create_output: &str) -> bool {
        create_output.lines().any(|l| l.trim() == DB_CREATED)
    }
}
