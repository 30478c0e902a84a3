//! Where PostgreSQL lives on a host, from the inventory: the one place its defaults live.
//!
//! In: a host's effective variables (`pg_dbsu`, `pg_bin_dir`, `pg_port`, `pg_data`) and the
//! [`Overrides`] from `pgitops.toml` or the CLI. Out: [`PgSettings`]. An override wins over the
//! inventory, the inventory over Pigsty's defaults (`postgres`, `/usr/pgsql/bin`, 5432,
//! `/pg/data`; the socket directory is `/var/run/postgresql` in Pigsty's Patroni template).

use crate::inventory::model::{port_var, str_var};
use crate::inventory::Inventory;

pub const DEFAULT_DBSU: &str = "postgres";
pub const DEFAULT_BIN_DIR: &str = "/usr/pgsql/bin";
pub const DEFAULT_PORT: u16 = 5432;
pub const DEFAULT_DATA: &str = "/pg/data";
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Settings given to pgitops itself; each one, when set, replaces the inventory's for every host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub dbsu: Option<String>,
    pub bin_dir: Option<String>,
    pub socket_dir: Option<String>,
}

/// How to reach PostgreSQL on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    pub dbsu: String,
    pub bin_dir: String,
    pub port: u16,
    pub data: String,
    pub socket_dir: String,
}

impl PgSettings {
    /// The settings of `host` in `inv` (its effective variables), with `o` applied on top.
    pub fn of(inv: &Inventory, host: &str, o: &Overrides) -> PgSettings {
        let vars = inv.tree.hosts.get(host).map(|h| &h.vars);
        let s = |k: &str, d: &str| vars.and_then(|v| str_var(v, k)).unwrap_or(d).to_string();
        // Validation refuses a port that does not read as one.
        let port = vars
            .and_then(|v| port_var(v, "pg_port").ok().flatten())
            .unwrap_or(DEFAULT_PORT);
        PgSettings {
            dbsu: o.dbsu.clone().unwrap_or_else(|| s("pg_dbsu", DEFAULT_DBSU)),
            bin_dir: o
                .bin_dir
                .clone()
                .unwrap_or_else(|| s("pg_bin_dir", DEFAULT_BIN_DIR)),
            port,
            data: s("pg_data", DEFAULT_DATA),
            socket_dir: o
                .socket_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_SOCKET_DIR.into()),
        }
    }
}
