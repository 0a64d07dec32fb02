//! GBNF, llama.cpp's grammar syntax, parsed and compiled to flat rules.
//!
//! ```text
//! root   ::= item ("," ws item)*        # sequences, groups, alternatives
//! item   ::= [a-z]+ | "\"" [^"]* "\""   # classes, negated classes, literals
//! ws     ::= [ \t\n]{0,20}              # * + ? {m} {m,} {m,n}
//! think  ::= <think> (!</think>)* </think>   # whole tokens, by text or <[id]>
//! ```
//!
//! A rule ends at a newline unless the newline is inside parentheses, right
//! after `::=` or right after `|`, as in llama.cpp. Repetitions are rewritten
//! into helper rules, so matching only deals with sequences, alternatives,
//! rule references, character classes and tokens.

use std::collections::HashMap;

use crate::GrammarError;

/// One element of a compiled rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Elem {
    /// End of the rule's last alternative.
    End,
    /// End of an alternative; another one follows.
    Alt,
    /// A reference to rule `n`.
    Rule(u32),
    /// One code point from character class `n` (see [`Grammar::class`]).
    Class(u32),
    /// Exactly the token with this id.
    Token(u32),
    /// Any one token except this id.
    NotToken(u32),
}

impl Elem {
    pub(crate) fn ends_sequence(self) -> bool {
        matches!(self, Elem::End | Elem::Alt)
    }
}

/// A compiled grammar: every rule's alternatives laid out in one array, so a
/// matcher position is a single index.
#[derive(Clone, Debug)]
pub struct Grammar {
    pub(crate) elems: Vec<Elem>,
    /// Index of each rule's first element in `elems`.
    pub(crate) rule_start: Vec<u32>,
    /// Rule names, for messages (helper rules are `parent-N`).
    names: Vec<String>,
    /// Character classes as sorted, disjoint, inclusive code point ranges
    /// (negated classes are stored as their complement).
    classes: Vec<Vec<(u32, u32)>>,
    pub(crate) root: u32,
    /// Whether any rule matches whole tokens.
    pub(crate) has_tokens: bool,
}

/// Largest `{m,n}` bound, and most elements a grammar may expand to.
const MAX_REPEAT: u32 = 10_000;
const MAX_ELEMS: usize = 1 << 22;
const MAX_CODE_POINT: u32 = 0x10FFFF;
/// Deepest nesting of parentheses (the parser recurses on them).
const MAX_NESTING: usize = 256;

impl Grammar {
    /// Parses GBNF source with start rule `root`. Token references by text
    /// (`<think>`) need a vocabulary: use [`Grammar::parse_with_vocab`].
    pub fn parse(src: &str) -> Result<Grammar, GrammarError> {
        Grammar::parse_with_vocab(src, "root", &|_| None)
    }

    /// Parses GBNF source whose start rule is `root`, looking up the ids of
    /// tokens written as `<text>` with `token_id`.
    pub fn parse_with_vocab(
        src: &str,
        root: &str,
        token_id: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Grammar, GrammarError> {
        let mut p = Parser::new(src, token_id);
        p.grammar()?;
        p.finish(root)
    }

    /// The code point ranges of class `n`.
    pub(crate) fn class(&self, n: u32) -> &[(u32, u32)] {
        &self.classes[n as usize]
    }

    /// Number of rules, helper rules included.
    pub fn rule_count(&self) -> usize {
        self.rule_start.len()
    }

    pub(crate) fn rule_name(&self, r: u32) -> &str {
        &self.names[r as usize]
    }

    /// Whether the whole of `text` is in the grammar's language.
    pub fn accepts(&self, text: &str) -> bool {
        let mut m = crate::Matcher::new(std::sync::Arc::new(self.clone()));
        m.accept_bytes(text.as_bytes()) && m.can_end()
    }

    /// Starts of the alternatives of rule `r`.
    pub(crate) fn alternatives(&self, r: u32) -> impl Iterator<Item = u32> + '_ {
        let start = self.rule_start[r as usize] as usize;
        let mut next = Some(start);
        std::iter::from_fn(move || {
            let at = next?;
            let mut i = at;
            while !self.elems[i].ends_sequence() {
                i += 1;
            }
            next = if self.elems[i] == Elem::Alt {
                Some(i + 1)
            } else {
                None
            };
            Some(at as u32)
        })
    }
}

/// A rule body while parsing: elements, with `Alt` between alternatives
/// (no final `End`).
type Body = Vec<Elem>;

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    token_id: &'a dyn Fn(&str) -> Option<u32>,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    bodies: Vec<Option<Body>>,
    /// Where each rule was first referred to, for "undefined rule" errors.
    first_use: Vec<usize>,
    classes: Vec<Vec<(u32, u32)>>,
    class_ids: HashMap<Vec<(u32, u32)>, u32>,
    n_elems: usize,
    has_tokens: bool,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &str, token_id: &'a dyn Fn(&str) -> Option<u32>) -> Self {
        Parser {
            chars: src.chars().collect(),
            pos: 0,
            token_id,
            names: Vec::new(),
            ids: HashMap::new(),
            bodies: Vec::new(),
            first_use: Vec::new(),
            classes: Vec::new(),
            class_ids: HashMap::new(),
            n_elems: 0,
            has_tokens: false,
            depth: 0,
        }
    }

    fn line_col(&self, at: usize) -> (usize, usize) {
        let before = &self.chars[..at.min(self.chars.len())];
        let line = before.iter().filter(|&&c| c == '\n').count() + 1;
        let column = at - before.iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    fn err_at(&self, at: usize, message: impl Into<String>) -> GrammarError {
        let (line, column) = self.line_col(at);
        GrammarError::Syntax {
            line,
            column,
            message: message.into(),
        }
    }

    fn err(&self, message: impl Into<String>) -> GrammarError {
        self.err_at(self.pos, message)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    /// Skips spaces, tabs and comments, and newlines if `newline_ok`.
    fn space(&mut self, newline_ok: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' => self.pos += 1,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                        self.pos += 1;
                    }
                }
                '\r' | '\n' if newline_ok => self.pos += 1,
                _ => break,
            }
        }
    }

    fn symbol(&mut self, name: &str, used_at: usize) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        self.bodies.push(None);
        self.first_use.push(used_at);
        id
    }

    /// A fresh helper rule named after `parent`.
    fn helper(&mut self, parent: u32) -> u32 {
        let id = self.names.len() as u32;
        let name = format!("{}-{}", self.names[parent as usize], id);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        self.bodies.push(None);
        self.first_use.push(self.pos);
        id
    }

    fn define(&mut self, id: u32, body: Body) -> Result<(), GrammarError> {
        self.n_elems += body.len() + 1;
        if self.n_elems > MAX_ELEMS {
            let (line, column) = self.line_col(self.pos);
            return Err(GrammarError::TooLarge {
                line,
                column,
                message: format!("more than {MAX_ELEMS} elements"),
            });
        }
        self.bodies[id as usize] = Some(body);
        Ok(())
    }

    fn class_id(&mut self, mut ranges: Vec<(u32, u32)>, negated: bool) -> u32 {
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        if negated {
            let mut comp = Vec::with_capacity(merged.len() + 1);
            let mut next = 0u32;
            for &(lo, hi) in &merged {
                if lo > next {
                    comp.push((next, lo - 1));
                }
                next = hi.saturating_add(1);
            }
            if next <= MAX_CODE_POINT {
                comp.push((next, MAX_CODE_POINT));
            }
            merged = comp;
        }
        if let Some(&id) = self.class_ids.get(&merged) {
            return id;
        }
        let id = self.classes.len() as u32;
        self.classes.push(merged.clone());
        self.class_ids.insert(merged, id);
        id
    }

    fn name(&mut self) -> Result<String, GrammarError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err("expecting a rule name"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn grammar(&mut self) -> Result<(), GrammarError> {
        self.space(true);
        while self.peek().is_some() {
            self.rule()?;
            self.space(true);
        }
        Ok(())
    }

    fn rule(&mut self) -> Result<(), GrammarError> {
        let at = self.pos;
        let name = self.name()?;
        self.space(false);
        if !(self.peek() == Some(':')
            && self.peek_at(1) == Some(':')
            && self.peek_at(2) == Some('='))
        {
            return Err(self.err("expecting `::=`"));
        }
        self.pos += 3;
        self.space(true);
        let id = self.symbol(&name, at);
        if self.bodies[id as usize].is_some() {
            return Err(self.err_at(at, format!("rule `{name}` is defined twice")));
        }
        let body = self.alternatives(id, false)?;
        self.define(id, body)?;
        match self.peek() {
            None => Ok(()),
            Some('\r') | Some('\n') => Ok(()),
            Some(c) => Err(self.err(format!("expecting a newline or end of input, found `{c}`"))),
        }
    }

    fn alternatives(&mut self, rule: u32, nested: bool) -> Result<Body, GrammarError> {
        let mut body = self.sequence(rule, nested)?;
        while self.peek() == Some('|') {
            self.pos += 1;
            self.space(true);
            body.push(Elem::Alt);
            body.extend(self.sequence(rule, nested)?);
        }
        Ok(body)
    }

    fn sequence(&mut self, rule: u32, nested: bool) -> Result<Body, GrammarError> {
        let mut seq: Body = Vec::new();
        // Start of the last item, which a postfix operator applies to.
        let mut last: Option<usize> = None;
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else { break };
            match c {
                '"' => {
                    self.pos += 1;
                    last = Some(seq.len());
                    loop {
                        match self.peek() {
                            None => return Err(self.err_at(at, "unterminated string literal")),
                            Some('"') => break,
                            Some(_) => {
                                let cp = self.char_in_literal()?;
                                let cls = self.class_id(vec![(cp, cp)], false);
                                seq.push(Elem::Class(cls));
                            }
                        }
                    }
                    self.pos += 1;
                }
                '[' => {
                    self.pos += 1;
                    let negated = self.peek() == Some('^');
                    if negated {
                        self.pos += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        match self.peek() {
                            None => return Err(self.err_at(at, "unterminated character class")),
                            Some(']') => break,
                            Some(_) => {
                                let lo = self.char_in_literal()?;
                                let mut hi = lo;
                                if self.peek() == Some('-')
                                    && self.peek_at(1).is_some_and(|c| c != ']')
                                {
                                    self.pos += 1;
                                    let end_at = self.pos;
                                    hi = self.char_in_literal()?;
                                    if hi < lo {
                                        return Err(
                                            self.err_at(end_at, "character range is reversed")
                                        );
                                    }
                                }
                                ranges.push((lo, hi));
                            }
                        }
                    }
                    self.pos += 1;
                    let cls = self.class_id(ranges, negated);
                    last = Some(seq.len());
                    seq.push(Elem::Class(cls));
                }
                '.' => {
                    self.pos += 1;
                    let cls = self.class_id(vec![(0, MAX_CODE_POINT)], false);
                    last = Some(seq.len());
                    seq.push(Elem::Class(cls));
                }
                '(' => {
                    self.pos += 1;
                    self.space(true);
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        let (line, column) = self.line_col(at);
                        let message = format!("parentheses nested deeper than {MAX_NESTING}");
                        return Err(GrammarError::TooLarge {
                            line,
                            column,
                            message,
                        });
                    }
                    let sub = self.helper(rule);
                    let body = self.alternatives(rule, true)?;
                    self.depth -= 1;
                    self.define(sub, body)?;
                    if self.peek() != Some(')') {
                        return Err(self.err("expecting `)`"));
                    }
                    self.pos += 1;
                    last = Some(seq.len());
                    seq.push(Elem::Rule(sub));
                }
                '<' | '!' => {
                    let negated = c == '!';
                    if negated {
                        self.pos += 1;
                        if self.peek() != Some('<') {
                            return Err(self.err("expecting `<` after `!`"));
                        }
                    }
                    let id = self.token()?;
                    self.has_tokens = true;
                    last = Some(seq.len());
                    seq.push(if negated {
                        Elem::NotToken(id)
                    } else {
                        Elem::Token(id)
                    });
                }
                '*' | '+' | '?' | '{' => {
                    let Some(start) = last.take() else {
                        return Err(self.err(format!("`{c}` must follow an item")));
                    };
                    self.pos += 1;
                    let (min, max) = match c {
                        '*' => (0, None),
                        '+' => (1, None),
                        '?' => (0, Some(1)),
                        _ => self.braces(at)?,
                    };
                    let item = seq.split_off(start);
                    self.repeat(rule, &mut seq, item, min, max, at)?;
                }
                c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {
                    let name = self.name()?;
                    let id = self.symbol(&name, at);
                    last = Some(seq.len());
                    seq.push(Elem::Rule(id));
                }
                _ => break,
            }
            self.space(nested);
        }
        Ok(seq)
    }

    /// `{m}`, `{m,}` or `{m,n}` after the opening brace.
    fn braces(&mut self, at: usize) -> Result<(u32, Option<u32>), GrammarError> {
        self.space(true);
        let min = self.int()?;
        self.space(true);
        let max = match self.peek() {
            Some('}') => Some(min),
            Some(',') => {
                self.pos += 1;
                self.space(true);
                if self.peek() == Some('}') {
                    None
                } else {
                    let n = self.int()?;
                    self.space(true);
                    Some(n)
                }
            }
            _ => return Err(self.err("expecting `,` or `}`")),
        };
        if self.peek() != Some('}') {
            return Err(self.err("expecting `}`"));
        }
        self.pos += 1;
        if let Some(max) = max {
            if max < min {
                return Err(self.err_at(at, format!("repetition {{{min},{max}}} has max < min")));
            }
        }
        if min.max(max.unwrap_or(0)) > MAX_REPEAT {
            let (line, column) = self.line_col(at);
            return Err(GrammarError::TooLarge {
                line,
                column,
                message: format!("repetition count above {MAX_REPEAT}"),
            });
        }
        Ok((min, max))
    }

    fn int(&mut self) -> Result<u32, GrammarError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        if digits.is_empty() {
            return Err(self.err("expecting an integer"));
        }
        digits
            .parse::<u32>()
            .ok()
            .filter(|&n| n <= MAX_REPEAT)
            .ok_or_else(|| {
                let (line, column) = self.line_col(start);
                GrammarError::TooLarge {
                    line,
                    column,
                    message: format!("repetition count above {MAX_REPEAT}"),
                }
            })
    }

    /// Appends `item` repeated `min` to `max` (unbounded if `None`) times.
    fn repeat(
        &mut self,
        rule: u32,
        seq: &mut Body,
        item: Body,
        min: u32,
        max: Option<u32>,
        at: usize,
    ) -> Result<(), GrammarError> {
        let copies =
            min as usize * item.len() + max.map_or(0, |m| (m - min) as usize) * (item.len() + 2);
        if self.n_elems + seq.len() + copies > MAX_ELEMS {
            let (line, column) = self.line_col(at);
            return Err(GrammarError::TooLarge {
                line,
                column,
                message: format!("more than {MAX_ELEMS} elements"),
            });
        }
        for _ in 0..min {
            seq.extend_from_slice(&item);
        }
        match max {
            None => {
                // star ::= item star | ε
                let star = self.helper(rule);
                let mut body = item;
                body.push(Elem::Rule(star));
                body.push(Elem::Alt);
                self.define(star, body)?;
                seq.push(Elem::Rule(star));
            }
            Some(max) if max > min => {
                // opt_1 ::= item opt_2 | ε ... opt_k ::= item | ε, built from the inside out.
                let mut inner: Option<u32> = None;
                for _ in min..max {
                    let opt = self.helper(rule);
                    let mut body = item.clone();
                    body.extend(inner.map(Elem::Rule));
                    body.push(Elem::Alt);
                    self.define(opt, body)?;
                    inner = Some(opt);
                }
                seq.extend(inner.map(Elem::Rule));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// One possibly escaped character inside a literal or class.
    fn char_in_literal(&mut self) -> Result<u32, GrammarError> {
        let at = self.pos;
        let c = self
            .peek()
            .ok_or_else(|| self.err("unexpected end of input"))?;
        self.pos += 1;
        if c != '\\' {
            return Ok(c as u32);
        }
        let e = self
            .peek()
            .ok_or_else(|| self.err("unexpected end of input after `\\`"))?;
        self.pos += 1;
        let hex = |p: &mut Self, n: usize| -> Result<u32, GrammarError> {
            let mut v = 0u32;
            for _ in 0..n {
                let d = p
                    .peek()
                    .and_then(|c| c.to_digit(16))
                    .ok_or_else(|| p.err(format!("expecting {n} hex digits")))?;
                v = v * 16 + d;
                p.pos += 1;
            }
            Ok(v)
        };
        let v = match e {
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'U' => hex(self, 8)?,
            't' => '\t' as u32,
            'r' => '\r' as u32,
            'n' => '\n' as u32,
            '\\' | '"' | '[' | ']' | '-' | '^' | '/' => e as u32,
            _ => return Err(self.err_at(at, format!("unknown escape `\\{e}`"))),
        };
        if v > MAX_CODE_POINT {
            return Err(self.err_at(at, format!("code point {v:#x} is out of range")));
        }
        Ok(v)
    }

    /// `<[id]>` or `<text>`, at the `<`.
    fn token(&mut self) -> Result<u32, GrammarError> {
        let at = self.pos;
        self.pos += 1;
        if self.peek() == Some('[') {
            self.pos += 1;
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            let digits: String = self.chars[start..self.pos].iter().collect();
            let id = digits
                .parse::<u32>()
                .map_err(|_| self.err_at(start, "expecting a token id"))?;
            if self.peek() != Some(']') || self.peek_at(1) != Some('>') {
                return Err(self.err("expecting `]>`"));
            }
            self.pos += 2;
            return Ok(id);
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c != '>' && c != '\n') {
            self.pos += 1;
        }
        if self.peek() != Some('>') {
            return Err(self.err_at(at, "unterminated token `<...>`"));
        }
        let text: String = ['<']
            .iter()
            .chain(&self.chars[start..self.pos])
            .chain(['>'].iter())
            .collect();
        self.pos += 1;
        (self.token_id)(&text).ok_or_else(|| {
            self.err_at(
                at,
                format!("`{text}` is not a single token of the vocabulary"),
            )
        })
    }

    fn finish(self, root: &str) -> Result<Grammar, GrammarError> {
        for (i, body) in self.bodies.iter().enumerate() {
            if body.is_none() {
                let (line, column) = self.line_col(self.first_use[i]);
                return Err(GrammarError::UndefinedRule {
                    name: self.names[i].clone(),
                    line,
                    column,
                });
            }
        }
        let root = *self
            .ids
            .get(root)
            .ok_or_else(|| GrammarError::MissingRoot(root.to_string()))?;
        let mut elems = Vec::with_capacity(self.n_elems);
        let mut rule_start = Vec::with_capacity(self.bodies.len());
        for body in self.bodies.into_iter().flatten() {
            rule_start.push(elems.len() as u32);
            elems.extend(body);
            elems.push(Elem::End);
        }
        let g = Grammar {
            elems,
            rule_start,
            names: self.names,
            classes: self.classes,
            root,
            has_tokens: self.has_tokens,
        };
        check_left_recursion(&g)?;
        Ok(g)
    }
}

/// Rejects grammars where a rule can reach itself before consuming input.
fn check_left_recursion(g: &Grammar) -> Result<(), GrammarError> {
    let n = g.rule_count();
    // Which rules can match the empty string (a fixpoint).
    let mut nullable = vec![false; n];
    loop {
        let mut changed = false;
        for r in 0..n {
            if nullable[r] {
                continue;
            }
            let empty = g.alternatives(r as u32).any(|s| {
                g.elems[s as usize..]
                    .iter()
                    .take_while(|e| !e.ends_sequence())
                    .all(|e| matches!(e, Elem::Rule(q) if nullable[*q as usize]))
            });
            if empty {
                nullable[r] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Edges r → q where q can be the first thing r matches.
    let mut first: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (r, edges) in first.iter_mut().enumerate() {
        for s in g.alternatives(r as u32) {
            for e in g.elems[s as usize..]
                .iter()
                .take_while(|e| !e.ends_sequence())
            {
                match *e {
                    Elem::Rule(q) => {
                        edges.push(q);
                        if !nullable[q as usize] {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        }
    }
    // Cycle search, iteratively (grammars can be deep).
    let mut state = vec![0u8; n]; // 0 new, 1 on the path, 2 done
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (r, ref mut i)) = path.last_mut() {
            if let Some(&q) = first[r].get(*i) {
                *i += 1;
                match state[q as usize] {
                    1 => return Err(GrammarError::LeftRecursion(g.rule_name(q).to_string())),
                    0 => {
                        state[q as usize] = 1;
                        path.push((q as usize, 0));
                    }
                    _ => {}
                }
            } else {
                state[r] = 2;
                path.pop();
            }
        }
    }
    Ok(())
}
