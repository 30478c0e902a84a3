//! The native ETCD component: a cluster created, a member added or removed, the other members'
//! configuration refreshed, with Pigsty's files (`/etc/etcd/etcd.conf`, `etcd_data`) and a
//! service under the node's supervisor ([`super::supervise`]).
//!
//! In: an action with its [`EtcdStep`] and both inventories. Out: per-host results. `observe`
//! asks the members first (`etcdctl endpoint health`, run on a member): a member that already
//! answers is adopted and never re-provisioned. Health (every member healthy, and the member
//! list as declared) is verified after every change. etcdctl runs on the nodes (etcd-client);
//! every command is fixed shell text with values as arguments. Removal and refresh live in
//! [`super::etcd_remove`], talking to etcd in [`super::etcd_ctl`].

use std::time::{Duration, Instant};

use super::etcd_ctl::{etcdctl, health, last_line, member_list, wait_healthy};
use super::packages;
use super::root_sh::sh;
use super::supervise::{self, Supervisor};
use super::{etcd_remove, on_host, Component, Ctx, Outcome};
use crate::execute::{ExecError, HostResult};
use crate::plan::etcd::EtcdStep;
use crate::plan::Action;
use crate::render::etcd::{self as conf, EtcdHost, EtcdMember, Init};

/// The message of an action whose members all answered already (status `adopted`).
pub const ADOPTED: &str = "etcd already runs on every member; adopted (nothing written)";

/// `$1` data dir; `etcd.conf` on stdin. Checks the binaries, makes Pigsty's directories, writes
/// the file if it differs; prints `changed` or `unchanged`.
const PREPARE: &str = r#"set -e
install -d -m 0750 -o etcd -g etcd /etc/etcd
install -d -m 0770 -o etcd -g etcd /var/lib/etcd
install -d -m 0700 -o etcd -g etcd "$1"
f=/etc/etcd/etcd.conf
cat > "$f.pgitops-new"
chown etcd:etcd "$f.pgitops-new"; chmod 0644 "$f.pgitops-new"
if [ -f "$f" ] && cmp -s "$f.pgitops-new" "$f"; then rm -f "$f.pgitops-new"; echo unchanged; exit 0; fi
mv -f "$f.pgitops-new" "$f"; echo changed"#;

/// Prints `foreign` when `/etc/etcd/etcd.conf` exists and pgitops did not write it.
const FOREIGN: &str = r#"f=/etc/etcd/etcd.conf
if [ -f "$f" ] && ! head -n 1 "$f" | grep -q '^# written by pgitops'; then echo foreign; else echo ours; fi"#;

pub(crate) struct Etcd;

/// Per member: its host settings and whether it answered.
pub(crate) struct Observed {
    pub(super) members: Vec<(EtcdHost, bool)>,
}

impl Component for Etcd {
    type Step = EtcdStep;
    type Observed = Observed;

    async fn observe(ctx: &Ctx<'_>, _a: &Action, step: &EtcdStep) -> Result<Observed, ExecError> {
        let refused = |e: conf::EtcdError| ExecError::Refused(e.to_string());
        let members = match step {
            EtcdStep::MemberRemove { cluster, .. } => conf::members(ctx.old, cluster),
            EtcdStep::ClusterCreate { cluster }
            | EtcdStep::MemberAdd { cluster, .. }
            | EtcdStep::Refresh { cluster, .. } => conf::members(ctx.new, cluster),
        }
        .map_err(refused)?;
        let hosts: Vec<&EtcdMember> = members.iter().map(|h| &h.member).collect();
        let health = health(ctx, &hosts).await?;
        let members = members
            .into_iter()
            .map(|h| {
                let ok = health.get(&h.member.client_url()).copied().unwrap_or(false);
                (h, ok)
            })
            .collect();
        Ok(Observed { members })
    }

    async fn execute(ctx: &Ctx<'_>, _a: &Action, step: &EtcdStep, now: Observed) -> Outcome {
        match step {
            EtcdStep::ClusterCreate { .. } => create(ctx, now).await,
            EtcdStep::MemberAdd { ip, .. } => add(ctx, ip, now).await,
            EtcdStep::MemberRemove { ip, .. } => etcd_remove::remove(ctx, ip, now).await,
            EtcdStep::Refresh { changed, .. } => etcd_remove::refresh(ctx, changed, now).await,
        }
    }
}

/// Writes `h`'s config and service and starts it.
async fn provision(
    ctx: &Ctx<'_>,
    h: &EtcdHost,
    init: Init,
    initial: &str,
) -> Result<String, ExecError> {
    let target = ctx.target(&h.member.host);
    let sup = supervise::detect(ctx, &target).await?;
    let packages = packages::ensure(ctx, &h.member.host, &packages::etcd()).await?;
    let text = conf::conf(h, init, initial);
    let what = "writing /etc/etcd/etcd.conf";
    let wrote = sh(
        ctx,
        &target,
        what,
        PREPARE,
        &[&h.data],
        Some(text.as_bytes()),
    )
    .await?;
    let installed = supervise::install(ctx, &target, &sup, &conf::service(h)).await?;
    supervise::start(ctx, &target, &sup, "etcd").await?;
    let how = match sup {
        Supervisor::Systemd => "systemd",
        Supervisor::Runit { .. } => "runit",
    };
    Ok(format!(
        "{} ({}): binaries {packages}, etcd.conf {wrote}, service {installed:?} under {how}, started",
        h.member.name,
        match init {
            Init::New => "new",
            Init::Existing => "existing",
        }
    ))
}

/// Refuses to provision any of `hs` whose `etcd.conf` pgitops did not write (a member Pigsty
/// built, with TLS, does not answer pgitops' plain-http health check: it must never be taken
/// for a missing member and re-provisioned). All of them foreign: adopted as they are.
async fn guard_foreign(ctx: &Ctx<'_>, hs: &[&EtcdHost]) -> Result<Option<Outcome>, ExecError> {
    let mut foreign = vec![];
    for h in hs {
        let target = ctx.target(&h.member.host);
        let what = "reading /etc/etcd/etcd.conf";
        if sh(ctx, &target, what, FOREIGN, &[], None).await? == "foreign" {
            foreign.push(*h);
        }
    }
    if foreign.is_empty() {
        return Ok(None);
    }
    if foreign.len() == hs.len() {
        let mut hosts = adopted(&foreign);
        for h in &mut hosts {
            h.detail = "etcd.conf not written by pgitops (a Pigsty-built member?); adopted, nothing written".into();
        }
        return Ok(Some(Ok((ADOPTED.into(), hosts))));
    }
    let names: Vec<&str> = foreign.iter().map(|h| h.member.host.as_str()).collect();
    Err(ExecError::Refused(format!(
        "{}: /etc/etcd/etcd.conf was not written by pgitops; nothing provisioned (left to the operator)",
        names.join(", ")
    )))
}

fn adopted(hosts: &[&EtcdHost]) -> Vec<HostResult> {
    hosts
        .iter()
        .map(|h| HostResult {
            host: h.member.host.clone(),
            ok: true,
            detail: format!("{} answers; adopted", h.member.name),
            ms: 0,
        })
        .collect()
}

async fn create(ctx: &Ctx<'_>, now: Observed) -> Outcome {
    let all: Vec<&EtcdMember> = now.members.iter().map(|(h, _)| &h.member).collect();
    let answering: Vec<&EtcdMember> = now
        .members
        .iter()
        .filter(|m| m.1)
        .map(|m| &m.0.member)
        .collect();
    if !answering.is_empty() {
        let live = member_list(ctx, &answering).await?;
        let missing: Vec<&str> = all
            .iter()
            .filter(|m| !live.iter().any(|l| l.peer_urls.contains(&m.peer_url())))
            .map(|m| m.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ExecError::Refused(format!(
                "etcd already runs on {} but its member list lacks {}: a partly running cluster is left to the operator (add members one by one)",
                answering.iter().map(|m| m.host.as_str()).collect::<Vec<_>>().join(", "),
                missing.join(", ")
            )));
        }
        if answering.len() == all.len() {
            let hs: Vec<&EtcdHost> = now.members.iter().map(|(h, _)| h).collect();
            return Ok((ADOPTED.into(), adopted(&hs)));
        }
    }
    // Members that do not answer (all of them, or those a crashed create left behind) are
    // provisioned with `new` and the whole declared member list, as Pigsty does.
    let silent: Vec<&EtcdHost> = now.members.iter().filter(|m| !m.1).map(|m| &m.0).collect();
    if let Some(done) = guard_foreign(ctx, &silent).await? {
        return done;
    }
    let initial = conf::initial_cluster(all.iter().copied());
    let started = Instant::now();
    let mut hosts = futures::future::join_all(now.members.iter().map(|(h, ok)| {
        let initial = &initial;
        on_host(ctx, &h.member.host, move || async move {
            match ok {
                true => Ok(format!("{} answers; adopted", h.member.name)),
                false => provision(ctx, h, Init::New, initial).await,
            }
        })
    }))
    .await;
    if hosts.iter().any(|h| !h.ok) {
        return Ok((String::new(), hosts));
    }
    wait_healthy(ctx, &all).await?;
    verify_members(ctx, &all, &all).await?;
    let ms = started.elapsed().as_millis();
    for h in &mut hosts {
        h.detail += "; healthy";
    }
    Ok((
        format!(
            "etcd cluster of {} members healthy {ms} ms after the first write",
            all.len()
        ),
        hosts,
    ))
}

/// The live member list holds exactly `want` (by peer URL), every one started (named).
async fn verify_members(
    ctx: &Ctx<'_>,
    via: &[&EtcdMember],
    want: &[&EtcdMember],
) -> Result<(), ExecError> {
    let live = member_list(ctx, via).await?;
    let mut got: Vec<String> = live
        .iter()
        .map(|l| format!("{}={}", l.name, l.peer_urls.join("|")))
        .collect();
    let mut exp: Vec<String> = want
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect();
    got.sort();
    exp.sort();
    if got != exp {
        return Err(ExecError::Refused(format!(
            "etcd member list is [{}], expected [{}]",
            got.join(", "),
            exp.join(", ")
        )));
    }
    Ok(())
}

async fn add(ctx: &Ctx<'_>, ip: &str, now: Observed) -> Outcome {
    let Some((me, answers)) = now.members.iter().find(|(h, _)| h.member.host == ip) else {
        return Err(ExecError::Refused(format!(
            "{ip} is not an etcd member in the inventory"
        )));
    };
    let others: Vec<&EtcdMember> = now
        .members
        .iter()
        .filter(|(h, ok)| *ok && h.member.host != ip)
        .map(|(h, _)| &h.member)
        .collect();
    if others.is_empty() {
        return Err(ExecError::Refused(format!(
            "no healthy etcd member to add {} to",
            me.member.name
        )));
    }
    let mut live = member_list(ctx, &others).await?;
    let url = me.member.peer_url();
    if *answers && live.iter().any(|l| l.peer_urls.contains(&url)) {
        return Ok((ADOPTED.into(), adopted(&[me])));
    }
    if let Some(done) = guard_foreign(ctx, &[me]).await? {
        return done;
    }
    let started = Instant::now();
    let mut note = "already listed (peer URL present); member add skipped";
    if !live.iter().any(|l| l.peer_urls.contains(&url)) {
        member_add(ctx, &others, &me.member).await?;
        note = "member add done";
        live = member_list(ctx, &others).await?;
    }
    // The cluster's own view after the add: started members by name, this one by its URL.
    let mut initial: Vec<String> = live
        .iter()
        .filter(|l| !l.name.is_empty() && !l.peer_urls.contains(&url))
        .flat_map(|l| l.peer_urls.iter().map(move |u| format!("{}={u}", l.name)))
        .collect();
    initial.push(format!("{}={url}", me.member.name));
    let initial = initial.join(",");
    let host = on_host(ctx, ip, || async {
        let d = provision(ctx, me, Init::Existing, &initial).await?;
        Ok(format!("{note}; {d}"))
    })
    .await;
    if !host.ok {
        return Ok((String::new(), vec![host]));
    }
    let mut all = others.clone();
    all.push(&me.member);
    wait_healthy(ctx, &all).await?;
    let ms = started.elapsed().as_millis();
    Ok((
        format!(
            "{} joined; every member healthy {ms} ms after member add",
            me.member.name
        ),
        vec![host],
    ))
}

/// `etcdctl member add`, retried for up to 20 s while etcd reports an unhealthy cluster (its
/// strict reconfiguration check wants every peer connected for 5 s).
async fn member_add(ctx: &Ctx<'_>, via: &[&EtcdMember], m: &EtcdMember) -> Result<(), ExecError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let peer = format!("--peer-urls={}", m.peer_url());
    loop {
        let out = etcdctl(ctx, via, &["member", "add", &m.name, &peer]).await?;
        if out.status == 0 || out.stderr.contains("Peer URLs already exists") {
            return Ok(());
        }
        if !out.stderr.contains("unhealthy cluster") || Instant::now() > deadline {
            return Err(ExecError::Failed {
                host: via[0].host.clone(),
                what: format!("etcdctl member add {}", m.name),
                stderr: last_line(&out.stderr),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
