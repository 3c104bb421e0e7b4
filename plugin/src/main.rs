//! The `dnabert` executor: one binary that pipelines call for each stage. The command line
//! lives in the library (`dnabert::cli`); this parses it and runs the subcommand.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Die quietly when the reader of stdout goes away (`dnabert split-fasta … | head`), as Unix
    // tools do, instead of panicking on the failed write: Rust ignores SIGPIPE by default.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread starts, so that every thread inherits the blocked signals.
    dnabert::signals::install();
    dnabert::keep_freed_memory();
    match dnabert::cli::Cli::parse().command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<dnabert::cli::ExitWith>() {
                Some(exit) => ExitCode::from(exit.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}
