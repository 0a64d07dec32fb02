//! Objects (`properties`, `required`, `additionalProperties`) and `allOf`,
//! which is supported where it merges objects or intersects enums.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::{
    declared_types, invalid, is_constraint, join, join_index, nonempty_array, reject,
    reject_never_supported, sub_name, union_keyword, unsatisfiable, unsupported,
    values::literal_union, Converter, Gen, SchemaError, Type, EMPTY_OBJECT, MAX_DEPTH,
    OBJECT_UNSUPPORTED,
};

/// Longest property name that a key rule excluding known names handles:
/// that rule nests one group per character.
const MAX_EXCLUDED_NAME_CHARS: usize = 128;

/// What an object allows besides its listed properties.
#[derive(Clone)]
enum Additional<'a> {
    /// `additionalProperties` is absent but `properties` is not: llama.cpp
    /// then allows nothing else.
    Default,
    /// `additionalProperties: false`.
    Forbidden,
    /// `true`, `{}`, or no `properties` and no `additionalProperties`.
    Any,
    /// A schema for the values of other properties, and its pointer.
    Schema(&'a Value, String),
}

struct Prop<'a> {
    name: &'a str,
    schema: &'a Value,
    ptr: String,
}

struct ObjectSpec<'a> {
    /// In document order; properties whose schema is `false` included.
    props: Vec<Prop<'a>>,
    /// In the order of `required`, without duplicates.
    required: Vec<&'a str>,
    additional: Additional<'a>,
    ptr: String,
}

fn parse_object<'a>(obj: &'a Map<String, Value>, ptr: &str) -> Result<ObjectSpec<'a>, SchemaError> {
    let mut props = Vec::new();
    if let Some(p) = obj.get("properties") {
        let at = join(ptr, "properties");
        let p = p
            .as_object()
            .ok_or_else(|| invalid(&at, "`properties` must be an object"))?;
        props.extend(p.iter().map(|(name, schema)| Prop {
            name,
            schema,
            ptr: join(&at, name),
        }));
    }
    let mut required: Vec<&str> = Vec::new();
    if let Some(r) = obj.get("required") {
        let at = join(ptr, "required");
        let r = r
            .as_array()
            .ok_or_else(|| invalid(&at, "`required` must be an array of strings"))?;
        for (i, name) in r.iter().enumerate() {
            let name = name.as_str().ok_or_else(|| {
                invalid(&join_index(&at, i), "`required` entries must be strings")
            })?;
            if !required.contains(&name) {
                required.push(name);
            }
        }
    }
    let additional = match obj.get("additionalProperties") {
        None if obj.contains_key("properties") => Additional::Default,
        None | Some(Value::Bool(true)) => Additional::Any,
        Some(Value::Bool(false)) => Additional::Forbidden,
        Some(Value::Object(m)) if m.is_empty() => Additional::Any,
        Some(schema @ Value::Object(_)) => {
            Additional::Schema(schema, join(ptr, "additionalProperties"))
        }
        Some(_) => {
            return Err(invalid(
                &join(ptr, "additionalProperties"),
                "`additionalProperties` must be a boolean or a schema",
            ))
        }
    };
    Ok(ObjectSpec {
        props,
        required,
        additional,
        ptr: ptr.to_string(),
    })
}

/// One conjunct of an `allOf`, flattened.
enum Part<'a> {
    Types(Vec<Type>),
    Enum(Vec<&'a Value>),
    Object(ObjectSpec<'a>),
    /// An `anyOf` whose alternatives are objects with optional properties
    /// only: each property may appear (llama.cpp merges them this way).
    OptionalProps(Vec<Prop<'a>>),
}

impl<'a> Converter<'a> {
    pub(super) fn object(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        reject(obj, ptr, OBJECT_UNSUPPORTED, "is not supported")?;
        let spec = parse_object(obj, ptr)?;
        if spec.props.is_empty()
            && spec.required.is_empty()
            && matches!(spec.additional, Additional::Any)
        {
            return self.primitive("object", name);
        }
        self.object_rule(spec, name, depth)
    }

    /// `"{" space` required properties, then the optional ones, then extra
    /// ones, `space "}"`. Optional properties keep their order; each may be
    /// absent, which llama.cpp writes as a chain of `-rest` rules.
    fn object_rule(
        &mut self,
        spec: ObjectSpec<'a>,
        name: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        let ptr = spec.ptr.as_str();
        // The object's `{` is matched before any property: a `$ref` reached
        // from here on is no longer left-recursive.
        let saved = std::mem::take(&mut self.unguarded);
        let required: HashSet<&str> = spec.required.iter().copied().collect();
        let mut names: Vec<&str> = Vec::new();
        let mut required_kvs = Vec::new();
        // Key-value rule, the property's name for naming `-rest` rules, and
        // whether it stands for any number of extra properties.
        let mut optional_kvs: Vec<(String, &str, bool)> = Vec::new();
        for prop in &spec.props {
            names.push(prop.name);
            if prop.schema == &Value::Bool(false) {
                if required.contains(prop.name) {
                    return Err(unsatisfiable(
                        &prop.ptr,
                        format!(
                            "property `{}` is required but its schema is `false`",
                            prop.name
                        ),
                    ));
                }
                continue;
            }
            let sub = sub_name(name, prop.name);
            let value = self.visit(prop.schema, &sub, &prop.ptr, depth + 1)?;
            let kv = self.add_rule(
                &format!("{sub}-kv"),
                format!(r#"{} space ":" space {value}"#, key_literal(prop.name)),
                &prop.ptr,
            )?;
            if required.contains(prop.name) {
                required_kvs.push(kv);
            } else {
                optional_kvs.push((kv, prop.name, false));
            }
        }
        let additional_name = sub_name(name, "additional");
        // Required names with no schema in `properties` take the schema of
        // extra properties (any value when that is not given).
        for &req in &spec.required {
            if names.contains(&req) {
                continue;
            }
            names.push(req);
            let value = match &spec.additional {
                Additional::Forbidden => {
                    return Err(unsatisfiable(
                        &join(ptr, "required"),
                        format!("`{req}` is required but not in `properties`, and `additionalProperties` is false"),
                    ))
                }
                Additional::Default | Additional::Any => self.add_primitive("value")?,
                Additional::Schema(schema, at) => self.visit(schema, &format!("{additional_name}-value"), at, depth + 1)?,
            };
            let sub = sub_name(name, req);
            let kv = self.add_rule(
                &format!("{sub}-kv"),
                format!(r#"{} space ":" space {value}"#, key_literal(req)),
                ptr,
            )?;
            required_kvs.push(kv);
        }
        let extra = match &spec.additional {
            Additional::Any => Some(self.add_primitive("value")?),
            Additional::Schema(schema, at) => {
                Some(self.visit(schema, &format!("{additional_name}-value"), at, depth + 1)?)
            }
            Additional::Default | Additional::Forbidden => None,
        };
        if let Some(value) = extra {
            let key = if names.is_empty() {
                self.add_primitive("string")?
            } else {
                let body = self.not_strings(&names, ptr)?;
                self.add_rule(&format!("{additional_name}-k"), body, ptr)?
            };
            let kv = self.add_rule(
                &format!("{additional_name}-kv"),
                format!(r#"{key} ":" space {value}"#),
                ptr,
            )?;
            optional_kvs.push((kv, "additional", true));
        }
        self.unguarded = saved;

        if required_kvs.is_empty() && optional_kvs.is_empty() {
            return Ok(Gen::Body(r#""{" space "}""#.to_string()));
        }
        let mut rule = String::from(r#""{" space "#);
        rule.push_str(&required_kvs.join(r#" "," space "#));
        if !optional_kvs.is_empty() {
            // rest[j]: the optional properties from j on, each preceded by a
            // comma and each optional. Built from the end so each refers to
            // the next by name.
            let n = optional_kvs.len();
            let mut rest: Vec<Option<String>> = vec![None; n + 1];
            for j in (1..n).rev() {
                let (kv, _, many) = &optional_kvs[j];
                let mut body = format!(r#"( "," space {kv} ){}"#, if *many { "*" } else { "?" });
                if let Some(next) = &rest[j + 1] {
                    body.push(' ');
                    body.push_str(next);
                }
                let rest_name = format!("{}-rest", sub_name(name, optional_kvs[j - 1].1));
                rest[j] = Some(self.add_rule(&rest_name, body, ptr)?);
            }
            let alternatives: Vec<String> = (0..n)
                .map(|i| {
                    let (kv, _, many) = &optional_kvs[i];
                    let mut alt = kv.clone();
                    if *many {
                        alt.push_str(&format!(r#" ( "," space {kv} )*"#));
                    }
                    if let Some(next) = &rest[i + 1] {
                        alt.push(' ');
                        alt.push_str(next);
                    }
                    alt
                })
                .collect();
            if required_kvs.is_empty() {
                rule.push_str(&format!(" ({} )?", alternatives.join(" | ")));
            } else {
                rule.push_str(&format!(
                    r#" ( "," space ( {} ) )?"#,
                    alternatives.join(" | ")
                ));
            }
        }
        rule.push_str(r#" space "}""#);
        Ok(Gen::Body(rule))
    }

    /// A JSON string that is none of `names`: a walk down the trie of the
    /// names, leaving it at the first character that differs.
    fn not_strings(&mut self, names: &[&str], ptr: &str) -> Result<String, SchemaError> {
        for name in names {
            if name.chars().count() > MAX_EXCLUDED_NAME_CHARS {
                return Err(unsupported(
                    ptr,
                    format!("property names longer than {MAX_EXCLUDED_NAME_CHARS} characters are not supported with additional properties"),
                ));
            }
            // Such characters have several JSON spellings; the trie would
            // have to tell them apart.
            if name.chars().any(|c| c < ' ' || c == '"' || c == '\\') {
                return Err(unsupported(
                    ptr,
                    "property names with quotes, backslashes or control characters are not supported with additional properties",
                ));
            }
        }
        let char_rule = self.add_primitive("char")?;
        let mut trie = vec![TrieNode::default()];
        for name in names {
            let mut node = 0;
            for c in name.chars() {
                node = match trie[node].children.get(&c) {
                    Some(&next) => next,
                    None => {
                        trie.push(TrieNode::default());
                        let next = trie.len() - 1;
                        trie[node].children.insert(c, next);
                        next
                    }
                };
            }
            trie[node].end = true;
        }
        if trie[0].children.is_empty() {
            // The only name is "".
            return Ok(format!(r#""\"" {char_rule}+ "\"""#));
        }
        let optional = if trie[0].end { "" } else { "?" };
        Ok(format!(
            r#""\"" ( {} ){optional} "\"""#,
            emit_trie(&trie, 0, &char_rule)
        ))
    }

    /// `allOf`, with the schema's other keywords as one more conjunct.
    pub(super) fn all_of(
        &mut self,
        obj: &'a Map<String, Value>,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        let mut parts = Vec::new();
        self.flatten_object(obj, ptr, depth, &mut parts, &mut Vec::new())?;
        self.merge(parts, name, ptr, depth)
    }

    fn flatten(
        &mut self,
        schema: &'a Value,
        ptr: &str,
        depth: usize,
        parts: &mut Vec<Part<'a>>,
        seen: &mut Vec<&'a str>,
    ) -> Result<(), SchemaError> {
        match schema {
            Value::Bool(true) => Ok(()),
            Value::Bool(false) => Err(unsatisfiable(ptr, "an `allOf` branch is `false`")),
            Value::Object(obj) => self.flatten_object(obj, ptr, depth, parts, seen),
            _ => Err(invalid(ptr, "a schema must be an object or a boolean")),
        }
    }

    fn flatten_object(
        &mut self,
        obj: &'a Map<String, Value>,
        ptr: &str,
        depth: usize,
        parts: &mut Vec<Part<'a>>,
        seen: &mut Vec<&'a str>,
    ) -> Result<(), SchemaError> {
        Self::check_depth(depth, ptr)?;
        self.step(ptr)?;
        reject_never_supported(obj, ptr)?;
        if let Some(r) = obj.get("$ref") {
            self.only_with(obj, "$ref", ptr, depth)?;
            let at = join(ptr, "$ref");
            let r = r
                .as_str()
                .ok_or_else(|| invalid(&at, "`$ref` must be a string"))?;
            if seen.contains(&r) {
                return Err(unsupported(
                    &at,
                    format!("`allOf` refers back to itself through `{r}`"),
                ));
            }
            let (target, target_ptr) = self.resolve(r, &at)?;
            seen.push(r);
            self.flatten(target, &target_ptr, depth + 1, parts, seen)?;
            seen.pop();
            return Ok(());
        }
        if let Some(all) = obj.get("allOf") {
            let at = join(ptr, "allOf");
            let all = nonempty_array(all, &at, Some("allOf"), " of schemas")?;
            for (i, part) in all.iter().enumerate() {
                self.flatten(part, &join_index(&at, i), depth + 1, parts, seen)?;
            }
        }
        if let Some(key) = union_keyword(obj, ptr)? {
            if let Some(props) = self.optional_props(&obj[key], &join(ptr, key))? {
                parts.push(Part::OptionalProps(props));
            }
        }
        let types = declared_types(obj, ptr)?;
        if obj.contains_key("const") || obj.contains_key("enum") {
            for (k, v) in obj {
                let handled =
                    ["const", "enum", "type", "allOf", "anyOf", "oneOf"].contains(&k.as_str());
                if !handled && is_constraint(obj, k, v) {
                    return Err(unsupported(
                        &join(ptr, k),
                        format!("`{k}` alongside `enum` or `const` is not supported"),
                    ));
                }
            }
            parts.push(Part::Enum(self.literal_values(obj, ptr)?));
        } else if ["properties", "required", "additionalProperties"]
            .iter()
            .any(|k| obj.contains_key(*k))
        {
            reject(obj, ptr, OBJECT_UNSUPPORTED, "is not supported")?;
            parts.push(Part::Object(parse_object(obj, ptr)?));
        } else {
            for (k, v) in obj {
                let handled = ["type", "allOf", "anyOf", "oneOf"].contains(&k.as_str());
                if !handled && is_constraint(obj, k, v) {
                    return Err(unsupported(
                        &join(ptr, k),
                        format!("`{k}` in `allOf` is not supported: only objects, enums and types can be combined"),
                    ));
                }
            }
        }
        if let Some(types) = types {
            parts.push(Part::Types(types));
        }
        Ok(())
    }

    /// The properties of an `anyOf` inside `allOf`, when it only offers
    /// optional properties; `None` when it admits any object.
    fn optional_props(
        &mut self,
        alts: &'a Value,
        ptr: &str,
    ) -> Result<Option<Vec<Prop<'a>>>, SchemaError> {
        let alts = nonempty_array(alts, ptr, None, " of schemas")?;
        let refused = |at: &str| {
            unsupported(
                at,
                "`anyOf` in `allOf` is only supported when its alternatives are objects with optional properties",
            )
        };
        let mut props = Vec::new();
        let mut any_object = false;
        for (i, alt) in alts.iter().enumerate() {
            let (mut alt, mut at) = (alt, join_index(ptr, i));
            let mut hops = 0;
            while let Some(r) = alt.get("$ref").and_then(Value::as_str) {
                hops += 1;
                self.step(&at)?;
                if hops > MAX_DEPTH {
                    return Err(unsupported(
                        &at,
                        "a chain of more than 64 `$ref`s (or a cycle) is not supported",
                    ));
                }
                if let Some(o) = alt.as_object() {
                    if o.iter().any(|(k, v)| k != "$ref" && is_constraint(o, k, v)) {
                        return Err(refused(&at));
                    }
                }
                let ref_at = join(&at, "$ref");
                (alt, at) = self.resolve(r, &ref_at)?;
            }
            let obj = match alt {
                Value::Bool(true) => return Ok(None),
                Value::Bool(false) => {
                    if i + 1 == alts.len() && props.is_empty() && !any_object {
                        return Err(unsatisfiable(ptr, "every alternative is `false`"));
                    }
                    continue;
                }
                Value::Object(obj) => obj,
                _ => return Err(invalid(&at, "a schema must be an object or a boolean")),
            };
            if let Some(types) = declared_types(obj, &at)? {
                if !types.contains(&Type::Object) {
                    return Err(refused(&at));
                }
            }
            for (k, v) in obj {
                let allowed = match k.as_str() {
                    "type" | "properties" => true,
                    "additionalProperties" => v == &Value::Bool(true),
                    "required" => v.as_array().is_some_and(Vec::is_empty),
                    _ => !is_constraint(obj, k, v),
                };
                if !allowed {
                    return Err(refused(&join(&at, k)));
                }
            }
            let spec = parse_object(obj, &at)?;
            if spec.props.is_empty() {
                // Any object satisfies this alternative, so the `anyOf`
                // constrains nothing.
                return Ok(None);
            }
            any_object = true;
            props.extend(spec.props);
        }
        Ok(Some(props))
    }

    fn merge(
        &mut self,
        parts: Vec<Part<'a>>,
        name: &str,
        ptr: &str,
        depth: usize,
    ) -> Result<Gen, SchemaError> {
        let mut types: Option<Vec<Type>> = None;
        let mut enums = Vec::new();
        let mut objects = Vec::new();
        let mut optional = Vec::new();
        for part in parts {
            match part {
                Part::Types(t) => {
                    types = Some(types.map_or(t.clone(), |prev| intersect(&prev, &t)))
                }
                Part::Enum(values) => enums.push(values),
                Part::Object(spec) => objects.push(spec),
                Part::OptionalProps(props) => optional.push(props),
            }
        }
        let admits = |types: &Option<Vec<Type>>, v: &Value| {
            types
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| t.admits(v)))
        };

        if let Some((first, others)) = enums.split_first() {
            if !objects.is_empty() || !optional.is_empty() {
                return Err(unsupported(
                    &join(ptr, "allOf"),
                    "`allOf` combining `enum` / `const` with objects is not supported",
                ));
            }
            let values: Vec<&Value> = first
                .iter()
                .copied()
                .filter(|v| others.iter().all(|o| o.contains(v)) && admits(&types, v))
                .collect();
            if values.is_empty() {
                return Err(unsatisfiable(
                    &join(ptr, "allOf"),
                    "the `enum` / `const` branches have no value in common",
                ));
            }
            return Ok(Gen::Body(literal_union(&values)));
        }

        if objects.is_empty() && optional.is_empty() {
            return match types {
                None => self.primitive("value", name),
                Some(t) if t.is_empty() => Err(unsatisfiable(
                    &join(ptr, "allOf"),
                    "the `allOf` branches have no type in common",
                )),
                Some(t) => self.typed_list(&EMPTY_OBJECT, &t, name, ptr, depth),
            };
        }
        if types.as_ref().is_some_and(|t| !t.contains(&Type::Object)) {
            return Err(unsatisfiable(
                &join(ptr, "allOf"),
                "`allOf` combines object schemas with a type that is not object",
            ));
        }

        let mut props: Vec<Prop<'a>> = Vec::new();
        let mut required: Vec<&'a str> = Vec::new();
        let mut restrictions = Vec::new();
        for spec in objects {
            for r in &spec.required {
                if !required.contains(r) {
                    required.push(r);
                }
            }
            let own: Vec<&str> = spec.props.iter().map(|p| p.name).collect();
            match &spec.additional {
                Additional::Forbidden => restrictions.push((own.clone(), spec.ptr.clone(), None)),
                Additional::Schema(_, at) => {
                    restrictions.push((own.clone(), spec.ptr.clone(), Some(at.clone())))
                }
                Additional::Default | Additional::Any => {}
            }
            for prop in spec.props {
                add_prop(prop, &mut props)?;
            }
        }
        for group in optional {
            for prop in group {
                add_prop(prop, &mut props)?;
            }
        }
        // A branch's `additionalProperties` applies to the properties that
        // other branches add.
        for (own, at, schema_at) in restrictions {
            let foreign = |n: &str| !own.contains(&n);
            if let Some(schema_at) = schema_at {
                if props.iter().any(|p| foreign(p.name)) || required.iter().any(|r| foreign(r)) {
                    return Err(unsupported(
                        &schema_at,
                        "`additionalProperties` with properties from other `allOf` branches is not supported",
                    ));
                }
                continue;
            }
            if let Some(r) = required.iter().find(|r| foreign(r)) {
                return Err(unsatisfiable(
                    &join(&at, "additionalProperties"),
                    format!("`{r}` is required by `allOf` but not allowed here"),
                ));
            }
            props.retain(|p| !foreign(p.name));
        }
        let spec = ObjectSpec {
            props,
            required,
            additional: Additional::Default,
            ptr: ptr.to_string(),
        };
        self.object_rule(spec, name, depth)
    }
}

/// Adds a property merged from an `allOf` branch.
fn add_prop<'a>(prop: Prop<'a>, props: &mut Vec<Prop<'a>>) -> Result<(), SchemaError> {
    match props.iter().find(|p| p.name == prop.name) {
        // The same schema reached twice, e.g. through one `$ref`.
        Some(p) if std::ptr::eq(p.schema, prop.schema) => Ok(()),
        Some(_) => Err(unsupported(
            &prop.ptr,
            format!(
                "property `{}` defined in more than one `allOf` branch is not supported",
                prop.name
            ),
        )),
        None => {
            props.push(prop);
            Ok(())
        }
    }
}

/// The types in both lists, an integer being a number.
fn intersect(a: &[Type], b: &[Type]) -> Vec<Type> {
    let within = |x: Type, ts: &[Type]| {
        ts.contains(&x) || (x == Type::Integer && ts.contains(&Type::Number))
    };
    let mut out: Vec<Type> = a.iter().copied().filter(|&x| within(x, b)).collect();
    if !out.contains(&Type::Integer) && within(Type::Integer, a) && within(Type::Integer, b) {
        out.push(Type::Integer);
    }
    out
}

fn key_literal(name: &str) -> String {
    super::json_literal(&Value::String(name.to_string()))
}

#[derive(Default)]
struct TrieNode {
    children: BTreeMap<char, usize>,
    /// A name ends here.
    end: bool,
}

/// The alternatives for a key that has matched the path to `node` and must
/// not end up as one of the names: follow a child, or leave the trie with a
/// character no child has (and then anything may follow).
fn emit_trie(trie: &[TrieNode], node: usize, char_rule: &str) -> String {
    let mut alts = Vec::new();
    let mut taken = String::new();
    for (&c, &child) in &trie[node].children {
        let class = super::regex::class_char(c as u32);
        taken.push_str(&class);
        let next = &trie[child];
        if next.children.is_empty() {
            alts.push(format!("[{class}] {char_rule}+"));
        } else {
            let optional = if next.end { "" } else { "?" };
            alts.push(format!(
                "[{class}] ({}){optional}",
                emit_trie(trie, child, char_rule)
            ));
        }
    }
    alts.push(format!(r#"[^"\\\x7F\x00-\x1F{taken}] {char_rule}*"#));
    // An escape other than \uXXXX spells a character no name has.
    alts.push(format!(r#"[\\] ["\\bfnrt] {char_rule}*"#));
    alts.join(" | ")
}
