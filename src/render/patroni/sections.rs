//! The sections of Patroni's configuration after the identity: `log`, `etcd3`, `ctl`,
//! `restapi`, `tags`, `watchdog`, `bootstrap` (initdb options, the DCS settings from
//! `pg_rto_plan`/`pg_rpo`, a standby cluster for a primary with `pg_upstream`) and
//! `postgresql` (addresses, paths, users, callbacks, replica creation), as Pigsty's templates
//! write them.
//!
//! In: the host's [`Ctx`]. Out: entries added to the document mapping. Pure.

use serde_yaml_ng::{Mapping, Value};

use super::jinja::{int, plain, plain_text, text, truthy};
use super::params::{parameters, sizing};
use super::{Conf, Ctx, Dcs, PatroniError};
use crate::inventory::Inventory;
use crate::render::group_hosts;

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Mapping(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn b(v: bool) -> Value {
    Value::Bool(v)
}

fn n(v: i64) -> Value {
    Value::Number(v.into())
}

const CERTS: [(&str, &str); 3] = [
    ("cacert", "/pg/cert/ca.crt"),
    ("certfile", "/pg/cert/server.crt"),
    ("keyfile", "/pg/cert/server.key"),
];

pub fn top(
    c: &Ctx,
    inv: &Inventory,
    host: &str,
    doc: &mut Mapping,
    citus: bool,
    shard: &str,
) -> Result<(), PatroniError> {
    let crit = c.conf == Conf::Crit;
    let mut put = |k: &str, v: Value| doc.insert(k.into(), v);
    put(
        "log",
        map([
            ("level", s("INFO")),
            ("dir", c.plain("patroni_log_dir")?),
            ("file_size", n(33554432)),
            ("file_num", n(if crit { 16 } else { 4 })),
            ("dateformat", s("%Y-%m-%d %H:%M:%S %z")),
            ("format", s("%(asctime)s %(levelname)s: %(message)s")),
        ]),
    );
    let etcd_user = if citus {
        shard.to_string()
    } else {
        c.text("pg_cluster")?
    };
    let etcd_password = match c.get("pg_etcd_password") {
        Some(v) if jinja_truthy(v) => text(v),
        _ => etcd_user.clone(),
    };
    let etcd3 = match c.dcs {
        Dcs::PigstyTls => map([
            ("hosts", s(&etcd_hosts(inv)?)),
            ("cacert", s("/pg/cert/ca.crt")),
            ("cert", s("/pg/cert/server.crt")),
            ("key", s("/pg/cert/server.key")),
            ("protocol", s("https")),
            ("username", s(&etcd_user)),
            ("password", s(&etcd_password)),
        ]),
        Dcs::PlainHttp => map([("hosts", s(&etcd_hosts(inv)?)), ("protocol", s("http"))]),
    };
    put("etcd3", etcd3);
    let ssl = truthy(c.req("patroni_ssl_enabled")?);
    let mut ctl = Mapping::new();
    ctl.insert("insecure".into(), b(!ssl));
    let mut api = Mapping::new();
    if ssl {
        for (k, v) in CERTS {
            ctl.insert(k.into(), s(v));
            api.insert(k.into(), s(v));
        }
        api.insert("verify_client".into(), s("none"));
    }
    put("ctl", Value::Mapping(ctl));
    let rest = format!("{host}:{}", c.text("patroni_port")?);
    api.insert("listen".into(), plain_text(&rest));
    api.insert("connect_address".into(), plain_text(&rest));
    let auth = map([
        ("username", s(&c.text("patroni_username")?)),
        ("password", s(&c.text("patroni_password")?)),
    ]);
    api.insert("authentication".into(), auth);
    api.insert("allowlist".into(), allowlist(c, inv, host)?);
    put("restapi", Value::Mapping(api));
    put("tags", tags(c)?);
    let rto = rto(c)?;
    let watch = c.text("patroni_watchdog_mode")?.to_lowercase();
    let off = if crit { "automatic" } else { "off" };
    let watch = if watch == "off" || watch == "false" {
        off.to_string()
    } else {
        watch
    };
    put(
        "watchdog",
        map([
            ("mode", s(&watch)),
            ("device", s("/dev/watchdog")),
            ("safety_margin", rto[4].clone()),
        ]),
    );
    put("bootstrap", bootstrap(c, &rto, shard)?);
    put("postgresql", postgresql(c, host)?);
    Ok(())
}

/// Jinja's truthiness (`default(x, true)` replaces what is false): empty, zero, false, None.
fn jinja_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(l) => !l.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(t) => jinja_truthy(&t.value),
    }
}

/// `<ip>:<etcd_port>` of every host of the `etcd` group, sorted, joined by commas. Each
/// member's own `etcd_port` (the port its etcd listens on); Pigsty writes the PGSQL host's.
pub(crate) fn etcd_hosts(inv: &Inventory) -> Result<String, PatroniError> {
    let mut hosts = group_hosts(inv, "etcd");
    hosts.sort();
    hosts.dedup();
    if hosts.is_empty() {
        return Err(PatroniError::NoEtcd);
    }
    let mut out = Vec::with_capacity(hosts.len());
    for h in hosts {
        let port = match inv.tree.hosts.get(&h).and_then(|x| x.vars.get("etcd_port")) {
            Some(v) => text(&v.value),
            None => "2379".into(),
        };
        out.push(format!("{h}:{port}"));
    }
    Ok(out.join(","))
}

/// `[admin_ip] + pg_cluster_members + groups["infra"]`, sorted and unique.
fn allowlist(c: &Ctx, inv: &Inventory, host: &str) -> Result<Value, PatroniError> {
    let mut ips = vec![c.text("admin_ip")?];
    let cluster = inv
        .model
        .pgsql
        .values()
        .find(|x| x.members.contains_key(host));
    ips.extend(cluster.into_iter().flat_map(|x| x.members.keys().cloned()));
    ips.extend(group_hosts(inv, "infra"));
    ips.sort();
    ips.dedup();
    Ok(Value::Sequence(ips.iter().map(|i| plain_text(i)).collect()))
}

fn tags(c: &Ctx) -> Result<Value, PatroniError> {
    let f = c.facts;
    let mut t = Mapping::new();
    for (k, v) in [
        ("nofailover", false),
        ("clonefrom", true),
        ("noloadbalance", false),
        ("nosync", false),
    ] {
        t.insert(k.into(), b(v));
    }
    if let Some(up) = c.get("pg_upstream") {
        t.insert("replicatefrom".into(), plain(up));
    }
    t.insert("version".into(), s(&c.text("pg_version")?));
    let disk = f.fs_bytes.div_ceil(1 << 30).max(1);
    let spec = format!("{}C.{}G.{disk}G", f.cpu, f.mem_gb);
    t.insert("spec".into(), s(&spec));
    t.insert("conf".into(), s(&c.text("pg_conf")?));
    Ok(Value::Mapping(t))
}

/// The `pg_rto_plan` entry of `pg_rto` (`norm` when `pg_rto` names none), each item typed.
fn rto(c: &Ctx) -> Result<Vec<Value>, PatroniError> {
    const BAD: PatroniError = PatroniError::Invalid {
        var: "pg_rto_plan",
        expected: "a mapping of modes to lists of at least 5 items, with a `norm` entry",
    };
    let plan = c.req("pg_rto_plan")?.as_mapping().ok_or(BAD)?;
    let wanted = c.req("pg_rto")?;
    let mode = if plan.contains_key(wanted) {
        wanted.clone()
    } else {
        "norm".into()
    };
    let list = plan.get(&mode).and_then(Value::as_sequence).ok_or(BAD)?;
    if list.len() < 5 {
        return Err(BAD);
    }
    Ok(list.iter().map(plain).collect())
}

fn initdb(c: &Ctx) -> Result<Value, PatroniError> {
    let mut l = Vec::new();
    let checksum = c.req("pg_checksum")?;
    if c.conf == Conf::Crit || (checksum.as_str() != Some("") && truthy(checksum)) {
        l.push(s("data-checksums"));
    } else if c.version >= 18 && !truthy(checksum) {
        l.push(s("no-data-checksums"));
    }
    let (enc, locale) = (c.req("pg_encoding")?, c.req("pg_locale")?);
    let one = |k: &str, v: Value| map([(k, v)]);
    let locale_up = text(locale).to_uppercase();
    if c.version >= 17
        && ["UTF8", "UTF-8"].contains(&text(enc).as_str())
        && ["C", "C.UTF-8"].contains(&locale_up.as_str())
    {
        l.push(one("encoding", plain(enc)));
        l.push(one("locale-provider", s("builtin")));
        l.push(one("builtin-locale", plain(locale)));
    } else {
        if enc.as_str() != Some("") {
            l.push(one("encoding", plain(enc)));
        }
        if locale.as_str() != Some("") {
            l.push(one("locale", plain(locale)));
        }
    }
    const LC: [(&str, &str); 2] = [("pg_lc_collate", "lc-collate"), ("pg_lc_ctype", "lc-ctype")];
    for (var, opt) in LC {
        let v = c.req(var)?;
        if v.as_str() != Some("") {
            l.push(one(opt, plain(v)));
        }
    }
    if c.text("pg_mode")? == "oracle" {
        l.push(one("compatibility_mode", s("ora")));
    }
    Ok(Value::Sequence(l))
}

fn bootstrap(c: &Ctx, rto: &[Value], shard: &str) -> Result<Value, PatroniError> {
    let crit = c.conf == Conf::Crit;
    let mut dcs = Mapping::new();
    if c.text("pg_role")? == "primary" {
        if let Some(up) = c.get("pg_upstream") {
            let mut sc = Mapping::new();
            sc.insert("host".into(), plain(up));
            sc.insert("port".into(), c.plain("pg_port")?);
            let delay = c.get("pg_delay").filter(|d| {
                let zero = d.as_f64() == Some(0.0) || d.as_bool() == Some(false);
                d.as_str() != Some("") && !zero
            });
            if let Some(d) = delay {
                sc.insert("recovery_min_apply_delay".into(), plain(d));
            }
            sc.insert(
                "create_replica_methods".into(),
                Value::Sequence(vec![s("basebackup")]),
            );
            dcs.insert("standby_cluster".into(), Value::Mapping(sc));
        }
    }
    let rpo = c.req("pg_rpo")?;
    let entries = [
        ("ttl", rto[0].clone()),
        ("loop_wait", rto[1].clone()),
        ("retry_timeout", rto[2].clone()),
        ("primary_start_timeout", rto[3].clone()),
        ("maximum_lag_on_failover", plain(rpo)),
        ("maximum_lag_on_syncnode", n(-1)),
        ("primary_stop_timeout", n(30)),
        ("synchronous_mode", b(crit || int(rpo) == 0)),
        ("synchronous_mode_strict", b(crit)),
        ("failsafe_mode", b(true)),
        ("pg_version", c.plain("pg_version")?),
        ("pg_cluster", c.plain("pg_cluster")?),
        ("pg_shard", plain_text(shard)),
        ("pg_group", plain_text(&super::group(c))),
    ];
    for (k, v) in entries {
        dcs.insert(k.into(), v);
    }
    let sizing = sizing(c)?;
    let pg = map([
        ("use_slots", b(true)),
        ("use_pg_rewind", b(true)),
        ("remove_data_directory_on_rewind_failure", b(true)),
        ("parameters", Value::Mapping(parameters(c, &sizing)?)),
    ]);
    dcs.insert("postgresql".into(), pg);
    Ok(map([
        ("method", s("initdb")),
        ("initdb", initdb(c)?),
        ("dcs", Value::Mapping(dcs)),
    ]))
}

/// `pg_listen` with `${ip}`, `${lo}` and (with a usable `pg_vip_address`) `${vip}` replaced.
fn listen_address(c: &Ctx, host: &str) -> Result<String, PatroniError> {
    let mut l = c
        .text("pg_listen")?
        .replace("${ip}", host)
        .replace("${lo}", "127.0.0.1");
    let vip = c.text("pg_vip_address")?;
    if truthy(c.req("pg_vip_enabled")?) && !vip.starts_with("127.0.0") && vip.contains('/') {
        l = l.replace("${vip}", vip.split('/').next().unwrap_or_default());
    }
    Ok(l)
}

fn postgresql(c: &Ctx, host: &str) -> Result<Value, PatroniError> {
    let port = c.text("pg_port")?;
    let data = c.plain("pg_data")?;
    let mut su = Mapping::new();
    su.insert("username".into(), c.plain("pg_dbsu")?);
    if let Some(p) = c.get("pg_dbsu_password").filter(|p| p.as_str() != Some("")) {
        su.insert("password".into(), plain(p));
    }
    let repl = || -> Result<Value, PatroniError> {
        Ok(map([
            ("username", c.plain("pg_replication_username")?),
            ("password", s(&c.text("pg_replication_password")?)),
        ]))
    };
    let callback = || s("/pg/bin/pg-failover-callback");
    let backrest = truthy(c.req("pgbackrest_enabled")?);
    let mut methods = vec![s("basebackup")];
    if backrest && c.text("pgbackrest_method")? != "local" {
        methods.push(s("pgbackrest"));
    }
    let mut pg = Mapping::new();
    let entries = [
        ("bin_dir", c.plain("pg_bin_dir")?),
        ("data_dir", data.clone()),
        ("config_dir", data),
        (
            "pgpass",
            plain_text(&format!("{}/.pgpass", c.text("pg_dbsu_home")?)),
        ),
        (
            "listen",
            plain_text(&format!("{}:{port}", listen_address(c, host)?)),
        ),
        ("connect_address", plain_text(&format!("{host}:{port}"))),
        ("use_unix_socket", b(true)),
        (
            "parameters",
            map([("unix_socket_directories", s("/var/run/postgresql, /tmp"))]),
        ),
        (
            "authentication",
            map([
                ("superuser", Value::Mapping(su)),
                ("replication", repl()?),
                ("rewind", repl()?),
            ]),
        ),
        (
            "callbacks",
            map([
                ("on_start", callback()),
                ("on_stop", callback()),
                ("on_reload", callback()),
                ("on_restart", callback()),
                ("on_role_change", callback()),
            ]),
        ),
        ("use_pg_rewind", b(true)),
        ("remove_data_directory_on_rewind_failure", b(true)),
        ("remove_data_directory_on_diverged_timelines", b(false)),
        ("create_replica_methods", Value::Sequence(methods)),
        (
            "basebackup",
            Value::Sequence(vec![
                map([("max-rate", s("1000M"))]),
                map([("checkpoint", s("fast"))]),
                s("verbose"),
                s("progress"),
            ]),
        ),
    ];
    for (k, v) in entries {
        pg.insert(k.into(), v);
    }
    if backrest {
        let cmd = format!(
            "/usr/bin/pgbackrest --stanza={} --delta restore",
            c.text("pg_cluster")?
        );
        let br = map([
            ("command", plain_text(&cmd)),
            ("keep_data", b(true)),
            ("no_params", b(true)),
            ("no_leader", b(true)),
        ]);
        pg.insert("pgbackrest".into(), br);
    }
    Ok(Value::Mapping(pg))
}
