//! Pre-tokenization (word splitting before BPE), matching llama.cpp's
//! `unicode_regex_split` for the regex lists of the pre-tokenizers we support.
//!
//! llama.cpp applies a list of regexes in turn, each one splitting every
//! piece the previous ones left (a regex's matches become pieces, and so
//! does the unmatched text between them). Some regexes have hand-written
//! splitters in llama.cpp (GPT-2, Llama 3, Qwen 2, Qwen 3.5, newline runs);
//! the others run through `std::regex`, over a "collapsed" text in which
//! every non-ASCII code point is replaced by one byte standing for its
//! category (when the regex uses `\p{..}`), or over the code points with
//! non-ASCII whitespace replaced by U+000B (when it does not). Every regex
//! is hand-written here, over the code points' category flags, in linear
//! time, with those substitutions' quirks: e.g. `\s` is ASCII whitespace or
//! non-ASCII `White_Space`, and U+3000 never matches a class that lists it
//! (it became U+000B first).

use std::sync::OnceLock;

use crate::unicode::{self, Flags};

/// Which regex list splits text into words (llama.cpp's `llama_vocab_pre_type`
/// for the BPE pre-tokenizers we implement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PreTokenizer {
    /// `LLAMA_VOCAB_PRE_TYPE_DEFAULT` (no or `default` pre-tokenizer).
    Default,
    /// GPT-2's regex alone (`gpt-2`, `mpt`, `olmo`, ...).
    Gpt2,
    /// `\p{N}` (each digit alone), then GPT-2 (`starcoder`, `smollm`, ...).
    Starcoder,
    /// Punctuation runs, GPT-2, digit triples.
    Falcon,
    /// Llama 3's regex (`llama-bpe`, `dbrx`, ...).
    Llama3,
    /// Qwen 2's regex (`qwen2`, ...): Llama 3's with single digits.
    Qwen2,
    /// Qwen 3.5's: Qwen 2's with combining marks joining letters.
    Qwen35,
    /// DeepSeek LLM's list of six.
    DeepseekLlm,
    /// DeepSeek Coder's list of five.
    DeepseekCoder,
    /// Runs of newlines and runs of anything else (Gemma 4's SPM-style BPE).
    Newlines,
}

/// One regex of a list.
#[derive(Clone, Copy, Debug)]
enum Pass {
    /// The hand-written splitters of llama.cpp.
    Gpt2,
    Llama3,
    Qwen2,
    Qwen35,
    Newlines,
    /// `[X]+`
    Run(Class),
    /// `[X]`
    Each(Class),
    /// `\s?[X]+`
    WsRun(Class),
    /// `\s+$`
    TrailingSpace,
    /// `[0-9][0-9][0-9]`
    DigitTriples,
}

/// A character class of a `std::regex` pass, with the substitution it sees.
#[derive(Clone, Copy, Debug)]
enum Class {
    /// `[\r\n]`
    CrLf,
    /// `\p{N}` over the collapsed text.
    Number,
    /// `\p{L}` over the collapsed text.
    Letter,
    /// `\p{P}` over the collapsed text.
    Punct,
    /// `[\p{P}\$\+<=>\^~\|]` (the default list's first regex).
    DefaultPunct,
    /// `[\p{P}\$\+<=>\^~\|`]` (Falcon's).
    FalconPunct,
    /// DeepSeek LLM's Latin/Greek/Cyrillic/... letter class.
    DeepseekLetter,
    /// DeepSeek LLM's ASCII and full-width punctuation class.
    DeepseekPunct,
    /// `[一-龥ࠀ-一가-퟿]` (DeepSeek's CJK class).
    Cjk,
}

impl PreTokenizer {
    fn passes(self) -> &'static [Pass] {
        use Class::*;
        use Pass::*;
        match self {
            PreTokenizer::Default => &[Run(DefaultPunct), Gpt2, Run(Number), DigitTriples],
            PreTokenizer::Gpt2 => &[Gpt2],
            PreTokenizer::Starcoder => &[Each(Number), Gpt2],
            PreTokenizer::Falcon => &[Run(FalconPunct), Gpt2, DigitTriples],
            PreTokenizer::Llama3 => &[Llama3],
            PreTokenizer::Qwen2 => &[Qwen2],
            PreTokenizer::Qwen35 => &[Qwen35],
            PreTokenizer::DeepseekLlm => {
                &[Each(CrLf), WsRun(DeepseekLetter), WsRun(DeepseekPunct), TrailingSpace, Run(Cjk), Run(Number)]
            }
            PreTokenizer::DeepseekCoder => &[Each(CrLf), WsRun(Letter), WsRun(Punct), Run(Cjk), Each(Number)],
            PreTokenizer::Newlines => &[Newlines],
        }
    }
}

/// DeepSeek LLM's letter class, verbatim from llama.cpp's regex (escaped:
/// Unicode normalization of the source would turn e.g. U+212A KELVIN SIGN
/// into `K` and widen a range).
const DEEPSEEK_LETTERS: &str = "A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}";
/// DeepSeek LLM's punctuation class, verbatim.
const DEEPSEEK_PUNCT: &str = "!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}";
/// DeepSeek's CJK class, verbatim.
const DEEPSEEK_CJK: &str = "\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}";

/// The ranges of a bracket expression's body (`a-z` ranges and single chars).
fn parse_class(body: &str) -> Vec<(u32, u32)> {
    let cs: Vec<u32> = body.chars().map(|c| c as u32).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if i + 2 < cs.len() && cs[i + 1] == '-' as u32 {
            out.push((cs[i], cs[i + 2]));
            i += 3;
        } else {
            out.push((cs[i], cs[i]));
            i += 1;
        }
    }
    out
}

fn in_ranges(ranges: &[(u32, u32)], c: u32) -> bool {
    ranges.iter().any(|&(a, b)| a <= c && c <= b)
}

fn ranges(which: usize) -> &'static [(u32, u32)] {
    static R: OnceLock<[Vec<(u32, u32)>; 3]> = OnceLock::new();
    &R.get_or_init(|| [parse_class(DEEPSEEK_LETTERS), parse_class(DEEPSEEK_PUNCT), parse_class(DEEPSEEK_CJK)])[which]
}

/// `\s` of `std::regex` in the C locale, after llama.cpp's substitution of
/// non-ASCII whitespace by U+000B.
#[inline]
fn regex_space(c: u32, f: Flags) -> bool {
    matches!(c, 0x09..=0x0D | 0x20) || (c > 0x7F && f.is_whitespace())
}

/// The category a non-ASCII code point collapses to (`None`: whitespace,
/// which collapses to U+000B, or a category no class names).
#[inline]
fn collapsed_is(c: u32, f: Flags, category: u16) -> bool {
    c > 0x7F && !f.is_whitespace() && f.category() == category
}

/// ASCII `\p{P}` as llama.cpp spells it out for the collapsed regex.
#[inline]
fn ascii_punct(c: u32) -> bool {
    matches!(char::from_u32(c), Some('!'..='#' | '%'..='*' | ','..='/' | ':' | ';' | '?' | '@' | '['..=']' | '_' | '{' | '}'))
}

impl Class {
    fn matches(self, c: u32, f: Flags) -> bool {
        // What `std::wregex` sees: non-ASCII whitespace became U+000B.
        let w = if c > 0x7F && f.is_whitespace() { 0x0B } else { c };
        match self {
            Class::CrLf => c == '\r' as u32 || c == '\n' as u32,
            Class::Number => matches!(c, 0x30..=0x39) || collapsed_is(c, f, Flags::NUMBER),
            Class::Letter => matches!(c, 0x41..=0x5A | 0x61..=0x7A) || collapsed_is(c, f, Flags::LETTER),
            Class::Punct => ascii_punct(c) || collapsed_is(c, f, Flags::PUNCTUATION),
            Class::DefaultPunct => {
                Class::Punct.matches(c, f) || matches!(char::from_u32(c), Some('$' | '+' | '<' | '=' | '>' | '^' | '~' | '|'))
            }
            Class::FalconPunct => Class::DefaultPunct.matches(c, f) || c == '`' as u32,
            Class::DeepseekLetter => in_ranges(ranges(0), w),
            Class::DeepseekPunct => in_ranges(ranges(1), w),
            Class::Cjk => in_ranges(ranges(2), w),
        }
    }
}

/// The text as code points with their flags.
struct Cpts {
    c: Vec<u32>,
    f: Vec<Flags>,
}

/// Splits `text` into words, appending them to `out` (they borrow `text`).
pub(crate) fn split<'a>(pre: PreTokenizer, text: &'a str, out: &mut Vec<&'a str>) {
    // Byte offset of each char, plus the end.
    let mut offs: Vec<usize> = Vec::with_capacity(text.len() + 1);
    let mut cp = Cpts { c: Vec::with_capacity(text.len()), f: Vec::with_capacity(text.len()) };
    for (i, ch) in text.char_indices() {
        offs.push(i);
        cp.c.push(ch as u32);
        cp.f.push(unicode::flags(ch as u32));
    }
    offs.push(text.len());
    let n = cp.c.len();

    let mut pieces: Vec<(usize, usize)> = vec![(0, n)];
    let mut next: Vec<(usize, usize)> = Vec::new();
    for &pass in pre.passes() {
        next.clear();
        for &(a, b) in &pieces {
            run_pass(pass, &cp, a, b, &mut next);
        }
        std::mem::swap(&mut pieces, &mut next);
    }
    out.extend(pieces.into_iter().filter(|&(a, b)| b > a).map(|(a, b)| &text[offs[a]..offs[b]]));
}

/// Splits chars `a..b` with one regex, pushing the pieces in order.
fn run_pass(pass: Pass, cp: &Cpts, a: usize, b: usize, out: &mut Vec<(usize, usize)>) {
    match pass {
        Pass::Gpt2 => gpt2(cp, a, b, out),
        Pass::Llama3 => llama3(cp, a, b, out, Digits::UpTo3, false),
        Pass::Qwen2 => llama3(cp, a, b, out, Digits::One, false),
        Pass::Qwen35 => llama3(cp, a, b, out, Digits::One, true),
        Pass::Newlines => {
            let mut p = a;
            while p < b {
                let nl = cp.c[p] == '\n' as u32;
                let s = p;
                while p < b && (cp.c[p] == '\n' as u32) == nl {
                    p += 1;
                }
                out.push((s, p));
            }
        }
        _ => {
            // A `std::regex` split: the matches, and the text between them.
            let mut at = a;
            let mut emit = |s: usize, e: usize, out: &mut Vec<(usize, usize)>| {
                if s > at {
                    out.push((at, s));
                }
                out.push((s, e));
                at = e;
            };
            let is = |cls: Class, p: usize| p < b && cls.matches(cp.c[p], cp.f[p]);
            let space = |p: usize| p < b && regex_space(cp.c[p], cp.f[p]);
            match pass {
                Pass::Run(cls) => {
                    let mut p = a;
                    while p < b {
                        if is(cls, p) {
                            let s = p;
                            while is(cls, p) {
                                p += 1;
                            }
                            emit(s, p, out);
                        } else {
                            p += 1;
                        }
                    }
                }
                Pass::Each(cls) => {
                    for p in a..b {
                        if is(cls, p) {
                            emit(p, p + 1, out);
                        }
                    }
                }
                Pass::WsRun(cls) => {
                    let mut p = a;
                    while p < b {
                        // `\s?` is greedy: a space followed by the class
                        // joins the run; otherwise the run starts here.
                        let s = p;
                        let mut q = if space(p) && is(cls, p + 1) {
                            p + 1
                        } else if is(cls, p) {
                            p
                        } else {
                            p += 1;
                            continue;
                        };
                        while is(cls, q) {
                            q += 1;
                        }
                        emit(s, q, out);
                        p = q;
                    }
                }
                Pass::TrailingSpace => {
                    let mut s = b;
                    while s > a && space(s - 1) {
                        s -= 1;
                    }
                    if s < b {
                        emit(s, b, out);
                    }
                }
                Pass::DigitTriples => {
                    let digit = |p: usize| p < b && matches!(cp.c[p], 0x30..=0x39);
                    let mut p = a;
                    while p < b {
                        if digit(p) && digit(p + 1) && digit(p + 2) {
                            emit(p, p + 3, out);
                            p += 3;
                        } else {
                            p += 1;
                        }
                    }
                }
                _ => unreachable!("custom splitters are handled above"),
            }
            if at < b {
                out.push((at, b));
            }
        }
    }
}

const OUT_OF_RANGE: u32 = 0xFFFF_FFFF;

/// Accessors of one piece `ini..end`, as llama.cpp's `_get_cpt` and
/// `_get_flags`: outside the piece, `OUT_OF_RANGE` and no flags.
struct Piece<'a> {
    cp: &'a Cpts,
    ini: usize,
    end: usize,
    prev: usize,
}

impl Piece<'_> {
    #[inline]
    fn cpt(&self, p: usize) -> u32 {
        if p >= self.ini && p < self.end {
            self.cp.c[p]
        } else {
            OUT_OF_RANGE
        }
    }
    #[inline]
    fn flags(&self, p: usize) -> Flags {
        if p >= self.ini && p < self.end {
            self.cp.f[p]
        } else {
            Flags::NONE
        }
    }
    /// Ends the current word at `end`; returns its length.
    #[inline]
    fn add(&mut self, end: usize, out: &mut Vec<(usize, usize)>) -> usize {
        let len = end - self.prev;
        if len > 0 {
            out.push((self.prev, end));
        }
        self.prev = end;
        len
    }
}

/// llama.cpp's `unicode_regex_split_custom_gpt2`:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
/// quirks included (a whitespace run followed by more text gives up its
/// last character; a lone trailing space is its own word).
fn gpt2(cp: &Cpts, ini: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let mut t = Piece { cp, ini, end, prev: ini };
    let mut pos = ini;
    while pos < end {
        let cpt = t.cpt(pos);
        let flags = t.flags(pos);
        if cpt == '\'' as u32 && pos + 1 < end {
            let n1 = t.cpt(pos + 1);
            if [b's', b't', b'm', b'd'].iter().any(|&c| n1 == c as u32) {
                pos += t.add(pos + 2, out);
                continue;
            }
            if pos + 2 < end {
                let n2 = t.cpt(pos + 2);
                if contraction2(n1, n2) {
                    pos += t.add(pos + 3, out);
                    continue;
                }
            }
        }
        let space = cpt == ' ' as u32;
        let mut f2 = if space { t.flags(pos + 1) } else { flags };
        if f2.is_letter() {
            pos += usize::from(space);
            while f2.is_letter() {
                pos += 1;
                f2 = t.flags(pos);
            }
            t.add(pos, out);
            continue;
        }
        if f2.is_number() {
            pos += usize::from(space);
            while f2.is_number() {
                pos += 1;
                f2 = t.flags(pos);
            }
            t.add(pos, out);
            continue;
        }
        let other = |f: Flags| !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.any();
        if other(f2) {
            pos += usize::from(space);
            while other(f2) {
                pos += 1;
                f2 = t.flags(pos);
            }
            t.add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        while t.flags(pos + n_ws).is_whitespace() {
            n_ws += 1;
        }
        if n_ws > 1 && t.cpt(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            t.add(pos, out);
            continue;
        }
        if n_ws > 0 {
            pos += n_ws;
            t.add(pos, out);
            continue;
        }
        pos += 1;
        t.add(pos, out);
    }
}

/// `re`, `ve` or `ll` after an apostrophe.
#[inline]
fn contraction2(n1: u32, n2: u32) -> bool {
    let (r, e, v, l) = ('r' as u32, 'e' as u32, 'v' as u32, 'l' as u32);
    (n2 == e && (n1 == r || n1 == v)) || (n1 == l && n2 == l)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Digits {
    /// `\p{N}{1,3}` (Llama 3).
    UpTo3,
    /// `\p{N}` (Qwen).
    One,
}

/// llama.cpp's `unicode_regex_split_custom_llama3` (and, with `Digits::One`,
/// `_qwen2`; with `marks` too, `_qwen35`):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// where Qwen 3.5 reads `[\p{L}\p{M}]` for `\p{L}` in the letter run and
/// excludes `\p{M}` from the punctuation run.
fn llama3(cp: &Cpts, ini: usize, end: usize, out: &mut Vec<(usize, usize)>, digits: Digits, marks: bool) {
    let (cr, lf) = ('\r' as u32, '\n' as u32);
    let mut t = Piece { cp, ini, end, prev: ini };
    let letter = |f: Flags| f.is_letter() || (marks && f.is_accent_mark());
    let mut pos = ini;
    while pos < end {
        let cpt = t.cpt(pos);
        let flags = t.flags(pos);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if cpt == '\'' as u32 && pos + 1 < end {
            let n1 = unicode::to_lower(t.cpt(pos + 1));
            if [b's', b't', b'm', b'd'].iter().any(|&c| n1 == c as u32) {
                pos += t.add(pos + 2, out);
                continue;
            }
            if pos + 2 < end {
                let n2 = unicode::to_lower(t.cpt(pos + 2));
                if contraction2(n1, n2) {
                    pos += t.add(pos + 3, out);
                    continue;
                }
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(cpt == cr || cpt == lf || flags.is_number()) && (letter(flags) || letter(t.flags(pos + 1))) {
            pos += 1;
            while letter(t.flags(pos)) {
                pos += 1;
            }
            t.add(pos, out);
            continue;
        }
        // \p{N}{1,3} or \p{N}
        if flags.is_number() {
            match digits {
                Digits::One => pos += 1,
                Digits::UpTo3 => {
                    let mut first = pos;
                    while t.flags(pos).is_number() {
                        pos += 1;
                        if pos - first >= 3 {
                            t.add(pos, out);
                            first = pos;
                        }
                    }
                }
            }
            t.add(pos, out);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let other = |f: Flags| !(f.is_whitespace() || letter(f) || f.is_number());
        let space = cpt == ' ' as u32;
        let mut f2 = if space { t.flags(pos + 1) } else { flags };
        if other(f2) && flags.any() {
            pos += usize::from(space);
            while other(f2) && f2.any() {
                pos += 1;
                f2 = t.flags(pos);
            }
            while t.cpt(pos) == cr || t.cpt(pos) == lf {
                pos += 1;
            }
            t.add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        let mut last_crlf_end = 0;
        while t.flags(pos + n_ws).is_whitespace() {
            let c = t.cpt(pos + n_ws);
            if c == cr || c == lf {
                last_crlf_end = pos + n_ws + 1;
            }
            n_ws += 1;
        }
        // \s*[\r\n]+
        if last_crlf_end > 0 {
            pos = last_crlf_end;
            t.add(pos, out);
            continue;
        }
        // \s+(?!\S)
        if n_ws > 1 && t.cpt(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            t.add(pos, out);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            t.add(pos, out);
            continue;
        }
        pos += 1;
        t.add(pos, out);
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
    fn starcoder_splits_digits() {
        let s = PreTokenizer::Starcoder;
        assert_eq!(words(s, "abc 123"), ["abc", " ", "1", "2", "3"]);
        assert_eq!(words(s, "3.14"), ["3", ".", "1", "4"]);
    }

    #[test]
    fn llama3_rules() {
        let l = PreTokenizer::Llama3;
        assert_eq!(words(l, "Hello world"), ["Hello", " world"]);
        assert_eq!(words(l, "I'M 12345"), ["I", "'M", " ", "123", "45"]);
        assert_eq!(words(l, "(x)\n\n  y"), ["(x", ")\n\n", " ", " y"]);
        assert_eq!(words(l, "a \n\n b"), ["a", " \n\n", " b"]);
        assert_eq!(words(PreTokenizer::Qwen2, "123"), ["1", "2", "3"]);
        // Qwen 3.5: a combining mark joins the letters around it.
        assert_eq!(words(PreTokenizer::Qwen35, "e\u{301}x"), ["e\u{301}x"]);
        assert_eq!(words(PreTokenizer::Qwen2, "e\u{301}x"), ["e", "\u{301}x"]);
    }

    #[test]
    fn regex_lists() {
        assert_eq!(words(PreTokenizer::Default, "a+=1234"), ["a", "+=", "123", "4"]);
        assert_eq!(words(PreTokenizer::Falcon, "x`y"), ["x", "`", "y"]);
        assert_eq!(words(PreTokenizer::DeepseekCoder, "ab 12\ncd"), ["ab", " ", "1", "2", "\n", "cd"]);
        assert_eq!(words(PreTokenizer::DeepseekLlm, "Hi 世界  "), ["Hi", " ", "世界", "  "]);
        assert_eq!(words(PreTokenizer::Newlines, "a b\n\nc"), ["a b", "\n\n", "c"]);
    }

    #[test]
    fn long_runs_are_linear() {
        // Not timed (a clock bound flakes under qemu and on a loaded CI
        // box): a quadratic regression on a 1 MiB run takes hours, so it
        // shows as a test that does not end.
        let text = " ".repeat(1 << 20) + "a";
        for pre in [PreTokenizer::Default, PreTokenizer::Llama3, PreTokenizer::DeepseekLlm, PreTokenizer::DeepseekCoder] {
            assert_eq!(words(pre, &text).concat(), text);
        }
    }
}
