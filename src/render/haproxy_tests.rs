//! Unit tests of the HAProxy renderers. The expected service texts are what Pigsty v4.5.0's
//! `service.cfg` renders under Jinja with `trim_blocks` (checked by hand with ansible's Python
//! for the same members), the first line aside (`# Ansible managed` there, the marker here).

use super::*;
use crate::inventory::{load, InventoryFiles};

fn inv(cluster_vars: &str) -> Inventory {
    let text = format!(
        "all:\n  children:\n    pg-t:\n      hosts:\n        10.0.0.1: {{ pg_seq: 1, pg_role: primary }}\n        10.0.0.2: {{ pg_seq: 2, pg_role: replica, pg_weight: 50 }}\n        10.0.0.3: {{ pg_seq: 3, pg_role: offline }}\n      vars:\n        pg_cluster: pg-t\n{cluster_vars}"
    );
    load(&InventoryFiles::single("pigsty.yml", &text), "t").expect("parses")
}

fn files(i: &Inventory, on: &str) -> Result<Vec<ServiceFile>, HaproxyError> {
    service_files(i, &i.model.pgsql["pg-t"], on, on)
}

fn file<'a>(f: &'a [ServiceFile], name: &str) -> &'a str {
    &f.iter().find(|f| f.name == name).unwrap().text
}

const NORM: &str = "inter 2s fastinter 1s downinter 2s rise 3 fall 3 on-marked-down shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100";

fn head(svc: &str, port: u16, check: &str, inst: &str, bk: &str) -> String {
    format!("# written by pgitops: service pg-t-{svc} (Pigsty's service.cfg)\n#---------------------------------------------------------------------\n# service: pg-t-{svc} @ 10.0.0.1:{port}\n#---------------------------------------------------------------------\n# service instances {inst}\n# service backups   {bk}\nlisten pg-t-{svc}\n    bind *:{port}\n    mode tcp\n    maxconn 5000\n    balance roundrobin\n    option httpchk\n    option http-keep-alive\n    http-check send meth OPTIONS uri {check}\n    http-check expect status 200\n    default-server {NORM}\n\n    # servers\n")
}

#[test]
fn default_services_render_like_pigstys_template() {
    let i = inv("");
    let f = files(&i, "10.0.0.1").unwrap();
    let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pg-t-primary.cfg",
            "pg-t-replica.cfg",
            "pg-t-default.cfg",
            "pg-t-offline.cfg"
        ]
    );
    let replica = head("replica", 5434, "/read-only", "10.0.0.1, 10.0.0.2, 10.0.0.3", "10.0.0.1, 10.0.0.3")
        + "    server pg-t-1 10.0.0.1:6432 check port 8008 weight 100 backup\n    server pg-t-2 10.0.0.2:6432 check port 8008 weight 50 \n    server pg-t-3 10.0.0.3:6432 check port 8008 weight 100 backup\n\n\n";
    assert_eq!(file(&f, "pg-t-replica.cfg"), replica);
    let offline = head("offline", 5438, "/replica", "10.0.0.3", "10.0.0.2")
        + "    server pg-t-3 10.0.0.3:5432 check port 8008 weight 100 \n    server pg-t-2 10.0.0.2:5432 check port 8008 weight 50 backup\n\n";
    assert_eq!(file(&f, "pg-t-offline.cfg"), offline);
    // primary: dest default = pg_default_service_dest (pgbouncer); default: postgres
    assert!(file(&f, "pg-t-primary.cfg")
        .contains("    server pg-t-1 10.0.0.1:6432 check port 8008 weight 100 \n"));
    assert!(file(&f, "pg-t-default.cfg")
        .contains("    server pg-t-2 10.0.0.2:5432 check port 8008 weight 50 \n"));
}

#[test]
fn selectors_dest_ports_rto_and_bind() {
    let i = inv(concat!(
        "        pg_rto: fast\n        pg_default_service_dest: postgres\n        pg_port: 5444\n        patroni_port: 8018\n",
        "        pgitops_bind_node_ip: true\n",
        "        pg_default_services: []\n",
        "        pg_services:\n",
        "          - { name: standby, port: 5435, dest: 6000, check: /replica, selector: \"[? pg_role == `replica` ]\", maxconn: 100, balance: leastconn }\n",
        "          - { name: pri, port: 5439, ip: 127.0.0.9, selector: \"[? pg_seq < `2` ]\", options: 'inter 1s rise 1 fall 1' }\n",
    ));
    let f = files(&i, "10.0.0.2").unwrap();
    let standby = file(&f, "pg-t-standby.cfg");
    assert!(
        standby.contains(
            "    bind 10.0.0.2:5435\n    mode tcp\n    maxconn 100\n    balance leastconn\n"
        ),
        "{standby}"
    );
    assert!(
        standby.contains("default-server inter 1s fastinter 500ms downinter 1s rise 3 fall 3 "),
        "{standby}"
    );
    assert!(
        standby
            .ends_with("# servers\n    server pg-t-2 10.0.0.2:6000 check port 8018 weight 50 \n"),
        "{standby}"
    );
    let pri = file(&f, "pg-t-pri.cfg");
    assert!(
        pri.contains("    bind 127.0.0.9:5439\n"),
        "an own `ip` wins: {pri}"
    );
    assert!(pri.contains("    http-check send meth OPTIONS uri /\n"));
    assert!(pri.contains("    default-server inter 1s rise 1 fall 1\n"));
    assert!(
        pri.ends_with("    server pg-t-1 10.0.0.1:5444 check port 8018 weight 100 \n"),
        "{pri}"
    );
    // an unknown rto mode falls back to norm
    let i = inv("        pg_rto: nonsense\n");
    assert!(file(&files(&i, "10.0.0.1").unwrap(), "pg-t-primary.cfg").contains(NORM));
    // a later entry of the same name overwrites the file, as Pigsty's loop does
    let i = inv("        pg_services: [ { name: primary, port: 6543, selector: '[]' } ]\n");
    let f = files(&i, "10.0.0.1").unwrap();
    assert_eq!(f.len(), 4);
    assert!(file(&f, "pg-t-primary.cfg").contains("bind *:6543"));
}

#[test]
fn hostile_service_values_are_refused() {
    let cases = [
        ("{ name: 'a b', port: 1, selector: '[]' }", "name"),
        ("{ name: s, port: 70000, selector: '[]' }", "port"),
        (
            "{ name: s, port: 1, selector: '[]', check: \"/x\\n    bind *:22\" }",
            "check",
        ),
        (
            "{ name: s, port: 1, selector: '[]', options: \"inter 1s\\nlisten x\" }",
            "options",
        ),
        (
            "{ name: s, port: 1, selector: '[]', options: 'inter 1s # x' }",
            "options",
        ),
        (
            "{ name: s, port: 1, selector: '[? pg_role == ' }",
            "selector",
        ),
        ("{ name: s, port: 1 }", "selector"),
        (
            "{ name: s, port: 1, selector: '[]', ip: '1.2.3.4 ssl' }",
            "ip",
        ),
        (
            "{ name: s, port: 1, selector: '[]', maxconn: '10 20' }",
            "maxconn",
        ),
        ("{ name: s, port: 1, selector: '[]', dest: 'x y' }", "dest"),
        (
            "{ name: s, port: 1, selector: '[]', balance: \"$(id)\" }",
            "balance",
        ),
    ];
    for (svc, field) in cases {
        let i = inv(&format!("        pg_services: [ {svc} ]\n"));
        let e = files(&i, "10.0.0.1").unwrap_err();
        assert!(
            matches!(&e, HaproxyError::Service { field: f, .. } if f == field),
            "{svc}: {e}"
        );
    }
    let i = inv("        pg_rto_plan: { norm: [1, 2, 3, 4, 5, '1s\\nx', 1s, 1s, 3, 3] }\n");
    assert!(files(&i, "10.0.0.1").is_err());
    let i = inv("        pg_weight: '1 backup'\n");
    assert!(files(&i, "10.0.0.1").is_err());
}

#[test]
fn haproxy_cfg_has_marker_socket_and_derived_maxconn() {
    let i = inv("        haproxy_admin_password: S3cret.pw\n        pgitops_bind_node_ip: true\n");
    let g = global_for(&i, "10.0.0.1", 20000).unwrap();
    assert_eq!(g.maxconn, 9500);
    assert!(!format!("{g:?}").contains("S3cret"));
    let text = haproxy_cfg(&g);
    assert!(text.starts_with(MARK));
    assert!(text.contains("    stats socket /run/haproxy/admin.sock mode 600 level admin\n"));
    assert!(text.contains("    maxconn     9500 "));
    assert!(text.contains("    bind 10.0.0.1:9101\n"));
    assert!(text.contains("    user admin  insecure-password S3cret.pw\n"));
    assert!(text.contains("    timeout client     24h\n"));
    let g = global_for(&inv(""), "10.0.0.1", 1 << 30).unwrap();
    assert_eq!(g.maxconn, 65535);
    assert!(haproxy_cfg(&g).contains("    bind *:9101\n"));
    assert_eq!(maxconn_for(500), 100);
}

#[test]
fn hostile_globals_are_refused_and_the_password_never_shown() {
    let i = inv("        haproxy_admin_password: \"pw with\\n  user evil insecure-password x\"\n");
    let e = global_for(&i, "10.0.0.1", 20000).unwrap_err().to_string();
    assert!(
        e.contains("haproxy_admin_password") && !e.contains("evil") && !e.contains("pw with"),
        "{e}"
    );
    let i = inv("        haproxy_admin_password: 'a#b'\n");
    assert!(global_for(&i, "10.0.0.1", 20000).is_err());
    let i = inv("        haproxy_client_timeout: \"24h\\n    stats enable\"\n");
    let e = global_for(&i, "10.0.0.1", 20000).unwrap_err().to_string();
    assert!(e.contains("haproxy_client_timeout"), "{e}");
    let i = inv("        haproxy_admin_username: 'a b'\n");
    assert!(global_for(&i, "10.0.0.1", 20000).is_err());
}

#[test]
fn flags_default_like_pigsty() {
    let i = inv("");
    assert!(enabled(&i, "10.0.0.1"));
    assert!(!binds_node_ip(&i, "10.0.0.1"));
    let i = inv("        haproxy_enabled: false\n");
    assert!(!enabled(&i, "10.0.0.1"));
}

#[test]
fn backtick_literals_that_are_not_json_are_strings_as_in_python_jmespath() {
    assert_eq!(
        elide_quotes("[? pg_role == `primary` ]"),
        "[? pg_role == `\"primary\"` ]"
    );
    assert_eq!(
        elide_quotes("[? pg_seq < `2` && x == `\"y\"`]"),
        "[? pg_seq < `2` && x == `\"y\"`]"
    );
    assert_eq!(elide_quotes("[]"), "[]");
}

#[test]
fn fractional_times_are_written_as_haproxy_2_6_reads_them() {
    assert_eq!(haproxy_time("0.5s"), "500ms");
    assert_eq!(haproxy_time("1.5s"), "1500ms");
    assert_eq!(haproxy_time("2s"), "2s");
    assert_eq!(haproxy_time("0.25ms"), "250us");
}
