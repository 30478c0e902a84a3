//! The `pgitops` binary: the CLI ([`cli`]: commands and exit codes) and the service
//! ([`daemon`]) over the `pgitops` library's pipeline. `main` owns the one tokio runtime every
//! command runs on (the service's tasks, SSH masters and applies included).

mod cli;
mod daemon;

/// mimalloc: the loader builds many small values on two threads at once; glibc's arenas spent
/// a fifth of a large plan's time in lock waits, `mprotect` and page faults (measured, see
/// CHANGELOG).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::parse();
    if args.is_offline() {
        // Before the runtime's threads start: it sets environment variables for a moment.
        pgitops::source::offline::init_without_ca_roots();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    match rt {
        Ok(rt) => rt.block_on(cli::main(args)),
        Err(e) => {
            eprintln!("pgitops: error: starting the async runtime: {e}");
            std::process::ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
