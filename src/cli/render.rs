//! `pgitops render --host ADDR [--revision REV] FILE`: print what pgitops would write on a host.
//! The file names come from [`NodeFile`]; the work is in [`pgitops::ops::render`].

use clap::Args;

use super::{emit, EXIT_OK};
use pgitops::ops::render::NodeFile;
use pgitops::ops::{self, RepoOptions};

#[derive(Args)]
pub struct RenderArgs {
    /// The host as the inventory names it (usually its IP address).
    #[arg(long)]
    host: String,
    /// The revision to render from.
    #[arg(long, default_value = "HEAD")]
    revision: String,
    /// The file: pg_hba.conf, pgb_hba.conf, useropts.txt, database.txt or userlist.txt
    /// (verifiers shown as placeholders).
    #[arg(value_parser = parse_file)]
    file: NodeFile,
}

fn parse_file(s: &str) -> Result<NodeFile, String> {
    NodeFile::parse(s).ok_or_else(|| {
        let names: Vec<&str> = NodeFile::ALL.iter().map(|f| f.name()).collect();
        format!("unknown file; expected one of: {}", names.join(", "))
    })
}

pub fn render(opts: &RepoOptions, args: &RenderArgs) -> anyhow::Result<u8> {
    let text = ops::render::render(opts, &args.revision, &args.host, args.file)?;
    emit(&text);
    Ok(EXIT_OK)
}
