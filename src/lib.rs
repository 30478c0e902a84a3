//! pgitops: the GitOps engine for Pigsty PostgreSQL inventories.
//!
//! The pipeline, one module per stage; dependencies point down it, never back:
//!
//! 1. [`source`] reads inventory files straight from commit trees (git2, no checkout), keeps
//!    the service's mirror of the remote (pull request heads too) and verifies commit
//!    signatures with the real `ssh-keygen`/`gpgv` ([`source::verify`]).
//! 2. [`inventory`] parses them (anchors, merge keys), computes every host's effective variables
//!    with Ansible precedence, builds the typed module model and validates it, with file, line
//!    and column for every message.
//! 3. [`diff`] (pure) compares two inventories semantically: entity-level changes with fields.
//!    [`diff::drift`] holds what the nodes have now against an inventory (`pgitops drift`).
//! 4. [`plan`] (pure) turns changes into ordered, classified actions. Each action carries one
//!    typed [`plan::Step`] of a component (PostgreSQL objects, HBA, parameters, Pigsty-delegated
//!    work); its id, JSON kind and preview derive from the step. [`render`] holds the audited
//!    renderers (SQL, HBA, shell words) both plan and execute use.
//! 5. [`execute`] carries the steps out: the native executor's components observe the nodes
//!    (the live primary, live roles) and execute one step at a time over SSH; the Pigsty
//!    executor runs the narrowest playbook per action. Per-host PostgreSQL settings come from
//!    the inventory ([`execute::settings`]).
//! 6. [`report`] records the outcome: state per cluster, the journal of destructive steps (both
//!    shared through etcd under `[ha]`), git notes on the applied commit, forge commit statuses
//!    and pull request comments.
//! 7. [`ops`] runs one verb over those stages, shared by the CLI and the service; a pull
//!    request's plan ([`ops::pulls`]) is a dry run of the next apply on its merge result, as
//!    Markdown ([`plan::markdown`]).
//!
//! The binary (`src/main.rs`) adds the edge, outside this library: `cli` parses arguments and
//! maps outcomes to exit codes, and `daemon` is `pgitops serve`, a per-cluster controller that
//! requeues each cluster after a backoff, when a window opens or when an approval arrives; with
//! `[ha]` only the instance holding the etcd leader lease applies, fenced before every action.

pub mod config;
pub mod diff;
pub mod execute;
pub mod fsutil;
pub mod inventory;
pub mod ops;
pub mod plan;
pub mod render;
pub mod report;
pub mod source;
