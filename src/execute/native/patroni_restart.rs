//! A rolling restart of PGSQL members under Patroni, for parameters that wait for one: replicas
//! first, one at a time, each awaited until it streams again; the leader last, restarted by its
//! own Patroni (which keeps the leader lock: a restart, not a failover) and awaited leading with
//! PostgreSQL serving and the replicas streaming from it again.
//!
//! In: the members to restart with their live role (Patroni's view). Out: per member, how long
//! its restart took, or the error that stopped the roll (members after it are not restarted).
//! Each restart is `POST /restart` through [`super::patroni_api`] (synchronous: Patroni answers
//! once PostgreSQL runs again); its postmaster start time must have moved.

use std::time::Instant;

use super::patroni_api::{self as api, Status};
use super::patroni_node as node;
use super::Ctx;
use crate::execute::ExecError;

/// Patroni waits up to `primary_start_timeout` for PostgreSQL to start; curl waits this long.
const RESTART_SECS: u64 = 180;

/// `$1` tries (0.2 s apart), then the psql command: exits 0 once this server is in recovery
/// and its WAL receiver streams.
const WAIT_RECEIVING: &str = r#"n=$1; shift; i=0
while :; do
  s=$("$@" -c "SELECT pg_is_in_recovery()::text || ' ' || coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')" 2>/dev/null)
  [ "$s" = "true streaming" ] && exit 0
  i=$((i+1)); [ $i -ge "$n" ] && { echo "recovery and WAL receiver: [$s], awaited: [true streaming]" >&2; exit 1; }
  sleep 0.2
done"#;

/// The order of a rolling restart: replicas first (in the given order), the leader last.
pub fn order(members: &[(String, bool)]) -> Vec<(String, bool)> {
    let (leaders, replicas): (Vec<_>, Vec<_>) = members.iter().cloned().partition(|(_, l)| *l);
    replicas.into_iter().chain(leaders).collect()
}

/// Restarts `host`'s PostgreSQL through its Patroni and waits until it serves its role again:
/// a replica streams; the leader leads with PostgreSQL serving and `streams` (the Patroni names
/// of the replicas) stream from it again.
pub async fn restart(
    ctx: &Ctx<'_>,
    host: &str,
    leader: bool,
    streams: &[String],
) -> Result<String, ExecError> {
    let started = Instant::now();
    let before: Status = api::status(ctx, host).await?;
    if before.leader() != leader {
        return Err(ExecError::Refused(format!(
            "Patroni's role of {host} changed to {} since it was observed: not restarted",
            before.role
        )));
    }
    let (code, body) =
        api::request(ctx, host, "POST", "/restart", Some("{}"), RESTART_SECS).await?;
    if code != 200 {
        return Err(ExecError::Failed {
            host: host.into(),
            what: "POST /restart on Patroni's REST API".into(),
            stderr: format!(
                "HTTP {code}: {}",
                body.chars().take(200).collect::<String>()
            ),
        });
    }
    let role = match leader {
        true => {
            node::wait_leader(ctx, host).await?;
            node::wait_streaming(ctx, host, streams).await?;
            "leader, still leading, replicas streaming"
        }
        false => {
            let psql = node::psql_tail(ctx, host)?;
            let n = node::tries();
            let mut args: Vec<&str> = vec![&n];
            args.extend(psql.iter().map(String::as_str));
            let what = "waiting for the replica to stream again";
            node::wait(ctx, &ctx.target(host), what, WAIT_RECEIVING, &args).await?;
            "replica, streaming"
        }
    };
    let after = api::status(ctx, host).await?;
    if after.postmaster_start_time.is_some()
        && after.postmaster_start_time == before.postmaster_start_time
    {
        return Err(ExecError::Failed {
            host: host.into(),
            what: "POST /restart on Patroni's REST API".into(),
            stderr: format!("Patroni answered {code} but the postmaster start time did not change"),
        });
    }
    Ok(format!(
        "restarted through Patroni ({role}) in {} ms",
        started.elapsed().as_millis()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_first_the_leader_last() {
        let m = |h: &str, l: bool| (h.to_string(), l);
        let got = order(&[m("a", true), m("b", false), m("c", false)]);
        assert_eq!(got, vec![m("b", false), m("c", false), m("a", true)]);
        assert_eq!(order(&[m("a", true)]), vec![m("a", true)]);
        assert!(order(&[]).is_empty());
    }
}
