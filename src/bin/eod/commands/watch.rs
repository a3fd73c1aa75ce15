//! `eod watch`: prints each change committed to the file, by any process, as it appears.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use eodstore::validate_property;

use super::{CliError, CliResult, Outcome, open_read_only};
use crate::cli::WatchArgs;
use crate::output::{self, ChangeOut};

/// The wait of `eod watch` after a poll that found no new change.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The maximum number of changes read in one poll.
const CHANGES_PER_POLL: usize = 1000;

/// Follows the file's `changes` table from its last change, printing each new change of the
/// selected property as one line. A read-only store reads the file's latest commit on every
/// read in `MultiWriter` mode, so the commits of other processes appear in the next poll.
pub(super) fn watch(db: &Path, json: bool, args: &WatchArgs) -> CliResult {
    if let Some(property) = &args.property {
        validate_property(property)?;
    }
    let store = open_read_only(db)?;
    let mut after = store.last_change()?;
    let selection = match &args.property {
        Some(property) => format!("changes of property `{property}`"),
        None => "changes".to_owned(),
    };
    eprintln!(
        "watching `{}` for {selection} after change {after}; press Ctrl-C to stop",
        db.display()
    );

    let mut printed: u64 = 0;
    loop {
        let changes = store.changes_after(after, CHANGES_PER_POLL)?;
        if changes.is_empty() {
            // A file restored from an older copy numbers its new changes from below the last
            // one seen, so watching must go back with it or it would print nothing.
            let last = store.last_change()?;
            if last < after {
                eprintln!(
                    "the file's last change is now {last}, before change {after} that was seen \
                     last: it was replaced, probably restored from a backup; watching from \
                     change {last}"
                );
                after = last;
            }
            std::thread::sleep(POLL_INTERVAL);
            continue;
        }
        for change in &changes {
            after = change.change;
            if args
                .property
                .as_ref()
                .is_some_and(|property| *property != change.property)
            {
                continue;
            }
            if !write_change(json, &ChangeOut::new(change))? {
                // The reader of stdout is gone, as with `eod watch | head -3`.
                return Ok(Outcome::Success);
            }
            printed += 1;
            if args.count == Some(printed) {
                return Ok(Outcome::Success);
            }
        }
    }
}

/// Writes one change to stdout and flushes it, so that a reader sees it at once. Returns
/// `false` when stdout is a closed pipe.
fn write_change(json: bool, change: &ChangeOut<'_>) -> Result<bool, CliError> {
    let mut out = io::stdout().lock();
    let written = if json {
        output::write_json_line(&mut out, change)
    } else {
        output::write_change(&mut out, change)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(CliError::Output(err)),
    }
}
