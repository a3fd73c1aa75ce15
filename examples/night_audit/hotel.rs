//! The sample hotel's data files, read into memory. A real PMS reads the same facts from its own
//! database. The file formats are described in the docs of `night_audit.rs`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::Deserialize;

/// The largest absolute amount accepted in a data file, in minor units. It keeps every sum and
/// tax product of the sample far inside `i64`.
pub const MAX_AMOUNT: i64 = 1_000_000_000;

/// The maximum number of adults on one reservation.
pub const MAX_ADULTS: i64 = 20;

/// The columns of `rooms.csv`.
pub const ROOM_COLUMNS: [&str; 3] = ["number", "type", "rack_rate"];

/// The columns of `reservations.csv`.
pub const RESERVATION_COLUMNS: [&str; 9] = [
    "id",
    "guest",
    "room",
    "arrival",
    "departure",
    "status",
    "rate",
    "adults",
    "balance_forward",
];

/// The columns of `payments.csv`.
pub const PAYMENT_COLUMNS: [&str; 4] = ["reservation", "cashier", "method", "amount"];

/// A data file that cannot be read or has an invalid entry.
#[derive(Debug)]
pub struct DataError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line of the entry, when the problem has one.
    pub line: Option<usize>,
    /// The problem, with the value found and the value expected.
    pub problem: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.problem),
            None => write!(f, "{}: {}", self.path.display(), self.problem),
        }
    }
}

impl std::error::Error for DataError {}

/// A tax on room revenue, posted with every room charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tax {
    /// The posting code, such as `VAT`.
    pub code: String,
    /// The kind of tax, which sets the computation of its amount.
    pub kind: TaxKind,
}

/// A kind of tax: a percentage of the rate or a fixed amount per guest and night.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxKind {
    /// A share of the room rate in basis points (1000 is 10 %), rounded half up to the minor unit.
    Percent {
        /// The rate in basis points, 0 to 10 000.
        basis_points: i64,
    },
    /// A fixed amount per adult and night, in minor units.
    PerGuestNight {
        /// The amount per adult and night.
        amount: i64,
    },
}

/// One room of the property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// The room number, as printed on the door.
    pub number: String,
    /// The room type, such as `suite`.
    pub kind: String,
    /// The published nightly rate, in minor units.
    pub rack_rate: i64,
}

/// The state of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Booked, and the guest has not checked in.
    Reserved,
    /// Checked in and not checked out.
    InHouse,
    /// Checked out.
    CheckedOut,
    /// Cancelled, so it occupies no room.
    Cancelled,
}

impl ReservationStatus {
    fn parse(text: &str) -> Option<ReservationStatus> {
        match text {
            "reserved" => Some(ReservationStatus::Reserved),
            "in_house" => Some(ReservationStatus::InHouse),
            "checked_out" => Some(ReservationStatus::CheckedOut),
            "cancelled" => Some(ReservationStatus::Cancelled),
            _ => None,
        }
    }
}

/// One reservation, with its folio's balance from earlier days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reservation id, such as `R1001`.
    pub id: String,
    /// The guest's name. The audit keeps it out of step outputs and exports.
    pub guest: String,
    /// The assigned room number.
    pub room: String,
    /// The first night.
    pub arrival: Date,
    /// The day the guest leaves, so the last night is the day before.
    pub departure: Date,
    /// The reservation's state.
    pub status: ReservationStatus,
    /// The agreed nightly rate, in minor units.
    pub rate: i64,
    /// The number of adults, which city tax is charged on.
    pub adults: i64,
    /// Charges minus payments from earlier days, in minor units. A deposit makes it negative.
    pub balance_forward: i64,
    /// The line of `reservations.csv` it was read from, for messages.
    pub line: usize,
}

impl Reservation {
    /// Returns whether the stay includes the night that starts on `date`.
    pub fn stays_night_of(&self, date: Date) -> bool {
        self.arrival <= date && date < self.departure
    }
}

/// A payment method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PaymentMethod {
    /// Cash in the cashier's drawer.
    Cash,
    /// A card payment.
    Card,
}

/// One payment taken on the business date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The reservation whose folio it pays.
    pub reservation: String,
    /// The cashier who took it.
    pub cashier: String,
    /// The payment method.
    pub method: PaymentMethod,
    /// The amount, in minor units, at least 1.
    pub amount: i64,
    /// The line of `payments.csv` it was read from, for messages.
    pub line: usize,
}

/// The sample hotel: its settings from `hotel.toml` and the rows of the CSV files.
#[derive(Debug, Clone)]
pub struct Hotel {
    /// The property code, used as the operation's property and in file names.
    pub property: String,
    /// The display name.
    pub name: String,
    /// The business date the data describes.
    pub business_date: Date,
    /// The ISO 4217 currency code. Amounts have two decimals.
    pub currency: String,
    /// The taxes on room revenue, in posting order.
    pub taxes: Vec<Tax>,
    /// The rooms, in file order.
    pub rooms: Vec<Room>,
    /// The reservations, in file order.
    pub reservations: Vec<Reservation>,
    /// The payments of the business date, in file order.
    pub payments: Vec<Payment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HotelFile {
    property: String,
    name: String,
    business_date: toml::Spanned<String>,
    currency: String,
    #[serde(default)]
    taxes: Vec<toml::Spanned<TaxEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxEntry {
    code: String,
    basis_points: Option<i64>,
    per_guest_night: Option<i64>,
}

impl Hotel {
    /// Reads `hotel.toml`, `rooms.csv`, `reservations.csv` and `payments.csv` from `dir`.
    ///
    /// # Errors
    ///
    /// Returns a [`DataError`] for the first invalid entry, naming the file and, where the entry
    /// has one, the line. An entry is invalid when the file is missing, the header or field
    /// count is wrong, a value does not parse or is out of range, or a room number or
    /// reservation id appears twice. Cross-file consistency (rooms that exist, double bookings)
    /// is checked by the pre-audit step, not here.
    pub fn load(dir: &Path) -> Result<Hotel, DataError> {
        let mut hotel = read_hotel_file(&dir.join("hotel.toml"))?;
        hotel.rooms = read_rooms(&dir.join("rooms.csv"))?;
        hotel.reservations = read_reservations(&dir.join("reservations.csv"))?;
        hotel.payments = read_payments(&dir.join("payments.csv"))?;
        Ok(hotel)
    }

    /// Returns the room with this number.
    pub fn room(&self, number: &str) -> Option<&Room> {
        self.rooms.iter().find(|room| room.number == number)
    }
}

/// Checks that a property code can name files: 1 to 64 ASCII letters, digits, `-` or `_`.
///
/// # Errors
///
/// Returns the problem with `property`.
pub fn check_property(property: &str) -> Result<(), String> {
    let valid = !property.is_empty()
        && property.len() <= 64
        && property
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid property `{property}`: use 1 to 64 ASCII letters, digits, `-` or `_`, \
             because the property is part of the report file names"
        ))
    }
}

fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|err| DataError {
        path: path.to_owned(),
        line: None,
        problem: format!("cannot read the file: {err}"),
    })
}

/// Returns the 1-based line of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

fn read_hotel_file(path: &Path) -> Result<Hotel, DataError> {
    let text = read_text(path)?;
    let error = |line: Option<usize>, problem: String| DataError {
        path: path.to_owned(),
        line,
        problem,
    };
    let file: HotelFile = toml::from_str(&text).map_err(|err| {
        let line = err.span().map(|span| line_of(&text, span.start));
        error(line, err.message().to_owned())
    })?;

    check_property(&file.property).map_err(|problem| error(None, problem))?;
    let date_line = line_of(&text, file.business_date.span().start);
    let business_date = eodstore::parse_business_date(file.business_date.get_ref())
        .map_err(|err| error(Some(date_line), err.to_string()))?;
    if file.currency.len() != 3 || !file.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(error(
            None,
            format!(
                "invalid currency `{}`: expected an ISO 4217 code of three capital letters, such as EUR",
                file.currency
            ),
        ));
    }

    let mut taxes: Vec<Tax> = Vec::new();
    for entry in file.taxes {
        let line = Some(line_of(&text, entry.span().start));
        let entry = entry.into_inner();
        let code_ok = !entry.code.is_empty()
            && entry.code.len() <= 16
            && entry
                .code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !code_ok || entry.code == "ROOM" {
            return Err(error(
                line,
                format!(
                    "invalid tax code `{}`: use 1 to 16 capital letters or digits, other than ROOM",
                    entry.code
                ),
            ));
        }
        if taxes.iter().any(|tax| tax.code == entry.code) {
            return Err(error(
                line,
                format!("tax code `{}` appears twice", entry.code),
            ));
        }
        let kind = match (entry.basis_points, entry.per_guest_night) {
            (Some(basis_points), None) if (0..=10_000).contains(&basis_points) => {
                TaxKind::Percent { basis_points }
            }
            (None, Some(amount)) if (0..=MAX_AMOUNT).contains(&amount) => {
                TaxKind::PerGuestNight { amount }
            }
            _ => {
                return Err(error(
                    line,
                    format!(
                        "tax `{}` needs exactly one of `basis_points` (0 to 10000) or \
                         `per_guest_night` (0 to {MAX_AMOUNT} minor units)",
                        entry.code
                    ),
                ));
            }
        };
        taxes.push(Tax {
            code: entry.code,
            kind,
        });
    }

    Ok(Hotel {
        property: file.property,
        name: file.name,
        business_date,
        currency: file.currency,
        taxes,
        rooms: Vec::new(),
        reservations: Vec::new(),
        payments: Vec::new(),
    })
}

/// One data row of a CSV file: its line and its trimmed fields, one per column.
pub struct CsvRow<'a> {
    path: &'a Path,
    columns: &'a [&'a str],
    /// The 1-based line number.
    pub line: usize,
    fields: Vec<String>,
}

impl CsvRow<'_> {
    /// Returns an error about this row.
    pub fn error(&self, problem: String) -> DataError {
        DataError {
            path: self.path.to_owned(),
            line: Some(self.line),
            problem,
        }
    }

    fn invalid(&self, column: usize, expected: &str) -> DataError {
        self.error(format!(
            "invalid `{}` value `{}`: expected {expected}",
            self.columns[column], self.fields[column]
        ))
    }

    /// Returns the field of `column`, which must not be empty.
    pub fn text(&self, column: usize) -> Result<String, DataError> {
        let field = &self.fields[column];
        if field.is_empty() {
            return Err(self.invalid(column, "a value, but the field is empty"));
        }
        Ok(field.clone())
    }

    /// Returns the field of `column` as a whole number within `range`.
    pub fn integer(
        &self,
        column: usize,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, DataError> {
        self.fields[column]
            .parse::<i64>()
            .ok()
            .filter(|value| range.contains(value))
            .ok_or_else(|| {
                let expected = format!("a whole number from {} to {}", range.start(), range.end());
                self.invalid(column, &expected)
            })
    }

    /// Returns the field of `column` as a `YYYY-MM-DD` date.
    pub fn date(&self, column: usize) -> Result<Date, DataError> {
        eodstore::parse_business_date(&self.fields[column])
            .map_err(|_| self.invalid(column, "a date as YYYY-MM-DD, such as 2026-12-04"))
    }
}

/// Reads a CSV file whose first line (after blank and `#` lines) is exactly `columns`.
///
/// # Errors
///
/// Returns a [`DataError`] when the file cannot be read, the header differs, or a row has
/// another number of fields.
pub fn read_csv<'a>(path: &'a Path, columns: &'a [&'a str]) -> Result<Vec<CsvRow<'a>>, DataError> {
    let text = read_text(path)?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    let header = columns.join(",");
    let error = |line: Option<usize>, problem: String| DataError {
        path: path.to_owned(),
        line,
        problem,
    };
    match lines.next() {
        None => {
            return Err(error(
                None,
                format!("the file is empty; expected the header `{header}`"),
            ));
        }
        Some((line, found)) => {
            let found_columns: Vec<&str> = found.split(',').map(str::trim).collect();
            if found_columns != columns {
                return Err(error(
                    Some(line),
                    format!("expected the header `{header}`, found `{found}`"),
                ));
            }
        }
    }
    let mut rows = Vec::new();
    for (line, text) in lines {
        let fields: Vec<String> = text
            .split(',')
            .map(|field| field.trim().to_owned())
            .collect();
        if fields.len() != columns.len() {
            return Err(error(
                Some(line),
                format!(
                    "expected {} comma-separated fields ({header}), found {}; fields cannot \
                     contain commas",
                    columns.len(),
                    fields.len()
                ),
            ));
        }
        rows.push(CsvRow {
            path,
            columns,
            line,
            fields,
        });
    }
    Ok(rows)
}

/// Rejects a second row with the same key, naming the line of the first.
fn check_unique(
    seen: &mut HashMap<String, usize>,
    row: &CsvRow<'_>,
    item: &str,
    key: &str,
) -> Result<(), DataError> {
    if let Some(first) = seen.insert(key.to_owned(), row.line) {
        return Err(row.error(format!(
            "{item} `{key}` appears twice, first on line {first}"
        )));
    }
    Ok(())
}

fn read_rooms(path: &Path) -> Result<Vec<Room>, DataError> {
    let mut seen = HashMap::new();
    let mut rooms = Vec::new();
    for row in read_csv(path, &ROOM_COLUMNS)? {
        let room = Room {
            number: row.text(0)?,
            kind: row.text(1)?,
            rack_rate: row.integer(2, 0..=MAX_AMOUNT)?,
        };
        check_unique(&mut seen, &row, "room", &room.number)?;
        rooms.push(room);
    }
    Ok(rooms)
}

fn read_reservations(path: &Path) -> Result<Vec<Reservation>, DataError> {
    let mut seen = HashMap::new();
    let mut reservations = Vec::new();
    for row in read_csv(path, &RESERVATION_COLUMNS)? {
        let status = ReservationStatus::parse(&row.fields[5])
            .ok_or_else(|| row.invalid(5, "one of reserved, in_house, checked_out, cancelled"))?;
        let reservation = Reservation {
            id: row.text(0)?,
            guest: row.text(1)?,
            room: row.text(2)?,
            arrival: row.date(3)?,
            departure: row.date(4)?,
            status,
            rate: row.integer(6, 0..=MAX_AMOUNT)?,
            adults: row.integer(7, 1..=MAX_ADULTS)?,
            balance_forward: row.integer(8, -MAX_AMOUNT..=MAX_AMOUNT)?,
            line: row.line,
        };
        if reservation.departure <= reservation.arrival {
            return Err(row.error(format!(
                "departure {} must be after arrival {}",
                reservation.departure, reservation.arrival
            )));
        }
        check_unique(&mut seen, &row, "reservation", &reservation.id)?;
        reservations.push(reservation);
    }
    Ok(reservations)
}

fn read_payments(path: &Path) -> Result<Vec<Payment>, DataError> {
    let mut payments = Vec::new();
    for row in read_csv(path, &PAYMENT_COLUMNS)? {
        let method = match row.fields[2].as_str() {
            "cash" => PaymentMethod::Cash,
            "card" => PaymentMethod::Card,
            _ => return Err(row.invalid(2, "`cash` or `card`")),
        };
        payments.push(Payment {
            reservation: row.text(0)?,
            cashier: row.text(1)?,
            method,
            amount: row.integer(3, 1..=MAX_AMOUNT)?,
            line: row.line,
        });
    }
    Ok(payments)
}
