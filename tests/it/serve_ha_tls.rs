//! `[ha]` against an etcd set up as Pigsty sets up its own: clients over TLS only, client
//! certificates required, authentication on (a real Debian etcd on 127.0.82.1, certificates made
//! with `openssl`; a PostgreSQL node with sshd on 127.0.82.11).
//!
//! Instance `a` (the CA, its client certificate, user `root` and the password from the
//! environment) leads and applies a commit. Instance `b` with a wrong password, then with a CA
//! that did not sign etcd's certificate, refuses to start and says why, the password nowhere in
//! its log; the leader key still names `a`.

use std::time::Duration;

use crate::support::etcd::Etcd;
use crate::support::fleet::{has_role, push, Fleet};
use crate::support::ha_service::{appliers, HaPair};

const ETCD: [&str; 1] = ["127.0.82.1"];
const NODE: &str = "127.0.82.11";
const ROOT_PASSWORD: &str = "Etcd.Root.Pass-82";

#[test]
fn a_service_leads_through_an_etcd_with_tls_client_certificates_and_authentication() {
    let etcd = Etcd::start_secured(&ETCD, ROOT_PASSWORD);
    let f = Fleet::new(&[NODE]);
    let mut v = f.inventory();
    push(
        &mut v,
        "pg_users",
        "{ name: dbuser_tls, password: Tls.Pass.1 }",
    );
    let commit = f.commit(&v, "a user, through an etcd with TLS");
    let extra = format!(
        "ca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\nuser = \"root\"\npassword_env = \"PGITOPS_T_ETCD\"\n",
        etcd.file("ca.crt"),
        etcd.file("client.crt"),
        etcd.file("client.key"),
    );
    let mut ha = HaPair::new_with(
        &f,
        &etcd,
        &["a", "b"],
        (3, 2),
        &extra,
        &[("PGITOPS_T_ETCD", ROOT_PASSWORD)],
    );
    ha.push(&f);
    let long = Duration::from_secs(60);

    ha.start(0);
    ha.instances[0].wait_log("leader (term", 1, long);
    let note = ha.note_with(&commit, "success", long);
    assert_eq!(appliers(&note)[0].0, "a", "{note:#}");
    assert!(has_role(f.primary(), "dbuser_tls"));
    assert_eq!(etcd.get("/pgitops/ha-test/leader").as_deref(), Some("a"));

    // b with a wrong password: refused at start, and says so
    ha.instances[1].env = vec![("PGITOPS_T_ETCD".into(), "Not.The.Password".into())];
    let log = start_and_fail(&mut ha, 1);
    assert!(log.contains("connecting to etcd"), "{log}");
    assert!(
        log.to_lowercase().contains("auth"),
        "an authentication error: {log}"
    );
    assert!(
        !log.contains("Not.The.Password") && !log.contains(ROOT_PASSWORD),
        "{log}"
    );

    // b trusting another authority (its own client certificate as the CA): refused
    ha.instances[1].env = vec![("PGITOPS_T_ETCD".into(), ROOT_PASSWORD.into())];
    let cfg = ha.instances[1].state.path().join("pgitops.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let ca = format!("ca_file = {:?}", etcd.file("ca.crt"));
    assert!(text.contains(&ca));
    let other = format!("ca_file = {:?}", etcd.file("client.crt"));
    std::fs::write(&cfg, text.replace(&ca, &other)).unwrap();
    let log = start_and_fail(&mut ha, 1);
    assert!(log.contains("connecting to etcd"), "{log}");
    assert!(log.contains("certificate"), "a certificate error: {log}");
    assert!(!log.contains(ROOT_PASSWORD), "{log}");

    assert_eq!(etcd.get("/pgitops/ha-test/leader").as_deref(), Some("a"));
    ha.instances[0].stop();
}

/// Starts instance `i`, waits for it to exit with an error (within 30 s); its log.
fn start_and_fail(ha: &mut HaPair, i: usize) -> String {
    let before = ha.instances[i].log().len();
    ha.start(i);
    let mut child = ha.instances[i].child.take().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {}",
            ha.instances[i].log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "{status:?}");
    ha.instances[i].log()[before..].to_string()
}
