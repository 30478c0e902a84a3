//! The `pgitops` binary: see [`pgitops::cli`] for commands and exit codes. `main` owns the one
//! tokio runtime every command runs on (the service's tasks, SSH masters and applies included).

fn main() -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match rt {
        Ok(rt) => rt.block_on(pgitops::cli::main()),
        Err(e) => {
            eprintln!("pgitops: error: starting the async runtime: {e}");
            std::process::ExitCode::from(pgitops::cli::EXIT_ERROR)
        }
    }
}
