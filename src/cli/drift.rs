//! `pgitops drift`: arguments (the repository's, and how to reach the nodes, as `apply` takes
//! them), the text or JSON report, and the exit code: 0 no drift, 1 drift found (with
//! `--exit-code`), 2 a cluster could not be checked or the repository/configuration is wrong.

use clap::Args;

use super::{emit, Output, EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use pgitops::ops::executor;
use pgitops::ops::RepoOptions;

#[derive(Args)]
pub struct DriftArgs {
    /// Only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Exit 1 when drift is found, 0 when there is none.
    #[arg(long)]
    exit_code: bool,
    #[command(flatten)]
    nodes: super::nodes::NodeArgs,
}

pub async fn drift(opts: &RepoOptions, a: DriftArgs) -> anyhow::Result<u8> {
    let (exec, runner) = executor::build(a.nodes.settings(None));
    let found = pgitops::ops::drift::drift(
        opts,
        a.cluster.as_deref(),
        Some("HEAD"),
        &runner,
        &exec,
        None,
    )
    .await;
    runner.close().await;
    let found = found?;
    let objects: usize = found.iter().map(|d| d.objects()).sum();
    let failed = found.iter().any(|d| d.error.is_some());
    match a.output {
        Output::Json => {
            let doc = serde_json::json!({ "drifted": objects, "clusters": found });
            emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
        }
        Output::Text => {
            let text: String = found.iter().map(|d| d.text()).collect();
            emit(if found.is_empty() {
                "no applied cluster\n"
            } else {
                &text
            });
        }
    }
    Ok(if failed {
        EXIT_ERROR
    } else if a.exit_code && objects > 0 {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
