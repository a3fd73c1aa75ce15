//! `eod`: the command-line tool of eodstore. It opens, runs and inspects hotel end-of-day
//! operations in one database file; `eod --help` lists the commands and exit codes.

mod cli;
mod commands;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use eodstore::ErrorCategory;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::commands::{CliError, Outcome};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    // The library turns redb's panics on damaged files into errors; the default hook would
    // still print them, so panics are logged at debug level, and one that escapes is reported
    // as an internal error below.
    std::panic::set_hook(Box::new(|info| {
        tracing::debug!(panic = %info, "panic");
    }));
    let executed = std::panic::catch_unwind(|| commands::execute(&cli));
    let Ok(executed) = executed else {
        eprintln!("error: internal error in eod; run again with -v for details and report it");
        return ExitCode::from(1);
    };
    match executed {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::StepFailed) => ExitCode::from(4),
        Ok(Outcome::Paused) => ExitCode::from(5),
        Ok(Outcome::Unhealthy) => ExitCode::from(7),
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// Logs to stderr with the filter from `RUST_LOG` (warnings only when unset); `--verbose` adds
/// debug for eodstore and eod.
fn init_logging(verbose: bool) {
    let mut filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    if verbose {
        for directive in ["eodstore=debug", "eod=debug"] {
            if let Ok(directive) = directive.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

/// Returns the error's message followed by each source's, joined with ": ".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

/// Maps an error to the exit codes listed in `eod --help`: 3 rejected, 6 busy, 1 otherwise.
fn exit_code(err: &CliError) -> u8 {
    match err {
        CliError::Store(err) => match err.category() {
            ErrorCategory::Rejected => 3,
            ErrorCategory::Busy => 6,
            _ => 1,
        },
        CliError::Output(_) | CliError::Internal { .. } => 1,
    }
}
