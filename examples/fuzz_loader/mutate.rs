//! Structure-aware mutations of an inventory's text: lines, indentation, scalars swapped for
//! other types and injection strings, keys swapped for the fields pgitops reads, anchors,
//! aliases, merge keys and raw bytes.

const MAX_INPUT: usize = 1 << 20;

const VALUES: &[&str] = &[
    "true",
    "yes",
    "no",
    "on",
    "off",
    "0",
    "-1",
    "-5",
    "3000000000",
    "1.5",
    "1e5",
    "0755",
    "''",
    "~",
    "null",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "'x'",
    "\"x\\0y\"",
    "\"a\\nb\"",
    "\"x'; DROP ROLE x; --\"",
    "'$(touch /tmp/pwned)'",
    "'`id`'",
    "\"\\\\\"",
    "'\u{202e}x'",
    "*a",
    "&a x",
    "!!str 5",
    "!unsafe '{{ x }}'",
    "10.0.0.1",
    "10.0.0.0/8",
    "'10.0.0.0/8\nx'",
    "::1",
    "'${dbsu}'",
    "'@file'",
    "primary",
    "replica",
    "'2030-02-30'",
    "'2030-12-31'",
    "session",
    "icu",
    "/pg/data",
    "relative",
    "'a;b'",
    "postgres",
    "dbuser_dba",
    "[{name: x}]",
    "[{name: x, state: absent}]",
    "{work_mem: 1MB}",
    "{\"a'b\": 1}",
];

const KEYS: &[&str] = &[
    "name",
    "password",
    "login",
    "superuser",
    "createdb",
    "createrole",
    "inherit",
    "replication",
    "bypassrls",
    "connlimit",
    "expire_in",
    "expire_at",
    "roles",
    "parameters",
    "pgbouncer",
    "pool_mode",
    "pool_connlimit",
    "comment",
    "owner",
    "template",
    "encoding",
    "locale",
    "lc_collate",
    "lc_ctype",
    "tablespace",
    "allowconn",
    "revokeconn",
    "register_datasource",
    "schemas",
    "extensions",
    "schema",
    "version",
    "state",
    "pool_size",
    "locale_provider",
    "strategy",
    "baseline",
    "user",
    "db",
    "addr",
    "auth",
    "title",
    "order",
    "rules",
    "role",
    "port",
    "selector",
    "dest",
    "pg_cluster",
    "pg_seq",
    "pg_role",
    "pg_users",
    "pg_databases",
    "pg_services",
    "pg_hba_rules",
    "pgb_hba_rules",
    "pg_default_hba_rules",
    "pg_parameters",
    "pg_dbsu",
    "pg_bin_dir",
    "pg_data",
    "pg_port",
    "pg_version",
    "pg_pwd_enc",
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "node_firewall_intranet",
    "admin_ip",
    "hosts",
    "vars",
    "children",
    "all",
    "<<",
    "redis_instances",
    "redis_cluster",
    "redis_node",
    "etcd_seq",
    "minio_cluster",
    "infra_seq",
    "pg_offline_query",
    "pg_admin_username",
];

pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One structure-aware mutation of `input` (`other`: another input to splice from).
pub fn mutate(rng: &mut Rng, input: &str, other: &str) -> String {
    let mut lines: Vec<String> = input.lines().map(str::to_string).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let others: Vec<&str> = other.lines().collect();
    let i = rng.below(lines.len());
    match rng.below(16) {
        0 => {
            lines.remove(i);
        }
        1 => lines.insert(i, lines[i].clone()),
        2 => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
        3 => lines[i] = format!("  {}", lines[i]),
        4 => lines[i] = lines[i].strip_prefix("  ").unwrap_or(&lines[i]).to_string(),
        5 if !others.is_empty() => lines.insert(i, rng.pick(&others).to_string()),
        6..=8 => {
            // A scalar after `key:` (block) or inside a flow mapping swapped for another value.
            let l = &lines[i];
            let cuts: Vec<usize> = l.match_indices(": ").map(|(p, _)| p + 2).collect();
            if let Some(&at) = cuts.get(rng.below(cuts.len())) {
                let end = l[at..].find([',', '}', ']']).map_or(l.len(), |e| at + e);
                lines[i] = format!("{}{}{}", &l[..at], rng.pick(VALUES), &l[end..]);
            }
        }
        9 => {
            let l = &lines[i];
            if let Some(p) = l.find(':') {
                let start = l[..p].rfind([' ', '{', ',']).map_or(0, |s| s + 1);
                lines[i] = format!("{}{}{}", &l[..start], rng.pick(KEYS), &l[p..]);
            }
        }
        10 => {
            let indent = lines[i].len() - lines[i].trim_start().len();
            let line = format!(
                "{}{}: {}",
                " ".repeat(indent),
                rng.pick(KEYS),
                rng.pick(VALUES)
            );
            lines.insert(i, line);
        }
        11 => {
            let l = &lines[i];
            let at = rng.below(l.len() + 1);
            let at = (0..=at).rev().find(|p| l.is_char_boundary(*p)).unwrap_or(0);
            let junk = rng.pick(&[
                "&a ", "*a", "<<: *a", "\u{feff}", "\t", "[", "]", "{", "}", "'", "\"", ": ", "- ",
                "#", "?", "!", "%", "|", ">", "\\", "\0", "---\n",
            ]);
            lines[i] = format!("{}{}{}", &l[..at], junk, &l[at..]);
        }
        12 => lines.truncate(i.max(1)),
        13 if !others.is_empty() => {
            let j = rng.below(others.len());
            let n = 1 + rng.below(20);
            let chunk: Vec<String> = others[j..(j + n).min(others.len())]
                .iter()
                .map(|s| s.to_string())
                .collect();
            lines.splice(i..i, chunk);
        }
        14 => {
            // An anchor on one mapping value and an alias or merge elsewhere.
            let j = rng.below(lines.len());
            if let Some(p) = lines[i].find(": {") {
                lines[i].insert_str(p + 2, "&m ");
                let indent = lines[j].len() - lines[j].trim_start().len();
                let use_ = if rng.below(2) == 0 { "<<: *m" } else { "k: *m" };
                lines.insert(
                    j.max(i + 1).min(lines.len()),
                    format!("{}{}", " ".repeat(indent), use_),
                );
            }
        }
        _ => {
            // A repeated block: many entries, deep nesting or a long scalar.
            let n = 1 + rng.below(200);
            let what = rng.below(3);
            let indent = " ".repeat(lines[i].len() - lines[i].trim_start().len());
            let block = match what {
                0 => format!("{indent}- {{ name: u{n}, password: p, connlimit: {n} }}"),
                1 => format!("{indent}deep: {}1{}", "[".repeat(n), "]".repeat(n)),
                _ => format!("{indent}long: {}", "x".repeat(n * 1000)),
            };
            lines.insert(i, block);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.truncate(
        (0..=MAX_INPUT.min(out.len()))
            .rev()
            .find(|p| out.is_char_boundary(*p))
            .unwrap_or(0),
    );
    out
}
