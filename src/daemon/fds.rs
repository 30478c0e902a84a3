//! File descriptors of the service: SSH masters and their sessions, Git (the mirror, pushes of
//! notes), the file-system watch and the HTTP listener share one process limit. At start the
//! soft `RLIMIT_NOFILE` is raised to the hard limit (rustix's safe `getrlimit`/`setrlimit`), and
//! the HTTP connection cap is kept to at most half of it, so a listener under attack can never
//! take the descriptors an apply needs.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Where the soft limit goes when the hard limit is unlimited (Linux's default `nr_open`).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit; returns the soft limit in force.
pub fn raise_nofile_limit() -> u64 {
    let now = getrlimit(Resource::Nofile);
    let soft = now.current.unwrap_or(u64::MAX);
    let hard = now.maximum.unwrap_or(UNLIMITED_TARGET);
    if soft >= hard {
        return soft;
    }
    let raised = Rlimit {
        current: Some(hard),
        maximum: now.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "raised the open-files limit");
            hard
        }
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "could not raise the open-files limit");
            soft
        }
    }
}

/// The HTTP connection cap for `configured` under an open-files limit of `limit`: at most half
/// of the limit, so SSH and Git keep the other half.
pub fn connection_cap(configured: usize, limit: u64) -> usize {
    let half = usize::try_from(limit / 2).unwrap_or(usize::MAX).max(1);
    configured.clamp(1, half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_under_half_the_limit() {
        assert_eq!(connection_cap(64, 1024), 64);
        assert_eq!(connection_cap(64, 100), 50);
        assert_eq!(connection_cap(0, 100), 1);
        assert_eq!(connection_cap(64, 1), 1);
    }
}
