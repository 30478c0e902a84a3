//! `pgitops status`, `history` and `approve`: render the records.

use super::{emit, Output, EXIT_OK};
use pgitops::ops::records;
use pgitops::ops::RepoOptions;
use pgitops::source::approval::Signer;

fn short(sha: &Option<String>) -> &str {
    sha.as_deref()
        .map(pgitops::plan::output::short)
        .unwrap_or("-")
}

pub fn status(opts: &RepoOptions, head: &str, out: Output) -> anyhow::Result<u8> {
    let clusters = records::status(opts, head)?;
    match out {
        Output::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&clusters)?)),
        Output::Text => {
            let mut text = format!(
                "{:<24} {:<18} {:<13} {:<13}\n",
                "CLUSTER", "STATE", "APPLIED", "ATTEMPTED"
            );
            for c in &clusters {
                text.push_str(&format!(
                    "{:<24} {:<18} {:<13} {:<13}\n",
                    c.cluster,
                    c.state,
                    short(&c.last_applied),
                    short(&c.last_attempted)
                ));
                for a in &c.awaiting_approval {
                    text.push_str(&format!("    awaiting approval: {a}\n"));
                }
                for a in &c.awaiting_window {
                    text.push_str(&format!("    awaiting its window: {a}\n"));
                }
                for a in &c.failed {
                    text.push_str(&format!("    failed: {a}\n"));
                }
                if let Some(f) = &c.failover {
                    text.push_str(&format!("    failover: {}\n", f.message));
                }
                if let Some(d) = &c.drift {
                    let at = d.commit.as_deref().map(|c| &c[..c.len().min(12)]);
                    let at = at.map(|c| format!(" (against {c})")).unwrap_or_default();
                    text.push_str(&format!("    drift: {}{at}\n", d.summary));
                }
            }
            if clusters.is_empty() {
                text.push_str("nothing applied yet\n");
            }
            emit(&text);
        }
    }
    Ok(EXIT_OK)
}

pub fn history(
    opts: &RepoOptions,
    head: &str,
    cluster: Option<&str>,
    out: Output,
) -> anyhow::Result<u8> {
    let entries = records::history(opts, head, cluster)?;
    match out {
        Output::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&entries)?)),
        Output::Text => {
            let mut text = String::new();
            for e in &entries {
                text.push_str(&format!(
                    "{} {:<10} {:<12} {} ({})\n",
                    &e.commit[..12],
                    e.result,
                    e.applied,
                    e.summary,
                    e.author
                ));
            }
            emit(&text);
        }
    }
    Ok(EXIT_OK)
}

pub fn approve(
    opts: &RepoOptions,
    rev: &str,
    action: &str,
    signer: Option<Signer>,
) -> anyhow::Result<u8> {
    let (commit, new, held) = records::approve(opts, rev, action, signer.as_ref())?;
    let what = match (new, &signer) {
        (true, Some(_)) => "approved (signed)",
        (true, None) => "approved",
        (false, _) => "already approved",
    };
    let note = if held {
        ""
    } else {
        " (the last apply of that commit did not hold it; the approval applies when a plan of a range containing the commit has it)"
    };
    emit(&format!("{what}: {action} on {}{note}\n", &commit[..12]));
    Ok(EXIT_OK)
}
