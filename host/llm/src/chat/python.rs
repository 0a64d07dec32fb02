//! Python semantics for chat templates: what Hugging Face transformers'
//! jinja2 environment does where minijinja differs.
//!
//! - printing (`{{ x }}`, `|string`, `|join`) uses Python's `str()`:
//!   `[1, 'a', None]`, `{'k': True}`, floats as `repr(float)` (`1e+20`);
//! - `tojson` is transformers' `json.dumps(x, ensure_ascii=False,
//!   indent=None, separators=None, sort_keys=False)`;
//! - jinja2's filters whose minijinja versions differ (`int`, `float`,
//!   `round`, `replace`, `indent`, `length`, `trim`, `join`) or are missing
//!   (`wordcount`, `truncate`, `center`), and the `iterable`/`callable`
//!   tests;
//! - Python `str`/`list` methods (`split`, `rsplit`, `strip`, `find`,
//!   `index`, `count`, `partition`, `splitlines`...), falling back to
//!   minijinja-contrib's `pycompat` for the others.
//!
//! Everything here is bounded: strings it builds are capped at
//! [`MAX_STRING_LEN`] bytes and nesting at [`MAX_DEPTH`], so a hostile
//! template cannot make a filter allocate without limit (the fuel budget
//! does not count work done inside filters).

use std::sync::Arc;

use minijinja::value::{from_args, Kwargs, Object, ObjectRepr, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, Output, State};

/// Largest string a filter or method here builds (minijinja's own cap on
/// `'x' * n` is 100 MB; a prompt is far smaller).
pub(super) const MAX_STRING_LEN: usize = 16 << 20;
/// Deepest nesting `repr` and `tojson` follow.
const MAX_DEPTH: usize = 200;

/// Python's `None` as transformers passes it for `tools` and `documents`.
/// minijinja's own none iterates as an empty sequence; this one, like
/// Python's, is not iterable (`{% for t in tools %}` raises), has no
/// length, is false, prints `None`, serializes as `null` and passes the
/// `none` test. (`tools == none` is false: minijinja compares objects by
/// identity; no template of llama.cpp's collection does that.)
#[derive(Debug)]
struct PyNone;

impl Object for PyNone {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
    fn is_true(self: &Arc<Self>) -> bool {
        false
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("None")
    }
}

/// A Python `None` for the template context (see [`PyNone`]).
pub(super) fn none() -> Value {
    Value::from_object(PyNone)
}

/// Whether `v` is minijinja's none or [`none()`].
pub(super) fn is_none(v: &Value) -> bool {
    v.is_none() || v.downcast_object_ref::<PyNone>().is_some()
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// A string that refuses to grow past [`MAX_STRING_LEN`].
struct Buf(String);

impl Buf {
    fn new() -> Self {
        Buf(String::new())
    }
    fn push(&mut self, s: &str) -> Result<(), Error> {
        if self.0.len() + s.len() > MAX_STRING_LEN {
            return Err(invalid(format!("string longer than {MAX_STRING_LEN} bytes")));
        }
        self.0.push_str(s);
        Ok(())
    }
    fn push_char(&mut self, c: char) -> Result<(), Error> {
        self.push(c.encode_utf8(&mut [0; 4]))
    }
}

fn check_len(n: usize) -> Result<(), Error> {
    if n > MAX_STRING_LEN {
        return Err(invalid(format!("string longer than {MAX_STRING_LEN} bytes")));
    }
    Ok(())
}

/// Python's `str.isspace()` characters: Unicode White_Space plus the
/// information separators U+001C..U+001F.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's line boundaries (`str.splitlines`).
fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// `repr(float)`: the shortest round-trip digits, in exponent form when
/// the decimal exponent is below -4 or at least 16.
pub(super) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if (-4..16).contains(&exp) {
        let fixed = format!("{f}");
        if fixed.contains('.') {
            fixed
        } else {
            fixed + ".0"
        }
    } else {
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// Whether Python's `str.isprintable()` holds for `c` (approximated: no
/// Unicode database here, so unassigned code points count as printable).
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !(u < 0x20
        || (0x7f..=0xa0).contains(&u)
        || u == 0xad
        || (0x600..=0x605).contains(&u)
        || u == 0x61c
        || u == 0x6dd
        || u == 0x70f
        || u == 0x1680
        || u == 0x180e
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202f).contains(&u)
        || (0x205f..=0x2064).contains(&u)
        || (0x2066..=0x206f).contains(&u)
        || u == 0x3000
        || (0xd800..=0xf8ff).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe0000..=0xe007f).contains(&u)
        || u >= 0xf0000)
}

/// `repr(str)`.
fn str_repr(s: &str, out: &mut Buf) -> Result<(), Error> {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => out.push("\\\\")?,
            '\n' => out.push("\\n")?,
            '\r' => out.push("\\r")?,
            '\t' => out.push("\\t")?,
            c if c == quote => {
                out.push_char('\\')?;
                out.push_char(c)?;
            }
            c if is_printable(c) => out.push_char(c)?,
            c if (c as u32) < 0x100 => out.push(&format!("\\x{:02x}", c as u32))?,
            c if (c as u32) < 0x10000 => out.push(&format!("\\u{:04x}", c as u32))?,
            c => out.push(&format!("\\U{:08x}", c as u32))?,
        }
    }
    out.push_char(quote)
}

fn number_str(v: &Value) -> String {
    if v.is_integer() {
        v.to_string()
    } else {
        f64::try_from(v.clone()).map(float_repr).unwrap_or_else(|_| v.to_string())
    }
}

/// `repr(v)`, with minijinja's sequences as lists and maps as dicts.
fn repr(v: &Value, out: &mut Buf, depth: usize) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(invalid("value nested too deeply"));
    }
    match v.kind() {
        ValueKind::Undefined => out.push(""),
        _ if is_none(v) => out.push("None"),
        ValueKind::Bool => out.push(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number => out.push(&number_str(v)),
        ValueKind::String => str_repr(v.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push("[")?;
            for (i, item) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push(", ")?;
                }
                repr(&item, out, depth + 1)?;
            }
            out.push("]")
        }
        ValueKind::Map => {
            out.push("{")?;
            for (i, key) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push(", ")?;
                }
                repr(&key, out, depth + 1)?;
                out.push(": ")?;
                repr(&v.get_item(&key)?, out, depth + 1)?;
            }
            out.push("}")
        }
        _ => out.push(&v.to_string()),
    }
}

/// `str(v)`: strings as they are, undefined as nothing, the rest as
/// [`repr`].
pub(super) fn py_str(v: &Value) -> Result<String, Error> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_string());
    }
    let mut out = Buf::new();
    repr(v, &mut out, 0)?;
    Ok(out.0)
}

/// The formatter of `{{ ... }}`: Python's `str()` (no autoescaping, as in
/// transformers).
pub(super) fn format(out: &mut Output<'_>, _state: &State<'_, '_>, v: &Value) -> Result<(), Error> {
    match v.as_str() {
        Some(s) => out.write_str(s),
        None => out.write_str(&py_str(v)?),
    }
    .map_err(|_| Error::new(ErrorKind::WriteFailure, "formatting failed"))
}

// ---------------------------------------------------------------- tojson

struct JsonOptions {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`: `json.dumps` with those arguments
/// (no HTML escaping, unlike jinja2's own `tojson`).
pub(super) fn tojson(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let names = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > names.len() {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let mut opts: [Option<Value>; 4] = Default::default();
    for (i, a) in args.iter().enumerate() {
        opts[i] = Some(a.clone());
    }
    for (i, name) in names.iter().enumerate() {
        if let Some(v) = kwargs.get::<Option<Value>>(name)? {
            if opts[i].is_some() {
                return Err(invalid(format!("tojson() got multiple values for argument '{name}'")));
            }
            opts[i] = Some(v);
        }
    }
    kwargs.assert_all_used()?;
    let [ensure_ascii, indent, separators, sort_keys] = opts;
    let indent = match indent {
        None => None,
        Some(v) if is_none(&v) => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => {
                let n = v.as_i64().ok_or_else(|| invalid("tojson indent must be an integer or a string"))?;
                let n = usize::try_from(n.max(0)).unwrap_or(0);
                check_len(n)?;
                " ".repeat(n)
            }
        }),
    };
    let (item_sep, key_sep) = match separators.filter(|v| !is_none(v)) {
        Some(v) => {
            let parts: Vec<Value> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] => (py_str(a)?, py_str(b)?),
                _ => return Err(invalid("tojson separators must be a pair (item, key)")),
            }
        }
        None if indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    let opts = JsonOptions {
        ensure_ascii: ensure_ascii.is_some_and(|v| v.is_true()),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.is_some_and(|v| v.is_true()),
    };
    let mut out = Buf::new();
    json_value(value, &opts, 0, &mut out)?;
    Ok(Value::from_safe_string(out.0))
}

fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined => "Undefined",
        ValueKind::Bytes => "bytes",
        ValueKind::Plain => "object",
        _ => "value",
    }
}

fn json_value(v: &Value, o: &JsonOptions, level: usize, out: &mut Buf) -> Result<(), Error> {
    if level > MAX_DEPTH {
        return Err(invalid("value nested too deeply for tojson"));
    }
    match v.kind() {
        _ if is_none(v) => out.push("null"),
        ValueKind::Bool => out.push(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number if v.is_integer() => out.push(&v.to_string()),
        ValueKind::Number => {
            let f = f64::try_from(v.clone())?;
            out.push(&if f.is_nan() {
                "NaN".to_string()
            } else if f.is_infinite() {
                if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
            } else {
                float_repr(f)
            })
        }
        ValueKind::String => json_string(v.as_str().unwrap_or_default(), o.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            json_container(o, level, out, '[', ']', items.len(), |i, out| json_value(&items[i], o, level + 1, out))
        }
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for key in v.try_iter()? {
                let item = v.get_item(&key)?;
                pairs.push((key, item));
            }
            if o.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            json_container(o, level, out, '{', '}', pairs.len(), |i, out| {
                let (key, item) = &pairs[i];
                let key = match key.kind() {
                    ValueKind::String => key.as_str().unwrap_or_default().to_string(),
                    ValueKind::Number if key.is_integer() => key.to_string(),
                    ValueKind::Number => float_repr(f64::try_from(key.clone())?),
                    ValueKind::Bool => if key.is_true() { "true" } else { "false" }.to_string(),
                    _ if is_none(key) => "null".to_string(),
                    _ => return Err(invalid("keys must be str, int, float, bool or None")),
                };
                json_string(&key, o.ensure_ascii, out)?;
                out.push(&o.key_sep)?;
                json_value(item, o, level + 1, out)
            })
        }
        _ => Err(invalid(format!("Object of type {} is not JSON serializable", type_name(v)))),
    }
}

fn json_container(
    o: &JsonOptions,
    level: usize,
    out: &mut Buf,
    open: char,
    close: char,
    len: usize,
    mut item: impl FnMut(usize, &mut Buf) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push_char(open)?;
    if len == 0 {
        return out.push_char(close);
    }
    let newline = |out: &mut Buf, level: usize| -> Result<(), Error> {
        if let Some(ind) = &o.indent {
            out.push("\n")?;
            for _ in 0..level {
                out.push(ind)?;
            }
        }
        Ok(())
    };
    newline(out, level + 1)?;
    for i in 0..len {
        if i > 0 {
            out.push(&o.item_sep)?;
            newline(out, level + 1)?;
        }
        item(i, out)?;
    }
    newline(out, level)?;
    out.push_char(close)
}

/// A JSON string as Python's `json` writes it.
fn json_string(s: &str, ensure_ascii: bool, out: &mut Buf) -> Result<(), Error> {
    out.push("\"")?;
    for c in s.chars() {
        match c {
            '"' => out.push("\\\"")?,
            '\\' => out.push("\\\\")?,
            '\n' => out.push("\\n")?,
            '\r' => out.push("\\r")?,
            '\t' => out.push("\\t")?,
            '\u{8}' => out.push("\\b")?,
            '\u{c}' => out.push("\\f")?,
            c if (c as u32) < 0x20 => out.push(&format!("\\u{:04x}", c as u32))?,
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push(&format!("\\u{u:04x}"))?;
                }
            }
            c => out.push_char(c)?,
        }
    }
    out.push("\"")
}

// --------------------------------------------------------------- filters

/// `string`: Python's `str()`.
pub(super) fn string(v: &Value) -> Result<Value, Error> {
    Ok(Value::from(py_str(v)?))
}

/// `join(d='', attribute=None)`: `d.join(map(str, value))`.
pub(super) fn join(v: &Value, d: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let attribute: Option<Value> = kwargs.get("attribute")?;
    kwargs.assert_all_used()?;
    let sep = match d {
        Some(d) => py_str(&d)?,
        None => String::new(),
    };
    if is_none(v) {
        return Err(invalid("'NoneType' object is not iterable"));
    }
    let mut out = Buf::new();
    for (i, item) in v.try_iter()?.enumerate() {
        if i > 0 {
            out.push(&sep)?;
        }
        let item = match &attribute {
            Some(a) => item_attribute(&item, a)?,
            None => item,
        };
        out.push(&py_str(&item)?)?;
    }
    Ok(Value::from(out.0))
}

/// jinja2's attribute lookup of `map`/`join`: `"a.b"` paths and integer
/// indices.
fn item_attribute(item: &Value, attribute: &Value) -> Result<Value, Error> {
    let Some(path) = attribute.as_str() else {
        return item.get_item(attribute);
    };
    let mut cur = item.clone();
    for part in path.split('.') {
        cur = match part.parse::<i64>() {
            Ok(i) => cur.get_item(&Value::from(i))?,
            Err(_) => cur.get_attr(part)?,
        };
    }
    Ok(cur)
}

/// `replace(old, new, count=None)` on `str(value)`.
pub(super) fn replace(v: &Value, old: &Value, new: &Value, count: Option<i64>) -> Result<Value, Error> {
    let (s, old, new) = (py_str(v)?, py_str(old)?, py_str(new)?);
    str_replace(&s, &old, &new, count)
}

fn str_replace(s: &str, old: &str, new: &str, count: Option<i64>) -> Result<Value, Error> {
    let n = match count {
        Some(c) if c >= 0 => usize::try_from(c).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    let hits = if old.is_empty() { s.chars().count() + 1 } else { s.matches(old).count() }.min(n);
    check_len(s.len() - hits * old.len() + hits * new.len())?;
    Ok(Value::from(s.replacen(old, new, n)))
}

/// Python's `int(str, base)` (whitespace, sign, underscores, `0x`-style
/// prefixes of the base).
fn parse_int(s: &str, base: u32) -> Option<i128> {
    let t = s.trim_matches(is_space);
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = t.to_ascii_lowercase();
    let prefixed = |p: &str| lower.strip_prefix(p).map(|r| r.trim_start_matches('_').to_string());
    let (base, digits) = match base {
        16 => (16, prefixed("0x").unwrap_or(lower.clone())),
        8 => (8, prefixed("0o").unwrap_or(lower.clone())),
        2 => (2, prefixed("0b").unwrap_or(lower.clone())),
        0 => {
            if let Some(d) = prefixed("0x") {
                (16, d)
            } else if let Some(d) = prefixed("0o") {
                (8, d)
            } else if let Some(d) = prefixed("0b") {
                (2, d)
            } else if lower.trim_start_matches(['0', '_']).is_empty() || !lower.starts_with('0') {
                (10, lower.clone())
            } else {
                return None;
            }
        }
        b => (b, lower.clone()),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let v = i128::from_str_radix(&digits.replace('_', ""), base).ok()?;
    Some(if neg { -v } else { v })
}

/// Python's `float(str)`.
fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim_matches(is_space);
    if t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return None;
    }
    let t = t.replace('_', "");
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if !matches!(body, "inf" | "infinity" | "nan") && !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    t.parse::<f64>().ok()
}

fn to_f64(v: &Value) -> Option<f64> {
    match v.kind() {
        ValueKind::Bool => Some(f64::from(u8::from(v.is_true()))),
        ValueKind::Number => f64::try_from(v.clone()).ok(),
        ValueKind::String => parse_float(v.as_str().unwrap_or_default()),
        _ => None,
    }
}

/// `int(default=0, base=10)`: jinja2's `int(value)`, then
/// `int(float(value))`, then the default.
pub(super) fn int(v: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = match default {
        Some(d) => Some(d),
        None => kwargs.get("default")?,
    }
    .unwrap_or(Value::from(0));
    let base: Option<i64> = kwargs.get("base")?;
    kwargs.assert_all_used()?;
    let base = u32::try_from(base.unwrap_or(10)).map_err(|_| invalid("int() base must be >= 2 and <= 36, or 0"))?;
    if base == 1 || base > 36 {
        return Err(invalid("int() base must be >= 2 and <= 36, or 0"));
    }
    if v.kind() == ValueKind::String {
        if let Some(i) = parse_int(v.as_str().unwrap_or_default(), base) {
            return Ok(Value::from(i));
        }
    } else if v.is_integer() {
        return Ok(v.clone());
    } else if v.kind() == ValueKind::Bool {
        return Ok(Value::from(i64::from(v.is_true())));
    }
    Ok(match to_f64(v) {
        Some(f) if f.is_finite() && f.abs() < 1.7e38 => Value::from(f.trunc() as i128),
        _ => default,
    })
}

/// `float(default=0.0)`.
pub(super) fn float(v: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = match default {
        Some(d) => Some(d),
        None => kwargs.get("default")?,
    }
    .unwrap_or(Value::from(0.0));
    kwargs.assert_all_used()?;
    Ok(to_f64(v).map(Value::from).unwrap_or(default))
}

/// `round(precision=0, method='common')`: Python's `round` (half to even,
/// on the exact binary value) for `common`, else `ceil`/`floor`.
pub(super) fn round(v: &Value, precision: Option<i64>, method: Option<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let precision = match precision {
        Some(p) => p,
        None => kwargs.get::<Option<i64>>("precision")?.unwrap_or(0),
    };
    let method = match method {
        Some(m) => m,
        None => kwargs.get::<Option<String>>("method")?.unwrap_or_else(|| "common".into()),
    };
    kwargs.assert_all_used()?;
    let is_int = v.is_integer() || v.kind() == ValueKind::Bool;
    let f = to_f64(v).filter(|_| v.kind() != ValueKind::String).ok_or_else(|| invalid("round() needs a number"))?;
    let p = precision.clamp(-400, 400) as i32;
    let r = match method.as_str() {
        "common" if is_int && precision >= 0 => return Ok(Value::from(v.as_i64().unwrap_or(f as i64))),
        "common" if precision >= 0 => format!("{:.*}", p as usize, f).parse::<f64>().unwrap_or(f),
        "common" => {
            let scale = 10f64.powi(-p);
            let q = f / scale;
            let r = q.round();
            let r = if (q - q.trunc()).abs() == 0.5 && r % 2.0 != 0.0 { r - q.signum() } else { r };
            r * scale
        }
        "ceil" => (f * 10f64.powi(p)).ceil() / 10f64.powi(p),
        "floor" => (f * 10f64.powi(p)).floor() / 10f64.powi(p),
        _ => return Err(invalid("method must be 'common', 'ceil' or 'floor'")),
    };
    Ok(Value::from(r))
}

/// Python's `str.splitlines()`.
fn splitlines(s: &str, keepends: bool) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if is_line_break(c) {
            let mut end = i + c.len_utf8();
            if c == '\r' && it.peek().is_some_and(|&(_, n)| n == '\n') {
                it.next();
                end += 1;
            }
            lines.push(if keepends { &s[start..end] } else { &s[start..i] });
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// `indent(width=4, first=False, blank=False)`, jinja2 3.1's.
pub(super) fn indent(v: &Value, width: Option<Value>, first: Option<bool>, blank: Option<bool>, kwargs: Kwargs) -> Result<Value, Error> {
    let width = match width {
        Some(w) => Some(w),
        None => kwargs.get("width")?,
    };
    let first = first.or(kwargs.get("first")?).unwrap_or(false);
    let blank = blank.or(kwargs.get("blank")?).unwrap_or(false);
    kwargs.assert_all_used()?;
    let pad = match width {
        None => "    ".to_string(),
        Some(w) => match w.as_str() {
            Some(s) => s.to_string(),
            None => {
                let n = w.as_i64().ok_or_else(|| invalid("indent width must be an integer or a string"))?;
                let n = usize::try_from(n.max(0)).unwrap_or(0);
                check_len(n)?;
                " ".repeat(n)
            }
        },
    };
    let s = py_str(v)? + "\n";
    let lines = splitlines(&s, false);
    check_len(s.len() + pad.len() * (lines.len() + 1))?;
    let mut rv = if blank {
        lines.join(&format!("\n{pad}"))
    } else {
        let mut it = lines.iter();
        let mut rv = it.next().copied().unwrap_or_default().to_string();
        for line in it {
            rv.push('\n');
            if !line.is_empty() {
                rv.push_str(&pad);
            }
            rv.push_str(line);
        }
        rv
    };
    if first {
        rv.insert_str(0, &pad);
    }
    Ok(Value::from(rv))
}

/// `length`/`count`: Python's `len()`; an undefined value has length 0.
pub(super) fn length(v: &Value) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::Undefined => Ok(Value::from(0)),
        ValueKind::String => Ok(Value::from(v.as_str().unwrap_or_default().chars().count())),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => match v.len() {
            Some(n) => Ok(Value::from(n)),
            None => Ok(Value::from(v.try_iter()?.count())),
        },
        _ if is_none(v) => Err(invalid("object of type 'NoneType' has no len()")),
        _ => Err(invalid(format!("object of type '{}' has no len()", v.kind()))),
    }
}

/// Python's `str.strip(chars)` family: `side` 0 both, 1 left, 2 right.
fn strip(s: &str, chars: Option<&Value>, side: u8) -> Result<String, Error> {
    let set: Option<Vec<char>> = match chars {
        Some(c) if !is_none(c) && !c.is_undefined() => {
            Some(c.as_str().ok_or_else(|| invalid("strip arg must be None or str"))?.chars().collect())
        }
        _ => None,
    };
    let pred = |c: char| match &set {
        Some(set) => set.contains(&c),
        None => is_space(c),
    };
    Ok(match side {
        1 => s.trim_start_matches(pred),
        2 => s.trim_end_matches(pred),
        _ => s.trim_matches(pred),
    }
    .to_string())
}

/// `trim(chars=None)`: Python's `str.strip`.
pub(super) fn trim(v: &Value, chars: Option<Value>) -> Result<Value, Error> {
    Ok(Value::from(strip(&py_str(v)?, chars.as_ref(), 0)?))
}

/// `wordcount`: the number of `\w+` runs.
pub(super) fn wordcount(v: &Value) -> Result<Value, Error> {
    let s = py_str(v)?;
    let word = |c: char| c.is_alphanumeric() || c == '_';
    Ok(Value::from(s.split(|c: char| !word(c)).filter(|w| !w.is_empty()).count()))
}

/// `truncate(length=255, killwords=False, end='...', leeway=5)`.
pub(super) fn truncate(
    v: &Value,
    length: Option<i64>,
    killwords: Option<bool>,
    end: Option<String>,
    leeway: Option<i64>,
) -> Result<Value, Error> {
    let s = py_str(v)?;
    let length = length.unwrap_or(255);
    let end = end.unwrap_or_else(|| "...".into());
    let leeway = leeway.unwrap_or(5);
    let end_len = end.chars().count() as i64;
    if length < end_len || leeway < 0 {
        return Err(invalid("truncate: length must be >= len(end) and leeway >= 0"));
    }
    let n = s.chars().count() as i64;
    if n <= length.saturating_add(leeway) {
        return Ok(Value::from(s));
    }
    let head: String = s.chars().take((length - end_len) as usize).collect();
    let head = if killwords.unwrap_or(false) {
        head
    } else {
        head.rsplit_once(' ').map(|(a, _)| a.to_string()).unwrap_or(head)
    };
    Ok(Value::from(head + &end))
}

/// Python's `str.center(width, fill)`.
fn center_str(s: &str, width: i64, fill: char) -> Result<String, Error> {
    let n = s.chars().count() as i64;
    if width <= n {
        return Ok(s.to_string());
    }
    check_len((width as usize).saturating_mul(fill.len_utf8()))?;
    let marg = width - n;
    let left = marg / 2 + (marg & width & 1);
    let mut out = String::new();
    out.extend(std::iter::repeat_n(fill, left as usize));
    out.push_str(s);
    out.extend(std::iter::repeat_n(fill, (marg - left) as usize));
    Ok(out)
}

/// `center(width=80)`.
pub(super) fn center(v: &Value, width: Option<i64>) -> Result<Value, Error> {
    Ok(Value::from(center_str(&py_str(v)?, width.unwrap_or(80), ' ')?))
}

/// jinja2's `map`, `select`, `reject`, `selectattr` and `rejectattr` start
/// with `if value:`: a false value (None, an empty or undefined value)
/// gives an empty result instead of an error. Registers them over
/// minijinja's.
pub(super) fn add_select_filters(env: &mut minijinja::Environment<'static>) {
    use minijinja::filters as f;
    use std::borrow::Cow;
    env.add_filter("map", |state: &State<'_, '_>, value: Value, args: Rest<Value>| {
        if value.is_true() { f::map(state, value, args) } else { Ok(Vec::new()) }
    });
    env.add_filter("select", |state: &State<'_, '_>, value: Value, test: Option<Cow<'_, str>>, args: Rest<Value>| {
        if value.is_true() { f::select(state, value, test, args) } else { Ok(Vec::new()) }
    });
    env.add_filter("reject", |state: &State<'_, '_>, value: Value, test: Option<Cow<'_, str>>, args: Rest<Value>| {
        if value.is_true() { f::reject(state, value, test, args) } else { Ok(Vec::new()) }
    });
    env.add_filter(
        "selectattr",
        |state: &State<'_, '_>, value: Value, attr: Cow<'_, str>, test: Option<Cow<'_, str>>, args: Rest<Value>| {
            if value.is_true() { f::selectattr(state, value, attr, test, args) } else { Ok(Vec::new()) }
        },
    );
    env.add_filter(
        "rejectattr",
        |state: &State<'_, '_>, value: Value, attr: Cow<'_, str>, test: Option<Cow<'_, str>>, args: Rest<Value>| {
            if value.is_true() { f::rejectattr(state, value, attr, test, args) } else { Ok(Vec::new()) }
        },
    );
}

/// jinja2's `joiner(sep=', ')` global: a callable returning `''` the first
/// time and `sep` after.
pub(super) fn joiner(sep: Option<String>) -> Value {
    Value::from_object(Joiner { sep: sep.unwrap_or_else(|| ", ".into()), used: std::sync::atomic::AtomicBool::new(false) })
}

#[derive(Debug)]
struct Joiner {
    sep: String,
    used: std::sync::atomic::AtomicBool,
}

impl Object for Joiner {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let () = from_args(args)?;
        let used = self.used.swap(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Value::from(if used { self.sep.as_str() } else { "" }))
    }
}

// ----------------------------------------------------------------- tests

/// `iterable`: None is not iterable in Python (minijinja iterates it as
/// empty); undefined is.
pub(super) fn is_iterable(v: &Value) -> bool {
    !is_none(v) && v.try_iter().is_ok()
}

/// `number`: Python's bools are ints.
pub(super) fn is_number(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Number | ValueKind::Bool)
}

/// `sequence`: anything with `len()` and `[]`: strings, lists and dicts.
pub(super) fn is_sequence(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::String | ValueKind::Seq | ValueKind::Map)
}

/// `callable`: functions, macros and loops.
pub(super) fn is_callable(v: &Value) -> bool {
    v.kind() == ValueKind::Plain && !is_none(v)
}

// --------------------------------------------------------------- methods

/// Python's `str.split(sep, maxsplit)` (`rev`: `rsplit`).
fn split(s: &str, sep: Option<&str>, maxsplit: i64, rev: bool) -> Result<Vec<String>, Error> {
    let limit = usize::try_from(maxsplit).ok();
    match sep {
        Some("") => Err(invalid("empty separator")),
        Some(sep) => Ok(match (limit, rev) {
            (None, false) => s.split(sep).map(String::from).collect(),
            (None, true) => s.split(sep).map(String::from).collect(),
            (Some(n), false) => s.splitn(n.saturating_add(1), sep).map(String::from).collect(),
            (Some(n), true) => {
                let mut v: Vec<String> = s.rsplitn(n.saturating_add(1), sep).map(String::from).collect();
                v.reverse();
                v
            }
        }),
        None => {
            let mut out = Vec::new();
            if !rev {
                let mut rest = s.trim_start_matches(is_space);
                while !rest.is_empty() {
                    if limit.is_some_and(|n| out.len() >= n) {
                        out.push(rest.to_string());
                        break;
                    }
                    let end = rest.find(is_space).unwrap_or(rest.len());
                    out.push(rest[..end].to_string());
                    rest = rest[end..].trim_start_matches(is_space);
                }
            } else {
                let mut rest = s.trim_end_matches(is_space);
                while !rest.is_empty() {
                    if limit.is_some_and(|n| out.len() >= n) {
                        out.push(rest.to_string());
                        break;
                    }
                    let start = rest.rfind(is_space).map(|i| i + rest[i..].chars().next().map_or(1, char::len_utf8)).unwrap_or(0);
                    out.push(rest[start..].to_string());
                    rest = rest[..start].trim_end_matches(is_space);
                }
                out.reverse();
            }
            Ok(out)
        }
    }
}

/// Python slice bounds `[start:end]` over `n` items, clamped.
fn bounds(n: usize, start: Option<i64>, end: Option<i64>) -> (usize, usize) {
    let fix = |i: i64| -> usize {
        if i < 0 {
            (n as i64 + i).max(0) as usize
        } else {
            (i as usize).min(n)
        }
    };
    (start.map_or(0, fix), end.map_or(n, fix))
}

/// `str.find`/`rfind` in code points, `None` when absent.
fn find(s: &str, sub: &str, start: Option<i64>, end: Option<i64>, rev: bool) -> Option<usize> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let (a, b) = bounds(chars.len(), start, end);
    if a > b {
        return None;
    }
    let byte = |i: usize| chars.get(i).map_or(s.len(), |&(o, _)| o);
    let hay = &s[byte(a)..byte(b)];
    let off = if rev { hay.rfind(sub)? } else { hay.find(sub)? };
    Some(a + hay[..off].chars().count())
}

fn str_list(items: Vec<String>) -> Value {
    Value::from(items.into_iter().map(Value::from).collect::<Vec<_>>())
}

/// The string methods handled here (`None`: not one of them).
fn string_method(s: &str, name: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    Ok(Some(match name {
        "strip" | "lstrip" | "rstrip" => {
            let (chars,): (Option<Value>,) = from_args(args)?;
            let side = match name {
                "lstrip" => 1,
                "rstrip" => 2,
                _ => 0,
            };
            Value::from(strip(s, chars.as_ref(), side)?)
        }
        "split" | "rsplit" => {
            let (sep, maxsplit, kwargs): (Option<Value>, Option<i64>, Kwargs) = from_args(args)?;
            let sep = match sep {
                Some(v) => Some(v),
                None => kwargs.get("sep")?,
            };
            let maxsplit = match maxsplit {
                Some(m) => m,
                None => kwargs.get::<Option<i64>>("maxsplit")?.unwrap_or(-1),
            };
            kwargs.assert_all_used()?;
            let sep = match &sep {
                Some(v) if !is_none(v) => Some(v.as_str().ok_or_else(|| invalid("must be str or None"))?),
                _ => None,
            };
            str_list(split(s, sep, maxsplit, name == "rsplit")?)
        }
        "splitlines" => {
            let (keepends,): (Option<bool>,) = from_args(args)?;
            str_list(splitlines(s, keepends.unwrap_or(false)).into_iter().map(String::from).collect())
        }
        "count" => {
            let (sub, start, end): (&str, Option<i64>, Option<i64>) = from_args(args)?;
            let chars: Vec<(usize, char)> = s.char_indices().collect();
            let (a, b) = bounds(chars.len(), start, end);
            if a > b {
                Value::from(0)
            } else if sub.is_empty() {
                Value::from(b - a + 1)
            } else {
                let byte = |i: usize| chars.get(i).map_or(s.len(), |&(o, _)| o);
                Value::from(s[byte(a)..byte(b)].matches(sub).count())
            }
        }
        "find" | "rfind" | "index" | "rindex" => {
            let (sub, start, end): (&str, Option<i64>, Option<i64>) = from_args(args)?;
            match find(s, sub, start, end, name.starts_with('r')) {
                Some(i) => Value::from(i),
                None if name.ends_with("find") => Value::from(-1),
                None => return Err(invalid("substring not found")),
            }
        }
        "replace" => {
            let (old, new, count): (&str, &str, Option<i64>) = from_args(args)?;
            str_replace(s, old, new, count)?
        }
        "partition" | "rpartition" => {
            let (sep,): (&str,) = from_args(args)?;
            if sep.is_empty() {
                return Err(invalid("empty separator"));
            }
            let found = if name == "partition" { s.split_once(sep) } else { s.rsplit_once(sep) };
            let parts = match (found, name) {
                (Some((a, b)), _) => [a, sep, b],
                (None, "partition") => [s, "", ""],
                (None, _) => ["", "", s],
            };
            Value::from(parts.iter().map(|p| Value::from(*p)).collect::<Vec<_>>())
        }
        "removeprefix" => {
            let (p,): (&str,) = from_args(args)?;
            Value::from(s.strip_prefix(p).unwrap_or(s))
        }
        "removesuffix" => {
            let (p,): (&str,) = from_args(args)?;
            Value::from(s.strip_suffix(p).unwrap_or(s))
        }
        "center" | "ljust" | "rjust" => {
            let (width, fill): (i64, Option<&str>) = from_args(args)?;
            let fill = match fill.map(|f| f.chars().collect::<Vec<_>>()) {
                None => ' ',
                Some(f) if f.len() == 1 => f[0],
                Some(_) => return Err(invalid("the fill character must be exactly one character long")),
            };
            let n = s.chars().count() as i64;
            if name == "center" {
                Value::from(center_str(s, width, fill)?)
            } else if width <= n {
                Value::from(s)
            } else {
                check_len((width as usize).saturating_mul(fill.len_utf8()).saturating_add(s.len()))?;
                let pad: String = std::iter::repeat_n(fill, (width - n) as usize).collect();
                Value::from(if name == "ljust" { format!("{s}{pad}") } else { format!("{pad}{s}") })
            }
        }
        "zfill" => {
            let (width,): (i64,) = from_args(args)?;
            let n = s.chars().count() as i64;
            if width <= n {
                Value::from(s)
            } else {
                check_len(width as usize)?;
                let zeros = "0".repeat((width - n) as usize);
                Value::from(match s.strip_prefix(['+', '-']) {
                    Some(rest) => format!("{}{zeros}{rest}", &s[..1]),
                    None => format!("{zeros}{s}"),
                })
            }
        }
        "swapcase" => {
            let () = from_args(args)?;
            Value::from(
                s.chars()
                    .flat_map(|c| {
                        if c.is_uppercase() {
                            c.to_lowercase().collect::<Vec<_>>()
                        } else {
                            c.to_uppercase().collect::<Vec<_>>()
                        }
                    })
                    .collect::<String>(),
            )
        }
        "casefold" => {
            let () = from_args(args)?;
            Value::from(s.to_lowercase())
        }
        "isspace" => {
            let () = from_args(args)?;
            Value::from(!s.is_empty() && s.chars().all(is_space))
        }
        "join" => {
            let (items,): (&Value,) = from_args(args)?;
            let mut out = Buf::new();
            for (i, item) in items.try_iter()?.enumerate() {
                if i > 0 {
                    out.push(s)?;
                }
                let part = item.as_str().ok_or_else(|| {
                    invalid(format!("sequence item {i}: expected str instance, {} found", item.kind()))
                })?;
                out.push(part)?;
            }
            Value::from(out.0)
        }
        _ => return Ok(None),
    }))
}

/// Python methods on values (`'a b'.split()`, `[1, 2].index(2)`...): those
/// above, then minijinja-contrib's `pycompat`.
pub(super) fn method(state: &State<'_, '_>, value: &Value, name: &str, args: &[Value]) -> Result<Value, Error> {
    if let Some(s) = value.as_str() {
        if let Some(v) = string_method(s, name, args)? {
            return Ok(v);
        }
    } else if value.kind() == ValueKind::Seq && name == "index" {
        let (what,): (&Value,) = from_args(args)?;
        return match value.try_iter()?.position(|x| x == *what) {
            Some(i) => Ok(Value::from(i)),
            None => Err(invalid(format!("{} is not in list", py_str(what)?))),
        };
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, name, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_reprs() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e20, "1e+20"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e100, "1e+100"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn splits() {
        let sp = |s, sep, n, rev| split(s, sep, n, rev).unwrap();
        assert_eq!(sp("  a b  c  ", None, -1, false), ["a", "b", "c"]);
        assert_eq!(sp("  a b  c  ", None, 1, false), ["a", "b  c  "]);
        assert_eq!(sp("  a b  c  ", None, 1, true), ["  a b", "c"]);
        assert_eq!(sp("a,b,c", Some(","), 1, true), ["a,b", "c"]);
        assert_eq!(sp("", Some(","), -1, false), [""]);
        assert!(sp("   ", None, -1, false).is_empty());
        assert_eq!(splitlines("a\r\nb\rc\u{2028}d\n", false), ["a", "b", "c", "d"]);
        assert_eq!(splitlines("a\r\nb\n", true), ["a\r\n", "b\n"]);
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int(" 42 ", 10), Some(42));
        assert_eq!(parse_int("-1_000", 10), Some(-1000));
        assert_eq!(parse_int("0x1A", 16), Some(26));
        assert_eq!(parse_int("0x1A", 0), Some(26));
        assert_eq!(parse_int("3.7", 10), None);
        assert_eq!(parse_float("3.7"), Some(3.7));
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("x"), None);
    }

    #[test]
    fn empty_counts_do_not_loop() {
        assert_eq!(string_method("abc", "count", &[Value::from("")]).unwrap(), Some(Value::from(4)));
        assert_eq!(string_method("abc", "find", &[Value::from("c")]).unwrap(), Some(Value::from(2)));
        assert_eq!(string_method("é c", "find", &[Value::from("c")]).unwrap(), Some(Value::from(2)));
    }

    #[test]
    fn big_strings_are_refused() {
        let huge = Value::from(1i64 << 40);
        assert!(string_method("a", "zfill", std::slice::from_ref(&huge)).is_err());
        assert!(string_method("a", "center", std::slice::from_ref(&huge)).is_err());
        assert!(center(&Value::from("a"), Some(1 << 40)).is_err());
        assert!(str_replace(&"a".repeat(1000), "a", &"b".repeat(1 << 20), None).is_err());
    }
}
