//! The few Unicode facts the pre-tokenizers need, matching llama.cpp's
//! `unicode.cpp`: a coarse category per code point, the `White_Space`
//! property, and GPT-2's byte ↔ printable-character table.

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// Coarse category of a code point, as llama.cpp's `unicode_cpt_flags`
/// (one of `\p{N}`, `\p{L}`, `\p{Z}`, `\p{M}`, `\p{P}`, `\p{S}`, `\p{C}`, or
/// unassigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Undefined,
    Number,
    Letter,
    Separator,
    Mark,
    Punctuation,
    Symbol,
    Control,
}

/// Category flags of one code point.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flags {
    pub category: Category,
    pub whitespace: bool,
}

impl Flags {
    pub fn is_letter(self) -> bool {
        self.category == Category::Letter
    }
    pub fn is_number(self) -> bool {
        self.category == Category::Number
    }
}

/// Unicode `White_Space` (PropList.txt), llama.cpp's `\s`.
pub(crate) fn is_whitespace(c: char) -> bool {
    matches!(
        c as u32,
        0x09..=0x0D
            | 0x20
            | 0x85
            | 0xA0
            | 0x1680
            | 0x2000..=0x200A
            | 0x2028
            | 0x2029
            | 0x202F
            | 0x205F
            | 0x3000
    )
}

pub(crate) fn category(c: char) -> Category {
    match get_general_category(c) {
        G::UppercaseLetter
        | G::LowercaseLetter
        | G::TitlecaseLetter
        | G::ModifierLetter
        | G::OtherLetter => Category::Letter,
        G::DecimalNumber | G::LetterNumber | G::OtherNumber => Category::Number,
        G::SpaceSeparator | G::LineSeparator | G::ParagraphSeparator => Category::Separator,
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark => Category::Mark,
        G::ConnectorPunctuation
        | G::DashPunctuation
        | G::OpenPunctuation
        | G::ClosePunctuation
        | G::InitialPunctuation
        | G::FinalPunctuation
        | G::OtherPunctuation => Category::Punctuation,
        G::MathSymbol | G::CurrencySymbol | G::ModifierSymbol | G::OtherSymbol => Category::Symbol,
        G::Control | G::Format | G::Surrogate | G::PrivateUse => Category::Control,
        _ => Category::Undefined,
    }
}

pub(crate) fn flags(c: char) -> Flags {
    Flags { category: category(c), whitespace: is_whitespace(c) }
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
        assert!(flags('a').is_letter());
        assert!(flags('日').is_letter());
        assert!(flags('٣').is_number());
        assert!(flags('\u{a0}').whitespace);
        assert!(!flags('\u{200b}').whitespace);
        assert_eq!(category('\u{200b}'), Category::Control);
        assert_eq!(category('!'), Category::Punctuation);
    }
}
