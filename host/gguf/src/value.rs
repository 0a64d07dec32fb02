//! Metadata values: the GGUF `gguf_metadata_value_type` table and its Rust
//! representation.

use std::fmt;

/// GGUF metadata value type ids (`enum gguf_type` in `gguf.h`).
pub(crate) mod type_id {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Array),
}

/// A homogeneous metadata array. Arrays may nest (`Array::Array`); each
/// inner array has its own element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
}

impl Value {
    /// The GGUF type name: `"u32"`, `"string"`, `"array[f32]"`...
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(a) => a.type_name(),
        }
    }

    /// The GGUF value type id written before this value.
    pub(crate) fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => type_id::U8,
            Value::I8(_) => type_id::I8,
            Value::U16(_) => type_id::U16,
            Value::I16(_) => type_id::I16,
            Value::U32(_) => type_id::U32,
            Value::I32(_) => type_id::I32,
            Value::U64(_) => type_id::U64,
            Value::I64(_) => type_id::I64,
            Value::F32(_) => type_id::F32,
            Value::F64(_) => type_id::F64,
            Value::Bool(_) => type_id::BOOL,
            Value::String(_) => type_id::STRING,
            Value::Array(_) => type_id::ARRAY,
        }
    }

    /// The value as an `i128` if it is any integer type (not bool).
    fn as_int(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// True for the eight integer types.
    pub fn is_integer(&self) -> bool {
        self.as_int().is_some()
    }

    /// Any integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_int().and_then(|v| u64::try_from(v).ok())
    }

    /// Any integer type holding a value that fits in `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_int().and_then(|v| u32::try_from(v).ok())
    }

    /// Any integer type holding a value that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_int().and_then(|v| i64::try_from(v).ok())
    }

    /// F32, F64 (rounded; `None` if a finite f64 overflows f32) or any
    /// integer (rounded to the nearest f32).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => {
                let f = v as f32;
                (f.is_finite() || !v.is_finite()).then_some(f)
            }
            _ => self.as_int().map(|v| v as f32),
        }
    }

    /// F32, F64 or any integer, as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_int().map(|v| v as f64),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl Array {
    /// The elements as `u64` when this is an integer array: `None` for any
    /// other element type, `Some(None)` when an element is negative.
    pub(crate) fn to_u64s(&self) -> Option<Option<Vec<u64>>> {
        fn conv<T: Copy + TryInto<u64>>(v: &[T]) -> Option<Vec<u64>> {
            v.iter().map(|&x| x.try_into().ok()).collect()
        }
        Some(match self {
            Array::U8(v) => conv(v),
            Array::I8(v) => conv(v),
            Array::U16(v) => conv(v),
            Array::I16(v) => conv(v),
            Array::U32(v) => conv(v),
            Array::I32(v) => conv(v),
            Array::U64(v) => Some(v.clone()),
            Array::I64(v) => conv(v),
            _ => return None,
        })
    }

    /// `"array[<element type>]"`; nested arrays are `"array[array]"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Array::U8(_) => "array[u8]",
            Array::I8(_) => "array[i8]",
            Array::U16(_) => "array[u16]",
            Array::I16(_) => "array[i16]",
            Array::U32(_) => "array[u32]",
            Array::I32(_) => "array[i32]",
            Array::U64(_) => "array[u64]",
            Array::I64(_) => "array[i64]",
            Array::F32(_) => "array[f32]",
            Array::F64(_) => "array[f64]",
            Array::Bool(_) => "array[bool]",
            Array::String(_) => "array[string]",
            Array::Array(_) => "array[array]",
        }
    }

    /// The GGUF value type id of the elements.
    pub(crate) fn elem_type_id(&self) -> u32 {
        match self {
            Array::U8(_) => type_id::U8,
            Array::I8(_) => type_id::I8,
            Array::U16(_) => type_id::U16,
            Array::I16(_) => type_id::I16,
            Array::U32(_) => type_id::U32,
            Array::I32(_) => type_id::I32,
            Array::U64(_) => type_id::U64,
            Array::I64(_) => type_id::I64,
            Array::F32(_) => type_id::F32,
            Array::F64(_) => type_id::F64,
            Array::Bool(_) => type_id::BOOL,
            Array::String(_) => type_id::STRING,
            Array::Array(_) => type_id::ARRAY,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Items shown by `Display` before an array is cut short.
const DISPLAY_ITEMS: usize = 5;
/// Characters of a string shown by `Display` before it is cut short.
const DISPLAY_CHARS: usize = 60;

fn fmt_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    match s.char_indices().nth(DISPLAY_CHARS) {
        None => write!(f, "{s:?}"),
        Some((cut, _)) => write!(f, "{:?}… ({} bytes)", &s[..cut], s.len()),
    }
}

fn fmt_items<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    mut item: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    f.write_str("[")?;
    for (i, x) in items.iter().take(DISPLAY_ITEMS).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, x)?;
    }
    if items.len() > DISPLAY_ITEMS {
        write!(f, ", …] ({} items)", items.len())
    } else {
        f.write_str("]")
    }
}

fn fmt_plain<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    fmt_items(f, items, |f, x| write!(f, "{x}"))
}

/// Short human form: strings quoted and cut at 60 characters, arrays show
/// their first 5 items and their length.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            // Debug keeps huge and tiny floats short (`1e-30`, not 30 zeros).
            Value::F32(v) => write!(f, "{v:?}"),
            Value::F64(v) => write!(f, "{v:?}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(s) => fmt_str(f, s),
            Value::Array(a) => a.fmt(f),
        }
    }
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Array::U8(v) => fmt_plain(f, v),
            Array::I8(v) => fmt_plain(f, v),
            Array::U16(v) => fmt_plain(f, v),
            Array::I16(v) => fmt_plain(f, v),
            Array::U32(v) => fmt_plain(f, v),
            Array::I32(v) => fmt_plain(f, v),
            Array::U64(v) => fmt_plain(f, v),
            Array::I64(v) => fmt_plain(f, v),
            Array::F32(v) => fmt_items(f, v, |f, x| write!(f, "{x:?}")),
            Array::F64(v) => fmt_items(f, v, |f, x| write!(f, "{x:?}")),
            Array::Bool(v) => fmt_plain(f, v),
            Array::String(v) => fmt_items(f, v, |f, s| fmt_str(f, s)),
            Array::Array(v) => fmt_plain(f, v),
        }
    }
}

macro_rules! from_impls {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(v)
            }
        }
        impl From<Vec<$t>> for Array {
            fn from(v: Vec<$t>) -> Array {
                Array::$variant(v)
            }
        }
        impl From<Vec<$t>> for Value {
            fn from(v: Vec<$t>) -> Value {
                Value::Array(Array::$variant(v))
            }
        }
    )*};
}

from_impls!(
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
    u64 => U64, i64 => I64, f32 => F32, f64 => F64, bool => Bool, String => String,
);

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}

impl From<Vec<&str>> for Value {
    fn from(v: Vec<&str>) -> Value {
        Value::Array(Array::String(v.into_iter().map(str::to_owned).collect()))
    }
}

impl From<Array> for Value {
    fn from(v: Array) -> Value {
        Value::Array(v)
    }
}

impl From<Vec<Array>> for Array {
    fn from(v: Vec<Array>) -> Array {
        Array::Array(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_conversions_are_range_checked() {
        assert_eq!(Value::I8(-1).as_u64(), None);
        assert_eq!(Value::I64(5).as_u64(), Some(5));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::U64(u64::from(u32::MAX) + 1).as_u32(), None);
        assert_eq!(Value::U16(7).as_u32(), Some(7));
        assert_eq!(Value::Bool(true).as_u64(), None);
        assert_eq!(Value::F32(1.0).as_u64(), None);
    }

    #[test]
    fn float_conversions() {
        assert_eq!(Value::F64(0.5).as_f32(), Some(0.5));
        assert_eq!(Value::F64(1e300).as_f32(), None);
        assert_eq!(Value::F64(f64::INFINITY).as_f32(), Some(f32::INFINITY));
        assert_eq!(Value::I32(-3).as_f32(), Some(-3.0));
        assert_eq!(Value::String("1".into()).as_f32(), None);
    }

    #[test]
    fn display_is_short() {
        assert_eq!(Value::U32(7).to_string(), "7");
        assert_eq!(Value::from("a\"b").to_string(), r#""a\"b""#);
        let long = "x".repeat(100);
        assert_eq!(
            Value::String(long).to_string(),
            format!("{:?}… (100 bytes)", "x".repeat(60))
        );
        assert_eq!(Value::from(vec![1u8, 2]).to_string(), "[1, 2]");
        assert_eq!(Value::F32(1e-30).to_string(), "1e-30");
        assert_eq!(Value::from(vec![0.5f64, 2.0]).to_string(), "[0.5, 2.0]");
        assert_eq!(
            Value::from((0..10).collect::<Vec<i32>>()).to_string(),
            "[0, 1, 2, 3, 4, …] (10 items)"
        );
        assert_eq!(Value::from(vec!["a", "b"]).to_string(), r#"["a", "b"]"#);
        let nested = Array::Array(vec![Array::U8(vec![1]), Array::Bool(vec![])]);
        assert_eq!(Value::Array(nested).to_string(), "[[1], []]");
    }

    #[test]
    fn type_names() {
        assert_eq!(Value::from(vec![1.0f32]).type_name(), "array[f32]");
        assert_eq!(Value::from("s").type_name(), "string");
        assert_eq!(Value::I64(0).type_name(), "i64");
    }
}
