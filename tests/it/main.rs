//! The one integration test binary: real Git repositories, the real `pgitops` binary.

mod apply_defaults;
mod apply_drop_role;
mod apply_faults;
mod apply_instances;
mod apply_objects;
mod apply_pgbouncer;
mod apply_records;
mod apply_txn;
mod corpus;
mod corpus_split;
mod forge;
mod forge_order;
mod harness;
mod hostile;
mod journal_drops;
mod pigsty_exec;
mod plan_props;
mod plan_rows;
mod records;
mod serve;
mod serve_controller;
mod serve_crash;
mod serve_http;
mod serve_policy;
mod serve_resilience;
mod support;
