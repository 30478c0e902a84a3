//! Shell words: the one place that quotes inventory values for a command line.
//!
//! In: argv words (playbook names, Ansible limits, `-e key=value` pairs built from inventory
//! names). Out: a POSIX shell command line in which every word stays one word and nothing is
//! expanded: words of safe characters as they are, anything else in single quotes.

/// Quotes one word for a POSIX shell.
pub fn word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,@%+".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A command line from argv, each word quoted as needed.
pub fn line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|w| word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(word("pg-test"), "pg-test");
        assert_eq!(word("username=dbuser_app"), "username=dbuser_app");
        assert_eq!(word("127.0.10.14,&pg-test"), "'127.0.10.14,&pg-test'");
        assert_eq!(word("pg-test,!127.0.10.14"), "'pg-test,!127.0.10.14'");
        assert_eq!(
            word("dbname=x'; $(touch /tmp/pwned)"),
            r"'dbname=x'\''; $(touch /tmp/pwned)'"
        );
        assert_eq!(word(""), "''");
        assert_eq!(word("a\nb"), "'a\nb'");
        assert_eq!(
            line(&["./pgsql.yml", "-l", "pg meta"]),
            "./pgsql.yml -l 'pg meta'"
        );
    }
}
