//! The configuration's defaults and the located errors of bad values.

use super::*;

#[test]
fn defaults_and_checks() {
    let c = parse("[repository]\nremote = '/srv/git/p.git'\n").unwrap();
    assert_eq!(
        (
            c.repository.branch.as_str(),
            c.repository.poll_seconds,
            c.executor.concurrency
        ),
        ("main", 15, 8)
    );
    assert!(
        parse("[repository]\nremote = 'x'\n[executor]\nkind = 'pigsty'\n")
            .unwrap_err()
            .contains("pigsty_home")
    );
    assert!(
        parse("[repository]\nremote = 'x'\n[executor]\nkind = 'auto'\n")
            .unwrap_err()
            .contains("pigsty_home")
    );
    let auto = "[repository]\nremote = 'x'\n[executor]\nkind = 'auto'\npigsty_home = '/p'\n";
    assert_eq!(parse(auto).unwrap().executor.kind, ExecutorKind::Auto);
    assert!(
        parse("[repository]\nremote = 'x'\n[executor]\nkind = 'salt'\n")
            .unwrap_err()
            .contains("unknown variant `salt`, expected one of `native`, `pigsty`, `auto`")
    );
    for (table, bad) in [("executor", "become = 'doas'"), ("log", "format = 'xml'")] {
        let e = parse(&format!("[repository]\nremote = 'x'\n[{table}]\n{bad}\n")).unwrap_err();
        assert!(e.contains("unknown variant"), "{e}");
    }
    assert!(parse(
        "[repository]\nremote = 'x'\n[[reporter]]\nkind = 'bitbucket'\nurl = 'u'\nrepo = 'a/b'\ntoken_env = 'T'\n"
    )
    .unwrap_err()
    .contains("unknown variant `bitbucket`"));
    assert!(parse("[repository]\nremote = 'x'\nbogus = 1\n")
        .unwrap_err()
        .contains("unknown field"));
    assert!(
        parse("[repository]\nremote = 'x'\n[schedule]\ntimezone = 'Mars/Olympus'\n")
            .unwrap_err()
            .contains("time zone")
    );
    assert!(parse("[repository]\nremote = 'x'\n[[schedule.window]]\nclass = 'destructive'\nstart = 'nope'\nminutes = 5\n").is_err());
    assert!(parse(
        "[repository]\nremote = 'x'\n[[reporter]]\nkind = 'github'\nurl = 'u'\nrepo = 'a/b'\n"
    )
    .unwrap_err()
    .contains("token"));
    let ok = "[repository]\nremote = 'x'\n[schedule]\ntimezone = 'Europe/Berlin'\nresync = '0 */30 * * * *'\n[[schedule.window]]\nclass = 'destructive'\nstart = '0 0 2 * * Sun'\nminutes = 120\n";
    let c = parse(ok).unwrap();
    assert_eq!(c.schedule.windows.len(), 1);
    assert_eq!(
        (c.executor.kind, c.executor.become_method, c.log.format),
        (ExecutorKind::Native, Become::Runuser, LogFormat::Text)
    );
    let c = parse("[repository]\nremote = 'x'\n[executor]\nbecome = 'sudo'\n[log]\nformat = 'json'\n[[reporter]]\nkind = 'forgejo'\nurl = 'https://f.example/api/v1/'\nrepo = 'a/b'\ntoken_env = 'T'\n").unwrap();
    assert_eq!(
        (c.executor.become_method, c.log.format),
        (Become::Sudo, LogFormat::Json)
    );
    assert_eq!(c.reporters[0].settings().kind, ForgeKind::Gitea);
    assert!(parse("[repository]\nremote = 'x'\n[[schedule.window]]\nclass = 'reload'\nstart = '0 0 2 * * Sun'\nminutes = 0\n").unwrap_err().contains("minutes"));
    let h = parse("[repository]\nremote = 'x'\n").unwrap().http;
    assert_eq!(
        (
            h.max_connections,
            h.header_timeout_seconds,
            h.max_body_bytes,
            h.hook_deliveries
        ),
        (64, 10, 1 << 20, 1024)
    );
    assert!(
        parse("[repository]\nremote = 'x'\n[http]\nmax_connections = 0\n")
            .unwrap_err()
            .contains("`http.max_connections` must be at least 1")
    );
}

#[test]
fn the_shipped_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/pgitops.toml");
    let c = Config::load(&path).unwrap();
    assert_eq!(c.schedule.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(c.executor.become_method, Become::Sudo);
    assert!(c.schedule.leaders.is_some());
}
