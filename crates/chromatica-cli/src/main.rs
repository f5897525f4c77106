//! The `chromatica` command. Each subcommand lives in `cli/`; errors print as
//! one line on stderr and exit with status 1 (usage errors: 2, from clap).

mod cli;
mod serve;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Restoring the default SIGPIPE action makes `chromatica … | head` end
    // quietly, as every Unix filter does, instead of panicking on a closed pipe.
    #[cfg(unix)]
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A file name in the message may hold escape sequences.
            eprintln!("error: {}", cli::safe(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
