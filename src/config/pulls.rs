//! `[pulls]` of `pgitops.toml`: plans on pull requests. When enabled, the service fetches the
//! open pull (merge) requests' heads into its mirror, plans each one's merge against what is
//! applied, and keeps one comment per pull request on the forge of the first `[[reporter]]`,
//! with a `pgitops/plan` commit status on the head.
//!
//! In: the table. Out: [`Pulls`], checked by [`Pulls::check`] against the reporters.

use serde::Deserialize;

use crate::plan::markdown::GITHUB_COMMENT_LIMIT;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pulls {
    #[serde(default)]
    pub enabled: bool,
    /// The longest comment posted (GitHub's limit by default); a longer plan leaves out whole
    /// clusters' details and says where the full plan is.
    #[serde(default = "limit")]
    pub max_comment_chars: usize,
}

fn limit() -> usize {
    GITHUB_COMMENT_LIMIT
}

impl Default for Pulls {
    fn default() -> Self {
        Pulls {
            enabled: false,
            max_comment_chars: limit(),
        }
    }
}

impl Pulls {
    pub fn check(&self, reporters: usize) -> Result<(), String> {
        if self.enabled && reporters == 0 {
            return Err(
                "`pulls.enabled` needs a `[[reporter]]`: the comments go to its forge".into(),
            );
        }
        if self.max_comment_chars < 2_000 {
            return Err("`pulls.max_comment_chars` must be at least 2000".into());
        }
        Ok(())
    }
}
