//! Patroni's service, with the semantics of Pigsty's `roles/pgsql/templates/patroni.svc`:
//! `/usr/bin/patroni /etc/patroni/patroni.yml` as the dbsu in its home; stop signals to Patroni
//! only (it stops PostgreSQL itself), reload by SIGHUP, `/run/postgresql` as its runtime
//! directory, 30 s to start and 120 s to stop, 8M files, never OOM-killed, `Restart=no`.
//!
//! In: the dbsu, its home and the config link. Out: a [`ServiceSpec`]. Pure.

use crate::render::service::{Restart, ServiceSpec};

pub fn service(dbsu: &str, home: &str, link: &str) -> ServiceSpec {
    ServiceSpec {
        name: "patroni".into(),
        description: "Runners to orchestrate a high-availability PostgreSQL".into(),
        user: dbsu.into(),
        group: "postgres".into(),
        workdir: home.into(),
        argv: vec!["/usr/bin/patroni".into(), link.into()],
        nofile: 8_388_608,
        restart: Restart::No,
        notify: false,
        oom_score_adjust: Some(-1000),
        kill_main_only: true,
        reload_hup: true,
        runtime_dir: Some("postgresql".into()),
        timeouts: (30, 120),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::service::systemd_unit;

    /// The directives of Pigsty's `patroni.svc` (pg_dbsu postgres, pg_dbsu_home /var/lib/pgsql,
    /// no watchdog) that decide how the service behaves, each found in the unit pgitops writes.
    /// (`Group=postgres` is left out when it is the user's name: the user's own group.)
    #[test]
    fn systemd_unit_carries_pigsty_patroni_semantics() {
        let unit = systemd_unit(&service(
            "postgres",
            "/var/lib/pgsql",
            "/etc/patroni/patroni.yml",
        ))
        .unwrap();
        for line in [
            "Type=simple",
            "User=postgres",
            "RuntimeDirectory=postgresql",
            "RuntimeDirectoryMode=0755",
            "RuntimeDirectoryPreserve=yes",
            "WorkingDirectory=/var/lib/pgsql",
            "ExecStart=/usr/bin/patroni /etc/patroni/patroni.yml",
            "ExecReload=/bin/kill -s HUP $MAINPID",
            "KillMode=process",
            "TimeoutStartSec=30",
            "Restart=no",
            "TimeoutStopSec=120",
            "LimitNOFILE=8388608",
            "OOMScoreAdjust=-1000",
            "WantedBy=multi-user.target",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} in:\n{unit}");
        }
    }
}
