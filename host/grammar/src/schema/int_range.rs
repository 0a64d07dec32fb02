//! Integers between optional bounds as GBNF (`minimum`, `maximum` and their
//! exclusive forms): the decimal strings in a range, split by length and
//! then digit by digit, as llama.cpp's `build_min_max_int` does.

use serde_json::{Map, Value};

use super::{invalid, join, unsupported, SchemaError};

/// Digits of an integer with no bound on that side, as llama.cpp's
/// `integral-part` allows.
const UNBOUNDED_DIGITS: usize = 16;
/// Largest bound magnitude handled. A lower bound below `-LIMIT` (or an
/// upper one above `LIMIT`) excludes nothing the grammar could produce
/// anyway, and is dropped.
const LIMIT: i128 = 1_000_000_000_000_000_000;

/// The inclusive integer bound from `minimum` / `exclusiveMinimum` (when
/// `lower`) or `maximum` / `exclusiveMaximum`, the tighter one if both.
pub(super) fn bound(
    obj: &Map<String, Value>,
    ptr: &str,
    lower: bool,
) -> Result<Option<i128>, SchemaError> {
    let (inclusive, exclusive) = if lower {
        ("minimum", "exclusiveMinimum")
    } else {
        ("maximum", "exclusiveMaximum")
    };
    // Draft 4 spells an exclusive bound as `exclusiveMinimum: true` next to
    // `minimum`; later drafts give the bound itself.
    let draft4_exclusive = match obj.get(exclusive) {
        Some(Value::Bool(b)) => *b,
        _ => false,
    };
    let mut best: Option<i128> = None;
    let mut tighten = |b: Option<i128>| {
        if let Some(b) = b {
            best = Some(match best {
                None => b,
                Some(x) if lower => x.max(b),
                Some(x) => x.min(b),
            });
        }
    };
    if let Some(v) = obj.get(inclusive) {
        tighten(round(v, &join(ptr, inclusive), lower, draft4_exclusive)?);
    }
    if let Some(v) = obj.get(exclusive) {
        if !v.is_boolean() {
            tighten(round(v, &join(ptr, exclusive), lower, true)?);
        }
    }
    Ok(best)
}

/// The nearest integer inside the bound `v`; `None` when the bound is too
/// far out to matter.
fn round(v: &Value, at: &str, lower: bool, exclusive: bool) -> Result<Option<i128>, SchemaError> {
    let n: i128 = if let Some(i) = v.as_i64() {
        let i = i128::from(i);
        match (lower, exclusive) {
            (true, true) => i + 1,
            (false, true) => i - 1,
            _ => i,
        }
    } else if let Some(u) = v.as_u64() {
        let u = i128::from(u);
        if exclusive && lower {
            u + 1
        } else if exclusive {
            u - 1
        } else {
            u
        }
    } else if let Some(f) = v.as_f64() {
        let f = f.clamp(-1e30, 1e30);
        let r = match (lower, exclusive) {
            (true, false) => f.ceil(),
            (true, true) => f.floor() + 1.0,
            (false, false) => f.floor(),
            (false, true) => f.ceil() - 1.0,
        };
        r as i128
    } else {
        return Err(invalid(at, "a bound must be a number"));
    };
    match (lower, n) {
        (true, n) if n < -LIMIT => Ok(None),
        (false, n) if n > LIMIT => Ok(None),
        (_, n) if n.abs() > LIMIT => Err(unsupported(
            at,
            "integer bounds beyond ±10^18 are not supported",
        )),
        _ => Ok(Some(n)),
    }
}

/// Alternatives (joined by `|`) matching the integers in `[lo, hi]` in
/// canonical form (no leading zeros, no `+`); an open side is limited to
/// [`UNBOUNDED_DIGITS`] digits.
pub(super) fn int_range(lo: Option<i128>, hi: Option<i128>) -> String {
    let mut alts = Vec::new();
    if lo.is_none_or(|l| l < 0) {
        let from = match hi {
            Some(h) if h < 0 => h.unsigned_abs(),
            _ => 1,
        };
        let m = magnitudes(from, lo.map(i128::unsigned_abs));
        alts.push(if m.len() == 1 {
            format!(r#""-" {}"#, m[0])
        } else {
            format!(r#""-" ({})"#, m.join(" | "))
        });
    }
    if hi.is_none_or(|h| h >= 0) {
        let from = lo.map_or(0, |l| l.max(0).unsigned_abs());
        alts.extend(magnitudes(from, hi.map(i128::unsigned_abs)));
    }
    alts.join(" | ")
}

fn pow10(n: usize) -> u128 {
    10u128.pow(n as u32)
}

fn digit_count(n: u128) -> usize {
    n.to_string().len()
}

/// `[0-9]` repeated `min` to `max` times ("" for none).
fn any_digits(min: usize, max: usize) -> String {
    match (min, max) {
        (_, 0) => String::new(),
        (1, 1) => "[0-9]".to_string(),
        (a, b) if a == b => format!("[0-9]{{{a}}}"),
        (a, b) => format!("[0-9]{{{a},{b}}}"),
    }
}

/// Alternatives for the numbers `from..=to` (`to` open when `None`).
fn magnitudes(mut from: u128, to: Option<u128>) -> Vec<String> {
    let to = to.unwrap_or_else(|| pow10(digit_count(from).max(UNBOUNDED_DIGITS)) - 1);
    let mut out = Vec::new();
    if from == 0 && to >= 10 {
        out.push("[0]".to_string());
        from = 1;
    }
    // Lengths whose numbers are all in range: `[1-9]` then any digits.
    let mut full: Option<(usize, usize)> = None;
    let flush = |full: &mut Option<(usize, usize)>, out: &mut Vec<String>| {
        if let Some((a, b)) = full.take() {
            let rest = any_digits(a - 1, b - 1);
            out.push(if rest.is_empty() {
                "[1-9]".to_string()
            } else {
                format!("[1-9] {rest}")
            });
        }
    };
    let (from_len, to_len) = (digit_count(from), digit_count(to));
    for len in from_len..=to_len {
        let first = if len == 1 { 1 } else { pow10(len - 1) };
        let last = pow10(len) - 1;
        let a = if len == from_len { from } else { first };
        let b = if len == to_len { to } else { last };
        if a == first && b == last {
            full = Some(full.map_or((len, len), |(x, _)| (x, len)));
        } else {
            flush(&mut full, &mut out);
            out.push(same_length(&a.to_string(), &b.to_string()));
        }
    }
    flush(&mut full, &mut out);
    out
}

/// The numbers from `a` to `b`, written with the same number of digits.
fn same_length(a: &str, b: &str) -> String {
    if a == b {
        return format!("\"{a}\"");
    }
    let prefix = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let lead = if prefix > 0 {
        format!("\"{}\" ", &a[..prefix])
    } else {
        String::new()
    };
    let (x, y) = (a.as_bytes()[prefix], b.as_bytes()[prefix]);
    let rest = a.len() - prefix - 1;
    let class = |lo: u8, hi: u8| {
        if lo == hi {
            format!("[{}]", lo as char)
        } else {
            format!("[{}-{}]", lo as char, hi as char)
        }
    };
    if rest == 0 {
        return format!("{lead}{}", class(x, y));
    }
    let (a_rest, b_rest) = (&a[prefix + 1..], &b[prefix + 1..]);
    let from_zero = a_rest.bytes().all(|d| d == b'0');
    let to_nines = b_rest.bytes().all(|d| d == b'9');
    let mut alts = Vec::new();
    if !from_zero {
        alts.push(format!(
            "{} {}",
            class(x, x),
            same_length(a_rest, &"9".repeat(rest))
        ));
    }
    let (mid_lo, mid_hi) = (
        if from_zero { x } else { x + 1 },
        if to_nines { y } else { y - 1 },
    );
    if mid_lo <= mid_hi {
        alts.push(format!(
            "{} {}",
            class(mid_lo, mid_hi),
            any_digits(rest, rest)
        ));
    }
    if !to_nines {
        alts.push(format!(
            "{} {}",
            class(y, y),
            same_length(&"0".repeat(rest), b_rest)
        ));
    }
    if alts.len() == 1 {
        format!("{lead}{}", alts[0])
    } else {
        format!("{lead}({})", alts.join(" | "))
    }
}
