//! The executor's side of `[ha]` fencing: before an action runs, the leader lease of the apply's
//! term must still hold — known locally (its keep-alive was answered within the TTL) for every
//! action, and confirmed in etcd (the leader key's value and create revision) for a destructive
//! one. A deposed leader's actions come back `skipped` with the reason, and nothing after them
//! runs. In: the [`Fence`] and the action. Out: the reason not to run it, if any.

use crate::plan::{Action, Class};
use crate::report::shared_state::Fence;

/// `Err(reason)` when `a` must not run under `f`.
pub async fn check(f: &Fence, a: &Action) -> Result<(), String> {
    let held = match a.class {
        Class::Destructive => f.held().await,
        _ => f.held_locally(),
    };
    held.map_err(|e| {
        tracing::warn!(action = %a.id, term = f.term(), "{e}");
        e.to_string()
    })
}
