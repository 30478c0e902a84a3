//! The statement list a script is built in, with the two psql conditionals every script uses.
//!
//! In: SQL text already built from quoted values (see `quote`). Out: a [`Script`]. The `\if`
//! variable names callers pass and the DO block emitted here are constants, never inventory text.

use super::{Script, Statement};

#[derive(Default)]
pub(super) struct Out(Vec<Statement>);

impl Out {
    pub(super) fn push(&mut self, sql: impl Into<String>, secret: bool) {
        let sql = sql.into();
        self.0.push(Statement { sql, secret });
    }
    pub(super) fn sql(&mut self, sql: impl Into<String>) {
        self.push(sql, false);
    }

    /// `SELECT <cond> AS <var> \gset`, then `body` inside `\if :<var>` ... `\endif`.
    pub(super) fn when(&mut self, var: &str, cond: &str, body: impl FnOnce(&mut Self)) {
        self.sql(format!("SELECT {cond} AS {var} \\gset"));
        self.sql(format!("\\if :{var}"));
        body(self);
        self.sql("\\endif");
    }

    /// Raise `message` (a SQL text expression) when `failed` (a SQL boolean) holds over `from`.
    pub(super) fn fail_if(&mut self, failed: &str, message: &str, from: &str) {
        let set = format!("pg_catalog.set_config('pgitops.error', COALESCE({message}, ''), false)");
        self.sql(format!(
            "SELECT {failed} AS pgitops_fail,\n  {set} AS pgitops_error{from} \\gset"
        ));
        self.sql("\\if :pgitops_fail");
        self.sql(
            "DO $pgitops$BEGIN RAISE EXCEPTION USING MESSAGE = \
             pg_catalog.current_setting('pgitops.error'); END$pgitops$;",
        );
        self.sql("\\endif");
    }

    /// The script, run as one transaction.
    pub(super) fn done(self) -> Script {
        let statements = self.0;
        Script {
            statements,
            transaction: true,
        }
    }

    /// The script, each statement on its own: for those PostgreSQL refuses inside a transaction
    /// block (`CREATE`/`DROP DATABASE`, `ALTER DATABASE ... SET TABLESPACE`, `ALTER SYSTEM`).
    pub(super) fn done_outside_transaction(self) -> Script {
        let statements = self.0;
        Script {
            statements,
            transaction: false,
        }
    }
}

/// `""` or ` WITH <opts joined by sep>`.
pub(super) fn with(opts: &[String], sep: &str) -> String {
    match opts.is_empty() {
        true => String::new(),
        false => format!(" WITH {}", opts.join(sep)),
    }
}
