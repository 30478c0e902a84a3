//! Tests of HBA rendering and rule validation, through [`render`] and [`check_rule`].

use super::*;
use Target::{Pgbouncer as Pgb, Postgres as Pg};

fn y(s: &str) -> Value {
    serde_yaml_ng::from_str(s).unwrap()
}

fn ips(a: &[&str]) -> &'static [String] {
    Box::leak(
        a.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

fn ctx() -> HbaContext<'static> {
    HbaContext {
        dbsu: "postgres",
        repl: "replicator",
        monitor: "dbuser_monitor",
        admin: "dbuser_dba",
        admin_ip: "10.10.10.10",
        infra_ips: ips(&["10.10.10.3", "10.10.10.10"]),
        cluster_ips: ips(&["10.10.10.12", "10.10.10.11"]),
        intranet: ips(&["10.0.0.0/8", "192.168.0.0/16"]),
        pg_role: "primary",
        offline_query: false,
        pwd_enc: "scram-sha-256",
    }
}

/// Render YAML rule lists; drop the header line and collapse the column padding.
fn body(lists: &[&str], c: &HbaContext, t: Target) -> Result<Vec<String>, HbaError> {
    let vals: Vec<Value> = lists.iter().map(|l| y(l)).collect();
    let out = render(&vals.iter().collect::<Vec<_>>(), c, t)?;
    assert!(out.starts_with("# ") && out.ends_with('\n'));
    let norm = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(out.lines().skip(1).map(norm).collect())
}

fn ok(rules: &str, c: &HbaContext, t: Target) -> Vec<String> {
    body(&[rules], c, t).unwrap()
}

#[test]
fn address_aliases() {
    let c = ctx();
    let one = |addr: &str| ok(&format!("[{{user: u, addr: '{addr}'}}]"), &c, Pg).join("|");
    let m = " scram-sha-256";
    assert_eq!(one("local"), format!("local all u{m}"));
    let lh = format!("local all u{m}|host all u 127.0.0.1/32{m}|host all u ::1/128{m}");
    assert_eq!(one("localhost"), lh);
    assert_eq!(one("admin"), format!("host all u 10.10.10.10/32{m}"));
    let infra = format!("host all u 10.10.10.10/32{m}|host all u 10.10.10.3/32{m}");
    assert_eq!(one("infra"), infra);
    let cl = format!("host all u 10.10.10.11/32{m}|host all u 10.10.10.12/32{m}");
    assert_eq!(one("cluster"), cl);
    let intra = format!("host all u 10.0.0.0/8{m}|host all u 192.168.0.0/16{m}");
    assert_eq!((one("intra"), one("intranet")), (intra.clone(), intra));
    let world = format!("host all u 0.0.0.0/0{m}|host all u ::/0{m}");
    assert_eq!((one("world"), one("all")), (world.clone(), world));
    assert_eq!(one("1.2.3.4"), format!("host all u 1.2.3.4/32{m}"));
    assert_eq!(one("10.1.0.0/16"), format!("host all u 10.1.0.0/16{m}"));
    // a local line has no address column; columns are padded
    let out = render(&[&y("[{addr: local, auth: ident}]")], &c, Pg).unwrap();
    let pad = format!("local   all             all             {:23} ident", "");
    assert_eq!(out.lines().nth(1), Some(pad.as_str()));
}

#[test]
fn auth_aliases_both_targets() {
    let mut c = ctx();
    // alias, connection type, pg method, pgbouncer method (S = scram-sha-256)
    let cases = "pwd host S S;ssl hostssl S S;sha host S S;scram-sha-256 host S S;\
                 ssl-sha hostssl S S;md5 host md5 md5;ssl-md5 hostssl md5 md5;\
                 cert hostssl cert cert;trust host trust trust;deny host reject reject;\
                 reject host reject reject;ident host ident peer;os host ident peer;\
                 peer host peer peer";
    let cases = cases.replace(" S", " scram-sha-256");
    for case in cases.split(';') {
        let [alias, conn, pg, pgb] = case.split(' ').collect::<Vec<_>>()[..] else {
            panic!("{case}")
        };
        let r = format!("{{addr: 1.2.3.4, auth: {alias}}}");
        assert_eq!(
            ok(&format!("[{r}]"), &c, Pg),
            [format!("{conn} all all 1.2.3.4/32 {pg}")]
        );
        assert_eq!(
            ok(&format!("[{r}]"), &c, Pgb),
            [format!("{conn} all all 1.2.3.4/32 {pgb}")]
        );
        assert_eq!(check_rule(&y(&r), Pgb), Ok(()));
    }
    // local/localhost stay local/host even with ssl aliases
    let lh = ok("[{addr: localhost, auth: ssl-sha}]", &c, Pg);
    assert!(
        lh[0].starts_with("local ") && lh[1].starts_with("host ") && lh[2].starts_with("host ")
    );
    c.pwd_enc = "md5";
    assert_eq!(ok("[{addr: local}]", &c, Pgb), ["local all all md5"]);
    assert_eq!(
        ok("[{addr: local, auth: ssl}]", &c, Pg),
        ["local all all md5"]
    );
}

#[test]
fn ordering() {
    let c = ctx();
    let defaults = "[{addr: local, user: d200, order: 200}, {addr: local, user: d100, order: 100}]";
    let users = "[{addr: local, user: u1}, {addr: local, user: u50, order: 50}, \
                 {addr: local, user: u2}, {addr: local, user: s200, order: 200}]";
    let out = body(&[defaults, users], &c, Pg).unwrap();
    let names: Vec<&str> = out.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
    assert_eq!(names, ["u50", "d100", "d200", "s200", "u1", "u2"]);
    let plain = ok("[{addr: local, user: b}, {addr: local, user: a}]", &c, Pg);
    assert_eq!(
        plain,
        ["local all b scram-sha-256", "local all a scram-sha-256"]
    );
}

#[test]
fn role_filter_and_titles() {
    let mut c = ctx();
    let rules = "[{addr: local, role: replica, title: 'ro\nonly'}, {addr: local, role: primary}, \
                 {role: offline, rules: ['local all x trust']}, {addr: local, role: default, title: t}]";
    let (on, off) = (
        "local all all scram-sha-256",
        "#local all all scram-sha-256",
    );
    let b = ok(rules, &c, Pg);
    let expect = [
        "# [DISABLED] ro only",
        off,
        on,
        "# [DISABLED]",
        "#local all x trust",
        "# t",
        on,
    ];
    assert_eq!(b, expect);
    c.pg_role = "replica";
    c.offline_query = true;
    let b = ok(rules, &c, Pg);
    assert_eq!(
        b[..5],
        ["# ro only", on, "# [DISABLED]", off, "local all x trust"]
    );
    (c.pg_role, c.offline_query) = ("offline", false);
    assert_eq!(ok(rules, &c, Pg)[4], "local all x trust");
    (c.pg_role, c.offline_query) = ("standby", false);
    assert_eq!(ok("[{addr: local, role: standby}]", &c, Pg), [on]);
}

#[test]
fn placeholders_and_raw_rules() {
    let r = "[{user: '${dbsu}', addr: local, auth: ident}, \
             {user: '${repl}', db: replication, addr: localhost}, \
             {user: '${monitor}', addr: infra, auth: trust}, {user: '${admin}', addr: world, auth: ssl}, \
             {user: '+dbrole_readonly', rules: ['host all all 10.0.0.0/8   md5', '']}]";
    let b = ok(r, &ctx(), Pg);
    assert_eq!(b[0], "local all postgres ident");
    assert_eq!(b[1], "local replication replicator scram-sha-256");
    assert_eq!(b[4], "host all dbuser_monitor 10.10.10.10/32 trust");
    assert_eq!(b[6], "hostssl all dbuser_dba 0.0.0.0/0 scram-sha-256");
    assert_eq!(b[8..], ["host all all 10.0.0.0/8 md5", ""]);
}

#[test]
fn null_lists_and_fields() {
    let c = ctx();
    let b = body(
        &["~", "[{addr: local, user: ~, db: null, title: ~}]", "[]"],
        &c,
        Pg,
    )
    .unwrap();
    assert_eq!(b, ["local all all scram-sha-256"]);
    assert_eq!(render(&[], &c, Pgb).unwrap().lines().count(), 1);
    let e = body(&["~", "{a: 1}"], &c, Pg).unwrap_err();
    assert!(matches!(e, HbaError::Shape { index: 0, .. }));
}

#[test]
fn errors_carry_index() {
    let c = ctx();
    let d = "[{addr: local}, {addr: local}]";
    let e = body(
        &[d, "[{addr: local}, {addr: world, auth: kerberos}]"],
        &c,
        Pg,
    )
    .unwrap_err();
    assert!(matches!(&e, HbaError::UnknownAuth { index: 3, value } if value == "kerberos"));
    assert!(e
        .to_string()
        .starts_with("HBA rule #3: unknown auth alias \"kerberos\"; expected pwd"));
    let e = body(&[d, "[{db: replication, addr: local}]"], &c, Pgb).unwrap_err();
    assert!(matches!(e, HbaError::ReplicationInPgbouncer { index: 2 }));
    let e = body(&[d, "[{user: x}]"], &c, Pg).unwrap_err();
    assert!(matches!(e, HbaError::MissingAddr { index: 2 }));
    let e = body(&["[{addr: local, role: leader}]"], &c, Pg).unwrap_err();
    assert!(matches!(e, HbaError::UnknownRole { index: 0, .. }));
    let e = body(&[d, "[{addr: local, order: x}]"], &c, Pg).unwrap_err();
    assert!(matches!(e, HbaError::Shape { index: 2, .. }));
    let m = check_rule(&y("{addr: local, auth: nope}"), Pg).unwrap_err();
    assert!(
        m.starts_with("unknown auth alias \"nope\"; expected pwd"),
        "{m}"
    );
    let m = check_rule(&y("{db: replication, addr: local}"), Pgb).unwrap_err();
    assert!(m.contains("replication"));
    assert_eq!(check_rule(&y("{db: replication, addr: local}"), Pg), Ok(()));
    assert_eq!(
        check_rule(&y("{rules: ['local all all trust']}"), Pgb),
        Ok(())
    );
    assert!(check_rule(&y("[]"), Pg).unwrap_err().contains("mapping"));
}

#[test]
fn hostile_values_rejected() {
    let bad = [
        r#"{addr: local, user: "a b"}"#,
        r#"{addr: local, user: "a\nhost all all 0.0.0.0/0 trust"}"#,
        r#"{addr: local, user: "a#b"}"#,
        r#"{addr: local, user: "\"x\""}"#,
        r#"{addr: local, user: "a,b"}"#,
        r#"{addr: local, user: "@file"}"#,
        r#"{addr: local, user: "${other}"}"#,
        r#"{addr: local, user: ""}"#,
        r#"{addr: local, user: [a]}"#,
        r#"{addr: local, db: "all trust"}"#,
        r#"{addr: local, db: "x'"}"#,
        r#"{addr: "1.2.3.4 trust"}"#,
        r#"{addr: "1.2.3.4/33"}"#,
        r#"{addr: "1.2.3.4/+8"}"#,
        r#"{addr: "1.2.3"}"#,
        r#"{addr: "::1"}"#,
        r#"{addr: "10.0.0.0/8\nhost"}"#,
        r#"{rules: ["host all all 0/0 trust\nlocal all all trust"]}"#,
        r#"{rules: ["x\ry"]}"#,
        r#"{rules: "local all all trust"}"#,
    ];
    for b in bad {
        assert!(check_rule(&y(b), Pg).is_err(), "{b}");
        assert!(body(&[&format!("[{b}]")], &ctx(), Pg).is_err(), "{b}");
    }
    let good = r#"{addr: local, user: "+dbrole_x.y@z$-1", db: "meta-db_1"}"#;
    assert_eq!(check_rule(&y(good), Pg), Ok(()));
    // hostile context values are rejected at render time
    let c = HbaContext {
        dbsu: "postgres\nhost all all 0.0.0.0/0 trust",
        ..ctx()
    };
    let e = body(&["[{user: '${dbsu}', addr: local}]"], &c, Pg).unwrap_err();
    assert!(matches!(
        e,
        HbaError::Invalid {
            index: 0,
            field: "user",
            ..
        }
    ));
    let c = HbaContext {
        admin_ip: "1.2.3.4 trust",
        ..ctx()
    };
    let e = body(&["[{addr: admin}]"], &c, Pg).unwrap_err();
    assert!(matches!(
        e,
        HbaError::Invalid {
            index: 0,
            field: "admin_ip",
            ..
        }
    ));
    let c = HbaContext {
        intranet: ips(&["10.0.0.0/8\nlocal all all trust"]),
        ..ctx()
    };
    assert!(body(&["[{addr: intra}]"], &c, Pg).is_err());
    let c = HbaContext {
        cluster_ips: ips(&["10.0.0.1 trust"]),
        ..ctx()
    };
    assert!(body(&["[{addr: cluster}]"], &c, Pg).is_err());
    // a title cannot open a new line
    let t = r#"[{addr: local, title: "a\nlocal all all trust\r\u0085\u2028b"}]"#;
    let b = ok(t, &ctx(), Pg);
    assert_eq!(
        b,
        ["# a local all all trust b", "local all all scram-sha-256"]
    );
}
