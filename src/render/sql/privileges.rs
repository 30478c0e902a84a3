//! `pg_default_privileges` as SQL: `ALTER DEFAULT PRIVILEGES FOR ROLE <owner> ...`, one
//! statement per typed entry, every name quoted here (Pigsty splices the entry text instead).
//!
//! In: the owner (already quoted) and the typed entries of [`crate::inventory::default_privilege`].
//! Out: statements for the database's provisioning script.

use super::quote::ident;
use super::Result;
use crate::inventory::default_privilege::{DefaultPrivilege, Grantee, Verb};

/// `ALTER DEFAULT PRIVILEGES FOR ROLE <owner> [IN SCHEMA ...] GRANT|REVOKE ... ;`
pub(super) fn alter_default(owner: &str, p: &DefaultPrivilege) -> Result<String> {
    let field = "pg_default_privileges";
    let mut sql = format!("ALTER DEFAULT PRIVILEGES FOR ROLE {owner}");
    if !p.schemas.is_empty() {
        let schemas: Vec<String> = p
            .schemas
            .iter()
            .map(|s| ident(field, s))
            .collect::<Result<_>>()?;
        sql += &format!(" IN SCHEMA {}", schemas.join(", "));
    }
    let privileges = match p.privileges.is_empty() {
        true => "ALL PRIVILEGES".to_string(),
        false => p.privileges.join(", "),
    };
    let grantees: Vec<String> = p
        .grantees
        .iter()
        .map(|g| match g {
            Grantee::Public => Ok("PUBLIC".to_string()),
            Grantee::Role(r) => ident(field, r),
        })
        .collect::<Result<_>>()?;
    let (object, grantees) = (p.object.keyword(), grantees.join(", "));
    sql += &match p.verb {
        Verb::Grant { with_grant_option } => format!(
            " GRANT {privileges} ON {object} TO {grantees}{};",
            if with_grant_option {
                " WITH GRANT OPTION"
            } else {
                ""
            }
        ),
        Verb::Revoke {
            grant_option_for,
            cascade,
        } => format!(
            " REVOKE {}{privileges} ON {object} FROM {grantees}{};",
            if grant_option_for {
                "GRANT OPTION FOR "
            } else {
                ""
            },
            if cascade { " CASCADE" } else { "" }
        ),
    };
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::default_privilege::parse;

    #[test]
    fn entries_render_with_quoted_names() {
        let r = |s: &str| alter_default("\"dbo\"", &parse(s).unwrap()).unwrap();
        assert_eq!(
            r("GRANT USAGE ON SCHEMAS TO dbrole_readonly"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"dbo\" GRANT USAGE ON SCHEMAS TO \"dbrole_readonly\";"
        );
        assert_eq!(
            r("in schema App grant all on tables to \"X y\", public with grant option"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"dbo\" IN SCHEMA \"app\" GRANT ALL PRIVILEGES ON TABLES TO \"X y\", PUBLIC WITH GRANT OPTION;"
        );
        assert_eq!(
            r("REVOKE GRANT OPTION FOR EXECUTE ON FUNCTIONS FROM x CASCADE"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"dbo\" REVOKE GRANT OPTION FOR EXECUTE ON FUNCTIONS FROM \"x\" CASCADE;"
        );
    }
}
