//! Decoding a CSV file's bytes into text, and spotting mojibake in the decoded text.
//!
//! Windows-1254 is decoded with `encoding_rs`, which follows the WHATWG Encoding Standard. That
//! standard maps the label `iso-8859-9` to windows-1254, but the two differ in bytes 0x80 to
//! 0x9F: windows-1254 has 25 printable characters there (`€`, `‚`, `Š`, `Ÿ` …), where
//! ISO-8859-9 has only C1 control codes. Bytes 0xA0 to 0xFF, the Turkish letters among them,
//! are the same in both. So ISO-8859-9 is decoded through the same table for 0xA0 to 0xFF, and
//! its bytes 0x80 to 0x9F are rejected.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Serialize;

use super::ImportError;

/// The character encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark. The default.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// Windows-1254 (Turkish), which Windows programs in Turkish write.
    #[serde(rename = "windows-1254")]
    Windows1254,
    /// ISO-8859-9 (Latin-5, Turkish).
    #[serde(rename = "iso-8859-9")]
    Iso8859_9,
}

impl Encoding {
    /// Returns the name that `--encoding` takes: `utf-8`, `windows-1254` or `iso-8859-9`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1254 => "windows-1254",
            Encoding::Iso8859_9 => "iso-8859-9",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Encoding {
    type Err = String;

    /// Parses an encoding name, case-insensitively: `utf-8` (or `utf8`), `windows-1254` (or
    /// `cp1254`), `iso-8859-9` (or `latin5`).
    fn from_str(text: &str) -> Result<Encoding, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "windows-1254" | "cp1254" => Ok(Encoding::Windows1254),
            "iso-8859-9" | "latin5" => Ok(Encoding::Iso8859_9),
            _ => Err(format!(
                "unknown encoding `{text}`: use utf-8, windows-1254 or iso-8859-9"
            )),
        }
    }
}

/// The UTF-8 byte-order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Bytes that windows-1254 leaves undefined; `encoding_rs` decodes them to C1 control codes.
const UNDEFINED_IN_1254: [u8; 7] = [0x81, 0x8D, 0x8E, 0x8F, 0x90, 0x9D, 0x9E];

/// Decodes `bytes` in `encoding`. A UTF-8 byte-order mark is dropped.
///
/// # Errors
///
/// Returns an [`ImportError`] naming the line and byte offset of the first byte that is not
/// text in `encoding`, and for a UTF-8 byte-order mark in a file declared single-byte.
pub(super) fn decode(bytes: &[u8], encoding: Encoding) -> Result<String, ImportError> {
    let has_bom = bytes.starts_with(UTF8_BOM);
    match encoding {
        Encoding::Utf8 => {
            let body = if has_bom {
                &bytes[UTF8_BOM.len()..]
            } else {
                bytes
            };
            let start = bytes.len() - body.len();
            match std::str::from_utf8(body) {
                Ok(text) => Ok(text.to_owned()),
                Err(err) => {
                    let offset = start + err.valid_up_to();
                    let end = bytes.len().min(offset + err.error_len().unwrap_or(1));
                    let verb = if end - offset == 1 { "is" } else { "are" };
                    Err(undecodable(
                        bytes,
                        offset,
                        &bytes[offset..end],
                        &format!(
                            "{verb} not valid UTF-8; if the file comes from a Windows program in \
                             Turkish, try `--encoding windows-1254`"
                        ),
                    ))
                }
            }
        }
        Encoding::Windows1254 | Encoding::Iso8859_9 => {
            if has_bom {
                return Err(ImportError::at_line(
                    1,
                    format!(
                        "the file starts with a UTF-8 byte-order mark, so it is UTF-8, not \
                         {encoding}: leave out `--encoding` or give `--encoding utf-8`"
                    ),
                ));
            }
            decode_single_byte(bytes, encoding)
        }
    }
}

fn decode_single_byte(bytes: &[u8], encoding: Encoding) -> Result<String, ImportError> {
    let rejected = bytes.iter().position(|&b| match encoding {
        Encoding::Iso8859_9 => (0x80..=0x9F).contains(&b),
        _ => UNDEFINED_IN_1254.contains(&b),
    });
    if let Some(offset) = rejected {
        let byte = bytes[offset];
        let in_1254 = windows_1254_char(byte);
        let detail = match encoding {
            Encoding::Iso8859_9 if !in_1254.is_control() => format!(
                "is a C1 control code in ISO-8859-9, not text; it is `{in_1254}` in \
                 windows-1254, so try `--encoding windows-1254`"
            ),
            Encoding::Iso8859_9 => "is a C1 control code in ISO-8859-9, not text".to_owned(),
            _ => "is not a character in windows-1254; check the file's encoding".to_owned(),
        };
        return Err(undecodable(bytes, offset, &[byte], &detail));
    }
    // Both encodings agree with windows-1254 on every byte that is left.
    let (text, _) = encoding_rs::WINDOWS_1254.decode_without_bom_handling(bytes);
    Ok(text.into_owned())
}

/// Returns the character that windows-1254 (as `encoding_rs` decodes it) gives `byte`.
pub(super) fn windows_1254_char(byte: u8) -> char {
    let (text, _) =
        encoding_rs::WINDOWS_1254.decode_without_bom_handling(std::slice::from_ref(&byte));
    text.chars().next().unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Builds the error for the undecodable bytes `bad` at `offset`, with their line number.
fn undecodable(bytes: &[u8], offset: usize, bad: &[u8], detail: &str) -> ImportError {
    let line = bytes[..offset].split(|&b| b == b'\n').count() as u64;
    let line_start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    ImportError {
        line: Some(line),
        column: None,
        byte_offset: Some(offset as u64),
        message: format!(
            "{} (byte {} of the line) {detail}",
            hex(bad),
            offset - line_start + 1
        ),
    }
}

/// Writes bytes for a message, such as `byte 0xFC` or `bytes 0xC3 0x28`.
fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("0x{b:02X}")).collect();
    let noun = if bytes.len() == 1 { "byte" } else { "bytes" };
    format!("{noun} {}", parts.join(" "))
}

/// Maps each character that windows-1254 or ISO-8859-9 decodes from a byte 0x80 to 0xFF back to
/// that byte.
fn single_byte_table() -> &'static std::collections::HashMap<char, u8> {
    static TABLE: OnceLock<std::collections::HashMap<char, u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = std::collections::HashMap::new();
        for byte in 0x80..=0xFF_u8 {
            table.insert(windows_1254_char(byte), byte);
            // ISO-8859-9 read as Latin-1 leaves continuation bytes 0x80 to 0x9F as C1 codes.
            if byte <= 0x9F {
                table.insert(char::from(byte), byte);
            }
        }
        table
    })
}

/// Finds text that looks like UTF-8 decoded as a single-byte encoding, such as `GÃ¼n` for
/// `Gün`. Returns the garbled characters and the text they probably stood for.
///
/// A character sequence counts when its windows-1254 bytes form one valid multi-byte UTF-8
/// character. Turkish text in windows-1254 rarely does, because a UTF-8 lead byte (0xC2 to
/// 0xF4, `Â` to `ô`) would have to be followed by one to three of the bytes 0x80 to 0xBF.
pub(super) fn mojibake(text: &str) -> Option<(String, String)> {
    if text.is_ascii() {
        return None;
    }
    let table = single_byte_table();
    let chars: Vec<char> = text.chars().collect();
    for start in 0..chars.len() {
        let Some(&lead) = table.get(&chars[start]) else {
            continue;
        };
        let needed = match lead {
            0xC2..=0xDF => 1,
            0xE0..=0xEF => 2,
            0xF0..=0xF4 => 3,
            _ => continue,
        };
        let Some(rest) = chars.get(start + 1..=start + needed) else {
            continue;
        };
        let mut bytes = vec![lead];
        for c in rest {
            match table.get(c) {
                Some(&b) if (0x80..=0xBF).contains(&b) => bytes.push(b),
                _ => break,
            }
        }
        if bytes.len() != needed + 1 {
            continue;
        }
        if let Ok(meant) = std::str::from_utf8(&bytes) {
            let garbled: String = chars[start..=start + needed].iter().collect();
            return Some((garbled, meant.to_owned()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1254_decodes_turkish_letters() {
        let bytes = b"G\xFCn Sonu \xDD\xFElemi \xC7\xFDk\xFD\xFE \xD0\xF0";
        let text = decode(bytes, Encoding::Windows1254).unwrap();
        assert_eq!(text, "Gün Sonu İşlemi Çıkış Ğğ");
    }

    #[test]
    fn iso_8859_9_matches_1254_above_0xa0() {
        // ISO-8859-9 is Latin-1 with six Turkish letters in place of Icelandic ones.
        for byte in 0xA0..=0xFF_u8 {
            let expected = match byte {
                0xD0 => 'Ğ',
                0xDD => 'İ',
                0xDE => 'Ş',
                0xF0 => 'ğ',
                0xFD => 'ı',
                0xFE => 'ş',
                _ => char::from(byte),
            };
            let text = decode(&[byte], Encoding::Iso8859_9).unwrap();
            assert_eq!(text, expected.to_string(), "byte {byte:#04X}");
        }
    }

    #[test]
    fn iso_8859_9_rejects_c1_bytes() {
        let err = decode(b"ab\ncd\x80", Encoding::Iso8859_9).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert_eq!(err.byte_offset, Some(5));
        assert!(err.message.contains("`€` in windows-1254"), "{err}");
    }

    #[test]
    fn windows_1254_rejects_undefined_bytes() {
        for byte in UNDEFINED_IN_1254 {
            let err = decode(&[b'a', byte], Encoding::Windows1254).unwrap_err();
            assert_eq!(err.byte_offset, Some(1), "byte {byte:#04X}");
        }
        // The printable bytes of 0x80 to 0x9F decode.
        assert_eq!(decode(b"\x80\x9F", Encoding::Windows1254).unwrap(), "€Ÿ");
    }

    #[test]
    fn utf8_error_names_line_and_offset() {
        let err = decode(b"a,b\nG\xFCn,c\n", Encoding::Utf8).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert_eq!(err.byte_offset, Some(5));
        assert!(err.message.contains("byte 2 of the line"), "{err}");
        assert!(err.message.contains("0xFC"), "{err}");
    }

    #[test]
    fn utf8_bom_is_dropped() {
        assert_eq!(decode(b"\xEF\xBB\xBFa", Encoding::Utf8).unwrap(), "a");
    }

    #[test]
    fn mojibake_found_and_explained() {
        assert_eq!(
            mojibake("GÃ¼n Sonu"),
            Some(("Ã¼".to_owned(), "ü".to_owned()))
        );
        assert_eq!(mojibake("Ä°ÅŸlem"), Some(("Ä°".to_owned(), "İ".to_owned())));
        assert_eq!(mojibake("Gün Sonu İşlemi Çıkış Kontrolü"), None);
        assert_eq!(mojibake("plain ascii"), None);
    }
}
