//! Windows per action class (`[[schedule.window]]`): a class with allow windows may run only
//! from one of their `start` times (cron, in the configured time zone) for `minutes`; a deny
//! window (`deny = true`) closes its class while it lasts. Pure: the time zone and the cron
//! schedules were parsed when the configuration was loaded.
//! In: the configuration and the time. Out: the plan classes closed now.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use pgitops::config::{Config, WindowClass};
use pgitops::plan::Class;

fn class(c: WindowClass) -> Class {
    match c {
        WindowClass::Online => Class::Online,
        WindowClass::Reload => Class::Reload,
        WindowClass::Restart => Class::Restart,
        WindowClass::Destructive => Class::Destructive,
    }
}

/// Classes closed at `now`: outside all their allow windows, or inside a deny window.
pub fn closed_classes(cfg: &Config, now: DateTime<Utc>) -> BTreeSet<Class> {
    let tz = cfg.schedule.timezone;
    let mut with_windows = BTreeSet::new();
    let mut open = BTreeSet::new();
    let mut denied = BTreeSet::new();
    for w in &cfg.schedule.windows {
        let (c, schedule) = (class(w.class), &w.start);
        let length = Duration::minutes(w.minutes as i64);
        // Inside if a start lies in (now - length, now].
        let since = (now - length).with_timezone(&tz);
        let inside = schedule
            .after(&since)
            .next()
            .is_some_and(|start| start.with_timezone(&Utc) <= now);
        match (w.deny, inside) {
            (true, true) => {
                denied.insert(c);
            }
            (true, false) => {}
            (false, inside) => {
                with_windows.insert(c);
                if inside {
                    open.insert(c);
                }
            }
        }
    }
    let mut closed: BTreeSet<Class> = with_windows.difference(&open).copied().collect();
    closed.extend(denied);
    closed
}

/// When `class` is next open at or after `now`: `now` when it is open already; `None` when no
/// window of it ever opens. A time returned may itself fall into another closing window: the
/// caller asks again then.
pub fn opens_at(cfg: &Config, class: Class, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !closed_classes(cfg, now).contains(&class) {
        return Some(now);
    }
    let tz = cfg.schedule.timezone;
    let mut candidates: Vec<DateTime<Utc>> = Vec::new();
    for w in cfg
        .schedule
        .windows
        .iter()
        .filter(|w| self::class(w.class) == class)
    {
        let schedule = &w.start;
        let length = Duration::minutes(w.minutes as i64);
        if w.deny {
            // The end of the deny window we are in.
            let since = (now - length).with_timezone(&tz);
            candidates.extend(
                schedule
                    .after(&since)
                    .next()
                    .map(|s| s.with_timezone(&Utc) + length),
            );
        } else {
            candidates.extend(
                schedule
                    .after(&now.with_timezone(&tz))
                    .next()
                    .map(|s| s.with_timezone(&Utc)),
            );
        }
    }
    candidates.retain(|c| *c > now);
    candidates.sort();
    candidates
        .iter()
        .find(|c| !closed_classes(cfg, **c).contains(&class))
        .or(candidates.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_open_and_close() {
        let cfg: Config = toml::from_str(
            "[repository]\nremote = 'x'\n[schedule]\ntimezone = 'Europe/Berlin'\n[[schedule.window]]\nclass = 'destructive'\nstart = '0 0 2 * * Sun'\nminutes = 120\n",
        )
        .unwrap();
        // Sunday 2026-11-29 02:30 in Berlin is 01:30 UTC
        let inside: DateTime<Utc> = "2026-11-29T01:30:00Z".parse().unwrap();
        let after: DateTime<Utc> = "2026-11-29T03:30:00Z".parse().unwrap();
        let monday: DateTime<Utc> = "2026-11-30T01:30:00Z".parse().unwrap();
        assert!(closed_classes(&cfg, inside).is_empty());
        assert_eq!(
            closed_classes(&cfg, after),
            BTreeSet::from([Class::Destructive])
        );
        assert_eq!(
            closed_classes(&cfg, monday),
            BTreeSet::from([Class::Destructive])
        );
        let sunday: DateTime<Utc> = "2026-12-06T01:00:00Z".parse().unwrap();
        assert_eq!(opens_at(&cfg, Class::Destructive, monday), Some(sunday));
        assert_eq!(opens_at(&cfg, Class::Destructive, inside), Some(inside));
        assert_eq!(opens_at(&cfg, Class::Restart, monday), Some(monday));
    }

    #[test]
    fn a_deny_window_closes_its_class_while_it_lasts() {
        let cfg: Config = toml::from_str(
            "[repository]\nremote = 'x'\n[[schedule.window]]\nclass = 'restart'\nstart = '0 0 9 * * *'\nminutes = 60\ndeny = true\n",
        )
        .unwrap();
        let inside: DateTime<Utc> = "2026-11-30T09:30:00Z".parse().unwrap();
        let outside: DateTime<Utc> = "2026-11-30T10:30:00Z".parse().unwrap();
        assert_eq!(
            closed_classes(&cfg, inside),
            BTreeSet::from([Class::Restart])
        );
        assert!(closed_classes(&cfg, outside).is_empty());
    }
}
