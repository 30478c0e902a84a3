//! `[schedule]` of `pgitops.toml`: the time zone, the resync cron, the leader watch's and drift
//! check's crons and
//! the windows per action class, all parsed when the file is loaded (a bad time zone, cron expression or window class
//! refuses the whole file), so the service never parses them again.
//!
//! In: the TOML table. Out: a [`Schedule`] holding a [`chrono_tz::Tz`] and [`cron::Schedule`]s.

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// When the service reconciles without a push, and when each action class may run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// IANA time zone of the cron expressions (default UTC).
    #[serde(default = "utc", deserialize_with = "time_zone")]
    pub timezone: chrono_tz::Tz,
    /// Full resyncs (cron with seconds).
    #[serde(default, deserialize_with = "optional_cron")]
    pub resync: Option<cron::Schedule>,
    /// When the leader watch asks Patroni who leads each PGSQL cluster (cron with seconds, e.g.
    /// `"*/10 * * * * *"`); off when unset: each tick runs a command over SSH on a member of
    /// every cluster (a login, and a `sudo` line in the node's logs), which a fleet opts into.
    #[serde(default, deserialize_with = "optional_cron")]
    pub leaders: Option<cron::Schedule>,
    /// When the drift check reads each applied PGSQL cluster's live state against its last
    /// applied inventory (cron with seconds); off when unset. It reports, never heals.
    #[serde(default, deserialize_with = "optional_cron")]
    pub drift: Option<cron::Schedule>,
    /// Post each drift check's verdict as a forge status on the cluster's applied commit
    /// (context `pgitops/drift/<cluster>`).
    #[serde(default)]
    pub drift_status: bool,
    #[serde(default, rename = "window")]
    pub windows: Vec<Window>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            timezone: utc(),
            resync: None,
            leaders: None,
            drift: None,
            drift_status: false,
            windows: vec![],
        }
    }
}

/// Actions of `class` run only inside this window (from each `start` for `minutes`); with
/// `deny = true`, never inside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub class: WindowClass,
    /// Cron with seconds, in [`Schedule::timezone`].
    #[serde(deserialize_with = "cron")]
    pub start: cron::Schedule,
    pub minutes: u64,
    #[serde(default)]
    pub deny: bool,
}

/// The action classes a window can open or close (`manual` actions never run automatically).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowClass {
    Online,
    Reload,
    Restart,
    Destructive,
}

fn utc() -> chrono_tz::Tz {
    chrono_tz::UTC
}

fn time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{name:?} is not an IANA time zone (e.g. Europe/Berlin)"
        ))
    })
}

fn parse_cron<E: serde::de::Error>(expr: &str) -> Result<cron::Schedule, E> {
    cron::Schedule::from_str(expr).map_err(|e| {
        E::custom(format!(
            "{expr:?} is not a cron expression with seconds (e.g. \"0 0 2 * * Sun\"): {e}"
        ))
    })
}

fn cron<'de, D: Deserializer<'de>>(d: D) -> Result<cron::Schedule, D::Error> {
    parse_cron(&String::deserialize(d)?)
}

fn optional_cron<'de, D: Deserializer<'de>>(d: D) -> Result<Option<cron::Schedule>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|expr| parse_cron(&expr))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(text: &str) -> Result<Schedule, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn cron_and_time_zone_are_parsed_at_load() {
        let s = schedule("timezone = 'Europe/Berlin'\nresync = '0 */30 * * * *'\nleaders = '*/10 * * * * *'\ndrift = '0 */5 * * * *'\ndrift_status = true\n[[window]]\nclass = 'destructive'\nstart = '0 0 2 * * Sun'\nminutes = 120\n").unwrap();
        assert_eq!(s.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(s.windows[0].class, WindowClass::Destructive);
        assert!(s.resync.is_some() && s.leaders.is_some() && s.drift.is_some() && s.drift_status);
        let d = Schedule::default();
        assert_eq!(
            (d.timezone, d.resync.is_none(), d.leaders.is_none()),
            (chrono_tz::UTC, true, true)
        );
    }

    #[test]
    fn a_bad_entry_is_refused_with_its_place() {
        let bad_start =
            schedule("[[window]]\nclass = 'destructive'\nstart = 'nope'\nminutes = 5\n")
                .unwrap_err();
        assert!(
            bad_start.contains("\"nope\" is not a cron expression") && bad_start.contains("line 3"),
            "{bad_start}"
        );
        let bad_class =
            schedule("[[window]]\nclass = 'sometimes'\nstart = '0 0 2 * * Sun'\nminutes = 5\n")
                .unwrap_err();
        assert!(
            bad_class.contains("unknown variant `sometimes`"),
            "{bad_class}"
        );
        let bad_resync = schedule("resync = '61 * * * * *'\n").unwrap_err();
        assert!(bad_resync.contains("resync"), "{bad_resync}");
        let bad_leaders = schedule("leaders = 'every second'\n").unwrap_err();
        assert!(
            bad_leaders.contains("leaders") && bad_leaders.contains("not a cron expression"),
            "{bad_leaders}"
        );
        let bad_tz = schedule("timezone = 'Mars/Olympus'\n").unwrap_err();
        assert!(bad_tz.contains("not an IANA time zone"), "{bad_tz}");
    }
}
