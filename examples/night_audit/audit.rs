//! The night audit's work on the sample hotel: one method of [`Audit`] per step of the standard
//! plan. Each returns the summary that the runner stores as the step's output, or the reason the
//! step failed. All money is `i64` minor units (cents), and nothing here uses floating point.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use eodstore::redb::{ReadableTable as _, TableDefinition};
use eodstore::{OperationId, SideEffects, Store};
use jiff::civil::Date;
use serde::Serialize;

use crate::hotel::{Hotel, PaymentMethod, Reservation, ReservationStatus, Tax, TaxKind};

/// The posting code of a night's room charge.
pub const ROOM_CODE: &str = "ROOM";

/// The PMS's own postings table, kept in the store's file:
/// `(property, business date, line)` to `(reservation, room, code, amount in minor units)`.
/// `post_room_charges` writes it in the transaction that completes the step, so the postings
/// and the step's completion commit together or not at all.
pub const POSTINGS: TableDefinition<PostingKey, PostingRow> = TableDefinition::new("pms_postings");

/// A key of the postings table: property, business date (`YYYY-MM-DD`) and line number.
pub type PostingKey = (&'static str, &'static str, u32);
/// A row of the postings table: reservation, room, code and amount in minor units.
pub type PostingRow = (&'static str, &'static str, &'static str, i64);

/// The maximum number of entries a summary lists before it gives the count of the rest. The
/// store keeps only the last 4096 bytes of a step's output, so summaries stay short.
const LISTED: usize = 5;

/// One posting: an amount charged to a reservation's folio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Posting {
    /// The reservation whose folio is charged.
    pub reservation: String,
    /// The room of the stay.
    pub room: String,
    /// `ROOM` or a tax code.
    pub code: String,
    /// The amount in minor units.
    #[serde(rename = "amount_minor")]
    pub amount: i64,
}

/// A folio's balance after the business date's postings and payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolioBalance {
    /// The reservation.
    pub reservation: String,
    /// Its status.
    pub status: ReservationStatus,
    /// Balance forward plus the night's postings minus the day's payments, in minor units. It is
    /// positive when the guest owes money.
    pub balance: i64,
}

/// One cashier's takings of the business date, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CashierTotals {
    /// The number of payments taken.
    pub payments: usize,
    /// The cash total.
    pub cash: i64,
    /// The card total.
    pub card: i64,
}

/// Returns the in-house reservations that stay the night of `date`: the stays charged tonight.
pub fn stays_tonight(hotel: &Hotel, date: Date) -> Vec<&Reservation> {
    hotel
        .reservations
        .iter()
        .filter(|res| res.status == ReservationStatus::InHouse && res.stays_night_of(date))
        .collect()
}

/// Returns the reservations due to arrive on `date` that have not checked in.
pub fn no_shows(hotel: &Hotel, date: Date) -> Vec<&Reservation> {
    hotel
        .reservations
        .iter()
        .filter(|res| res.status == ReservationStatus::Reserved && res.arrival == date)
        .collect()
}

/// Returns the in-house reservations whose departure is `date` or earlier: due-outs still in
/// house, which are not charged for the night.
pub fn due_outs(hotel: &Hotel, date: Date) -> Vec<&Reservation> {
    hotel
        .reservations
        .iter()
        .filter(|res| res.status == ReservationStatus::InHouse && res.departure <= date)
        .collect()
}

/// Returns the reservations that checked out on their departure date `date`.
pub fn departed(hotel: &Hotel, date: Date) -> Vec<&Reservation> {
    hotel
        .reservations
        .iter()
        .filter(|res| res.status == ReservationStatus::CheckedOut && res.departure == date)
        .collect()
}

/// Returns every inconsistency that must stop the audit of `date`: rooms and reservations that
/// do not exist, stays whose status contradicts the date, and double-booked rooms.
pub fn consistency_problems(hotel: &Hotel, date: Date) -> Vec<String> {
    let mut problems = Vec::new();
    let ids: HashMap<&str, &Reservation> = hotel
        .reservations
        .iter()
        .map(|res| (res.id.as_str(), res))
        .collect();

    for res in &hotel.reservations {
        if hotel.room(&res.room).is_none() {
            problems.push(format!(
                "reservation {} (reservations.csv line {}) names room {}, which is not in rooms.csv",
                res.id, res.line, res.room
            ));
        }
        if res.status == ReservationStatus::InHouse && res.arrival > date {
            problems.push(format!(
                "reservation {} is in house but arrives on {}, after the business date",
                res.id, res.arrival
            ));
        }
        if res.status == ReservationStatus::Reserved && res.arrival < date {
            problems.push(format!(
                "reservation {} is still reserved although it was due on {}; record it as a \
                 no-show or cancel it",
                res.id, res.arrival
            ));
        }
    }
    for payment in &hotel.payments {
        if !ids.contains_key(payment.reservation.as_str()) {
            problems.push(format!(
                "payment on payments.csv line {} names reservation {}, which is not in \
                 reservations.csv",
                payment.line, payment.reservation
            ));
        }
    }

    // Reserved and in-house stays occupy their room every night from arrival to departure, so
    // two such stays of one room must not share a night.
    let mut by_room: BTreeMap<&str, Vec<&Reservation>> = BTreeMap::new();
    for res in &hotel.reservations {
        if matches!(
            res.status,
            ReservationStatus::Reserved | ReservationStatus::InHouse
        ) {
            by_room.entry(res.room.as_str()).or_default().push(res);
        }
    }
    for (room, stays) in by_room {
        for (index, first) in stays.iter().enumerate() {
            for second in &stays[index + 1..] {
                if first.arrival < second.departure && second.arrival < first.departure {
                    problems.push(format!(
                        "room {room} is double-booked: {} ({} to {}) and {} ({} to {})",
                        first.id,
                        first.arrival,
                        first.departure,
                        second.id,
                        second.arrival,
                        second.departure
                    ));
                }
            }
        }
    }
    problems
}

/// Returns one night's tax on a room `rate` for `adults` guests, in minor units. A percentage is
/// rounded half up to the minor unit.
pub fn tax_amount(tax: &Tax, rate: i64, adults: i64) -> i64 {
    match tax.kind {
        TaxKind::Percent { basis_points } => (rate * basis_points + 5_000) / 10_000,
        TaxKind::PerGuestNight { amount } => amount * adults,
    }
}

/// Computes the night's postings of `date`: for each stay, the room rate and then each tax in
/// `hotel.toml` order. Amounts of zero are not posted.
pub fn room_postings(hotel: &Hotel, date: Date) -> Vec<Posting> {
    let mut postings = Vec::new();
    for stay in stays_tonight(hotel, date) {
        let mut post = |code: &str, amount: i64| {
            if amount != 0 {
                postings.push(Posting {
                    reservation: stay.id.clone(),
                    room: stay.room.clone(),
                    code: code.to_owned(),
                    amount,
                });
            }
        };
        post(ROOM_CODE, stay.rate);
        for tax in &hotel.taxes {
            post(&tax.code, tax_amount(tax, stay.rate, stay.adults));
        }
    }
    postings
}

/// Returns the total of each posting code, `ROOM` first and then the taxes in `hotel.toml`
/// order.
pub fn totals_by_code(hotel: &Hotel, postings: &[Posting]) -> Vec<(String, i64)> {
    let codes = std::iter::once(ROOM_CODE).chain(hotel.taxes.iter().map(|tax| tax.code.as_str()));
    codes
        .map(|code| {
            let total = postings
                .iter()
                .filter(|posting| posting.code == code)
                .map(|posting| posting.amount)
                .sum();
            (code.to_owned(), total)
        })
        .collect()
}

/// Computes the balance of every folio that is open tonight or closed on `date`: in-house
/// stays and the day's check-outs.
pub fn folio_balances(hotel: &Hotel, date: Date, postings: &[Posting]) -> Vec<FolioBalance> {
    let mut charged: HashMap<&str, i64> = HashMap::new();
    for posting in postings {
        *charged.entry(&posting.reservation).or_default() += posting.amount;
    }
    let mut paid: HashMap<&str, i64> = HashMap::new();
    for payment in &hotel.payments {
        *paid.entry(&payment.reservation).or_default() += payment.amount;
    }
    hotel
        .reservations
        .iter()
        .filter(|res| {
            res.status == ReservationStatus::InHouse
                || (res.status == ReservationStatus::CheckedOut && res.departure == date)
        })
        .map(|res| FolioBalance {
            reservation: res.id.clone(),
            status: res.status,
            balance: res.balance_forward + charged.get(res.id.as_str()).copied().unwrap_or(0)
                - paid.get(res.id.as_str()).copied().unwrap_or(0),
        })
        .collect()
}

/// Returns each cashier's takings, by cashier name.
pub fn cashier_totals(hotel: &Hotel) -> BTreeMap<&str, CashierTotals> {
    let mut totals: BTreeMap<&str, CashierTotals> = BTreeMap::new();
    for payment in &hotel.payments {
        let entry = totals.entry(&payment.cashier).or_default();
        entry.payments += 1;
        match payment.method {
            PaymentMethod::Cash => entry.cash += payment.amount,
            PaymentMethod::Card => entry.card += payment.amount,
        }
    }
    totals
}

/// Formats minor units as a decimal amount with two places, such as `-1234.05`.
pub fn format_amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Formats `part` of `whole` as a percentage with two places, rounded half up.
pub fn format_percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "0.00%".to_owned();
    }
    let basis_points = (part * 10_000 * 2 + whole) / (whole * 2);
    format!("{}.{:02}%", basis_points / 100, basis_points % 100)
}

/// Joins the first [`LISTED`] entries with `separator` and adds how many were left out.
fn list_some(entries: impl ExactSizeIterator<Item = String>, separator: &str) -> String {
    let total = entries.len();
    let mut text = entries.take(LISTED).collect::<Vec<_>>().join(separator);
    if total > LISTED {
        let _ = write!(text, " and {} more", total - LISTED);
    }
    text
}

/// Writes `contents` to a temporary file beside `path` and renames it over `path`, so that a
/// crash leaves either the old file or the new one, never a partial file.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        std::io::Write::write_all(&mut file, contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|err| format!("cannot write `{}`: {err}", path.display()))
}

/// The postings export that the backup step writes: no guest names, amounts in minor units.
#[derive(Serialize)]
struct PostingsExport<'a> {
    property: &'a str,
    business_date: String,
    currency: &'a str,
    postings: &'a [Posting],
    totals_minor: BTreeMap<String, i64>,
    total_minor: i64,
}

/// The night audit of one property and business date on the sample hotel, writing its files
/// into one output directory.
#[derive(Debug)]
pub struct Audit<'a> {
    hotel: &'a Hotel,
    store: &'a Store,
    property: String,
    date: Date,
    out_dir: PathBuf,
}

/// Reads the postings of `property` on `date` from the store's `pms_postings` table, in line
/// order.
///
/// # Errors
///
/// Returns why the table cannot be read.
pub fn read_postings(store: &Store, property: &str, date: Date) -> Result<Vec<Posting>, String> {
    let day = date.to_string();
    store
        .read_app(|app| {
            let Some(table) = app.open_table(POSTINGS)? else {
                return Ok(Vec::new());
            };
            let range = table
                .range((property, day.as_str(), 0)..=(property, day.as_str(), u32::MAX))
                .map_err(|err| eodstore::Error::InvalidInput {
                    what: "postings",
                    value: day.clone(),
                    expected: err.to_string(),
                })?;
            let mut postings = Vec::new();
            for entry in range {
                let (_, value) = entry.map_err(|err| eodstore::Error::InvalidInput {
                    what: "postings",
                    value: day.clone(),
                    expected: err.to_string(),
                })?;
                let (reservation, room, code, amount) = value.value();
                postings.push(Posting {
                    reservation: reservation.to_owned(),
                    room: room.to_owned(),
                    code: code.to_owned(),
                    amount,
                });
            }
            Ok(postings)
        })
        .map_err(|err| format!("cannot read the postings of {date}: {err}"))
}

/// The postings of a business date as stored, against what the sample data gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostingCheck {
    /// The postings stored for the date.
    pub postings: usize,
    /// The postings the sample data gives for the date.
    pub expected: usize,
    /// The stored postings that repeat an earlier one's reservation and code.
    pub duplicates: usize,
}

/// Counts the stored postings of `property` on `date` and their duplicates.
///
/// # Errors
///
/// Returns why the postings cannot be read.
pub fn check_postings(
    store: &Store,
    hotel: &Hotel,
    property: &str,
    date: Date,
) -> Result<PostingCheck, String> {
    let postings = read_postings(store, property, date)?;
    let mut seen = std::collections::HashSet::new();
    let duplicates = postings
        .iter()
        .filter(|posting| !seen.insert((posting.reservation.as_str(), posting.code.as_str())))
        .count();
    Ok(PostingCheck {
        postings: postings.len(),
        expected: room_postings(hotel, date).len(),
        duplicates,
    })
}

impl<'a> Audit<'a> {
    /// Creates the audit of `property` on `date`, keeping its postings in `store` and writing
    /// its files into `out_dir`.
    pub fn new(
        hotel: &'a Hotel,
        store: &'a Store,
        property: &str,
        date: Date,
        out_dir: &Path,
    ) -> Audit<'a> {
        Audit {
            hotel,
            store,
            property: property.to_owned(),
            date,
            out_dir: out_dir.to_owned(),
        }
    }

    /// Returns the path of the postings export (JSON), written by `backup`.
    pub fn export_path(&self) -> PathBuf {
        self.out_dir
            .join(format!("postings-{}-{}.json", self.property, self.date))
    }

    /// Returns the path of the report, written by `reports`.
    pub fn report_path(&self) -> PathBuf {
        self.out_dir
            .join(format!("night-audit-{}-{}.txt", self.property, self.date))
    }

    /// Checks that the day's data is consistent (see [`consistency_problems`]).
    pub fn pre_audit_checks(&self) -> Result<String, String> {
        let problems = consistency_problems(self.hotel, self.date);
        if !problems.is_empty() {
            return Err(format!(
                "{} consistency problems, correct the data files: {}",
                problems.len(),
                list_some(problems.into_iter(), "; ")
            ));
        }
        Ok(format!(
            "{} rooms, {} reservations and {} payments are consistent; no room is double-booked",
            self.hotel.rooms.len(),
            self.hotel.reservations.len(),
            self.hotel.payments.len()
        ))
    }

    /// Lists the arrivals of the day that did not check in. This example only reports them,
    /// where a PMS would charge guaranteed ones a night and cancel the rest.
    pub fn no_shows(&self) -> String {
        let no_shows = no_shows(self.hotel, self.date);
        if no_shows.is_empty() {
            return "no no-shows".to_owned();
        }
        let entries = no_shows
            .iter()
            .map(|res| format!("{} (room {})", res.id, res.room));
        format!(
            "{} no-shows to charge or cancel: {}",
            no_shows.len(),
            list_some(entries, ", ")
        )
    }

    /// Reports the day's departures and lists the guests due out who are still in house.
    pub fn departures_check(&self) -> String {
        let departed = departed(self.hotel, self.date).len();
        let due_outs = due_outs(self.hotel, self.date);
        let mut summary = format!(
            "{} departures due: {departed} checked out, {} still in house",
            departed + due_outs.len(),
            due_outs.len()
        );
        if !due_outs.is_empty() {
            let entries = due_outs
                .iter()
                .map(|res| format!("{} (room {})", res.id, res.room));
            let _ = write!(
                summary,
                ": {}; check them out or extend their stays",
                list_some(entries, ", ")
            );
        }
        summary
    }

    /// Fails when a stay of tonight has a zero rate, and lists the rates that differ from the
    /// room's rack rate (overrides).
    pub fn room_rate_check(&self) -> Result<String, String> {
        let stays = stays_tonight(self.hotel, self.date);
        let zero: Vec<&&Reservation> = stays.iter().filter(|stay| stay.rate <= 0).collect();
        if !zero.is_empty() {
            let entries = zero
                .iter()
                .map(|stay| format!("{} (room {})", stay.id, stay.room));
            return Err(format!(
                "{} stays have a rate of 0.00: {}; set their rates before room charges are posted",
                zero.len(),
                list_some(entries, ", ")
            ));
        }
        let overrides: Vec<String> = stays
            .iter()
            .filter_map(|stay| {
                let rack = self.hotel.room(&stay.room)?.rack_rate;
                (stay.rate != rack).then(|| {
                    format!(
                        "{} room {} {} (rack {})",
                        stay.id,
                        stay.room,
                        format_amount(stay.rate),
                        format_amount(rack)
                    )
                })
            })
            .collect();
        let mut summary = format!(
            "{} rates checked, {} overrides",
            stays.len(),
            overrides.len()
        );
        if !overrides.is_empty() {
            let _ = write!(summary, ": {}", list_some(overrides.into_iter(), ", "));
        }
        Ok(summary)
    }

    /// Computes the night's room and tax postings and writes them into the `pms_postings`
    /// table, inside the transaction that completes the step.
    ///
    /// Either the postings and the step's completion commit together, or neither does, so a
    /// crash at any point and a resumed run post each charge exactly once. `interrupt` is
    /// called after half of the postings are written and before the commit; the example's
    /// `--crash-during` aborts the process there.
    pub fn post_room_charges(
        &self,
        effects: &mut SideEffects<'_>,
        interrupt: &dyn Fn(),
    ) -> Result<String, String> {
        let postings = room_postings(self.hotel, self.date);
        let day = self.date.to_string();
        let mut table = effects
            .open_table(POSTINGS)
            .map_err(|err| err.to_string())?;
        let storage = |err: eodstore::redb::StorageError| format!("cannot write a posting: {err}");
        let range = (self.property.as_str(), day.as_str(), 0)
            ..=(self.property.as_str(), day.as_str(), u32::MAX);
        if table.range(range).map_err(storage)?.next().is_some() {
            return Err(format!(
                "postings of {day} exist already, so this step would post them twice"
            ));
        }
        for (line, posting) in (0u32..).zip(&postings) {
            if line as usize == postings.len() / 2 {
                interrupt();
            }
            table
                .insert(
                    (self.property.as_str(), day.as_str(), line),
                    (
                        posting.reservation.as_str(),
                        posting.room.as_str(),
                        posting.code.as_str(),
                        posting.amount,
                    ),
                )
                .map_err(storage)?;
        }

        let stays = stays_tonight(self.hotel, self.date).len();
        let totals = totals_by_code(self.hotel, &postings);
        let total: i64 = totals.iter().map(|(_, amount)| amount).sum();
        let by_code: Vec<String> = totals
            .iter()
            .map(|(code, amount)| format!("{code} {}", format_amount(*amount)))
            .collect();
        Ok(format!(
            "posted {} postings for {stays} stays: {}, total {} {}",
            postings.len(),
            by_code.join(", "),
            format_amount(total),
            self.hotel.currency
        ))
    }

    /// Reads the night's postings back from the store.
    ///
    /// # Errors
    ///
    /// Returns why the postings cannot be read.
    pub fn postings(&self) -> Result<Vec<Posting>, String> {
        read_postings(self.store, &self.property, self.date)
    }

    /// Checks that the stored postings are exactly the night's postings, then reports the
    /// folio balances: balance forward plus postings minus payments.
    pub fn folio_balance(&self) -> Result<String, String> {
        let journal = self.postings()?;
        let expected = room_postings(self.hotel, self.date);
        if journal.len() != expected.len() {
            return Err(format!(
                "the store has {} postings of the night, but the night's stays give {}; the \
                 postings do not match the data",
                journal.len(),
                expected.len()
            ));
        }
        if let Some((found, wanted)) = journal.iter().zip(&expected).find(|(a, b)| a != b) {
            return Err(format!(
                "the store has the posting {found:?} where the night's stays give {wanted:?}"
            ));
        }

        let balances = folio_balances(self.hotel, self.date, &journal);
        let due: Vec<&FolioBalance> = balances.iter().filter(|folio| folio.balance > 0).collect();
        let credit: Vec<&FolioBalance> =
            balances.iter().filter(|folio| folio.balance < 0).collect();
        let settled = balances.len() - due.len() - credit.len();
        let mut summary = format!(
            "{} folios: {} with a balance due ({}), {} in credit ({}), {settled} settled",
            balances.len(),
            due.len(),
            format_amount(due.iter().map(|folio| folio.balance).sum()),
            credit.len(),
            format_amount(credit.iter().map(|folio| folio.balance).sum())
        );
        let open_after_checkout: Vec<String> = balances
            .iter()
            .filter(|folio| folio.status == ReservationStatus::CheckedOut && folio.balance != 0)
            .map(|folio| format!("{} ({})", folio.reservation, format_amount(folio.balance)))
            .collect();
        if !open_after_checkout.is_empty() {
            let _ = write!(
                summary,
                "; checked out with an open balance, to transfer to the city ledger: {}",
                list_some(open_after_checkout.into_iter(), ", ")
            );
        }
        Ok(summary)
    }

    /// Closes the cashiers: each one's payments, cash and card totals.
    pub fn cashier_close(&self) -> String {
        let totals = cashier_totals(self.hotel);
        let entries = totals.iter().map(|(cashier, totals)| {
            format!(
                "{cashier} {} payments (cash {}, card {})",
                totals.payments,
                format_amount(totals.cash),
                format_amount(totals.card)
            )
        });
        let grand_total: i64 = self
            .hotel
            .payments
            .iter()
            .map(|payment| payment.amount)
            .sum();
        format!(
            "{} cashiers closed, {} payments, {} {}: {}",
            totals.len(),
            self.hotel.payments.len(),
            format_amount(grand_total),
            self.hotel.currency,
            list_some(entries, ", ")
        )
    }

    /// Writes the night audit report of `operation` as text.
    pub fn reports(&self, operation: OperationId) -> Result<String, String> {
        let journal = self.postings()?;
        let occupied = stays_tonight(self.hotel, self.date).len();
        let room_revenue: i64 = journal
            .iter()
            .filter(|posting| posting.code == ROOM_CODE)
            .map(|posting| posting.amount)
            .sum();
        let report = self.render_report(operation, &journal);
        let path = self.report_path();
        write_atomically(&path, report.as_bytes())?;
        Ok(format!(
            "wrote {}: occupancy {occupied} of {} rooms ({}), room revenue {} {}",
            path.display(),
            self.hotel.rooms.len(),
            format_percent(occupied, self.hotel.rooms.len()),
            format_amount(room_revenue),
            self.hotel.currency
        ))
    }

    fn render_report(&self, operation: OperationId, journal: &[Posting]) -> String {
        let hotel = self.hotel;
        let date = self.date;
        let occupied = stays_tonight(hotel, date).len();
        let no_shows = no_shows(hotel, date);
        let checked_in = hotel
            .reservations
            .iter()
            .filter(|res| res.status == ReservationStatus::InHouse && res.arrival == date)
            .count();
        let departed = departed(hotel, date).len();
        let due_outs = due_outs(hotel, date);

        let mut text = String::new();
        let _ = writeln!(
            text,
            "Night audit report: {} ({})",
            hotel.name, self.property
        );
        let _ = writeln!(text, "Business date: {date}");
        let _ = writeln!(text, "Operation: {operation}");
        let _ = writeln!(
            text,
            "Currency: {} (amounts with two decimals)",
            hotel.currency
        );

        let _ = writeln!(text, "\nRooms");
        let _ = writeln!(
            text,
            "  occupied tonight: {occupied} of {} ({})",
            hotel.rooms.len(),
            format_percent(occupied, hotel.rooms.len())
        );
        let _ = writeln!(
            text,
            "  arrivals due: {} ({checked_in} checked in, {} no-shows)",
            checked_in + no_shows.len(),
            no_shows.len()
        );
        let _ = writeln!(
            text,
            "  departures due: {} ({departed} checked out, {} still in house)",
            departed + due_outs.len(),
            due_outs.len()
        );
        for (title, entries) in [
            ("No-shows", &no_shows),
            ("Due out, still in house", &due_outs),
        ] {
            if !entries.is_empty() {
                let _ = writeln!(text, "\n{title}");
                for res in entries {
                    let _ = writeln!(text, "  {}  room {:<5} {}", res.id, res.room, res.guest);
                }
            }
        }

        let _ = writeln!(text, "\nRevenue");
        let totals = totals_by_code(hotel, journal);
        for (code, amount) in &totals {
            let _ = writeln!(text, "  {code:<6} {:>12}", format_amount(*amount));
        }
        let total: i64 = totals.iter().map(|(_, amount)| amount).sum();
        let _ = writeln!(text, "  {:<6} {:>12}", "total", format_amount(total));

        let _ = writeln!(
            text,
            "\nFolio balances other than zero (positive: owed by the guest)"
        );
        for folio in folio_balances(hotel, date, journal) {
            if folio.balance != 0 {
                let _ = writeln!(
                    text,
                    "  {:<8} {:>12}",
                    folio.reservation,
                    format_amount(folio.balance)
                );
            }
        }

        let _ = writeln!(text, "\nCashiers");
        for (cashier, totals) in cashier_totals(hotel) {
            let _ = writeln!(
                text,
                "  {cashier:<10} {:>3} payments  cash {:>10}  card {:>10}",
                totals.payments,
                format_amount(totals.cash),
                format_amount(totals.card)
            );
        }
        text
    }

    /// Exports the night's postings as JSON next to the report. The export contains reservation
    /// ids, rooms and amounts, and no guest data.
    pub fn backup(&self) -> Result<String, String> {
        let journal = self.postings()?;
        let totals: BTreeMap<String, i64> =
            totals_by_code(self.hotel, &journal).into_iter().collect();
        let total_minor = totals.values().sum();
        let export = PostingsExport {
            property: &self.property,
            business_date: self.date.to_string(),
            currency: &self.hotel.currency,
            postings: &journal,
            totals_minor: totals,
            total_minor,
        };
        let mut json = serde_json::to_string_pretty(&export)
            .map_err(|err| format!("cannot encode the postings export: {err}"))?;
        json.push('\n');
        let path = self.export_path();
        write_atomically(&path, json.as_bytes())?;
        Ok(format!(
            "exported {} postings ({} {}) to {}",
            journal.len(),
            format_amount(total_minor),
            self.hotel.currency,
            path.display()
        ))
    }

    /// Computes the next business date. A PMS would store it as its current date here.
    pub fn roll_business_date(&self) -> Result<String, String> {
        let next = self
            .date
            .tomorrow()
            .map_err(|err| format!("cannot compute the day after {}: {err}", self.date))?;
        Ok(format!("business date rolls from {} to {next}", self.date))
    }
}
