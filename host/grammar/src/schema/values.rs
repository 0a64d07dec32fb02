//! Schemas of one kind of value: the `type` dispatch, `const` / `enum`,
//! integers, strings and arrays.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{
    declared_types, infer_type, int_range, invalid, is_constraint, join, join_index, json_literal,
    known_format, nonempty_array, regex, reject, sub_name, unsatisfiable, unsupported, value_depth,
    Converter, Gen, SchemaError, Type, ARRAY_UNSUPPORTED, MAX_COUNT, MAX_DEPTH, NUMBER_KEYWORDS,
};

impl<'a> Converter<'a> {
    /// A schema without `$ref`, `anyOf`, `oneOf` or `allOf`.
    pub(super) fn typed(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        if obj.contains_key("const") || obj.contains_key("enum") {
            return self.literals(obj, ptr);
        }
        let types = match declared_types(obj, ptr)? {
            Some(types) => types,
            None => match infer_type(obj) {
                Some(t) => vec![t],
                None => return self.primitive("value", name),
            },
        };
        self.typed_list(obj, &types, name, ptr, depth)
    }

    pub(super) fn typed_list(
        &mut self,
        obj: &'a Map<String, Value>,
        types: &[Type],
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        if let [t] = types {
            return self.single(obj, *t, name, ptr, depth);
        }
        let mut rules = Vec::with_capacity(types.len());
        for (i, t) in types.iter().enumerate() {
            let sub = if name.is_empty() {
                format!("alternative-{i}")
            } else {
                format!("{name}-{i}")
            };
            let rule = match self.single(obj, *t, &sub, ptr, depth)? {
                Gen::Rule(rule) => rule,
                Gen::Body(body) => self.add_rule(&sub, body, ptr)?,
            };
            rules.push(rule);
        }
        Ok(Gen::Body(rules.join(" | ")))
    }

    fn single(
        &mut self,
        obj: &'a Map<String, Value>,
        t: Type,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        match t {
            Type::Null => self.primitive("null", name),
            Type::Boolean => self.primitive("boolean", name),
            Type::Number => {
                reject(
                    obj,
                    ptr,
                    NUMBER_KEYWORDS,
                    "is not supported for type number (only for integer)",
                )?;
                self.primitive("number", name)
            }
            Type::Integer => self.integer(obj, name, ptr),
            Type::String => self.string(obj, name, ptr),
            Type::Array => self.array(obj, name, ptr, depth),
            Type::Object => self.object(obj, name, ptr, depth),
        }
    }

    /// `const` / `enum`: the listed values as JSON text.
    fn literals(&mut self, obj: &'a Map<String, Value>, ptr: &str) -> Result<Gen, SchemaError> {
        for (k, v) in obj {
            if k != "const" && k != "enum" && k != "type" && is_constraint(obj, k, v) {
                return Err(unsupported(
                    &join(ptr, k),
                    format!("`{k}` alongside `enum` or `const` is not supported"),
                ));
            }
        }
        let values = self.literal_values(obj, ptr)?;
        if values.is_empty() {
            return Err(unsatisfiable(
                ptr,
                "no value of `enum` / `const` has an admitted type",
            ));
        }
        Ok(Gen::Body(literal_union(&values)))
    }

    /// The values of `const` / `enum` that have one of the declared types.
    pub(super) fn literal_values(
        &self,
        obj: &'a Map<String, Value>,
        ptr: &str,
    ) -> Result<Vec<&'a Value>, SchemaError> {
        let check = |v: &Value, at: &str| {
            if value_depth(v) > MAX_DEPTH {
                return Err(SchemaError::TooDeep {
                    pointer: at.to_string(),
                    limit: MAX_DEPTH,
                });
            }
            Ok(())
        };
        let mut values: Vec<&'a Value> = Vec::new();
        if let Some(list) = obj.get("enum") {
            let at = join(ptr, "enum");
            let list = nonempty_array(list, &at, Some("enum"), "")?;
            for (i, v) in list.iter().enumerate() {
                check(v, &join_index(&at, i))?;
            }
            values.extend(list);
        }
        if let Some(c) = obj.get("const") {
            let at = join(ptr, "const");
            check(c, &at)?;
            if obj.contains_key("enum") && !values.contains(&c) {
                return Err(unsatisfiable(
                    &at,
                    "`const` is not one of the `enum` values",
                ));
            }
            values = vec![c];
        }
        if let Some(types) = declared_types(obj, ptr)? {
            values.retain(|v| types.iter().any(|t| t.admits(v)));
        }
        Ok(values)
    }

    fn integer(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &str,
        ptr: &str,
    ) -> Result<Gen, SchemaError> {
        reject(obj, ptr, &["multipleOf"], "is not supported")?;
        let lo = int_range::bound(obj, ptr, true)?;
        let hi = int_range::bound(obj, ptr, false)?;
        if lo.is_none() && hi.is_none() {
            return self.primitive("integer", name);
        }
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo > hi {
                return Err(unsatisfiable(
                    ptr,
                    format!("no integer is at least {lo} and at most {hi}"),
                ));
            }
        }
        Ok(Gen::Body(format!("({})", int_range::int_range(lo, hi))))
    }

    fn string(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &str,
        ptr: &str,
    ) -> Result<Gen, SchemaError> {
        if let Some(f) = obj.get("format") {
            if !f.is_string() {
                return Err(invalid(&join(ptr, "format"), "`format` must be a string"));
            }
        }
        let min = count(obj, "minLength", ptr)?;
        let max = count(obj, "maxLength", ptr)?;
        let format = known_format(obj);
        if let Some(pattern) = obj.get("pattern") {
            let at = join(ptr, "pattern");
            let pattern = pattern
                .as_str()
                .ok_or_else(|| invalid(&at, "`pattern` must be a string"))?;
            for other in ["minLength", "maxLength", "format"] {
                if obj.contains_key(other) && (other != "format" || format.is_some()) {
                    return Err(unsupported(
                        &join(ptr, other),
                        format!("`{other}` alongside `pattern` is not supported"),
                    ));
                }
            }
            let converted = regex::pattern_to_gbnf(pattern).map_err(|e| match e {
                regex::PatternError::Invalid(m) => invalid(&at, format!("invalid pattern: {m}")),
                regex::PatternError::Unsupported(m) => {
                    unsupported(&at, format!("pattern not supported: {m}"))
                }
            })?;
            if converted.uses_char {
                self.add_primitive("char")?;
            }
            if converted.uses_dot {
                self.add_primitive("dot")?;
            }
            return Ok(Gen::Body(converted.body));
        }
        if let Some(format) = format {
            for other in ["minLength", "maxLength"] {
                if obj.contains_key(other) {
                    return Err(unsupported(
                        &join(ptr, other),
                        format!("`{other}` alongside `format` is not supported"),
                    ));
                }
            }
            let rule = self.add_primitive(format)?;
            return Ok(if name.is_empty() {
                Gen::Body(rule)
            } else {
                Gen::Rule(rule)
            });
        }
        if min.is_none() && max.is_none() {
            return self.primitive("string", name);
        }
        let min = min.unwrap_or(0);
        if max.is_some_and(|max| max < min) {
            return Err(unsatisfiable(ptr, "`maxLength` is less than `minLength`"));
        }
        let char_rule = self.add_primitive("char")?;
        Ok(Gen::Body(format!(
            r#""\"" {} "\"""#,
            repetition(&char_rule, min, max, None)
        )))
    }

    fn array(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        reject(obj, ptr, ARRAY_UNSUPPORTED, "is not supported")?;
        let min = count(obj, "minItems", ptr)?.unwrap_or(0);
        let max = count(obj, "maxItems", ptr)?;
        if max.is_some_and(|max| max < min) {
            return Err(unsatisfiable(ptr, "`maxItems` is less than `minItems`"));
        }
        // A tuple is `prefixItems` (2020-12) or an `items` array (older
        // drafts); the schema for the items after it is `items` or
        // `additionalItems` respectively.
        let (tuple, rest, rest_key) = match (obj.get("prefixItems"), obj.get("items")) {
            (Some(Value::Array(prefix)), _) => {
                (Some((prefix, "prefixItems")), obj.get("items"), "items")
            }
            (_, Some(Value::Array(prefix))) => (
                Some((prefix, "items")),
                obj.get("additionalItems"),
                "additionalItems",
            ),
            _ => (None, None, ""),
        };
        let saved = std::mem::take(&mut self.unguarded);
        let gen = match tuple {
            Some((items, key)) => {
                self.tuple(items, key, rest, rest_key, min, max, name, ptr, depth)
            }
            None => self.list(obj, min, max, name, ptr, depth),
        };
        self.unguarded = saved;
        gen
    }

    #[allow(clippy::too_many_arguments)]
    fn tuple(
        &mut self,
        items: &'a [Value],
        key: &str,
        rest: Option<&'a Value>,
        rest_key: &str,
        min: u64,
        max: Option<u64>,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        let n = items.len() as u64;
        // As in llama.cpp, every tuple item is required.
        if max.is_some_and(|max| max < n) {
            return Err(unsupported(
                &join(ptr, "maxItems"),
                "`maxItems` below the number of tuple items is not supported",
            ));
        }
        let at = join(ptr, key);
        let mut parts = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let sub = sub_name(name, &format!("tuple-{i}"));
            parts.push(self.visit(item, &sub, &join_index(&at, i), depth + 1)?);
        }
        let mut rule = format!(r#""[" space {}"#, parts.join(r#" "," space "#));
        // Without `items` / `additionalItems`, llama.cpp allows nothing after
        // the tuple (the spec would allow anything).
        let rest = match rest {
            None | Some(Value::Bool(false)) => None,
            Some(schema) => Some(schema),
        };
        match rest {
            None => {
                if min > n {
                    return Err(unsatisfiable(
                        &join(ptr, "minItems"),
                        "`minItems` exceeds the tuple length with no further items allowed",
                    ));
                }
            }
            Some(schema) => {
                let item = self.visit(
                    schema,
                    &sub_name(name, "item"),
                    &join(ptr, rest_key),
                    depth + 1,
                )?;
                let (lo, hi) = (min.saturating_sub(n), max.map(|m| m - n));
                let extra = if n == 0 {
                    repetition(&item, lo, hi, Some(r#""," space"#))
                } else {
                    repetition(&format!(r#"("," space {item})"#), lo, hi, None)
                };
                if !extra.is_empty() {
                    rule.push(' ');
                    rule.push_str(&extra);
                }
            }
        }
        rule.push_str(r#" space "]""#);
        Ok(Gen::Body(rule))
    }

    fn list(
        &mut self,
        obj: &'a Map<String, Value>,
        min: u64,
        max: Option<u64>,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        // llama.cpp reads a `prefixItems` that is a single schema as `items`.
        let (item, key) = match (obj.get("items"), obj.get("prefixItems")) {
            (Some(item), _) => (Some(item), "items"),
            (None, Some(item)) => (Some(item), "prefixItems"),
            (None, None) => (None, "items"),
        };
        let any = match item {
            None | Some(Value::Bool(true)) => true,
            Some(Value::Object(m)) => m.is_empty(),
            _ => false,
        };
        if any && min == 0 && max.is_none() {
            return self.primitive("array", name);
        }
        if item == Some(&Value::Bool(false)) {
            if min > 0 {
                return Err(unsatisfiable(
                    &join(ptr, "minItems"),
                    "`minItems` is positive but `items` is `false`",
                ));
            }
            return Ok(Gen::Body(r#""[" space "]""#.to_string()));
        }
        let item_rule = match item {
            Some(item) if !any => {
                self.visit(item, &sub_name(name, "item"), &join(ptr, key), depth + 1)?
            }
            _ => self.add_primitive("value")?,
        };
        let items = repetition(&item_rule, min, max, Some(r#""," space"#));
        Ok(Gen::Body(format!(r#""[" space {items} space "]""#)))
    }
}

/// A non-negative count such as `minItems`.
fn count(obj: &Map<String, Value>, keyword: &str, ptr: &str) -> Result<Option<u64>, SchemaError> {
    let Some(v) = obj.get(keyword) else {
        return Ok(None);
    };
    let at = join(ptr, keyword);
    let n = match v.as_u64() {
        Some(n) => n,
        None => match v.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 => {
                if f > MAX_COUNT as f64 {
                    u64::MAX
                } else {
                    f as u64
                }
            }
            _ => {
                return Err(invalid(
                    &at,
                    format!("`{keyword}` must be a non-negative integer"),
                ))
            }
        },
    };
    if n > MAX_COUNT {
        return Err(unsupported(
            &at,
            format!("`{keyword}` above {MAX_COUNT} is not supported"),
        ));
    }
    Ok(Some(n))
}

/// `item` repeated between `min` and `max` times, with `separator` between
/// occurrences, written the way llama.cpp writes repetitions.
fn repetition(item: &str, min: u64, max: Option<u64>, separator: Option<&str>) -> String {
    if max == Some(0) {
        return String::new();
    }
    if min == 0 && max == Some(1) {
        return format!("{item}?");
    }
    let Some(sep) = separator else {
        return match (min, max) {
            (0, None) => format!("{item}*"),
            (1, None) => format!("{item}+"),
            (1, Some(1)) => item.to_string(),
            (m, None) => format!("{item}{{{m},}}"),
            (m, Some(n)) if m == n => format!("{item}{{{m}}}"),
            (m, Some(n)) => format!("{item}{{{m},{n}}}"),
        };
    };
    let rest = repetition(
        &format!("({sep} {item})"),
        min.saturating_sub(1),
        max.map(|n| n - 1),
        None,
    );
    let list = if rest.is_empty() {
        item.to_string()
    } else {
        format!("{item} {rest}")
    };
    if min == 0 {
        format!("({list})?")
    } else {
        list
    }
}

/// The GBNF alternatives matching each of `values`, duplicates dropped.
pub(super) fn literal_union(values: &[&Value]) -> String {
    let mut seen = HashSet::new();
    let literals: Vec<String> = values
        .iter()
        .map(|v| json_literal(v))
        .filter(|l| seen.insert(l.clone()))
        .collect();
    format!("({})", literals.join(" | "))
}
