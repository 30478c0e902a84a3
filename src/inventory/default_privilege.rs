//! A `pg_default_privileges` entry in typed form. Pigsty splices each entry as raw SQL after
//! `ALTER DEFAULT PRIVILEGES FOR ROLE <owner>`; pgitops parses it into privileges, an object kind
//! and grantees, refuses what does not parse, and renders it again through the one quoting
//! function (`render::sql`), so no inventory text reaches SQL unquoted.
//!
//! In: one entry, e.g. `GRANT USAGE ON SCHEMAS TO dbrole_readonly`. Out: a [`DefaultPrivilege`]
//! or a message saying what was expected. Pure; lives in `inventory` so validation can use it
//! without depending on `render`.
//!
//! Grammar (PostgreSQL's `abbreviated_grant_or_revoke`, keywords case-insensitive, unquoted names
//! folded to lower case as PostgreSQL folds them):
//! `[IN SCHEMA s [, ...]] GRANT {priv [, ...] | ALL [PRIVILEGES]} ON <kind> TO {[GROUP] role |
//! PUBLIC} [, ...] [WITH GRANT OPTION]`, or `[IN SCHEMA ...] REVOKE [GRANT OPTION FOR] ... ON
//! <kind> FROM ... [CASCADE | RESTRICT]`; `<kind>` is TABLES, SEQUENCES, FUNCTIONS, ROUTINES,
//! TYPES or SCHEMAS. `LARGE OBJECTS` (PostgreSQL 18) is refused.

/// The objects a default privilege applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Tables,
    Sequences,
    Functions,
    Routines,
    Types,
    Schemas,
}

impl ObjectKind {
    /// The SQL keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            ObjectKind::Tables => "TABLES",
            ObjectKind::Sequences => "SEQUENCES",
            ObjectKind::Functions => "FUNCTIONS",
            ObjectKind::Routines => "ROUTINES",
            ObjectKind::Types => "TYPES",
            ObjectKind::Schemas => "SCHEMAS",
        }
    }

    /// The privileges PostgreSQL accepts for this kind.
    pub fn privileges(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Tables => &[
                "SELECT",
                "INSERT",
                "UPDATE",
                "DELETE",
                "TRUNCATE",
                "REFERENCES",
                "TRIGGER",
                "MAINTAIN",
            ],
            ObjectKind::Sequences => &["USAGE", "SELECT", "UPDATE"],
            ObjectKind::Functions | ObjectKind::Routines => &["EXECUTE"],
            ObjectKind::Types => &["USAGE"],
            ObjectKind::Schemas => &["USAGE", "CREATE"],
        }
    }
}

/// Who receives (or loses) the privilege.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    Public,
    /// A role name as PostgreSQL reads it (unquoted names already folded to lower case).
    Role(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Grant {
        with_grant_option: bool,
    },
    Revoke {
        grant_option_for: bool,
        cascade: bool,
    },
}

/// One `pg_default_privileges` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPrivilege {
    pub verb: Verb,
    /// `IN SCHEMA` names; empty: the whole database.
    pub schemas: Vec<String>,
    /// Keywords from [`ObjectKind::privileges`]; empty means `ALL PRIVILEGES`.
    pub privileges: Vec<&'static str>,
    pub object: ObjectKind,
    pub grantees: Vec<Grantee>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Comma,
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
        } else if c == ',' {
            it.next();
            out.push(Tok::Comma);
        } else if c == '"' {
            it.next();
            let mut name = String::new();
            loop {
                match it.next() {
                    Some('"') if it.peek() == Some(&'"') => {
                        it.next();
                        name.push('"');
                    }
                    Some('"') => break,
                    Some('\0') | None => return Err("an unterminated quoted name".into()),
                    Some(c) => name.push(c),
                }
            }
            if name.is_empty() || name.len() > 63 {
                return Err("a quoted name of 1 to 63 bytes".into());
            }
            out.push(Tok::Quoted(name));
        } else if c.is_alphabetic() || c == '_' {
            let mut w = String::new();
            while let Some(&c) = it.peek() {
                if c.is_alphanumeric() || c == '_' || c == '$' {
                    w.push(c);
                    it.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Word(w));
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.at), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn kw(&mut self, kw: &str) -> bool {
        let found = self.peek_kw(kw);
        self.at += usize::from(found);
        found
    }
    fn expect(&mut self, kw: &str) -> Result<(), String> {
        match self.kw(kw) {
            true => Ok(()),
            false => Err(format!("`{kw}` {}", self.here())),
        }
    }
    fn here(&self) -> String {
        match self.toks.get(self.at) {
            None => "at the end".into(),
            Some(Tok::Comma) => "before `,`".into(),
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => format!("before `{w}`"),
        }
    }
    fn comma(&mut self) -> bool {
        let found = self.toks.get(self.at) == Some(&Tok::Comma);
        self.at += usize::from(found);
        found
    }
    /// A name as PostgreSQL reads it: quoted as written, unquoted folded to lower case.
    fn name(&mut self) -> Result<String, String> {
        let name = match self.toks.get(self.at) {
            Some(Tok::Quoted(n)) => n.clone(),
            Some(Tok::Word(w)) if w.len() <= 63 => w.to_ascii_lowercase(),
            _ => return Err(format!("a name {}", self.here())),
        };
        self.at += 1;
        Ok(name)
    }
    fn names(&mut self) -> Result<Vec<String>, String> {
        let mut out = vec![self.name()?];
        while self.comma() {
            out.push(self.name()?);
        }
        Ok(out)
    }
}

/// Parses one entry; the error says what was expected where.
pub fn parse(entry: &str) -> Result<DefaultPrivilege, String> {
    let mut p = Parser {
        toks: tokens(entry)?,
        at: 0,
    };
    let mut schemas = Vec::new();
    if p.kw("IN") {
        p.expect("SCHEMA")?;
        schemas = p.names()?;
    }
    let grant = match () {
        _ if p.kw("GRANT") => true,
        _ if p.kw("REVOKE") => false,
        _ => return Err(format!("`GRANT` or `REVOKE` {}", p.here())),
    };
    let grant_option_for = !grant && p.kw("GRANT");
    if grant_option_for {
        p.expect("OPTION")?;
        p.expect("FOR")?;
    }
    let mut words = Vec::new();
    let all = p.kw("ALL");
    if all {
        p.kw("PRIVILEGES");
    } else {
        loop {
            match p.toks.get(p.at) {
                Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("ON") => words.push(w.clone()),
                _ => return Err(format!("a privilege {}", p.here())),
            }
            p.at += 1;
            if !p.comma() {
                break;
            }
        }
    }
    p.expect("ON")?;
    let object = match () {
        _ if p.kw("TABLES") => ObjectKind::Tables,
        _ if p.kw("SEQUENCES") => ObjectKind::Sequences,
        _ if p.kw("FUNCTIONS") => ObjectKind::Functions,
        _ if p.kw("ROUTINES") => ObjectKind::Routines,
        _ if p.kw("TYPES") => ObjectKind::Types,
        _ if p.kw("SCHEMAS") => ObjectKind::Schemas,
        _ => {
            return Err(format!(
                "TABLES, SEQUENCES, FUNCTIONS, ROUTINES, TYPES or SCHEMAS {}",
                p.here()
            ))
        }
    };
    if object == ObjectKind::Schemas && !schemas.is_empty() {
        return Err("no `IN SCHEMA` with `ON SCHEMAS` (PostgreSQL refuses it)".into());
    }
    let mut privileges: Vec<&'static str> = Vec::new();
    for w in &words {
        let Some(k) = object
            .privileges()
            .iter()
            .find(|k| k.eq_ignore_ascii_case(w))
        else {
            let allowed = object.privileges().join(", ");
            return Err(format!(
                "a privilege on {} ({allowed}), not `{w}`",
                object.keyword()
            ));
        };
        if !privileges.contains(k) {
            privileges.push(k);
        }
    }
    p.expect(if grant { "TO" } else { "FROM" })?;
    let mut grantees = Vec::new();
    loop {
        p.kw("GROUP");
        let public =
            matches!(p.toks.get(p.at), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("PUBLIC"));
        if public {
            p.at += 1;
            grantees.push(Grantee::Public);
        } else {
            grantees.push(Grantee::Role(p.name()?));
        }
        if !p.comma() {
            break;
        }
    }
    let verb = if grant {
        let with_grant_option = p.kw("WITH");
        if with_grant_option {
            p.expect("GRANT")?;
            p.expect("OPTION")?;
        }
        Verb::Grant { with_grant_option }
    } else {
        let cascade = p.kw("CASCADE");
        if !cascade {
            p.kw("RESTRICT");
        }
        Verb::Revoke {
            grant_option_for,
            cascade,
        }
    };
    if p.at != p.toks.len() {
        return Err(format!("the end of the entry {}", p.here()));
    }
    Ok(DefaultPrivilege {
        verb,
        schemas,
        privileges,
        object,
        grantees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pigsty_entries_parse() {
        let d = parse("GRANT USAGE      ON SCHEMAS    TO  dbrole_readonly").unwrap();
        assert_eq!(d.privileges, vec!["USAGE"]);
        assert_eq!(d.object, ObjectKind::Schemas);
        assert_eq!(d.grantees, vec![Grantee::Role("dbrole_readonly".into())]);
        assert_eq!(
            d.verb,
            Verb::Grant {
                with_grant_option: false
            }
        );
        let d = parse(r#"in schema app, "Odd ""x""" grant select,insert on tables to group Ro, public with grant option"#).unwrap();
        assert_eq!(d.schemas, vec!["app".to_string(), "Odd \"x\"".into()]);
        assert_eq!(d.privileges, vec!["SELECT", "INSERT"]);
        assert_eq!(
            d.grantees,
            vec![Grantee::Role("ro".into()), Grantee::Public]
        );
        let d =
            parse("REVOKE GRANT OPTION FOR ALL PRIVILEGES ON FUNCTIONS FROM x CASCADE").unwrap();
        assert!(d.privileges.is_empty());
        assert_eq!(
            d.verb,
            Verb::Revoke {
                grant_option_for: true,
                cascade: true
            }
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "GRANT SELECT ON TABLES TO x; DROP TABLE y",
            "GRANT EXECUTE ON TABLES TO x",
            "GRANT SELECT ON TABLES",
            "GRANT SELECT ON LARGE OBJECTS TO x",
            "IN SCHEMA s GRANT USAGE ON SCHEMAS TO x",
            "GRANT SELECT ON TABLES TO x WITH GRANT",
            "GRANT SELECT ON TABLES TO x -- comment",
            "GRANT SELECT ON TABLES TO \"unterminated",
            "SELECT 1",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
