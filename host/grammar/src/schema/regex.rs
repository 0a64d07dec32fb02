//! `pattern` (an ECMA-262 regular expression) to GBNF matching the JSON
//! text of the strings it matches.
//!
//! Supported: literal characters and escapes (`\.`, `\n`, `\t`, `\xHH`,
//! `\uHHHH`, ...), classes (`[a-z]`, `[^...]`, `\d \w \s` and their
//! negations), `.`, groups (`(...)`, `(?:...)`, `(?<name>...)`),
//! alternation, the quantifiers `* + ? {m} {m,} {m,n}` (greedy or lazy),
//! and `^` / `$` at the ends of the top-level alternatives. As JSON Schema
//! says, an alternative not anchored by `^` (or `$`) may be preceded (or
//! followed) by anything. Refused: lookaround, backreferences, word
//! boundaries, Unicode property escapes, anchors elsewhere.
//!
//! The grammar matches JSON text, not the decoded string, so each character
//! is matched in the spelling JSON needs: `"` and `\` escaped, control
//! characters as `\n`-style or `\u00XX` escapes, everything else raw.

use super::{gbnf_literal, MAX_COUNT, MAX_DEPTH};

/// One character of a JSON string that `.` matches: not a line terminator.
pub(super) const DOT_RULE: &str = r#"[^"\\\x00-\x1F\u2028\u2029] | [\\] (["\\bft] | "u00" ([0] [0-9bcefBCEF] | [1] [0-9a-fA-F]))"#;

/// Most AST nodes that rewriting a pattern may create.
const MAX_NODES: usize = 100_000;
const MAX_CODE_POINT: u32 = 0x10FFFF;
const SURROGATES: (u32, u32) = (0xD800, 0xDFFF);

pub(super) struct Converted {
    /// The rule body matching the whole JSON string, quotes included.
    pub(super) body: String,
    /// Whether the body uses the `char` rule.
    pub(super) uses_char: bool,
    /// Whether the body uses the `dot` rule.
    pub(super) uses_dot: bool,
}

pub(super) enum PatternError {
    /// Not a valid regular expression.
    Invalid(String),
    /// Valid, but outside the supported subset.
    Unsupported(String),
}

fn unsupported<T>(message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError::Unsupported(message.into()))
}

/// Sorted, disjoint, non-adjacent inclusive code point ranges.
type Ranges = Vec<(u32, u32)>;

#[derive(Clone)]
enum Node {
    Set(Ranges),
    Dot,
    Seq(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u64, Option<u64>),
}

pub(super) fn pattern_to_gbnf(pattern: &str) -> Result<Converted, PatternError> {
    let mut p = Parser {
        chars: pattern.chars().collect(),
        pos: 0,
        depth: 0,
    };
    let mut branches = Vec::new();
    loop {
        let start = p.eat('^');
        let node = p.sequence(true)?;
        let end = p.eat('$');
        branches.push((start, node, end));
        if p.eat('|') {
            continue;
        }
        if p.peek().is_some() {
            return Err(p.invalid("unbalanced `)`"));
        }
        break;
    }
    let mut emitter = Emitter {
        uses_dot: false,
        budget: MAX_NODES,
    };
    let mut uses_char = false;
    let mut alts = Vec::with_capacity(branches.len());
    for (start, node, end) in branches {
        let node = emitter.fix(node)?;
        let middle = emitter.emit(&node)?;
        let empty = matches!(&middle, Frag::Lit(t) if t.is_empty());
        let mut parts = Vec::new();
        if !start {
            parts.push("char*".to_string());
        }
        if !empty {
            parts.push(middle.into_expr());
        }
        // An unanchored empty alternative is `char*` once, not twice.
        if !end && (start || !empty) {
            parts.push("char*".to_string());
        }
        uses_char |= !start || !end;
        alts.push(if parts.is_empty() {
            "\"\"".to_string()
        } else {
            parts.join(" ")
        });
    }
    Ok(Converted {
        body: format!(r#""\"" ({}) "\"""#, alts.join(" | ")),
        uses_char,
        uses_dot: emitter.uses_dot,
    })
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

/// A character or a class, from an escape.
enum Escaped {
    Char(u32),
    Set(Ranges),
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn invalid(&self, message: &str) -> PatternError {
        PatternError::Invalid(format!("{message} at character {}", self.pos))
    }

    /// Items up to `|`, `)` or the end; at the top level, also up to a `$`
    /// that ends an alternative.
    fn sequence(&mut self, top: bool) -> Result<Node, PatternError> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None | Some('|') | Some(')') => break,
                Some('$') if top && matches!(self.peek_at(1), None | Some('|')) => break,
                Some('^') | Some('$') => {
                    return unsupported(
                        "anchors (`^`, `$`) are only supported at the start and end of the pattern",
                    )
                }
                _ => {}
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::Seq(items)
        })
    }

    fn alternation(&mut self) -> Result<Node, PatternError> {
        let mut alts = vec![self.sequence(false)?];
        while self.eat('|') {
            alts.push(self.sequence(false)?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            Node::Alt(alts)
        })
    }

    fn atom(&mut self) -> Result<Node, PatternError> {
        let at = self.pos;
        let Some(c) = self.next() else {
            return Err(self.invalid("unexpected end"));
        };
        match c {
            '(' => self.group(),
            '[' => Ok(Node::Set(self.class()?)),
            '.' => Ok(Node::Dot),
            '\\' => Ok(match self.escape(false)? {
                Escaped::Char(c) => Node::Set(vec![(c, c)]),
                Escaped::Set(s) => Node::Set(s),
            }),
            '*' | '+' | '?' => Err(self.invalid("nothing to repeat")),
            '{' => {
                self.pos = at;
                if self.braces().is_some() {
                    return Err(self.invalid("nothing to repeat"));
                }
                // Not a quantifier: a literal brace, as ECMA-262 allows.
                self.pos = at + 1;
                Ok(Node::Set(vec![('{' as u32, '{' as u32)]))
            }
            c => Ok(Node::Set(vec![(c as u32, c as u32)])),
        }
    }

    fn group(&mut self) -> Result<Node, PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return unsupported(format!("groups nested deeper than {MAX_DEPTH}"));
        }
        if self.eat('?') {
            match (self.peek(), self.peek_at(1)) {
                (Some(':'), _) => self.pos += 1,
                (Some('<'), Some(c)) if c != '=' && c != '!' => {
                    self.pos += 1;
                    let start = self.pos;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
                    {
                        self.pos += 1;
                    }
                    if self.pos == start || !self.eat('>') {
                        return Err(self.invalid("malformed group name"));
                    }
                }
                (Some('=' | '!' | '<'), _) => {
                    return unsupported("lookahead and lookbehind assertions")
                }
                _ => return unsupported("group modifiers `(?...)`"),
            }
        }
        let node = self.alternation()?;
        if !self.eat(')') {
            return Err(self.invalid("missing `)`"));
        }
        self.depth -= 1;
        Ok(node)
    }

    /// `{m}`, `{m,}` or `{m,n}` at the current position, consumed if found.
    fn braces(&mut self) -> Option<(u64, Option<u64>)> {
        let start = self.pos;
        let number = |p: &mut Parser| -> Option<u64> {
            let from = p.pos;
            let mut n: u64 = 0;
            while let Some(d) = p.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                p.pos += 1;
            }
            (p.pos > from).then_some(n)
        };
        let parsed = (|| {
            if !self.eat('{') {
                return None;
            }
            let min = number(self)?;
            let max = if self.eat(',') {
                if self.peek() == Some('}') {
                    None
                } else {
                    Some(number(self)?)
                }
            } else {
                Some(min)
            };
            self.eat('}').then_some((min, max))
        })();
        if parsed.is_none() {
            self.pos = start;
        }
        parsed
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, PatternError> {
        let (min, max) = match self.peek() {
            Some(c @ ('*' | '+' | '?')) => {
                self.pos += 1;
                match c {
                    '*' => (0, None),
                    '+' => (1, None),
                    _ => (0, Some(1)),
                }
            }
            Some('{') => match self.braces() {
                Some(q) => q,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        // A lazy quantifier matches the same strings.
        self.eat('?');
        let at = self.pos;
        if matches!(self.peek(), Some('*' | '+' | '?')) || self.braces().is_some() {
            self.pos = at;
            return Err(self.invalid("nothing to repeat"));
        }
        if max.is_some_and(|max| max < min) {
            return Err(self.invalid("numbers out of order in `{}` quantifier"));
        }
        if min > MAX_COUNT || max.is_some_and(|max| max > MAX_COUNT) {
            return unsupported(format!("repetition counts above {MAX_COUNT}"));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    /// After a `\`.
    fn escape(&mut self, in_class: bool) -> Result<Escaped, PatternError> {
        let Some(c) = self.next() else {
            return Err(self.invalid("`\\` at the end of the pattern"));
        };
        let digits = vec![('0' as u32, '9' as u32)];
        let word = normalize(vec![
            ('0' as u32, '9' as u32),
            ('A' as u32, 'Z' as u32),
            ('_' as u32, '_' as u32),
            ('a' as u32, 'z' as u32),
        ]);
        let space = normalize(vec![
            (0x09, 0x0D),
            (0x20, 0x20),
            (0xA0, 0xA0),
            (0x1680, 0x1680),
            (0x2000, 0x200A),
            (0x2028, 0x2029),
            (0x202F, 0x202F),
            (0x205F, 0x205F),
            (0x3000, 0x3000),
            (0xFEFF, 0xFEFF),
        ]);
        Ok(match c {
            'd' => Escaped::Set(digits),
            'D' => Escaped::Set(complement(&digits)),
            'w' => Escaped::Set(word),
            'W' => Escaped::Set(complement(&word)),
            's' => Escaped::Set(space),
            'S' => Escaped::Set(complement(&space)),
            'b' if in_class => Escaped::Char(0x08),
            'b' | 'B' => return unsupported("word boundaries (`\\b`, `\\B`)"),
            'n' => Escaped::Char(0x0A),
            'r' => Escaped::Char(0x0D),
            't' => Escaped::Char(0x09),
            'f' => Escaped::Char(0x0C),
            'v' => Escaped::Char(0x0B),
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => Escaped::Char(0),
            '0'..='9' => return unsupported("backreferences and octal escapes"),
            'x' => Escaped::Char(
                self.hex(2)
                    .map_or_else(|| unsupported("malformed `\\x` escape"), Ok)?,
            ),
            'u' => Escaped::Char(self.unicode_escape()?),
            'c' => return unsupported("control escapes (`\\c`)"),
            'k' => return unsupported("named backreferences (`\\k`)"),
            'p' | 'P' => return unsupported("Unicode property escapes (`\\p`)"),
            c if c.is_ascii_alphanumeric() => return unsupported(format!("the escape `\\{c}`")),
            c => Escaped::Char(c as u32),
        })
    }

    fn hex(&mut self, n: usize) -> Option<u32> {
        let digits: String = self.chars.get(self.pos..self.pos + n)?.iter().collect();
        let v = u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| digits.chars().all(|c| c.is_ascii_hexdigit()))?;
        self.pos += n;
        Some(v)
    }

    /// After `\u`: four hex digits, or a surrogate pair of two escapes.
    fn unicode_escape(&mut self) -> Result<u32, PatternError> {
        let Some(high) = self.hex(4) else {
            return unsupported("malformed `\\u` escape");
        };
        if !(0xD800..=0xDFFF).contains(&high) {
            return Ok(high);
        }
        if high <= 0xDBFF && self.peek() == Some('\\') && self.peek_at(1) == Some('u') {
            let at = self.pos;
            self.pos += 2;
            if let Some(low) = self.hex(4).filter(|l| (0xDC00..=0xDFFF).contains(l)) {
                return Ok(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
            }
            self.pos = at;
        }
        unsupported("a lone surrogate escape")
    }

    /// After `[`.
    fn class(&mut self) -> Result<Ranges, PatternError> {
        let negated = self.eat('^');
        let mut ranges = Vec::new();
        loop {
            let Some(c) = self.next() else {
                return Err(self.invalid("unterminated character class"));
            };
            if c == ']' {
                break;
            }
            let first = if c == '\\' {
                self.escape(true)?
            } else {
                Escaped::Char(c as u32)
            };
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                self.pos += 1;
                let Some(c) = self.next() else {
                    return Err(self.invalid("unterminated character class"));
                };
                let second = if c == '\\' {
                    self.escape(true)?
                } else {
                    Escaped::Char(c as u32)
                };
                match (first, second) {
                    (Escaped::Char(a), Escaped::Char(b)) => {
                        if a > b {
                            return Err(self.invalid("range out of order in character class"));
                        }
                        ranges.push((a, b));
                    }
                    _ => {
                        return unsupported("a class escape (`\\d`, `\\w`, `\\s`) as a range bound")
                    }
                }
            } else {
                match first {
                    Escaped::Char(a) => ranges.push((a, a)),
                    Escaped::Set(s) => ranges.extend(s),
                }
            }
        }
        let ranges = normalize(ranges);
        Ok(if negated { complement(&ranges) } else { ranges })
    }
}

fn normalize(mut ranges: Ranges) -> Ranges {
    ranges.sort_unstable();
    let mut out: Ranges = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn complement(ranges: &Ranges) -> Ranges {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    let mut next = 0;
    for &(lo, hi) in ranges {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = hi + 1;
    }
    if next <= MAX_CODE_POINT {
        out.push((next, MAX_CODE_POINT));
    }
    out
}

fn intersect(a: &Ranges, b: &Ranges) -> Ranges {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn subtract(a: &Ranges, b: &Ranges) -> Ranges {
    intersect(a, &complement(b))
}

fn contains(ranges: &Ranges, c: u32) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

fn nullable(node: &Node) -> bool {
    match node {
        Node::Set(_) | Node::Dot => false,
        Node::Seq(items) => items.iter().all(nullable),
        Node::Alt(alts) => alts.iter().any(nullable),
        Node::Repeat(item, min, _) => *min == 0 || nullable(item),
    }
}

fn size(node: &Node) -> usize {
    match node {
        Node::Set(_) | Node::Dot => 1,
        Node::Seq(items) | Node::Alt(items) => 1 + items.iter().map(size).sum::<usize>(),
        Node::Repeat(item, _, _) => 1 + size(item),
    }
}

/// GBNF for part of a pattern: JSON text still to be merged with its
/// neighbours into one literal, or an expression (and whether it can take
/// a quantifier without parentheses).
enum Frag {
    Lit(String),
    Expr(String, bool),
}

impl Frag {
    fn into_expr(self) -> String {
        match self {
            Frag::Lit(text) => gbnf_literal(&text),
            Frag::Expr(e, _) => e,
        }
    }

    fn into_atom(self) -> String {
        match self {
            Frag::Lit(text) => gbnf_literal(&text),
            Frag::Expr(e, true) => e,
            Frag::Expr(e, false) => format!("({e})"),
        }
    }
}

struct Emitter {
    uses_dot: bool,
    budget: usize,
}

impl Emitter {
    fn spend(&mut self, n: usize) -> Result<(), PatternError> {
        if n > self.budget {
            return unsupported("the pattern is too complex");
        }
        self.budget -= n;
        Ok(())
    }

    /// Rewrites `x*` (and `x{m,}`) where `x` can match the empty string as
    /// a repetition of the non-empty matches of `x`: the same strings, but a
    /// grammar rule that can repeat without consuming is left-recursive.
    fn fix(&mut self, node: Node) -> Result<Node, PatternError> {
        self.spend(1)?;
        Ok(match node {
            Node::Seq(items) => Node::Seq(
                items
                    .into_iter()
                    .map(|n| self.fix(n))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Alt(alts) => Node::Alt(
                alts.into_iter()
                    .map(|n| self.fix(n))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Repeat(item, min, max) => {
                let item = self.fix(*item)?;
                if max.is_none() && nullable(&item) {
                    match self.non_empty(&item)? {
                        Some(item) => Node::Repeat(Box::new(item), 0, None),
                        None => Node::Seq(Vec::new()),
                    }
                } else {
                    Node::Repeat(Box::new(item), min, max)
                }
            }
            node => node,
        })
    }

    /// The non-empty matches of `node`, `None` if it only matches "".
    fn non_empty(&mut self, node: &Node) -> Result<Option<Node>, PatternError> {
        if !nullable(node) {
            self.spend(size(node))?;
            return Ok(Some(node.clone()));
        }
        self.spend(1)?;
        Ok(match node {
            Node::Set(_) | Node::Dot => Some(node.clone()),
            // Empty up to item i, then a non-empty match of item i.
            Node::Seq(items) => {
                let mut alts = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(head) = self.non_empty(item)? {
                        let tail = &items[i + 1..];
                        self.spend(tail.iter().map(size).sum())?;
                        let mut seq = vec![head];
                        seq.extend(tail.iter().cloned());
                        alts.push(Node::Seq(seq));
                    }
                }
                one_of(alts)
            }
            Node::Alt(alts) => {
                let mut out = Vec::new();
                for alt in alts {
                    out.extend(self.non_empty(alt)?);
                }
                one_of(out)
            }
            // Empty iterations can pad the count up to `min`.
            Node::Repeat(item, _, max) => {
                if *max == Some(0) {
                    None
                } else if nullable(item) {
                    self.non_empty(item)?
                        .map(|item| Node::Repeat(Box::new(item), 1, *max))
                } else {
                    Some(Node::Repeat(item.clone(), 1, *max))
                }
            }
        })
    }

    fn emit(&mut self, node: &Node) -> Result<Frag, PatternError> {
        Ok(match node {
            Node::Set(ranges) => emit_set(ranges)?,
            Node::Dot => {
                self.uses_dot = true;
                Frag::Expr("dot".to_string(), true)
            }
            Node::Seq(items) => {
                let mut parts: Vec<Frag> = Vec::new();
                for item in items {
                    match (self.emit(item)?, parts.last_mut()) {
                        (Frag::Lit(text), Some(Frag::Lit(prev))) => prev.push_str(&text),
                        (frag, _) => parts.push(frag),
                    }
                }
                match parts.len() {
                    0 => Frag::Lit(String::new()),
                    1 => parts.remove(0),
                    _ => Frag::Expr(
                        parts
                            .into_iter()
                            .map(Frag::into_expr)
                            .collect::<Vec<_>>()
                            .join(" "),
                        false,
                    ),
                }
            }
            Node::Alt(alts) => {
                let mut out = Vec::with_capacity(alts.len());
                for alt in alts {
                    out.push(self.emit(alt)?.into_expr());
                }
                Frag::Expr(format!("({})", out.join(" | ")), true)
            }
            Node::Repeat(item, min, max) => {
                if *max == Some(0) {
                    return Ok(Frag::Lit(String::new()));
                }
                if (*min, *max) == (1, Some(1)) {
                    return self.emit(item);
                }
                let atom = self.emit(item)?.into_atom();
                let suffix = match (*min, *max) {
                    (0, Some(1)) => "?".to_string(),
                    (0, None) => "*".to_string(),
                    (1, None) => "+".to_string(),
                    (m, None) => format!("{{{m},}}"),
                    (m, Some(n)) if m == n => format!("{{{m}}}"),
                    (m, Some(n)) => format!("{{{m},{n}}}"),
                };
                Frag::Expr(format!("{atom}{suffix}"), false)
            }
        })
    }
}

fn one_of(mut alts: Vec<Node>) -> Option<Node> {
    match alts.len() {
        0 => None,
        1 => alts.pop(),
        _ => Some(Node::Alt(alts)),
    }
}

/// How JSON writes `c` when it need not (or must not) appear raw, as
/// serializers commonly do; `None` for controls spelled `\u00XX`.
fn json_spelling(c: u32) -> Option<String> {
    Some(match c {
        0x22 => "\\\"".to_string(),
        0x5C => "\\\\".to_string(),
        0x08 => "\\b".to_string(),
        0x0C => "\\f".to_string(),
        0x0A => "\\n".to_string(),
        0x0D => "\\r".to_string(),
        0x09 => "\\t".to_string(),
        c if c < 0x20 => return None,
        c => char::from_u32(c)?.to_string(),
    })
}

/// GBNF for a control character written as an escape; `\u00XX` with either
/// case of hex digit.
fn control_spelling(c: u32) -> (String, bool) {
    if let Some(text) = json_spelling(c) {
        return (gbnf_literal(&text), true);
    }
    let hex = format!("{c:04x}");
    let last = hex.chars().last().unwrap_or('0');
    if last.is_ascii_digit() {
        (gbnf_literal(&format!("\\u{hex}")), true)
    } else {
        let head = gbnf_literal(&format!("\\u{}", &hex[..3]));
        (
            format!("{head} [{last}{}]", last.to_ascii_uppercase()),
            false,
        )
    }
}

/// One character from `ranges`, in its JSON spellings.
fn emit_set(ranges: &Ranges) -> Result<Frag, PatternError> {
    let ranges = subtract(ranges, &vec![SURROGATES]);
    if ranges.is_empty() {
        return unsupported("an empty character class");
    }
    if let [(lo, hi)] = ranges[..] {
        if lo == hi {
            if let Some(text) = json_spelling(lo) {
                return Ok(Frag::Lit(text));
            }
        }
    }
    let controls = vec![(0, 0x1F)];
    let forbidden = normalize(vec![(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C)]);
    let mut pieces: Vec<(String, bool)> = Vec::new();
    let raw = subtract(&ranges, &forbidden);
    if !raw.is_empty() {
        pieces.push((class_expr(&raw), true));
    }
    for c in [0x22, 0x5C] {
        if contains(&ranges, c) {
            pieces.push((gbnf_literal(&json_spelling(c).unwrap_or_default()), true));
        }
    }
    let present = intersect(&ranges, &controls);
    if present == controls {
        pieces.push((
            r#"[\\] ([bfnrt] | "u00" [01] [0-9a-fA-F])"#.to_string(),
            false,
        ));
    } else {
        for &(lo, hi) in &present {
            pieces.extend((lo..=hi).map(control_spelling));
        }
    }
    Ok(match pieces.len() {
        1 => {
            let (e, atomic) = pieces.remove(0);
            Frag::Expr(e, atomic)
        }
        _ => Frag::Expr(
            format!(
                "({})",
                pieces
                    .into_iter()
                    .map(|p| p.0)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            true,
        ),
    })
}

/// A GBNF class for `raw` (no characters JSON must escape), negated when
/// that is shorter.
fn class_expr(raw: &Ranges) -> String {
    let others = subtract(&complement(raw), &vec![SURROGATES]);
    let (negated, ranges) = if others.len() < raw.len() {
        (true, &others)
    } else {
        (false, raw)
    };
    let mut out = String::from(if negated { "[^" } else { "[" });
    for &(lo, hi) in ranges {
        out.push_str(&class_char(lo));
        if hi > lo {
            if hi > lo + 1 {
                out.push('-');
            }
            out.push_str(&class_char(hi));
        }
    }
    out.push(']');
    out
}

/// `c` as it may appear inside a GBNF character class.
pub(super) fn class_char(c: u32) -> String {
    match char::from_u32(c) {
        Some('\\') => "\\\\".to_string(),
        Some(']') => "\\]".to_string(),
        Some('[') => "\\[".to_string(),
        Some('-') => "\\-".to_string(),
        Some('"') => "\\\"".to_string(),
        // `^` is special only first, but llama.cpp has no escape for it.
        Some('^') => "\\x5E".to_string(),
        Some(ch) if (0x20..0x7F).contains(&c) => ch.to_string(),
        _ if c < 0x100 => format!("\\x{c:02X}"),
        _ if c <= 0xFFFF => format!("\\u{c:04X}"),
        _ => format!("\\U{c:08X}"),
    }
}
