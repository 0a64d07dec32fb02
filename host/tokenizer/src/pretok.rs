//! GPT-2 style pre-tokenization (word splitting before BPE), matching
//! llama.cpp's `unicode_regex_split` for the regex lists it handles:
//!
//! * `Gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
//!   (llama.cpp's hand-written `unicode_regex_split_custom_gpt2`, quirks included:
//!   a whitespace run followed by more text gives up its last character, a lone
//!   trailing space becomes its own word).
//! * `Smollm` (also StarCoder, Refact, Command-R...): `\p{N}` first, so every
//!   digit is its own fragment, then the GPT-2 rules inside each fragment.

use crate::unicode::{flags, Flags};

/// Which regex list splits text into words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PreTokenizer {
    Gpt2,
    Smollm,
}

/// Splits `text` into words, appending them to `out` (they borrow `text`).
pub(crate) fn split<'a>(pre: PreTokenizer, text: &'a str, out: &mut Vec<&'a str>) {
    // Byte offset of each char, plus the end.
    let mut offs: Vec<usize> = Vec::with_capacity(text.len() + 1);
    let mut chars: Vec<char> = Vec::with_capacity(text.len());
    let mut fl: Vec<Flags> = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        offs.push(i);
        chars.push(c);
        fl.push(flags(c));
    }
    offs.push(text.len());
    let n = chars.len();

    let mut words: Vec<(usize, usize)> = Vec::new();
    match pre {
        PreTokenizer::Gpt2 => gpt2(&chars, &fl, 0, n, &mut words),
        PreTokenizer::Smollm => {
            // `\p{N}`: each number char is a fragment; so is each run between.
            let mut start = 0;
            for i in 0..n {
                if fl[i].is_number() {
                    gpt2(&chars, &fl, start, i, &mut words);
                    words.push((i, i + 1));
                    start = i + 1;
                }
            }
            gpt2(&chars, &fl, start, n, &mut words);
        }
    }
    out.extend(words.into_iter().map(|(a, b)| &text[offs[a]..offs[b]]));
}

/// The GPT-2 splitter over chars `ini..end`, pushing char ranges.
fn gpt2(chars: &[char], fl: &[Flags], ini: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    // Flags at `pos`, or None outside the fragment.
    let get = |pos: usize| -> Option<Flags> { (pos >= ini && pos < end).then(|| fl[pos]) };
    let is_letter = |pos: usize| get(pos).is_some_and(|f| f.is_letter());
    let is_number = |pos: usize| get(pos).is_some_and(|f| f.is_number());
    let is_other = |pos: usize| get(pos).is_some_and(|f| !f.whitespace && !f.is_letter() && !f.is_number());
    let is_ws = |pos: usize| get(pos).is_some_and(|f| f.whitespace);

    let mut prev = ini;
    let mut add = |to: usize, out: &mut Vec<(usize, usize)>| {
        if to > prev {
            out.push((prev, to));
        }
        prev = to;
    };

    let mut pos = ini;
    while pos < end {
        let c = chars[pos];
        // 's|'t|'re|'ve|'m|'ll|'d
        if c == '\'' && pos + 1 < end {
            let c1 = chars[pos + 1];
            if matches!(c1, 's' | 't' | 'm' | 'd') {
                pos += 2;
                add(pos, out);
                continue;
            }
            if pos + 2 < end {
                let c2 = chars[pos + 2];
                if matches!((c1, c2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    pos += 3;
                    add(pos, out);
                    continue;
                }
            }
        }
        // The class is decided by the char after an optional leading space.
        let probe = if c == ' ' { pos + 1 } else { pos };
        let skip = usize::from(c == ' ');
        // <space>?\p{L}+ | <space>?\p{N}+ | <space>?[^\s\p{L}\p{N}]+
        let class: Option<&dyn Fn(usize) -> bool> = if is_letter(probe) {
            Some(&is_letter)
        } else if is_number(probe) {
            Some(&is_number)
        } else if is_other(probe) {
            Some(&is_other)
        } else {
            None
        };
        if let Some(class) = class {
            pos += skip;
            while class(pos) {
                pos += 1;
            }
            add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        while is_ws(pos + n_ws) {
            n_ws += 1;
        }
        if n_ws > 1 && pos + n_ws < end {
            // \s+(?!\S): leave the last whitespace char to the next word.
            pos += n_ws - 1;
        } else if n_ws > 0 {
            pos += n_ws;
        } else {
            pos += 1;
        }
        add(pos, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        split(pre, s, &mut out);
        out
    }

    #[test]
    fn gpt2_rules() {
        let g = PreTokenizer::Gpt2;
        assert_eq!(words(g, "Hello world"), ["Hello", " world"]);
        assert_eq!(words(g, "don't  stop"), ["don", "'t", " ", " stop"]);
        assert_eq!(words(g, "trailing "), ["trailing", " "]);
        assert_eq!(words(g, "a\tb"), ["a", "\t", "b"]);
        assert_eq!(words(g, "x   "), ["x", "   "]);
        assert_eq!(words(g, "f(x): !!"), ["f", "(", "x", "):", " !!"]);
        assert_eq!(words(g, "abc 123"), ["abc", " 123"]);
    }

    #[test]
    fn smollm_splits_digits() {
        let s = PreTokenizer::Smollm;
        assert_eq!(words(s, "abc 123"), ["abc", " ", "1", "2", "3"]);
        assert_eq!(words(s, "3.14"), ["3", ".", "1", "4"]);
    }
}
