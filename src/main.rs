//! The `pgitops` binary: see [`pgitops::cli`] for commands and exit codes.

fn main() -> std::process::ExitCode {
    pgitops::cli::main()
}
