//! The service's HTTP listener under hostile clients, against a real `pgitops serve`: idle and
//! half-sent connections beyond the connection cap, slow heads and bodies, bodies over the limit
//! and replayed signed hooks. Asserts what a user sees: `/healthz` answers, a push is applied,
//! the service holds no more connections than its cap, the status codes, and `/metrics`.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};

use crate::support::fleet::{push, Fleet};
use crate::support::service::Service;

const HOOK: &str = "hook_secret_env = \"PGITOPS_T_HOOK\"\n";

/// The connections on `port` that process `pid` holds open (listening socket excluded), from
/// `/proc/<pid>/fd` and `/proc/net/tcp`.
fn served_connections(pid: u32, port: u16) -> usize {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    tcp.lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f[1].rsplit(':').next().unwrap();
            u16::from_str_radix(local_port, 16).unwrap() == port
                && f[3] != "0A"
                && inodes.contains(f[9])
        })
        .count()
}

/// Whether the server has closed `s` (or sent anything on it).
fn closed_by_server(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let closed = !matches!(s.peek(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    closed
}

/// Keeps `n` idle connections open to `port` (half send nothing, half a partial head), opening a
/// new one whenever the server closes one; bounded in time and count. Returns how many it opened.
fn flood(port: u16, n: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let (mut conns, mut opened) = (Vec::<TcpStream>::new(), 0usize);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && opened < 5000 {
            conns.retain(|c| !closed_by_server(c));
            while conns.len() < n {
                let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
                    break;
                };
                if opened % 2 == 1 {
                    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0");
                }
                conns.push(s);
                opened += 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        opened
    })
}

/// Sends `raw` and reads the reply until the server closes (at most `wait`).
fn exchange(port: u16, raw: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let r = s.read_to_end(&mut out);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if let Err(e) = r {
        text.push_str(&format!("\n<read error: {e}>"));
    }
    text
}

/// The service with a base commit applied; `extra` goes into its `[http]` table.
fn applied_with(
    f: &Fleet,
    extra: &str,
    lower_soft_nofile: bool,
) -> (Service, serde_yaml_ng::Value) {
    use std::os::unix::process::CommandExt;
    let v = f.inventory();
    let base = f.commit(&v, "base");
    let svc = Service::start_prepared(f, extra, &[("PGITOPS_T_HOOK", "hook-secret")], |cmd| {
        if lower_soft_nofile {
            // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    let mut l: libc::rlimit = std::mem::zeroed();
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
                    l.rlim_cur = l.rlim_cur.min(256);
                    libc::setrlimit(libc::RLIMIT_NOFILE, &l);
                    Ok(())
                });
            }
        }
    });
    svc.push(f);
    assert_eq!(svc.final_note(&base)["status"], "success");
    (svc, v)
}

/// The soft and hard open-files limits of process `pid`.
fn nofile_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_string(), f[4].to_string())
}

#[test]
fn idle_connections_beyond_the_cap_neither_hold_the_listener_nor_stop_applies() {
    let f = Fleet::new(&["127.0.91.11"]);
    // timeouts far longer than the test: only the cap's eviction of idle connections can help
    let extra =
        "max_connections = 8\nheader_timeout_seconds = 60\nconnection_timeout_seconds = 120\n";
    let (svc, mut v) = applied_with(&f, extra, true);
    let pid = svc.child.id();
    // the soft open-files limit (lowered to 256 for the test) was raised to the hard limit
    let (soft, hard) = nofile_limits(pid);
    assert_eq!(soft, hard, "soft {soft}, hard {hard}");

    let stop = Arc::new(AtomicBool::new(false));
    let attack = flood(svc.port, 40, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    // About the cap, far below the flood's 40: the cap, the one accepted that waits for a place,
    // and (seen once in ~10 full CI runs, under load: 11) a few more for an instant — not
    // explained yet: the fd table and /proc/net/tcp are two reads, not one snapshot.
    let mut most = 0;
    for _ in 0..10 {
        most = most.max(served_connections(pid, svc.port));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!((1..=12).contains(&most), "{most} connections held (cap 8)");

    // /healthz answers while the flood goes on: it takes the place of the oldest idle one
    let t = Instant::now();
    let health = exchange(
        svc.port,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        Duration::from_secs(20),
    );
    let waited = t.elapsed();
    assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
    assert!(waited < Duration::from_secs(3), "/healthz took {waited:?}");
    eprintln!("/healthz answered in {waited:?} under 40 idle connections (cap 8)");

    // a push is applied while the flood goes on
    push(
        &mut v,
        "pg_users",
        "{ name: flooded, password: 'Flood.Ed1' }",
    );
    let c = f.commit(&v, "add a user under a flood");
    svc.push(&f);
    assert_eq!(svc.final_note(&c)["status"], "success");
    f.primary()
        .login("flooded", "Flood.Ed1", "postgres")
        .expect("the user pushed during the flood exists");
    assert!(served_connections(pid, svc.port) <= 9);

    stop.store(true, Ordering::SeqCst);
    let opened = attack.join().unwrap();
    eprintln!("the flood opened {opened} connections; at most {most} were held at once");
    assert!(
        opened > 40,
        "the service closed idle connections at the cap, so the flood opened more ({opened})"
    );
}

fn signed(body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn hook(port: u16, delivery: &str, body: &str) -> String {
    let head = format!(
        "POST /hook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: {}\r\n{delivery}Content-Length: {}\r\n\r\n",
        signed(body),
        body.len()
    );
    exchange(port, (head + body).as_bytes(), Duration::from_secs(10))
}

fn metric(svc: &Service, name: &str) -> String {
    let m = svc.get("/metrics");
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in {m}"))
        .to_string()
}

#[test]
fn hook_bodies_over_the_limit_get_413_and_replayed_deliveries_trigger_no_fetch() {
    let f = Fleet::new(&["127.0.92.11"]);
    let (svc, _) = applied_with(&f, &format!("{HOOK}max_body_bytes = 1024\n"), false);

    // over the limit by Content-Length: 413 before the body is read
    let r = exchange(
        svc.port,
        b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 2000000\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(r.starts_with("HTTP/1.1 413 Payload Too Large"), "{r}");
    // over the limit as a chunked stream (no Content-Length)
    let chunk = "x".repeat(1000);
    let mut raw = String::from("POST /hook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        raw.push_str(&format!("3e8\r\n{chunk}\r\n"));
    }
    raw.push_str("0\r\n\r\n");
    let r = exchange(svc.port, raw.as_bytes(), Duration::from_secs(10));
    assert!(r.starts_with("HTTP/1.1 413 Payload Too Large"), "{r}");

    // a signed delivery triggers a fetch; the same delivery again is answered, no fetch
    let body = "{\"ref\":\"refs/heads/main\",\"after\":\"1111\"}";
    let first = hook(svc.port, "X-GitHub-Delivery: 72d3162e-1\r\n", body);
    assert!(first.starts_with("HTTP/1.1 202 Accepted"), "{first}");
    assert!(first.ends_with("fetch triggered\n"), "{first}");
    let again = hook(svc.port, "X-GitHub-Delivery: 72d3162e-1\r\n", body);
    assert!(again.starts_with("HTTP/1.1 200 OK"), "{again}");
    assert!(again.contains("duplicate delivery"), "{again}");
    assert_eq!(metric(&svc, "pgitops_hook_triggers_total"), "1");
    assert_eq!(metric(&svc, "pgitops_hook_duplicates_total"), "1");
    // a new delivery (Gitea's header) triggers again; a forged replay is refused, not counted
    let gitea = hook(svc.port, "X-Gitea-Delivery: 9c1e\r\n", body);
    assert!(gitea.starts_with("HTTP/1.1 202 Accepted"), "{gitea}");
    let forged = exchange(
        svc.port,
        format!("POST /hook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nX-GitHub-Delivery: 72d3162e-1\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
        Duration::from_secs(10),
    );
    assert!(forged.starts_with("HTTP/1.1 401"), "{forged}");
    assert_eq!(metric(&svc, "pgitops_hook_triggers_total"), "2");
    assert_eq!(metric(&svc, "pgitops_hook_duplicates_total"), "1");

    // GitLab: the secret in X-Gitlab-Token (no signature); its event UUID is the delivery id
    let gitlab = |token: &str| {
        exchange(
            svc.port,
            format!("POST /hook HTTP/1.1\r\nHost: x\r\nX-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: {token}\r\nX-Gitlab-Event-UUID: 5e0c\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
            Duration::from_secs(10),
        )
    };
    let wrong = gitlab("not-the-secret");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let right = gitlab("hook-secret");
    assert!(right.starts_with("HTTP/1.1 202 Accepted"), "{right}");
    let replayed = gitlab("hook-secret");
    assert!(replayed.contains("duplicate delivery"), "{replayed}");
    assert_eq!(metric(&svc, "pgitops_hook_triggers_total"), "3");
    assert_eq!(metric(&svc, "pgitops_hook_duplicates_total"), "2");
}

#[test]
fn slow_heads_and_bodies_are_cut_off_after_their_timeouts() {
    let f = Fleet::new(&["127.0.80.51"]);
    let extra = format!("{HOOK}header_timeout_seconds = 1\nbody_timeout_seconds = 1\n");
    let svc = Service::start_with(&f, &extra, &[("PGITOPS_T_HOOK", "hook-secret")]);
    for partial in [&b""[..], b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"] {
        let t = Instant::now();
        let r = exchange(svc.port, partial, Duration::from_secs(10));
        let took = t.elapsed();
        assert!(!r.contains("200 OK"), "{r}");
        assert!(
            !r.contains("read error: Resource temporarily"),
            "not closed: {r}"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "closed after {took:?} ({} bytes of head sent)",
            partial.len()
        );
    }
    // a body that stops short: 408 after the body timeout
    let t = Instant::now();
    let r = exchange(
        svc.port,
        b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100\r\n\r\n{\"ref\":",
        Duration::from_secs(10),
    );
    assert!(r.starts_with("HTTP/1.1 408 Request Timeout"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // and the listener still answers
    assert!(svc.get("/healthz").contains("200 OK"));
}

/// User and system CPU time of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after_name
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis((f[11] + f[12]) * 1000 / ticks)
}

#[test]
fn out_of_file_descriptors_the_listener_backs_off_and_still_answers() {
    let f = Fleet::new(&["127.0.80.61"]);
    let extra = format!("{HOOK}body_timeout_seconds = 60\n");
    let (svc, _) = applied_with(&f, &extra, false);
    let pid = svc.child.id();
    // descriptors run out below the cap (64): something else took them since the start
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    let tight = libc::rlimit {
        rlim_cur: open + 16,
        rlim_max: open + 16,
    };
    // SAFETY: prlimit on our own child with a valid rlimit; no old value is read back.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &tight,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());

    // idle connections: the oldest makes room for /healthz
    let stop = Arc::new(AtomicBool::new(false));
    let attack = flood(svc.port, 100, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let health = exchange(
        svc.port,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        Duration::from_secs(20),
    );
    let waited = t.elapsed();
    assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
    assert!(waited < Duration::from_secs(5), "/healthz took {waited:?}");
    stop.store(true, Ordering::SeqCst);
    attack.join().unwrap();
    let errors = || -> u64 {
        metric(&svc, "pgitops_http_accept_errors_total")
            .parse()
            .unwrap()
    };
    let idle_errors = errors();
    assert!(
        idle_errors > 0,
        "the flood ran the service out of descriptors"
    );

    // requests whose bodies trickle (nothing to make room): accept backs off, no spinning
    let slow: Vec<TcpStream> = (0..40)
        .filter_map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", svc.port)).ok()?;
            s.write_all(b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100\r\n\r\n{")
                .ok()?;
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let cpu = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_time(pid) - cpu;
    // (closing them frees the descriptors, so /metrics answers)
    drop(slow);
    let busy_errors = errors() - idle_errors;
    eprintln!("out of descriptors: /healthz in {waited:?} among idle connections; {used:?} CPU in 3 s and {busy_errors} accept errors among busy ones");
    assert!(busy_errors > 0, "still out of descriptors");
    assert!(
        used < Duration::from_secs(1),
        "the accept loop does not spin: {used:?} CPU in 3 s"
    );
}
