//! JSON Schema to GBNF: [`json_schema_to_gbnf`] turns a schema into a
//! grammar (start rule `root`) whose language is JSON text satisfying it.
//!
//! The output follows the conventions of llama.cpp's
//! `common/json-schema-to-grammar.cpp`: the same primitive rules (`value`,
//! `string`, `number`, `char`, ...), the same `space` rule between tokens
//! (so pretty-printed JSON with up to 20 columns of indentation matches),
//! rule names built from the path through the schema, and object keys in a
//! fixed order: required properties in document order, then optional ones
//! in document order (each may be left out), then extra ones.
//!
//! Supported subset:
//! - `true` / `{}` / no type: any JSON value; `type` as a name or a list
//!   (a union); with no `type`, the keywords present pick one, as in
//!   llama.cpp (`properties` means an object, `items` an array, ...).
//! - `const`, `enum`: any JSON values, matched as their compact JSON text.
//! - `$ref` to `#` or `#/json/pointer` in the same document (`$defs`,
//!   `definitions`, anywhere), recursion included; `anyOf`, `oneOf`;
//!   `allOf` of object schemas (properties merged), of enums (intersected)
//!   and of type-only schemas.
//! - objects: `properties`, `required`, `additionalProperties` (`false`,
//!   `true` or a schema; when absent, extra properties are allowed only if
//!   there is no `properties` either: llama.cpp's default).
//! - arrays: `items`, `prefixItems` (or draft-4 `items` arrays with
//!   `additionalItems`), `minItems`, `maxItems`.
//! - strings: `minLength`, `maxLength`, `pattern` (an ECMA-262 subset, see
//!   `regex.rs`), and `format` `date`, `time`, `date-time`, `uuid` (other
//!   formats are annotations and ignored, as the JSON Schema spec allows).
//! - integers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`.
//!
//! Everything else that constrains values (`not`, `if`, `patternProperties`,
//! `uniqueItems`, bounds on `number`, keywords next to `$ref` or `anyOf`,
//! ...) is refused with a [`SchemaError`] naming the JSON pointer of the
//! keyword: a grammar that silently ignored it would let the model produce
//! invalid output. Where llama.cpp's conventions are stricter than the spec
//! (no extra properties by default, every tuple item required, at most 16
//! digits in unbounded numbers, no `\uXXXX` spellings in patterns), the
//! grammar accepts a subset of the valid instances. The one way it can
//! accept an invalid instance is `oneOf` with overlapping alternatives: it
//! is treated as `anyOf`, as llama.cpp does.
//!
//! Schemas come from guests, so every recursion is bounded (64 levels of
//! nesting, 100 000 sub-schemas visited, a 1 MiB grammar) and reported as
//! an error rather than a stack overflow or an allocation failure.

mod int_range;
mod keywords;
mod object;
mod regex;
mod values;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use keywords::{
    declared_types, infer_type, is_constraint, known_format, reject, reject_never_supported,
    union_keyword, Type, TypeSet, ARRAY_UNSUPPORTED, NUMBER_KEYWORDS, OBJECT_UNSUPPORTED,
};

/// Deepest nesting of sub-schemas (and of values in `enum` / `const`).
const MAX_DEPTH: usize = 64;
/// Largest grammar produced, in bytes.
const MAX_GRAMMAR_BYTES: usize = 1 << 20;
/// Most sub-schemas examined in one conversion. Nesting alone does not bound
/// the work: `$ref`s and `allOf` can reach one sub-schema many times.
const MAX_STEPS: usize = 100_000;
/// Largest count in `minItems`, `maxLength`, pattern `{m,n}`, ...: the grammar
/// parser expands repetitions, and refuses larger ones.
const MAX_COUNT: u64 = 10_000;
/// Longest rule name made from a path through the schema; longer ones are
/// cut (and made unique by a suffix), so deep paths cannot blow up the size.
const MAX_NAME_LEN: usize = 100;

/// A JSON Schema that cannot be turned into a grammar. `pointer` is the JSON
/// pointer (RFC 6901, `""` for the root) of the offending part of the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Not a valid JSON Schema: a keyword whose value has the wrong kind.
    #[error("invalid schema at {}: {message}", show(.pointer))]
    Invalid { pointer: String, message: String },
    /// Valid JSON Schema that this converter cannot express as a grammar.
    #[error("unsupported schema at {}: {message}", show(.pointer))]
    Unsupported { pointer: String, message: String },
    /// No JSON value satisfies the schema, and a grammar cannot match nothing.
    #[error("no value satisfies the schema at {}: {message}", show(.pointer))]
    Unsatisfiable { pointer: String, message: String },
    /// A local `$ref` that names no part of the document.
    #[error("cannot resolve $ref `{reference}` at {}", show(.pointer))]
    UnresolvedRef { pointer: String, reference: String },
    /// Sub-schemas (or `enum` values) nested deeper than `limit`.
    #[error("schema nested deeper than {limit} levels at {}", show(.pointer))]
    TooDeep { pointer: String, limit: usize },
    /// The schema needs too much work or too large a grammar.
    #[error("schema too large at {}: {message}", show(.pointer))]
    TooLarge { pointer: String, message: String },
}

impl SchemaError {
    /// The JSON pointer of the part of the schema the error is about.
    pub fn pointer(&self) -> &str {
        match self {
            SchemaError::Invalid { pointer, .. }
            | SchemaError::Unsupported { pointer, .. }
            | SchemaError::Unsatisfiable { pointer, .. }
            | SchemaError::UnresolvedRef { pointer, .. }
            | SchemaError::TooDeep { pointer, .. }
            | SchemaError::TooLarge { pointer, .. } => pointer,
        }
    }
}

fn show(pointer: &str) -> String {
    if pointer.is_empty() {
        "the root".to_string()
    } else {
        pointer.to_string()
    }
}

/// `v` as a non-empty array; otherwise an error at `at` saying that `key`
/// (if named) must be an array (of `items`, if given) and not empty.
fn nonempty_array<'v>(
    v: &'v Value,
    at: &str,
    key: Option<&str>,
    items: &str,
) -> Result<&'v Vec<Value>, SchemaError> {
    let subject = key.map_or(String::new(), |k| format!("`{k}` "));
    let list = v
        .as_array()
        .ok_or_else(|| invalid(at, format!("{subject}must be an array{items}")))?;
    if list.is_empty() {
        return Err(invalid(at, format!("{subject}must not be empty")));
    }
    Ok(list)
}

fn invalid(pointer: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

fn unsupported(pointer: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Unsupported {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

fn unsatisfiable(pointer: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Unsatisfiable {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

/// Converts a JSON Schema to a GBNF grammar whose start rule is `root`.
///
/// Object keys are matched in the schema's `properties` order, so the
/// schema should be parsed with key order preserved.
pub fn json_schema_to_gbnf(schema: &Value) -> Result<String, SchemaError> {
    let mut c = Converter::new(schema);
    c.visit(schema, "", "", 0)?;
    Ok(c.finish())
}

/// `pointer` extended by one reference token, escaped as RFC 6901 says.
fn join(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

fn join_index(pointer: &str, index: usize) -> String {
    format!("{pointer}/{index}")
}

/// The name of a rule for `segment` under the rule named `parent`.
fn sub_name(parent: &str, segment: &str) -> String {
    // An empty segment (a property named "") must not yield the empty name,
    // which stands for the root.
    let segment = if segment.is_empty() { "empty" } else { segment };
    if parent.is_empty() {
        segment.to_string()
    } else {
        format!("{parent}-{segment}")
    }
}

/// A literal in GBNF syntax matching exactly `text`.
fn gbnf_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The GBNF literal matching `value` serialized as compact JSON.
fn json_literal(value: &Value) -> String {
    gbnf_literal(&value.to_string())
}

/// Nesting depth of a JSON value, without recursion (values come from guests).
fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(m) => stack.extend(m.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// llama.cpp's `space` rule: nothing, a space, or one or two newlines and
/// up to 20 spaces or tabs of indentation.
const SPACE_RULE: &str = r#"| " " | "\n"{1,2} [ \t]{0,20}"#;

/// The rules that schemas share, as llama.cpp writes them: name, body,
/// the rules the body uses.
const PRIMITIVES: &[(&str, &str, &[&str])] = &[
    ("boolean", r#"("true" | "false")"#, &[]),
    ("decimal-part", "[0-9]{1,16}", &[]),
    ("integral-part", "[0] | [1-9] [0-9]{0,15}", &[]),
    (
        "number",
        r#"("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)?"#,
        &["integral-part", "decimal-part"],
    ),
    ("integer", r#"("-"? integral-part)"#, &["integral-part"]),
    (
        "value",
        "object | array | string | number | boolean | null",
        &["object", "array", "string", "number", "boolean", "null"],
    ),
    (
        "object",
        r#""{" space ( string ":" space value ("," space string ":" space value)* )? space "}""#,
        &["string", "value"],
    ),
    (
        "array",
        r#""[" space ( value ("," space value)* )? space "]""#,
        &["value"],
    ),
    (
        "uuid",
        r#""\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\"""#,
        &[],
    ),
    (
        "char",
        r#"[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})"#,
        &[],
    ),
    ("string", r#""\"" char* "\"""#, &["char"]),
    ("null", r#""null""#, &[]),
    (
        "date",
        r#"[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )"#,
        &[],
    ),
    (
        "time",
        r#"([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )"#,
        &[],
    ),
    ("date-time", r#"date "T" time"#, &["date", "time"]),
    ("date-string", r#""\"" date "\"""#, &["date"]),
    ("time-string", r#""\"" time "\"""#, &["time"]),
    ("date-time-string", r#""\"" date-time "\"""#, &["date-time"]),
    // One character of a JSON string that `.` in a pattern matches.
    ("dot", regex::DOT_RULE, &[]),
];

/// Names that rules made from the schema must not take.
fn is_reserved(name: &str) -> bool {
    name == "root" || name == "space" || PRIMITIVES.iter().any(|p| p.0 == name)
}

/// What building a schema produced: the name of an existing rule, or a rule
/// body still to be named.
enum Gen {
    Rule(String),
    Body(String),
}

impl Gen {
    fn into_body(self) -> String {
        match self {
            Gen::Rule(s) | Gen::Body(s) => s,
        }
    }
}

static EMPTY_OBJECT: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

struct Converter<'a> {
    root: &'a Value,
    /// Rule bodies by name, sorted for a deterministic output; `None` while
    /// the rule of a `$ref` is being built.
    rules: BTreeMap<String, Option<String>>,
    /// Next suffix to try for each rule name already taken.
    suffixes: HashMap<String, usize>,
    /// `$ref` strings and the rules of their targets.
    refs: HashMap<String, String>,
    /// `$ref`s being built with no character matched since they began:
    /// reaching one again would make its rule left-recursive.
    unguarded: HashSet<String>,
    bytes: usize,
    steps: usize,
}

impl<'a> Converter<'a> {
    fn new(root: &'a Value) -> Self {
        let mut rules = BTreeMap::new();
        rules.insert("root".to_string(), None);
        rules.insert("space".to_string(), Some(SPACE_RULE.to_string()));
        Converter {
            root,
            rules,
            suffixes: HashMap::new(),
            refs: HashMap::new(),
            unguarded: HashSet::new(),
            bytes: SPACE_RULE.len(),
            steps: 0,
        }
    }

    fn finish(self) -> String {
        let mut out = String::with_capacity(self.bytes + 8 * self.rules.len());
        for (name, body) in &self.rules {
            let _ = writeln!(out, "{name} ::= {}", body.as_deref().unwrap_or_default());
        }
        out
    }

    fn step(&mut self, ptr: &str) -> Result<(), SchemaError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(SchemaError::TooLarge {
                pointer: ptr.to_string(),
                message: format!("more than {MAX_STEPS} sub-schemas to convert"),
            });
        }
        Ok(())
    }

    fn check_depth(depth: usize, ptr: &str) -> Result<(), SchemaError> {
        if depth > MAX_DEPTH {
            return Err(SchemaError::TooDeep {
                pointer: ptr.to_string(),
                limit: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn store(&mut self, name: String, body: String, ptr: &str) -> Result<(), SchemaError> {
        self.bytes += name.len() + body.len() + 6;
        if self.bytes > MAX_GRAMMAR_BYTES {
            return Err(SchemaError::TooLarge {
                pointer: ptr.to_string(),
                message: format!("the grammar would exceed {MAX_GRAMMAR_BYTES} bytes"),
            });
        }
        self.rules.insert(name, Some(body));
        Ok(())
    }

    /// `name` made into a legal rule name (`[a-zA-Z0-9-]+`) that is not
    /// one of the fixed rules.
    fn legal_name(name: &str) -> String {
        let mut out = String::with_capacity(name.len().min(MAX_NAME_LEN));
        let mut in_run = false;
        for c in name.chars() {
            if c.is_ascii_alphanumeric() || c == '-' {
                out.push(c);
                in_run = false;
            } else if !in_run {
                out.push('-');
                in_run = true;
            }
            if out.len() >= MAX_NAME_LEN {
                break;
            }
        }
        if out.is_empty() {
            out.push_str("empty");
        }
        if is_reserved(&out) {
            out.push('-');
        }
        out
    }

    /// A name based on `name` that no rule has yet.
    fn fresh_name(&mut self, name: &str) -> String {
        let base = Self::legal_name(name);
        if !self.rules.contains_key(&base) {
            return base;
        }
        let next = self.suffixes.entry(base.clone()).or_insert(0);
        loop {
            let candidate = format!("{base}{next}");
            *next += 1;
            if !self.rules.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    /// Adds a rule named after `name`, reusing a rule of that name with the
    /// same body, and returns the name it got.
    fn add_rule(&mut self, name: &str, body: String, ptr: &str) -> Result<String, SchemaError> {
        let base = Self::legal_name(name);
        if let Some(Some(existing)) = self.rules.get(&base) {
            if *existing == body {
                return Ok(base);
            }
        }
        let key = self.fresh_name(name);
        self.store(key.clone(), body, ptr)?;
        Ok(key)
    }

    /// Adds one of the [`PRIMITIVES`] and the rules it uses.
    fn add_primitive(&mut self, name: &'static str) -> Result<String, SchemaError> {
        let mut todo = vec![name];
        while let Some(n) = todo.pop() {
            if self.rules.contains_key(n) {
                continue;
            }
            let Some(&(_, body, deps)) = PRIMITIVES.iter().find(|p| p.0 == n) else {
                unreachable!("unknown primitive rule {n}");
            };
            self.store(n.to_string(), body.to_string(), "")?;
            todo.extend(deps);
        }
        Ok(name.to_string())
    }

    /// A primitive, written into the root rule itself at the root as
    /// llama.cpp does.
    fn primitive(&mut self, which: &'static str, name: &str) -> Result<Gen, SchemaError> {
        if !name.is_empty() {
            return Ok(Gen::Rule(self.add_primitive(which)?));
        }
        let &(_, body, deps) = PRIMITIVES
            .iter()
            .find(|p| p.0 == which)
            .expect("known primitive");
        for dep in deps {
            self.add_primitive(dep)?;
        }
        Ok(Gen::Body(body.to_string()))
    }

    /// Builds `schema` and returns the name of the rule matching it. The
    /// empty `name` stands for the root.
    fn visit(
        &mut self,
        schema: &'a Value,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<String, SchemaError> {
        let gen = self.build(schema, name, ptr, depth)?;
        if name.is_empty() {
            self.store("root".to_string(), gen.into_body(), ptr)?;
            return Ok("root".to_string());
        }
        match gen {
            Gen::Rule(rule) => Ok(rule),
            Gen::Body(body) => self.add_rule(name, body, ptr),
        }
    }

    fn build(
        &mut self,
        schema: &'a Value,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        Self::check_depth(depth, ptr)?;
        self.step(ptr)?;
        let obj = match schema {
            Value::Bool(true) => return self.primitive("value", name),
            Value::Bool(false) => {
                return Err(unsatisfiable(ptr, "the schema `false` admits no value"))
            }
            Value::Object(obj) => obj,
            _ => return Err(invalid(ptr, "a schema must be an object or a boolean")),
        };
        reject_never_supported(obj, ptr)?;
        if let Some(r) = obj.get("$ref") {
            self.only_with(obj, "$ref", ptr, depth)?;
            return Ok(Gen::Rule(self.reference(r, &join(ptr, "$ref"), depth)?));
        }
        if let Some(key) = union_keyword(obj, ptr)? {
            self.only_with(obj, key, ptr, depth)?;
            return self.union(&obj[key], key, name, ptr, depth);
        }
        if obj.contains_key("allOf") {
            return self.all_of(obj, name, ptr, depth);
        }
        self.typed(obj, name, ptr, depth)
    }

    /// Refuses keywords next to `key` (`$ref`, `anyOf`, `oneOf`) that would
    /// further constrain the value: llama.cpp ignores them. A `type` is
    /// allowed when every value `key` admits already has one of its types.
    fn only_with(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<(), SchemaError> {
        for (k, v) in obj {
            if k == key || k == "type" || !is_constraint(obj, k, v) {
                continue;
            }
            return Err(unsupported(
                &join(ptr, k),
                format!("`{k}` alongside `{key}` is not supported"),
            ));
        }
        if let Some(declared) = declared_types(obj, ptr)? {
            let admitted = self.possible_types_of(obj, true, ptr, depth, &mut Vec::new())?;
            if !admitted.subset_of(TypeSet::of(&declared)) {
                return Err(unsupported(
                    &join(ptr, "type"),
                    format!("`type` alongside `{key}` is only supported when it admits every value `{key}` does"),
                ));
            }
        }
        Ok(())
    }

    /// The types of the values `schema` may admit (a superset).
    fn possible_types(
        &mut self,
        schema: &Value,
        ptr: &str,
        depth: usize,
        seen: &mut Vec<String>,
    ) -> Result<TypeSet, SchemaError> {
        match schema {
            Value::Bool(false) => Ok(TypeSet::NONE),
            Value::Object(obj) if depth <= MAX_DEPTH => {
                self.possible_types_of(obj, false, ptr, depth, seen)
            }
            _ => Ok(TypeSet::ALL),
        }
    }

    /// [`Self::possible_types`] of a schema object, its `type` ignored if
    /// `ignore_type`.
    fn possible_types_of(
        &mut self,
        obj: &Map<String, Value>,
        ignore_type: bool,
        ptr: &str,
        depth: usize,
        seen: &mut Vec<String>,
    ) -> Result<TypeSet, SchemaError> {
        self.step(ptr)?;
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if seen.iter().any(|s| s == r) {
                return Ok(TypeSet::ALL);
            }
            let (target, target_ptr) = self.resolve(r, &join(ptr, "$ref"))?;
            seen.push(r.to_string());
            let types = self.possible_types(target, &target_ptr, depth + 1, seen);
            seen.pop();
            return types;
        }
        let mut types = TypeSet::ALL;
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = obj.get(key).and_then(Value::as_array) {
                let mut union = TypeSet::NONE;
                for (i, alt) in alts.iter().enumerate() {
                    union.0 |= self
                        .possible_types(alt, &join_index(&join(ptr, key), i), depth + 1, seen)?
                        .0;
                }
                types.0 &= union.0;
            }
        }
        if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
            for (i, part) in parts.iter().enumerate() {
                types.0 &= self
                    .possible_types(part, &join_index(&join(ptr, "allOf"), i), depth + 1, seen)?
                    .0;
            }
        }
        if let Some(c) = obj.get("const") {
            types.0 &= TypeSet::of_value(c).0;
        } else if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            types.0 &= values.iter().fold(0, |acc, v| acc | TypeSet::of_value(v).0);
        }
        match declared_types(obj, ptr)? {
            Some(declared) if !ignore_type => types.0 &= TypeSet::of(&declared).0,
            Some(_) => {}
            None => {
                if let Some(t) = infer_type(obj) {
                    types.0 &= TypeSet::of(&[t]).0;
                }
            }
        }
        Ok(types)
    }

    /// Finds the target of a local `$ref`, and its JSON pointer.
    fn resolve(&self, reference: &str, ptr: &str) -> Result<(&'a Value, String), SchemaError> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(unsupported(
                ptr,
                format!("only references within the document (`#/...`) are supported, not `{reference}`"),
            ));
        };
        let pointer = percent_decode(fragment)
            .ok_or_else(|| invalid(ptr, format!("malformed $ref `{reference}`")))?;
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(unsupported(
                ptr,
                format!("anchor references such as `{reference}` are not supported"),
            ));
        }
        let unresolved = || SchemaError::UnresolvedRef {
            pointer: ptr.to_string(),
            reference: reference.to_string(),
        };
        let mut target = self.root;
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            target = match target {
                Value::Object(m) => m.get(&token).ok_or_else(unresolved)?,
                Value::Array(items) => {
                    let canonical = token == "0" || (!token.starts_with('0') && !token.is_empty());
                    let index = token
                        .parse::<usize>()
                        .ok()
                        .filter(|_| canonical)
                        .ok_or_else(unresolved)?;
                    items.get(index).ok_or_else(unresolved)?
                }
                _ => return Err(unresolved()),
            };
        }
        Ok((target, pointer))
    }

    /// The rule for the target of a `$ref`, built once (so recursive schemas
    /// become recursive rules).
    fn reference(
        &mut self,
        reference: &'a Value,
        ptr: &str,
        depth: usize,
    ) -> Result<String, SchemaError> {
        let r = reference
            .as_str()
            .ok_or_else(|| invalid(ptr, "`$ref` must be a string"))?;
        if let Some(rule) = self.refs.get(r) {
            if self.unguarded.contains(r) {
                return Err(unsupported(
                    ptr,
                    format!("`{r}` refers back to itself before matching any character (left recursion)"),
                ));
            }
            return Ok(rule.clone());
        }
        let (target, target_ptr) = self.resolve(r, ptr)?;
        // Reserve the name first: the target may refer to it.
        let name = self.fresh_name(&format!("ref{target_ptr}"));
        self.rules.insert(name.clone(), None);
        self.refs.insert(r.to_string(), name.clone());
        self.unguarded.insert(r.to_string());
        let body = self
            .build(target, &name, &target_ptr, depth + 1)?
            .into_body();
        self.unguarded.remove(r);
        self.store(name.clone(), body, &target_ptr)?;
        Ok(name)
    }

    /// `anyOf` / `oneOf`: one rule per alternative. `oneOf`'s "exactly one"
    /// is not enforced (as in llama.cpp); for disjoint alternatives, the
    /// usual case, it makes no difference.
    fn union(
        &mut self,
        alts: &'a Value,
        key: &str,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        let at = join(ptr, key);
        let alts = nonempty_array(alts, &at, Some(key), " of schemas")?;
        let mut rules = Vec::with_capacity(alts.len());
        for (i, alt) in alts.iter().enumerate() {
            if alt == &Value::Bool(false) {
                continue;
            }
            let sub = if name.is_empty() {
                format!("alternative-{i}")
            } else {
                format!("{name}-{i}")
            };
            rules.push(self.visit(alt, &sub, &join_index(&at, i), depth + 1)?);
        }
        if rules.is_empty() {
            return Err(unsatisfiable(&at, "every alternative is `false`"));
        }
        Ok(Gen::Body(rules.join(" | ")))
    }
}

/// Decodes `%XX` escapes of a URI fragment; `None` if malformed.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
