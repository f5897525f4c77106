//! The `chromatica` command. Each subcommand lives in `cli/`; errors print as
//! one line on stderr and exit with status 1 (usage errors: 2, from clap).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
