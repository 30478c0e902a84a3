//! etcd's node files: `/etc/etcd/etcd.conf` as Pigsty's `roles/etcd/templates/etcd.conf` renders
//! it, and the service that runs `etcd --config-file /etc/etcd/etcd.conf` (Pigsty's `etcd.svc`).
//!
//! In: the inventory and an etcd cluster's name or a member's host. Out: typed members
//! ([`EtcdMember`], [`EtcdHost`]) and file text. Pure. Differences from Pigsty, deliberate:
//! plain `http://` URLs and no `*-transport-security` sections (pgitops issues no certificates
//! yet, and sets up no RBAC user); the extra `127.0.0.1` client listener is left out when the
//! member's own address is a loopback one (several members on one machine would fight for it).

use std::net::IpAddr;

use super::service::{safe_path, Restart, ServiceSpec};
use crate::inventory::model::{ansible_uint, bool_var, port_var, str_var};
use crate::inventory::{Inventory, VarSource};

pub const CONF: &str = "/etc/etcd/etcd.conf";
pub const DEFAULT_DATA: &str = "/data/etcd";
pub const DEFAULT_PORT: u16 = 2379;
pub const DEFAULT_PEER_PORT: u16 = 2380;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd cluster {0} is not in the inventory")]
    NoCluster(String),
    #[error("{host}: {what}")]
    Invalid { host: String, what: String },
}

/// `etcd_init`: whether the member bootstraps a new cluster or joins a running one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    New,
    Existing,
}

/// One member as the cluster knows it: `<etcd_cluster>-<etcd_seq>` at the host's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    pub host: String,
    pub name: String,
    pub ip: IpAddr,
    pub port: u16,
    pub peer_port: u16,
}

impl EtcdMember {
    fn url(&self, port: u16) -> String {
        match self.ip {
            IpAddr::V4(a) => format!("http://{a}:{port}"),
            IpAddr::V6(a) => format!("http://[{a}]:{port}"),
        }
    }
    pub fn client_url(&self) -> String {
        self.url(self.port)
    }
    pub fn peer_url(&self) -> String {
        self.url(self.peer_port)
    }
}

/// A member's node settings (Pigsty's variables with their role defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdHost {
    pub member: EtcdMember,
    pub cluster: String,
    pub data: String,
    pub init: Init,
    pub election_timeout: u64,
    pub heartbeat_interval: u64,
    /// `etcd_safeguard`: never remove this member.
    pub safeguard: bool,
    /// `etcd_rm_data` (default true): removing the member also removes its data and config.
    pub rm_data: bool,
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The member of `host` in `inv` (it must be in an etcd group).
pub fn host(inv: &Inventory, host: &str) -> Result<EtcdHost, EtcdError> {
    let bad = |what: String| EtcdError::Invalid {
        host: host.to_string(),
        what,
    };
    let cluster = inv
        .model
        .etcd
        .iter()
        .find(|(_, c)| c.members.contains_key(host))
        .map(|(n, _)| n.clone())
        .ok_or_else(|| bad("not a member of an etcd cluster".into()))?;
    if !name_ok(&cluster) {
        return Err(bad(format!(
            "`etcd_cluster` {cluster:?} is not a valid name"
        )));
    }
    let vars = &inv.tree.hosts[host].vars;
    let seq = vars
        .var("etcd_seq")
        .and_then(|v| ansible_uint(&v.value))
        .ok_or_else(|| bad("`etcd_seq` must be a non-negative integer".into()))?;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| bad("an etcd member's inventory name must be its IP address".into()))?;
    let port = |k: &str, d: u16| port_var(vars, k).map(|p| p.unwrap_or(d)).map_err(&bad);
    let ms = |k: &str, d: u64| match vars.var(k) {
        None => Ok(d),
        Some(v) => ansible_uint(&v.value)
            .filter(|n| *n > 0)
            .ok_or_else(|| bad(format!("`{k}` must be a positive integer"))),
    };
    let data = str_var(vars, "etcd_data")
        .unwrap_or(DEFAULT_DATA)
        .to_string();
    if !safe_path(&data) || data == "/" {
        return Err(bad(format!(
            "`etcd_data` {data:?} is not a safe absolute path"
        )));
    }
    let init = match str_var(vars, "etcd_init").unwrap_or("new") {
        "new" => Init::New,
        "existing" => Init::Existing,
        other => return Err(bad(format!("`etcd_init` {other:?}: new or existing"))),
    };
    let rm_data = vars
        .var("etcd_rm_data")
        .and_then(|v| v.value.as_bool())
        .unwrap_or(true);
    Ok(EtcdHost {
        member: EtcdMember {
            host: host.to_string(),
            name: format!("{cluster}-{seq}"),
            ip,
            port: port("etcd_port", DEFAULT_PORT)?,
            peer_port: port("etcd_peer_port", DEFAULT_PEER_PORT)?,
        },
        cluster,
        data,
        init,
        election_timeout: ms("etcd_election_timeout", 1000)?,
        heartbeat_interval: ms("etcd_heartbeat_interval", 100)?,
        safeguard: bool_var(vars, "etcd_safeguard"),
        rm_data,
    })
}

/// Every member of cluster `name`, sorted by host as Pigsty sorts `groups[etcd_cluster]`.
pub fn members(inv: &Inventory, name: &str) -> Result<Vec<EtcdHost>, EtcdError> {
    let c = inv
        .model
        .etcd
        .get(name)
        .ok_or_else(|| EtcdError::NoCluster(name.to_string()))?;
    let mut out = vec![];
    for h in c.members.keys() {
        out.push(host(inv, h)?);
    }
    out.sort_by(|a, b| a.member.host.cmp(&b.member.host));
    let mut names: Vec<&str> = out.iter().map(|h| h.member.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(EtcdError::Invalid {
            host: name.to_string(),
            what: format!("two members named {}", w[0]),
        });
    }
    Ok(out)
}

/// `name=peer_url,...` for `--initial-cluster`.
pub fn initial_cluster<'a>(members: impl IntoIterator<Item = &'a EtcdMember>) -> String {
    let v: Vec<String> = members
        .into_iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect();
    v.join(",")
}

/// `/etc/etcd/etcd.conf` for `h`, with `initial` the `initial-cluster` value.
pub fn conf(h: &EtcdHost, init: Init, initial: &str) -> String {
    let m = &h.member;
    let mut listen = m.client_url();
    if !m.ip.is_loopback() {
        listen += &format!(",http://127.0.0.1:{}", m.port);
    }
    let state = match init {
        Init::New => "new",
        Init::Existing => "existing",
    };
    format!(
        "# written by pgitops (Pigsty's etcd.conf, plain http)\n\n\
         name: {name}\n\n\
         data-dir: {data}\n\n\
         initial-cluster-token: \"{cluster}\"\n\n\
         initial-cluster-state: \"{state}\"\n\n\
         initial-cluster: \"{initial}\"\n\n\
         initial-advertise-peer-urls: \"{peer}\"\n\n\
         listen-peer-urls: \"{peer}\"\n\n\
         listen-client-urls: \"{listen}\"\n\n\
         advertise-client-urls: \"{client}\"\n\n\
         election-timeout: {et}\n\n\
         heartbeat-interval: {hb}\n\n\
         # increase default quota from 2 GiB to 8 GiB\n\
         quota-backend-bytes: 8589934592\n\n\
         # important: enable auto compaction\n\
         auto-compaction-mode: periodic\n\n\
         # keep history in last 24 hour\n\
         auto-compaction-retention: \"24h\"\n\n\
         # the v3 JSON gateway Patroni's etcd3 client talks to (etcd 3.4 turns it off when it\n\
         # reads a config file)\n\
         enable-grpc-gateway: true\n",
        name = m.name,
        data = h.data,
        cluster = h.cluster,
        peer = m.peer_url(),
        client = m.client_url(),
        et = h.election_timeout,
        hb = h.heartbeat_interval,
    )
}

/// The etcd service (Pigsty's `etcd.svc`): `etcd --config-file /etc/etcd/etcd.conf` as `etcd`
/// in the data directory, restarted on failure, 65536 files, never OOM-killed.
pub fn service(h: &EtcdHost) -> ServiceSpec {
    ServiceSpec {
        name: "etcd".into(),
        description: "Etcd Server".into(),
        user: "etcd".into(),
        group: "etcd".into(),
        workdir: h.data.clone(),
        argv: vec!["/usr/bin/etcd".into(), "--config-file".into(), CONF.into()],
        nofile: 65536,
        restart: Restart::OnFailure,
        notify: true,
        oom_score_adjust: Some(-1000),
        kill_main_only: false,
        reload_hup: false,
        runtime_dir: None,
        timeouts: (60, 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(text: &str) -> Inventory {
        crate::inventory::load(
            &crate::inventory::InventoryFiles::single("pigsty.yml", text),
            "t",
        )
        .expect("inventory")
    }

    #[test]
    fn members_and_conf() {
        let i = inv("all:\n  children:\n    etcd:\n      hosts:\n        10.0.0.2: { etcd_seq: 2 }\n        10.0.0.1: { etcd_seq: 1 }\n      vars: { etcd_cluster: etcd, etcd_data: /data/etcd }\n");
        let m = members(&i, "etcd").unwrap();
        assert_eq!(m[0].member.name, "etcd-1");
        let initial = initial_cluster(m.iter().map(|h| &h.member));
        assert_eq!(
            initial,
            "etcd-1=http://10.0.0.1:2380,etcd-2=http://10.0.0.2:2380"
        );
        let c = conf(&m[1], Init::New, &initial);
        assert!(c.contains("name: etcd-2\n"), "{c}");
        assert!(c.contains("listen-client-urls: \"http://10.0.0.2:2379,http://127.0.0.1:2379\""));
        assert!(c.contains("initial-cluster-state: \"new\""));
    }

    #[test]
    fn loopback_members_do_not_listen_on_127_0_0_1() {
        let i = inv("all:\n  children:\n    etcd:\n      hosts: { 127.0.60.11: { etcd_seq: 1 } }\n      vars: { etcd_cluster: etcd }\n");
        let h = host(&i, "127.0.60.11").unwrap();
        let c = conf(&h, Init::Existing, "etcd-1=http://127.0.60.11:2380");
        assert!(
            c.contains("listen-client-urls: \"http://127.0.60.11:2379\"\n"),
            "{c}"
        );
        assert!(c.contains("initial-cluster-state: \"existing\""));
    }

    #[test]
    fn bad_values_are_refused() {
        for vars in [
            "etcd_data: '/data/etcd x'",
            "etcd_data: /data/../etc",
            "etcd_cluster: 'a\"b'",
            "etcd_init: maybe",
            "etcd_port: 70000",
        ] {
            let i = inv(&format!("all:\n  children:\n    etcd:\n      hosts: {{ 10.0.0.1: {{ etcd_seq: 1 }} }}\n      vars: {{ {vars} }}\n"));
            assert!(
                members(&i, "etcd").is_err() || i.model.etcd.is_empty(),
                "{vars}"
            );
        }
        let i = inv("all:\n  children:\n    etcd:\n      hosts: { node-a: { etcd_seq: 1 } }\n");
        assert!(host(&i, "node-a").is_err());
    }
}
