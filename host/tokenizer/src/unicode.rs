//! The Unicode facts the tokenizers need, exactly as llama.cpp's
//! `unicode.cpp` has them: a category per code point (from llama.cpp's own
//! generated tables, see `unicode_data.rs`, so both agree on every code
//! point whatever the Unicode version), the `White_Space` set, lowercase
//! and accent-stripping maps, and GPT-2's byte ↔ printable-character table.

use crate::unicode_data::{CATEGORY_RANGES, LOWERCASE, NFD_RANGES};

/// Category flags of one code point, llama.cpp's `unicode_cpt_flags`: one
/// category bit (or `UNDEFINED`) plus `WHITESPACE`. [`Flags::NONE`] (all
/// clear) stands for "outside the text", as llama.cpp's splitters use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Flags(u16);

impl Flags {
    pub const NONE: Flags = Flags(0);
    pub const UNDEFINED: u16 = 0x0001;
    pub const NUMBER: u16 = 0x0002;
    pub const LETTER: u16 = 0x0004;
    #[allow(dead_code)]
    pub const SEPARATOR: u16 = 0x0008;
    pub const ACCENT_MARK: u16 = 0x0010;
    pub const PUNCTUATION: u16 = 0x0020;
    pub const SYMBOL: u16 = 0x0040;
    pub const CONTROL: u16 = 0x0080;
    pub const WHITESPACE: u16 = 0x0100;

    #[inline]
    fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    #[inline]
    pub fn is_letter(self) -> bool {
        self.has(Self::LETTER)
    }
    #[inline]
    pub fn is_number(self) -> bool {
        self.has(Self::NUMBER)
    }
    #[inline]
    pub fn is_whitespace(self) -> bool {
        self.has(Self::WHITESPACE)
    }
    #[inline]
    pub fn is_accent_mark(self) -> bool {
        self.has(Self::ACCENT_MARK)
    }
    #[inline]
    pub fn is_punctuation(self) -> bool {
        self.has(Self::PUNCTUATION)
    }
    #[inline]
    pub fn is_symbol(self) -> bool {
        self.has(Self::SYMBOL)
    }
    #[inline]
    pub fn is_control(self) -> bool {
        self.has(Self::CONTROL)
    }
    /// Any flag at all: false only for [`Flags::NONE`] (outside the text).
    #[inline]
    pub fn any(self) -> bool {
        self.0 != 0
    }
    /// The category bits alone (`category_flag()`).
    #[inline]
    pub fn category(self) -> u16 {
        self.0 & 0xFF
    }
}

/// Unicode `White_Space` (PropList.txt), llama.cpp's `unicode_set_whitespace`.
pub(crate) fn is_whitespace(c: u32) -> bool {
    matches!(
        c,
        0x09..=0x0D | 0x20 | 0x85 | 0xA0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

/// Category bits of code point `c` (llama.cpp's `unicode_ranges_flags`).
fn category_bits(c: u32) -> u16 {
    // The last range starts at the end of Unicode, so `i` is always a
    // real range for valid code points.
    let i = CATEGORY_RANGES.partition_point(|&(start, _)| start <= c);
    match i.checked_sub(1) {
        Some(i) if c < 0x110000 => u16::from(CATEGORY_RANGES[i].1),
        _ => Flags::UNDEFINED,
    }
}

/// The flags of code point `c`.
pub(crate) fn flags(c: u32) -> Flags {
    let ws = if is_whitespace(c) { Flags::WHITESPACE } else { 0 };
    Flags(category_bits(c) | ws)
}

/// `unicode_tolower`: the simple lowercase mapping of llama.cpp's table.
pub(crate) fn to_lower(c: u32) -> u32 {
    match LOWERCASE.binary_search_by_key(&c, |&(u, _)| u) {
        Ok(i) => LOWERCASE[i].1,
        Err(_) => c,
    }
}

/// `unicode_cpts_normalize_nfd` for one code point: llama.cpp's table maps
/// a precomposed character to its base character (the accent is dropped).
pub(crate) fn nfd_base(c: u32) -> u32 {
    let i = NFD_RANGES.partition_point(|&(first, _, _)| first <= c);
    match i.checked_sub(1) {
        Some(i) if NFD_RANGES[i].0 <= c && c <= NFD_RANGES[i].1 => NFD_RANGES[i].2,
        _ => c,
    }
}

/// GPT-2's byte → char table: printable Latin-1 bytes map to themselves, the
/// rest to U+0100.. in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    table
}

/// Inverse of [`byte_to_char_table`]: the byte a GPT-2 printable char stands for.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let u = c as u32;
    match u {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(u as u8),
        0x100..=0x143 => {
            // The 68 non-printable bytes, in order: 0x00-0x20, 0x7F-0xA0, 0xAD.
            let k = u - 0x100;
            let b = if k <= 0x20 {
                k
            } else if k <= 0x20 + 34 {
                0x7F + (k - 0x21)
            } else {
                0xAD
            };
            Some(b as u8)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_round_trips() {
        let t = byte_to_char_table();
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(t[b as usize]), Some(b), "byte {b:#x}");
        }
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
    }

    #[test]
    fn categories() {
        let f = |c: char| flags(c as u32);
        assert!(f('a').is_letter());
        assert!(f('日').is_letter());
        assert!(f('٣').is_number());
        assert!(f('\u{a0}').is_whitespace());
        assert!(!f('\u{200b}').is_whitespace());
        assert!(f('\u{200b}').is_control());
        assert!(f('!').is_punctuation());
        assert!(f('$').is_symbol());
        assert!(f('\u{301}').is_accent_mark());
        assert_eq!(f('\u{378}').category(), Flags::UNDEFINED); // unassigned
        assert_eq!(f('\u{10FFFF}').category(), Flags::UNDEFINED);
        assert!(!Flags::NONE.any() && f('\u{378}').any());
    }

    #[test]
    fn lower_and_nfd() {
        assert_eq!(to_lower('A' as u32), 'a' as u32);
        assert_eq!(to_lower('Ä' as u32), 'ä' as u32);
        assert_eq!(to_lower('a' as u32), 'a' as u32);
        assert_eq!(nfd_base('é' as u32), 'e' as u32);
        assert_eq!(nfd_base('x' as u32), 'x' as u32);
    }
}
