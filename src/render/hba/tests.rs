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

/// Render YAML rule lists; drop the header line and blank lines, collapse the column padding
/// (titles keep their trailing space).
fn body(lists: &[&str], c: &HbaContext, t: Target) -> Result<Vec<String>, HbaError> {
    let vals: Vec<Value> = lists.iter().map(|l| y(l)).collect();
    let out = render(&vals.iter().collect::<Vec<_>>(), c, t)?;
    assert!(out.starts_with("# ") && out.ends_with("\n\n"));
    let norm = |l: &str| match l.starts_with("# ") {
        true => l.to_string(),
        false => l.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    Ok(out
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(norm)
        .collect())
}

/// The rule lines only (no title comments).
fn ok(rules: &str, c: &HbaContext, t: Target) -> Vec<String> {
    let b = body(&[rules], c, t).unwrap();
    b.into_iter().filter(|l| !l.starts_with("# ")).collect()
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
    // Pigsty's columns: a local line has an empty address column; pgbouncer's world lines
    // pad the address to 9
    let out = render(&[&y("[{addr: local, auth: ident}]")], &c, Pg).unwrap();
    let pad = format!(
        "local    all                all                {:18} ident",
        ""
    );
    assert_eq!(out.lines().nth(3), Some(pad.as_str()));
    let out = render(&[&y("[{addr: world, user: u}]")], &c, Pgb).unwrap();
    let w = "host     all                u                  0.0.0.0/0 scram-sha-256\n\
             host     all                u                  ::/0      scram-sha-256\n";
    assert!(out.ends_with(&format!("#  [default] \n{w}\n")), "{out}");
    let out = render(&[&y("[{addr: world, user: u}]")], &c, Pg).unwrap();
    assert!(out.contains(" 0.0.0.0/0          scram-sha-256\n"), "{out}");
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
    let out: Vec<String> = body(&[defaults, users], &c, Pg).unwrap();
    let out: Vec<&String> = out.iter().filter(|l| !l.starts_with("# ")).collect();
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
    let b = body(&[rules], &c, Pg).unwrap();
    let expect = [
        "# ro only [replica] [DISABLED]",
        off,
        "#  [primary] ",
        on,
        "#  [offline] [DISABLED]",
        "#local all x trust",
        "# t [default] ",
        on,
    ];
    assert_eq!(b, expect);
    c.pg_role = "replica";
    c.offline_query = true;
    let b = body(&[rules], &c, Pg).unwrap();
    assert_eq!(
        b[..6],
        [
            "# ro only [replica] ",
            on,
            "#  [primary] [DISABLED]",
            off,
            "#  [offline] ",
            "local all x trust"
        ]
    );
    (c.pg_role, c.offline_query) = ("offline", false);
    assert_eq!(ok(rules, &c, Pg)[2], "local all x trust");
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
    assert_eq!(b[8..], ["host all all 10.0.0.0/8 md5"]);
    // raw lines are written verbatim, an empty one too
    let out = render(&[&y(r)], &ctx(), Pg).unwrap();
    assert!(
        out.ends_with("] \nhost all all 10.0.0.0/8   md5\n\n\n"),
        "{out}"
    );
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
    assert_eq!(b, ["#  [default] ", "local all all scram-sha-256"]);
    assert_eq!(render(&[], &c, Pgb).unwrap().lines().count(), 2);
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
        r#"{addr: local, user: "a,,b"}"#,
        r#"{addr: local, user: "a,"}"#,
        r#"{addr: local, user: "a, b"}"#,
        r#"{addr: local, user: "@"}"#,
        r#"{addr: local, user: "@a b"}"#,
        r#"{addr: local, user: "@'x'"}"#,
        r#"{addr: local, user: "@x,"}"#,
        r#"{addr: local, db: "@x\ny"}"#,
        r#"{addr: local, user: "${other}"}"#,
        r#"{addr: local, user: "${dbsu},x"}"#,
        r#"{addr: local, user: "x${dbsu}"}"#,
        r#"{addr: ""}"#,
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
    let b = body(&[t], &ctx(), Pg).unwrap();
    assert_eq!(
        b,
        [
            "# a local all all trust b [default] ",
            "local all all scram-sha-256"
        ]
    );
}

/// Pigsty's template reads an empty `user`/`db`/`auth`/`role` as unset, and `rules: []` as
/// absent (the rule falls back to `addr`).
#[test]
fn empty_fields_and_empty_rules_fall_back() {
    let c = ctx();
    let r = "[{user: '', db: '', auth: '', role: '', addr: local, title: ''}, \
             {rules: [], addr: admin, user: u, auth: ssl, title: fb, role: replica}]";
    let b = body(&[r], &c, Pg).unwrap();
    let expect = [
        "#  [default] ",
        "local all all scram-sha-256",
        "# fb [replica] [DISABLED]",
        "#hostssl all u 10.10.10.10/32 scram-sha-256",
    ];
    assert_eq!(b, expect);
    let e = body(&["[{rules: []}]"], &c, Pg).unwrap_err();
    assert!(matches!(e, HbaError::MissingAddr { index: 0 }));
    assert_eq!(check_rule(&y("{rules: [], addr: world}"), Pgb), Ok(()));
    assert!(check_rule(&y("{rules: [], addr: ''}"), Pg).is_err());
}

/// Comma lists and `@file` references, legal in pg_hba.conf, pass through as one column.
#[test]
fn comma_lists_and_file_references() {
    let c = ctx();
    let r = "[{user: 'a,+grp,@users.txt', db: 'meta,@/etc/pgitops/dbs', addr: intra}, \
             {user: '@admins', db: 'postgres,replication', addr: local}]";
    let b = ok(r, &c, Pg);
    assert_eq!(
        b[0],
        "host meta,@/etc/pgitops/dbs a,+grp,@users.txt 10.0.0.0/8 scram-sha-256"
    );
    assert_eq!(b[2], "local postgres,replication @admins scram-sha-256");
    // only a `user` exactly equal to a placeholder is substituted
    let b = ok(
        "[{user: '${admin}', addr: local}, {user: 'admin', addr: local}]",
        &c,
        Pgb,
    );
    assert_eq!(
        b,
        [
            "local all dbuser_dba scram-sha-256",
            "local all admin scram-sha-256"
        ]
    );
    // `replication` is refused in pgbouncer only as the whole db field, like Pigsty
    assert_eq!(
        check_rule(&y("{db: 'replication,x', addr: local}"), Pgb),
        Ok(())
    );
    // a substituted context value must still be one plain name
    for bad in ["a,b", "@f", ""] {
        let c = HbaContext {
            admin: bad,
            ..ctx()
        };
        let e = body(&["[{user: '${admin}', addr: local}]"], &c, Pg).unwrap_err();
        assert!(
            matches!(e, HbaError::Invalid { field: "user", .. }),
            "{bad}"
        );
    }
}

/// `admin` uses the host's effective `admin_ip` (host level over group over all.vars), `infra`
/// the hosts of the `infra` group and its children.
#[test]
fn admin_ip_and_infra_resolve_per_host() {
    use crate::inventory::{load, InventoryFiles};
    let text = "all:\n  vars: {admin_ip: 10.0.0.1}\n  children:\n\
        \x20   infra: {children: {infra2: {hosts: {10.0.0.9: {}}}}, hosts: {10.0.0.8: {}}}\n\
        \x20   pg-a:\n      vars: {pg_cluster: pg-a, admin_ip: 10.0.0.2,\n\
        \x20       pg_hba_rules: [{addr: admin, user: a}, {addr: infra, user: i}]}\n\
        \x20     hosts:\n        10.0.0.3: {pg_seq: 1, pg_role: primary}\n\
        \x20       10.0.0.4: {pg_seq: 2, pg_role: replica, admin_ip: 10.0.0.5}\n";
    let inv = load(&InventoryFiles::single("pigsty.yml", text), "t").unwrap();
    let c = &inv.model.pgsql["pg-a"];
    let lines = |host: &str| {
        let f = crate::render::hba_for(&inv, c, host, Pg, None).unwrap();
        let tail: Vec<&str> = f
            .lines()
            .filter(|l| l.contains(" a ") || l.contains(" i "))
            .collect();
        tail.iter()
            .map(|l| l.split_whitespace().nth(3).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines("10.0.0.3"),
        ["10.0.0.2/32", "10.0.0.8/32", "10.0.0.9/32"]
    );
    assert_eq!(
        lines("10.0.0.4"),
        ["10.0.0.5/32", "10.0.0.8/32", "10.0.0.9/32"]
    );
}

#[test]
fn titles_are_verbatim_unless_they_break_the_line() {
    let b = body(&["[{addr: local, title: \"a  b\\tc \"}]"], &ctx(), Pg).unwrap();
    assert_eq!(b[0], "# a  b\tc  [default] ");
}
