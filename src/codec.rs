//! Versioned record encoding: the only module that knows how records become bytes.
//!
//! Every stored value is one record-format byte followed by a body. Format 2, which this build
//! writes, is a CRC-32 of the bincode body (4 bytes, little-endian) and then the body itself, a
//! bincode 2 (serde, standard configuration) encoding. Format 1, written by the first release, is
//! the bincode body alone; this build still reads it, so that a file can be migrated.
//!
//! redb checks its page checksums only when it recovers a file or checks it on request, so the
//! record checksum is what catches a damaged value on an ordinary read.
//!
//! bincode is positional, so a field added to a record type changes what old bytes mean. A
//! change to any stored type must bump [`RECORD_FORMAT`] and decode the older format with the old
//! type, as [`decode_upgrading`] does. The store's format version must then rise too, so that an
//! older build rejects the file at open instead of misreading it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The record format this build writes.
pub(crate) const RECORD_FORMAT: u8 = 2;

/// The oldest record format this build reads.
const OLDEST_RECORD_FORMAT: u8 = 1;

/// The largest record body decoding accepts; a damaged length prefix then fails instead of
/// allocating gigabytes. Step output tails are capped far below this.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// The length of the checksum in front of a format-2 body.
const CHECKSUM_BYTES: usize = 4;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

/// Encodes `value` as a record of the current format.
pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
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
    let mut bytes = Vec::with_capacity(1 + CHECKSUM_BYTES + body.len());
    bytes.push(RECORD_FORMAT);
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Decodes a record read from `table` at `key`, rejecting unknown formats, damaged bodies and
/// trailing bytes. Records of every format this build reads have the layout of `T`.
pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T> {
    decode_upgrading::<T, T>(table, key, bytes)
}

/// Decodes a record whose type changed after format 1: a format-1 record is decoded as `Old`,
/// the type as it was then, and converted, so old bytes are never read with the new layout.
pub(crate) fn decode_upgrading<Old, T>(
    table: &'static str,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T>
where
    Old: DeserializeOwned + Into<T>,
    T: DeserializeOwned,
{
    let fail = |detail: String| Error::Decode {
        table,
        key: key(),
        detail,
    };
    let Some((&format, rest)) = bytes.split_first() else {
        return Err(fail("the record is empty".into()));
    };
    match format {
        1 => body_of::<Old>(rest).map(Into::into).map_err(fail),
        RECORD_FORMAT => {
            let Some((stored, body)) = rest.split_first_chunk::<CHECKSUM_BYTES>() else {
                return Err(fail(format!(
                    "the record has {} bytes, too short for its checksum",
                    bytes.len()
                )));
            };
            let computed = crc32fast::hash(body);
            if u32::from_le_bytes(*stored) != computed {
                return Err(fail(format!(
                    "its checksum does not match its {} bytes, so the record is damaged",
                    body.len()
                )));
            }
            body_of::<T>(body).map_err(fail)
        }
        _ => Err(fail(format!(
            "unknown record format {format}; this build reads formats \
             {OLDEST_RECORD_FORMAT} to {RECORD_FORMAT}"
        ))),
    }
}

/// Decodes a whole bincode body, rejecting trailing bytes.
fn body_of<T: DeserializeOwned>(body: &[u8]) -> std::result::Result<T, String> {
    match bincode::serde::decode_from_slice::<T, _>(body, config()) {
        Ok((value, read)) if read == body.len() => Ok(value),
        Ok((_, read)) => Err(format!(
            "{} trailing bytes after a {read}-byte record",
            body.len() - read
        )),
        Err(err) => Err(err.to_string()),
    }
}

/// Encodes `value` as a format-1 record, as the first release wrote it, for migration tests.
#[cfg(test)]
pub(crate) fn encode_format1<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![1];
    bytes.extend(bincode::serde::encode_to_vec(value, config()).expect("encodable test value"));
    bytes
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
             this build reads formats 1 to 2; the file may be damaged or written by a newer \
             eodstore"
        );
    }

    #[test]
    fn format1_records_still_decode() {
        let step = sample_step();
        assert_eq!(decode_step(&encode_format1(&step)).unwrap(), step);
    }

    #[test]
    fn every_single_bit_flip_detected() {
        let bytes = encode("step", &sample_step()).unwrap();
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                let result = decode_step(&damaged);
                assert!(result.is_err(), "flip of bit {bit} in byte {index} decoded");
            }
        }
        let mut damaged = bytes;
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        let err = decode_step(&damaged).unwrap_err().to_string();
        assert!(err.contains("checksum does not match"), "{err}");
    }

    /// A record type as a first release stored it, and the same type after a field was added.
    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct RoomV1 {
        number: u32,
        name: String,
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct RoomV2 {
        number: u32,
        name: String,
        floor: Option<u8>,
    }

    impl From<RoomV1> for RoomV2 {
        fn from(old: RoomV1) -> RoomV2 {
            RoomV2 {
                number: old.number,
                name: old.name,
                floor: None,
            }
        }
    }

    #[test]
    fn added_field_decodes_old_records_through_old_type() {
        let old = encode_format1(&RoomV1 {
            number: 101,
            name: "Deniz manzaralı".into(),
        });
        let upgraded: RoomV2 =
            decode_upgrading::<RoomV1, RoomV2>("rooms", || "101".into(), &old).unwrap();
        assert_eq!(
            upgraded,
            RoomV2 {
                number: 101,
                name: "Deniz manzaralı".into(),
                floor: None,
            }
        );

        // Read with the new layout, the old bytes fail instead of decoding into wrong values.
        let misread = decode::<RoomV2>("rooms", || "101".into(), &old);
        assert!(misread.is_err(), "{misread:?}");

        let new = RoomV2 {
            number: 102,
            name: "Bahçe".into(),
            floor: Some(1),
        };
        let bytes = encode("room", &new).unwrap();
        let decoded: RoomV2 =
            decode_upgrading::<RoomV1, RoomV2>("rooms", || "102".into(), &bytes).unwrap();
        assert_eq!(decoded, new);
    }

    #[test]
    fn empty_and_trailing_bytes_rejected() {
        assert!(decode_step(&[]).is_err());
        let mut body = bincode::serde::encode_to_vec(sample_step(), config()).unwrap();
        body.push(0);
        let mut bytes = vec![RECORD_FORMAT];
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let err = decode_step(&bytes).unwrap_err().to_string();
        assert!(err.contains("1 trailing bytes"), "{err}");

        let mut old = encode_format1(&sample_step());
        old.push(0);
        let err = decode_step(&old).unwrap_err().to_string();
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
