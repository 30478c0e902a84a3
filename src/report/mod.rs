//! Report: the record of what was applied. [`state`] keeps, per cluster, the last applied and
//! last attempted commits and the objects pgitops created (so that removing them from the YAML
//! prunes them); [`note`] writes each run as a git note under `refs/notes/pgitops` on the
//! applied commit; [`journal`] makes destructive actions crash-safe; [`forge`] posts commit
//! statuses and [`status_queue`] posts them in order, one worker per forge; [`leaders`] keeps
//! the service's leader watch's view (Patroni's leader against the declared primary);
//! [`shared_state`] fences a leader's steps and shares the state and journal through etcd
//! (`[ha]`). None of them ever holds a password.

pub mod drift;
pub mod forge;
pub mod journal;
pub mod leaders;
pub mod note;
pub mod pulls;
pub mod shared_state;
pub mod state;
pub mod status_queue;
