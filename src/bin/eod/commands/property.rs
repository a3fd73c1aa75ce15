//! `eod property set-date`, `eod property show` and `eod release`: a property's business date
//! and its operation in progress.

use std::path::Path;

use eodstore::{Caller, OperationId, Store, StoreOptions, parse_business_date, validate_property};

use super::{CliResult, Outcome, actor, open_read_only, print};
use crate::cli::{ReleaseArgs, SetDateArgs, ShowArgs};
use crate::output::{self, PropertyOut};

pub(super) fn set_date(db: &Path, json: bool, args: &SetDateArgs) -> CliResult {
    // Inputs are checked before the file is created, so a typo creates no database.
    let date = parse_business_date(&args.date)?;
    let caller = Caller::new(actor(args.actor.as_deref()));
    validate_property(&args.property)?;
    caller.validate()?;

    let store = Store::open_with(db, StoreOptions::new().create(true))?;
    let state = store.set_business_date(&args.property, date, &caller)?;

    eprintln!(
        "the business date of `{}` is {date}; its operation may start next",
        args.property
    );
    let out = PropertyOut::new(&args.property, Some(&state));
    print(json, &out, |stdout| output::write_property(stdout, &out))?;
    Ok(Outcome::Success)
}

/// Prints one property's state as one JSON object, or every property's as an array.
pub(super) fn show(db: &Path, json: bool, args: &ShowArgs) -> CliResult {
    if let Some(property) = &args.property {
        validate_property(property)?;
    }
    let store = open_read_only(db)?;

    if let Some(property) = &args.property {
        let state = store.property(property)?;
        let out = PropertyOut::new(property, state.as_ref());
        print(json, &out, |stdout| output::write_property(stdout, &out))?;
        return Ok(Outcome::Success);
    }

    let states = store.properties()?;
    if states.is_empty() {
        eprintln!(
            "no property has a business date or an operation in progress yet; set a date with \
             `eod property set-date --property P --date YYYY-MM-DD`"
        );
    }
    let rows: Vec<PropertyOut<'_>> = states
        .iter()
        .map(|state| PropertyOut::new(&state.property, Some(state)))
        .collect();
    print(json, &rows, |stdout| {
        rows.iter()
            .try_for_each(|row| output::write_property(stdout, row))
    })?;
    Ok(Outcome::Success)
}

pub(super) fn release(db: &Path, json: bool, args: &ReleaseArgs) -> CliResult {
    let caller = Caller::new(actor(args.actor.as_deref()));
    let store = Store::open(db)?;
    let id = OperationId(args.operation);
    let state = store.release_operation(id, &args.reason, &caller)?;

    eprintln!(
        "released operation {id}: it no longer blocks the other operations of `{}`; starting \
         one of its steps makes it the operation in progress again",
        state.property
    );
    let out = PropertyOut::new(&state.property, Some(&state));
    print(json, &out, |stdout| output::write_property(stdout, &out))?;
    Ok(Outcome::Success)
}
