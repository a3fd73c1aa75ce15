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
            let eod = commands::run::eod_command(&cli.db);
            eprintln!("error: {}", for_operators(&error_chain(&err), &eod));
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

/// Rewrites a library message for the command line. The `eod` commands it suggests get this
/// run's `--db`, passed in as `eod`, so that they act on the same file when copied. The
/// library's API names in brackets, such as `` (`Store::release_operation`) ``, are left out.
fn for_operators(message: &str, eod: &str) -> String {
    // Suggestions that name their `--db` already (those `eod run` builds) stay as they are.
    let mut text = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(found) = rest.find("`eod ") {
        let after = &rest[found + 5..];
        text.push_str(&rest[..found]);
        if after.starts_with("--db ") {
            text.push_str("`eod ");
        } else {
            text.push('`');
            text.push_str(eod);
            text.push(' ');
        }
        rest = after;
    }
    text.push_str(rest);
    let mut from = 0;
    while let Some(found) = text[from..].find(" (`") {
        let start = from + found;
        let Some(length) = text[start + 3..].find('`') else {
            break;
        };
        let end = start + 3 + length + 2;
        let name = &text[start + 3..start + 3 + length];
        let is_api = text[start + 3 + length..].starts_with("`)")
            && name.contains("::")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if is_api {
            text.replace_range(start..end, "");
            from = start;
        } else {
            from = start + 3;
        }
    }
    text
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

#[cfg(test)]
mod tests {
    use super::for_operators;

    #[test]
    fn messages_get_db_and_lose_api_names() {
        let message = "it is too early; close it first (`eod run --until 2026-12-06` with the \
                       same `--db`), or run it anyway with `--override-date REASON` \
                       (`Caller::override_business_date`) (see the guide)";
        assert_eq!(
            for_operators(message, "eod --db otel.redb"),
            "it is too early; close it first (`eod --db otel.redb run --until 2026-12-06` with \
             the same `--db`), or run it anyway with `--override-date REASON` (see the guide)"
        );
        assert_eq!(
            for_operators("nothing to change", "eod"),
            "nothing to change"
        );
        assert_eq!(
            for_operators("run `eod --db a.redb run` again", "eod --db a.redb"),
            "run `eod --db a.redb run` again"
        );
    }
}
