//! Who leads a PGSQL cluster in Patroni's view, for the service's leader watch: Patroni's
//! `/cluster` asked of one member over SSH (curl on the node, as every Patroni observation),
//! falling back to the next member when one does not answer. It only reads: nothing here
//! switches anything.
//!
//! In: a cluster of an inventory, the runner and the execution settings (the command's time
//! limit is theirs). Out: the Patroni member name of the leader (None when Patroni answers with
//! no leader, as during an election), or the error of the last member asked.

use super::patroni_node::cluster_view;
use super::Ctx;
use crate::execute::{ExecConfig, ExecError, HostLocks, Runner};
use crate::inventory::model::PgCluster;
use crate::inventory::Inventory;

/// The leader of `c` in Patroni's `/cluster`, asked of its members one at a time, the declared
/// primary first.
pub async fn leader(
    inv: &Inventory,
    c: &PgCluster,
    runner: &Runner,
    cfg: &ExecConfig,
) -> Result<Option<String>, ExecError> {
    let locks = HostLocks::default();
    let ctx = Ctx::reading(inv, runner, cfg, &locks);
    let declared = c.declared_primary().map(|m| m.host.as_str());
    let others = c.members.keys().map(String::as_str);
    let hosts = declared
        .into_iter()
        .chain(others.filter(|h| Some(*h) != declared));
    let mut last = None;
    for h in hosts {
        match cluster_view(&ctx, h).await {
            Ok(v) => {
                let lead = v
                    .members
                    .into_iter()
                    .find(|m| m.role == "leader" || m.role == "standby_leader");
                return Ok(lead.map(|m| m.name));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ExecError::Refused(format!("{} has no members", c.name))))
}
