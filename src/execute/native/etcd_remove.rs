//! ETCD membership going down: a member removed (stop, `etcdctl member remove`, service and data
//! per Pigsty's `etcd_remove`), and the other members' `etcd.conf` refreshed after a change.
//!
//! In: the observed members of [`super::etcd`] and the member that changed. Out: per-host
//! results. `etcd_safeguard` refuses a removal, and so does one that would leave the remaining
//! healthy members without quorum. The refresh rewrites only files pgitops wrote, and never
//! restarts: etcd reads `initial-cluster` only when its data dir is empty.

use super::etcd::Observed;
use super::etcd_ctl::{etcdctl, last_line, member_list, wait_healthy};
use super::root_sh::sh;
use super::supervise;
use super::{on_host, Ctx, Outcome};
use crate::execute::ExecError;
use crate::render::etcd::{self as conf, EtcdMember};

/// Rewrites `etcd.conf` (stdin) only when the one there was written by pgitops and differs.
const REFRESH: &str = r#"set -e
f=/etc/etcd/etcd.conf
[ -f "$f" ] || { echo absent; exit 0; }
head -n 1 "$f" | grep -q '^# written by pgitops' || { echo foreign; exit 0; }
cat > "$f.pgitops-new"
if cmp -s "$f.pgitops-new" "$f"; then rm -f "$f.pgitops-new"; echo unchanged; exit 0; fi
chown etcd:etcd "$f.pgitops-new"; chmod 0644 "$f.pgitops-new"; mv -f "$f.pgitops-new" "$f"; echo changed"#;

/// `$1` etcd_data; removes what Pigsty's `etcd_remove` removes (`etcd_rm_data`). A mount point
/// keeps its (emptied) directory.
const PURGE: &str = r#"for d in /etc/etcd /var/lib/etcd "$1"; do
  [ -d "$d" ] || continue
  find "$d" -mindepth 1 -delete
  rmdir "$d" 2>/dev/null || true
done
rm -f /etc/profile.d/etcdctl.sh"#;

pub(super) async fn remove(ctx: &Ctx<'_>, ip: &str, now: Observed) -> Outcome {
    let Some((me, _)) = now.members.iter().find(|(h, _)| h.member.host == ip) else {
        return Err(ExecError::Refused(format!("{ip} was not an etcd member")));
    };
    if me.safeguard {
        return Err(ExecError::Refused(format!(
            "etcd_safeguard is set for {} @ {ip}: not removed (set etcd_safeguard: false first)",
            me.member.name
        )));
    }
    let rest: Vec<&EtcdMember> = now
        .members
        .iter()
        .filter(|(h, _)| h.member.host != ip)
        .map(|(h, _)| &h.member)
        .collect();
    let healthy: Vec<&EtcdMember> = now
        .members
        .iter()
        .filter(|(h, ok)| *ok && h.member.host != ip)
        .map(|(h, _)| &h.member)
        .collect();
    if rest.is_empty() {
        return Err(ExecError::Refused(format!(
            "{} is the cluster's last member: remove the cluster instead",
            me.member.name
        )));
    }
    if healthy.is_empty() {
        return Err(ExecError::Refused(
            "no other etcd member is healthy: not removed".into(),
        ));
    }
    let live = member_list(ctx, &healthy).await?;
    let url = me.member.peer_url();
    let listed = live.iter().find(|l| l.peer_urls.contains(&url)).cloned();
    let size_after = live.len() - usize::from(listed.is_some());
    let quorum = size_after / 2 + 1;
    if healthy.len() < quorum {
        return Err(ExecError::Refused(format!(
            "removing {} leaves {size_after} members of which {} are healthy: no quorum ({quorum} needed); not removed",
            me.member.name,
            healthy.len()
        )));
    }
    let target = ctx.target(ip);
    let host = on_host(ctx, ip, || async {
        let sup = supervise::detect(ctx, &target).await?;
        supervise::once(ctx, &target, &sup, "etcd").await?;
        let mut done = vec![];
        if let Some(l) = &listed {
            let id = format!("{:x}", l.id);
            let out = etcdctl(ctx, &healthy, &["member", "remove", &id]).await?;
            if out.status != 0 && !out.stderr.contains("member not found") {
                return Err(ExecError::Failed {
                    host: healthy[0].host.clone(),
                    what: format!("etcdctl member remove {id}"),
                    stderr: last_line(&out.stderr),
                });
            }
            done.push(format!("member {id} removed"));
        } else {
            done.push("not in the member list".to_string());
        }
        supervise::remove(ctx, &target, &sup, "etcd").await?;
        done.push("service stopped and removed".into());
        if me.rm_data {
            sh(ctx, &target, "removing etcd data", PURGE, &[&me.data], None).await?;
            done.push(format!("/etc/etcd, /var/lib/etcd and {} removed", me.data));
        } else {
            done.push("data kept (etcd_rm_data: false)".into());
        }
        Ok(done.join("; "))
    })
    .await;
    if !host.ok {
        return Ok((String::new(), vec![host]));
    }
    let still: Vec<&EtcdMember> = live
        .iter()
        .filter(|l| !l.peer_urls.contains(&url))
        .filter_map(|l| {
            rest.iter()
                .copied()
                .find(|m| l.peer_urls.contains(&m.peer_url()))
        })
        .collect();
    wait_healthy(ctx, &healthy).await?;
    let after = member_list(ctx, &healthy).await?;
    if after.iter().any(|l| l.peer_urls.contains(&url)) {
        return Err(ExecError::Refused(format!(
            "{} is still in the member list",
            me.member.name
        )));
    }
    Ok((
        format!(
            "{} removed; {} members left, healthy",
            me.member.name,
            still.len().max(after.len())
        ),
        vec![host],
    ))
}

pub(super) async fn refresh(ctx: &Ctx<'_>, changed: &str, now: Observed) -> Outcome {
    let all: Vec<&EtcdMember> = now.members.iter().map(|(h, _)| &h.member).collect();
    let initial = conf::initial_cluster(all.iter().copied());
    let hosts = futures::future::join_all(
        now.members
            .iter()
            .filter(|(h, _)| h.member.host != changed)
            .map(|(h, _)| {
                let initial = &initial;
                on_host(ctx, &h.member.host, move || async move {
                    let target = ctx.target(&h.member.host);
                    let text = conf::conf(h, h.init, initial);
                    let what = "refreshing /etc/etcd/etcd.conf";
                    let out = sh(ctx, &target, what, REFRESH, &[], Some(text.as_bytes())).await?;
                    Ok(match out.as_str() {
                        "foreign" => "etcd.conf was not written by pgitops; left alone".to_string(),
                        "absent" => "no etcd.conf; left alone".to_string(),
                        s => format!("etcd.conf {s}; not restarted"),
                    })
                })
            }),
    )
    .await;
    Ok((String::new(), hosts))
}
