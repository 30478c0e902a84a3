//! pgitops: the GitOps engine for Pigsty PostgreSQL inventories.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`source`] reads inventory files straight from commit trees (git2, no checkout).
//! 2. [`inventory`] parses them (anchors, merge keys), computes every host's effective variables
//!    with Ansible precedence, builds the typed module model and validates it, with file, line
//!    and column for every message.
//! 3. [`diff`] (pure) compares two inventories semantically: entity-level changes with fields.
//! 4. [`plan`] (pure) turns changes into ordered, classified actions with native step previews
//!    and the equivalent Pigsty command line; [`render`] holds the renderers both share.
//! 5. [`ops`] runs a verb (`plan`, `validate`) over those stages for the CLI.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod diff;
pub mod execute;
pub mod fsutil;
pub mod inventory;
pub mod ops;
pub mod plan;
pub mod render;
pub mod report;
pub mod source;
