//! Step codes derived from step names, for exports without a code column.

use std::collections::HashSet;

use crate::plan::MAX_CODE_LEN;

/// Derives a step code from a step name.
///
/// The name is lowercased and folded to ASCII: the Turkish letters `ç ğ ı i̇ ö ş ü` (and their
/// capitals, `İ` and `I` included) become `c g i i o s u`, and common accented Latin letters lose
/// their accents (`â é ñ` become `a e n`, `ß` becomes `ss`). Every run of other characters
/// becomes one `_`, and leading and trailing `_` are dropped, so "Çıkış Kontrolü" becomes
/// `cikis_kontrolu`. The code is cut to 64 bytes. A name with no letter or digit left gives
/// `step_ORDER`.
pub fn derive_code(name: &str, order: u32) -> String {
    let mut code = String::with_capacity(name.len());
    let mut pending_separator = false;
    for c in name.chars() {
        match fold(c) {
            Some(folded) => {
                if pending_separator && !code.is_empty() {
                    code.push('_');
                }
                pending_separator = false;
                code.push_str(folded);
            }
            None => pending_separator = true,
        }
    }
    if code.is_empty() {
        return format!("step_{order}");
    }
    cut(&mut code, MAX_CODE_LEN);
    code
}

/// Returns `c` folded to lowercase ASCII letters or digits, or `None` for a separator.
fn fold(c: char) -> Option<&'static str> {
    const ASCII: &str = "0123456789abcdefghijklmnopqrstuvwxyz";
    if c.is_ascii_alphanumeric() {
        let lower = c.to_ascii_lowercase();
        let index = ASCII.find(lower)?;
        return Some(&ASCII[index..=index]);
    }
    // The Turkish letters `ç ğ ı İ ö ş ü` and their capitals come first in their arms.
    let folded = match c {
        'ç' | 'Ç' | 'č' | 'Č' | 'ć' | 'Ć' => "c",
        'ğ' | 'Ğ' => "g",
        'ı' | 'İ' | 'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "i",
        'ö' | 'Ö' | 'ò' | 'ó' | 'ô' | 'õ' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ø' | 'ő' | 'Ő' => {
            "o"
        }
        'ş' | 'Ş' | 'š' | 'Š' | 'ś' | 'Ś' => "s",
        'ü' | 'Ü' | 'ù' | 'ú' | 'û' | 'Ù' | 'Ú' | 'Û' | 'ű' | 'Ű' | 'ů' | 'Ů' => "u",
        // The combining dot above of a decomposed `İ` (I + U+0307) adds nothing.
        '\u{307}' => "",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'ą' | 'Ą' => {
            "a"
        }
        'æ' | 'Æ' => "ae",
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' | 'ę' | 'Ę' | 'ě' | 'Ě' => "e",
        'ñ' | 'Ñ' | 'ň' | 'Ň' | 'ń' | 'Ń' => "n",
        'œ' | 'Œ' => "oe",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        // Latin Extended-A letters without a Latin-1 relative above.
        'đ' | 'Đ' | 'ď' | 'Ď' => "d",
        'ł' | 'Ł' | 'ľ' | 'Ľ' => "l",
        'ř' | 'Ř' => "r",
        'ť' | 'Ť' => "t",
        'ž' | 'Ž' | 'ź' | 'Ź' | 'ż' | 'Ż' => "z",
        _ => return None,
    };
    Some(folded)
}

/// Cuts an ASCII code to at most `max` bytes without leaving a trailing `_`.
fn cut(code: &mut String, max: usize) {
    code.truncate(max);
    while code.ends_with('_') {
        code.pop();
    }
}

/// Hands out codes unique within one operation: a derived code that is taken gets `_2`, `_3`
/// and so on, cut so that the whole stays within 64 bytes.
#[derive(Debug, Default)]
pub(super) struct CodeSet {
    taken: HashSet<String>,
}

impl CodeSet {
    /// Reserves a code given in the file; returns `false` when it is taken already.
    pub(super) fn reserve(&mut self, code: &str) -> bool {
        self.taken.insert(code.to_owned())
    }

    /// Returns `derived`, or the first of `derived_2`, `derived_3` … that is free, and reserves
    /// it.
    pub(super) fn unique(&mut self, derived: String) -> String {
        if self.taken.insert(derived.clone()) {
            return derived;
        }
        let mut number = 2_u64;
        loop {
            let suffix = format!("_{number}");
            let mut base = derived.clone();
            cut(&mut base, MAX_CODE_LEN - suffix.len());
            let candidate = format!("{base}{suffix}");
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            number += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turkish_names_fold_to_ascii() {
        assert_eq!(derive_code("Çıkış Kontrolü", 1), "cikis_kontrolu");
        assert_eq!(derive_code("Gün Sonu İşlemi", 1), "gun_sonu_islemi");
        assert_eq!(derive_code("ĞÜŞİÖÇ ığüşöç", 1), "gusioc_igusoc");
        assert_eq!(
            derive_code("Oda ve Vergi Kayıtları — KDV %10", 1),
            "oda_ve_vergi_kayitlari_kdv_10"
        );
        assert_eq!(derive_code("  --Ön Denetim--  ", 1), "on_denetim");
        assert_eq!(derive_code("I\u{307}ade", 1), "iade");
    }

    #[test]
    fn name_without_letters_gives_order_code() {
        assert_eq!(derive_code("— % —", 30), "step_30");
        assert_eq!(derive_code("Отчёт", 7), "step_7");
    }

    #[test]
    fn long_name_is_cut_to_64_bytes() {
        let code = derive_code(&"a b ".repeat(40), 1);
        assert!(code.len() <= MAX_CODE_LEN);
        assert!(!code.ends_with('_'));
    }

    #[test]
    fn taken_codes_get_suffixes() {
        let mut codes = CodeSet::default();
        assert!(codes.reserve("backup"));
        assert_eq!(codes.unique("backup".into()), "backup_2");
        assert_eq!(codes.unique("backup".into()), "backup_3");
        let long = "x".repeat(MAX_CODE_LEN);
        assert_eq!(codes.unique(long.clone()), long);
        let second = codes.unique(long);
        assert_eq!(second.len(), MAX_CODE_LEN);
        assert!(second.ends_with("_2"));
    }
}
