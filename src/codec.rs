//! Versioned record encoding: the only module that knows how records become bytes.
//!
//! Every stored value is one record-format byte followed by a bincode 2 (serde, standard
//! configuration) body. bincode is positional, so a field added to a record type changes what
//! old bytes mean: a change to any stored type must bump [`RECORD_FORMAT`] and teach [`decode`]
//! to read the older format. Decoding is bounded and never panics, whatever the bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The record format this build writes and reads.
pub(crate) const RECORD_FORMAT: u8 = 1;

/// The largest record body decoding accepts; a damaged length prefix then fails instead of
/// allocating gigabytes. Step output tails are capped far below this.
const MAX_RECORD_BYTES: usize = 1 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Encodes `value` as a record of the current format.
pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut bytes = vec![RECORD_FORMAT];
    let body = bincode::serde::encode_to_vec(value, config()).map_err(|err| Error::Encode {
        what,
        detail: err.to_string(),
    })?;
    if body.len() > MAX_RECORD_BYTES {
        return Err(Error::Encode {
            what,
            detail: format!(
                "the record has {} bytes, more than the {MAX_RECORD_BYTES} bytes decoding accepts",
                body.len()
            ),
        });
    }
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Decodes a record read from `table` at `key`, rejecting unknown formats and trailing bytes.
pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T> {
    let fail = |detail: String| Error::Decode {
        table,
        key: key(),
        detail,
    };
    let Some((&format, body)) = bytes.split_first() else {
        return Err(fail("the record is empty".into()));
    };
    if format != RECORD_FORMAT {
        return Err(fail(format!(
            "unknown record format {format}; this build reads format {RECORD_FORMAT}"
        )));
    }
    match bincode::serde::decode_from_slice::<T, _>(body, config()) {
        Ok((value, read)) if read == body.len() => Ok(value),
        Ok((_, read)) => Err(fail(format!(
            "{} trailing bytes after a {read}-byte record",
            body.len() - read
        ))),
        Err(err) => Err(fail(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Claim, Step, StepStatus};
    use proptest::prelude::*;

    fn sample_step() -> Step {
        Step {
            order: 30,
            code: "post_room_charges".into(),
            name: "Oda ve Vergi Kayıtları — Gün Sonu İşlemi".into(),
            required: true,
            status: StepStatus::Running,
            attempts: 2,
            started_at: Some(jiff::Timestamp::from_second(1_790_000_000).unwrap()),
            finished_at: None,
            actor: Some("ayşe".into()),
            last_error: Some("kasa açık".into()),
            output_tail: None,
            claim: Some(Claim {
                token: "abc".into(),
                actor: "ayşe".into(),
                process: None,
                lease_until: jiff::Timestamp::from_second(1_790_000_300).unwrap(),
            }),
        }
    }

    fn decode_step(bytes: &[u8]) -> Result<Step> {
        decode("steps", || "(1, 30)".into(), bytes)
    }

    #[test]
    fn step_round_trips_with_turkish_text() {
        let step = sample_step();
        let bytes = encode("step", &step).unwrap();
        assert_eq!(bytes[0], RECORD_FORMAT);
        assert_eq!(decode_step(&bytes).unwrap(), step);
    }

    #[test]
    fn unknown_format_is_decode_error() {
        let mut bytes = encode("step", &sample_step()).unwrap();
        bytes[0] = 9;
        let err = decode_step(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode the record at (1, 30) in table `steps`: unknown record format 9; \
             this build reads format 1; the file may be damaged or written by a newer eodstore"
        );
    }

    #[test]
    fn empty_and_trailing_bytes_rejected() {
        assert!(decode_step(&[]).is_err());
        let mut bytes = encode("step", &sample_step()).unwrap();
        bytes.push(0);
        let err = decode_step(&bytes).unwrap_err().to_string();
        assert!(err.contains("1 trailing bytes"), "{err}");
    }

    #[test]
    fn truncated_records_rejected() {
        let bytes = encode("step", &sample_step()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode_step(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_step(&bytes);
        }

        #[test]
        fn bit_flips_never_panic(index in 0usize..200, bit in 0u8..8) {
            let mut bytes = encode("step", &sample_step()).unwrap();
            let index = index % bytes.len();
            bytes[index] ^= 1 << bit;
            let _ = decode_step(&bytes);
        }
    }
}
