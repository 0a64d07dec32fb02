//! The keywords of JSON Schema: which constrain values, which type they
//! belong to, and which are refused; and the `type` keyword itself.

use serde_json::{Map, Value};

use super::{invalid, join, join_index, unsupported, SchemaError};

/// The JSON types of the `type` keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Type {
    Null,
    Boolean,
    Object,
    Array,
    Number,
    String,
    Integer,
}

const ALL_TYPES: [Type; 7] = [
    Type::Object,
    Type::Array,
    Type::String,
    Type::Number,
    Type::Integer,
    Type::Boolean,
    Type::Null,
];

impl Type {
    fn parse(name: &str) -> Option<Type> {
        Some(match name {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "object" => Type::Object,
            "array" => Type::Array,
            "number" => Type::Number,
            "string" => Type::String,
            "integer" => Type::Integer,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Whether `value` is an instance of this type (an integer is also a
    /// number, and a number with no fractional part is an integer).
    pub(super) fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (Type::Null, Value::Null) => true,
            (Type::Boolean, Value::Bool(_)) => true,
            (Type::Object, Value::Object(_)) => true,
            (Type::Array, Value::Array(_)) => true,
            (Type::String, Value::String(_)) => true,
            (Type::Number, Value::Number(_)) => true,
            (Type::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

/// A set of types, for checking that alternatives fit a sibling `type`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct TypeSet(pub(super) u8);

impl TypeSet {
    pub(super) const ALL: TypeSet = TypeSet(0x7f);
    pub(super) const NONE: TypeSet = TypeSet(0);

    pub(super) fn of(types: &[Type]) -> TypeSet {
        let mut bits = types.iter().fold(0, |acc, t| acc | t.bit());
        // Every integer is a number.
        if bits & Type::Number.bit() != 0 {
            bits |= Type::Integer.bit();
        }
        TypeSet(bits)
    }

    pub(super) fn of_value(value: &Value) -> TypeSet {
        TypeSet(
            ALL_TYPES
                .iter()
                .filter(|t| t.admits(value))
                .fold(0, |acc, t| acc | t.bit()),
        )
    }

    pub(super) fn subset_of(self, other: TypeSet) -> bool {
        self.0 & !other.0 == 0
    }
}

/// Keywords that constrain instances. Those outside this list are
/// annotations (`title`, `description`, `default`, `$defs`, ...) or unknown,
/// and JSON Schema says to ignore both.
const CONSTRAINTS: &[&str] = &[
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "type",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "unevaluatedItems",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

/// Keywords refused wherever they appear.
const NEVER_SUPPORTED: &[&str] = &["not", "if", "then", "else", "$dynamicRef", "$recursiveRef"];

const OBJECT_KEYWORDS: &[&str] = &[
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
];
pub(super) const OBJECT_UNSUPPORTED: &[&str] = &[
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
];
const ARRAY_KEYWORDS: &[&str] = &[
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "unevaluatedItems",
];
pub(super) const ARRAY_UNSUPPORTED: &[&str] = &[
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
    "unevaluatedItems",
];
const STRING_KEYWORDS: &[&str] = &["pattern", "minLength", "maxLength"];
pub(super) const NUMBER_KEYWORDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

/// Whether a keyword that is refused for its type is harmless with this
/// value (it admits every instance), like `uniqueItems: false`.
fn is_noop(keyword: &str, value: &Value) -> bool {
    match keyword {
        "uniqueItems" => value == &Value::Bool(false),
        "minProperties" | "minContains" => value.as_u64() == Some(0),
        "unevaluatedProperties" | "unevaluatedItems" => {
            value == &Value::Bool(true) || value.as_object().is_some_and(Map::is_empty)
        }
        "multipleOf" => value.as_f64() == Some(1.0),
        _ => false,
    }
}

/// The `format` values with a grammar, as llama.cpp names their rules.
pub(super) fn known_format(obj: &Map<String, Value>) -> Option<&'static str> {
    match obj.get("format")?.as_str()? {
        "date" => Some("date-string"),
        "time" => Some("time-string"),
        "date-time" => Some("date-time-string"),
        "uuid" | "uuid1" | "uuid2" | "uuid3" | "uuid4" | "uuid5" => Some("uuid"),
        _ => None,
    }
}

/// Whether `keyword: value` constrains instances.
pub(super) fn is_constraint(obj: &Map<String, Value>, keyword: &str, value: &Value) -> bool {
    if keyword == "format" {
        return known_format(obj).is_some();
    }
    CONSTRAINTS.contains(&keyword) && !is_noop(keyword, value)
}

/// The type that a schema without `type` stands for, judged by its
/// keywords in llama.cpp's order; `None` means any value.
pub(super) fn infer_type(obj: &Map<String, Value>) -> Option<Type> {
    let has = |keys: &[&str]| {
        keys.iter()
            .any(|k| obj.get(*k).is_some_and(|v| !is_noop(k, v)))
    };
    let object_keys = OBJECT_KEYWORDS
        .iter()
        .filter(|k| **k != "additionalProperties")
        .copied()
        .collect::<Vec<_>>();
    if has(&object_keys)
        || obj
            .get("additionalProperties")
            .is_some_and(|v| v != &Value::Bool(true))
    {
        Some(Type::Object)
    } else if has(ARRAY_KEYWORDS) {
        Some(Type::Array)
    } else if has(STRING_KEYWORDS) || known_format(obj).is_some() {
        Some(Type::String)
    } else if has(NUMBER_KEYWORDS) {
        Some(Type::Number)
    } else {
        None
    }
}

/// The value of `type`, if present, with duplicates removed.
pub(super) fn declared_types(
    obj: &Map<String, Value>,
    ptr: &str,
) -> Result<Option<Vec<Type>>, SchemaError> {
    let Some(t) = obj.get("type") else {
        return Ok(None);
    };
    let at = join(ptr, "type");
    let parse = |v: &Value, at: &str| -> Result<Type, SchemaError> {
        let name = v
            .as_str()
            .ok_or_else(|| invalid(at, "`type` entries must be strings"))?;
        Type::parse(name).ok_or_else(|| invalid(at, format!("unknown type `{name}`")))
    };
    match t {
        Value::String(_) => Ok(Some(vec![parse(t, &at)?])),
        Value::Array(list) => {
            if list.is_empty() {
                return Err(invalid(&at, "`type` must not be an empty list"));
            }
            let mut types = Vec::new();
            for (i, v) in list.iter().enumerate() {
                let t = parse(v, &join_index(&at, i))?;
                if !types.contains(&t) {
                    types.push(t);
                }
            }
            Ok(Some(types))
        }
        _ => Err(invalid(
            &at,
            "`type` must be a string or an array of strings",
        )),
    }
}

/// Which of `anyOf` / `oneOf` the schema has.
pub(super) fn union_keyword(
    obj: &Map<String, Value>,
    ptr: &str,
) -> Result<Option<&'static str>, SchemaError> {
    match (obj.contains_key("anyOf"), obj.contains_key("oneOf")) {
        (true, true) => Err(unsupported(
            &join(ptr, "oneOf"),
            "`oneOf` alongside `anyOf` is not supported",
        )),
        (true, false) => Ok(Some("anyOf")),
        (false, true) => Ok(Some("oneOf")),
        (false, false) => Ok(None),
    }
}

pub(super) fn reject_never_supported(
    obj: &Map<String, Value>,
    ptr: &str,
) -> Result<(), SchemaError> {
    reject(obj, ptr, NEVER_SUPPORTED, "is not supported")
}

/// Refuses the first of `keywords` present (unless harmless).
pub(super) fn reject(
    obj: &Map<String, Value>,
    ptr: &str,
    keywords: &[&str],
    why: &str,
) -> Result<(), SchemaError> {
    for k in keywords {
        if let Some(v) = obj.get(*k) {
            if !is_noop(k, v) {
                return Err(unsupported(&join(ptr, k), format!("`{k}` {why}")));
            }
        }
    }
    Ok(())
}
