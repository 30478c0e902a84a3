//! PLAY RECAP parsing: `host : ok=3 changed=1 unreachable=0 failed=0 skipped=0 rescued=0
//! ignored=1` per host. Exit code 0 is not proof of success in Pigsty; these counters (and the
//! catalogs) are.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recap {
    pub host: String,
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

impl Recap {
    pub fn summary(&self) -> String {
        format!(
            "ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
            self.ok,
            self.changed,
            self.unreachable,
            self.failed,
            self.skipped,
            self.rescued,
            self.ignored
        )
    }
}

/// The host lines after the last `PLAY RECAP` header.
pub fn parse(output: &str) -> Vec<Recap> {
    let Some(start) = output.rfind("PLAY RECAP") else {
        return vec![];
    };
    let mut out = Vec::new();
    for line in output[start..].lines().skip(1) {
        let Some((host, counters)) = line.split_once(" : ") else {
            continue;
        };
        let mut r = Recap {
            host: host.trim().to_string(),
            ..Recap::default()
        };
        let mut seen = false;
        for kv in counters.split_whitespace() {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u32>() else { continue };
            seen = true;
            match k {
                "ok" => r.ok = v,
                "changed" => r.changed = v,
                "unreachable" => r.unreachable = v,
                "failed" => r.failed = v,
                "skipped" => r.skipped = v,
                "rescued" => r.rescued = v,
                "ignored" => r.ignored = v,
                _ => {}
            }
        }
        if seen {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recap_lines() {
        let text = "TASK [x] ****\nok: [127.0.10.11]\n\nPLAY RECAP *********\n127.0.10.11                : ok=3    changed=1    unreachable=0    failed=0    skipped=2    rescued=0    ignored=1   \n127.0.10.12                : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0   \n";
        let r = parse(text);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (
                r[0].host.as_str(),
                r[0].ok,
                r[0].changed,
                r[0].ignored,
                r[0].skipped
            ),
            ("127.0.10.11", 3, 1, 1, 2)
        );
        assert_eq!(r[1].unreachable, 1);
        assert!(parse("no recap here").is_empty());
    }
}
