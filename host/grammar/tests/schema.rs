//! JSON Schema to GBNF: grammars checked on valid and invalid instances by
//! the crate's matcher, with llama.cpp's `llama-gbnf-validator` as the
//! oracle when it is built; random instances of random schemas, compact and
//! pretty-printed; and malformed or hostile schemas, which must give a
//! `SchemaError` naming the right place, never a panic.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use edgewasm_grammar::schema::{json_schema_to_gbnf, SchemaError};
use edgewasm_grammar::Grammar;
use edgewasm_test_support::peer_bin;
use proptest::prelude::*;
use serde_json::{json, Value};

fn convert(schema: &Value) -> String {
    json_schema_to_gbnf(schema).unwrap_or_else(|e| panic!("{schema} did not convert: {e}"))
}

fn compile(gbnf: &str) -> Grammar {
    Grammar::parse(gbnf).unwrap_or_else(|e| panic!("grammar does not parse: {e}\n{gbnf}"))
}

/// llama.cpp's validator, built with the peer (`peer_bin` runs
/// scripts/build-peer.sh once; a prerequisite never skips).
fn oracle() -> Option<&'static PathBuf> {
    static ORACLE: OnceLock<PathBuf> = OnceLock::new();
    Some(ORACLE.get_or_init(|| peer_bin("llama-gbnf-validator")))
}

/// Temporary files for the oracle, unique per call.
fn temp_path(ext: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "edgewasm-schema-test-{}-{n}.{ext}",
        std::process::id()
    ))
}

/// llama.cpp's verdicts on `inputs` for `gbnf`, or `None` without the oracle.
fn oracle_verdicts(gbnf: &str, inputs: &[&str]) -> Option<Vec<bool>> {
    let bin = oracle()?;
    let grammar_file = temp_path("gbnf");
    std::fs::write(&grammar_file, gbnf).unwrap();
    let verdicts = inputs
        .iter()
        .map(|input| {
            let input_file = temp_path("txt");
            std::fs::write(&input_file, input).unwrap();
            let out = Command::new(bin)
                .arg(&grammar_file)
                .arg(&input_file)
                .output()
                .expect("run llama-gbnf-validator");
            let _ = std::fs::remove_file(&input_file);
            let stdout = String::from_utf8_lossy(&out.stdout);
            stdout.contains("Input string is valid according to the grammar.")
        })
        .collect();
    let _ = std::fs::remove_file(&grammar_file);
    Some(verdicts)
}

/// Converts `schema` and checks that the grammar accepts each of `valid`
/// and rejects each of `invalid`, by our matcher and by llama.cpp's.
fn check(schema: Value, valid: &[&str], invalid: &[&str]) -> String {
    let gbnf = convert(&schema);
    let g = compile(&gbnf);
    for v in valid {
        assert!(g.accepts(v), "{schema}\nshould accept {v:?}\n{gbnf}");
    }
    for v in invalid {
        assert!(!g.accepts(v), "{schema}\nshould reject {v:?}\n{gbnf}");
    }
    let inputs: Vec<&str> = valid.iter().chain(invalid).copied().collect();
    if let Some(verdicts) = oracle_verdicts(&gbnf, &inputs) {
        for (i, (input, verdict)) in inputs.iter().zip(verdicts).enumerate() {
            assert_eq!(
                verdict,
                i < valid.len(),
                "llama.cpp disagrees on {input:?} for {schema}\n{gbnf}"
            );
        }
    }
    gbnf
}

#[test]
fn any_value() {
    let valid = [
        r#"{"a": [1, 2.5, "x", null, true]}"#,
        "[]",
        r#""s""#,
        "-3e10",
        "false",
        "null",
        "{ }",
    ];
    let invalid = ["", "nul", "{,}", "[1,]", "01", r#"'a'"#];
    check(json!({}), &valid, &invalid);
    check(json!(true), &valid, &invalid);
    check(json!({"description": "annotations only"}), &valid, &invalid);
}

#[test]
fn primitive_types() {
    check(
        json!({"type": "string"}),
        &[r#""""#, r#""a\"b\\c\n\u00e9""#, "\"日本\""],
        &[r#""a"#, r#""\x""#, "\"a\nb\"", "1"],
    );
    check(
        json!({"type": "integer"}),
        &["0", "-7", "1234567890123456"],
        &["1.5", "01", "+1", "1e3", "12345678901234567"],
    );
    check(
        json!({"type": "number"}),
        &["0", "-0.5", "3.25e-7", "1E+10", "42"],
        &[".5", "1.", "--1", "0x10", "NaN"],
    );
    check(
        json!({"type": "boolean"}),
        &["true", "false"],
        &["True", "1", "null"],
    );
    check(json!({"type": "null"}), &["null"], &["nil", "\"null\"", ""]);
    check(
        json!({"type": ["string", "null"]}),
        &[r#""x""#, "null"],
        &["1", "true"],
    );
    check(
        json!({"type": ["integer", "boolean", "integer"]}),
        &["5", "false"],
        &["5.5", "null"],
    );
}

#[test]
fn object_required_and_optional_properties() {
    let schema = json!({
        "type": "object",
        "properties": {
            "b": {"type": "string"},
            "a": {"type": "integer"},
            "d": {"type": "boolean"},
            "c": {"type": "null"}
        },
        "required": ["a", "b"],
        "additionalProperties": false
    });
    check(
        schema,
        &[
            r#"{"b": "x", "a": 1}"#,
            r#"{"b":"x","a":1,"d":true}"#,
            r#"{"b": "x", "a": 1, "c": null}"#,
            r#"{"b": "x", "a": 1, "d": false, "c": null}"#,
            "{\n  \"b\": \"x\",\n  \"a\": 1\n}",
        ],
        &[
            r#"{"a": 1, "b": "x"}"#,
            r#"{"b": "x"}"#,
            r#"{"b": "x", "a": 1, "c": null, "d": true}"#,
            r#"{"b": "x", "a": 1, "e": 1}"#,
            r#"{"b": "x", "a": "1"}"#,
            r#"{"b": "x", "a": 1,}"#,
        ],
    );
    // Only optional properties: any ordered subset, the empty object included.
    check(
        json!({"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {"type": "integer"}}}),
        &[
            "{}",
            r#"{"a": 1}"#,
            r#"{"b": 2}"#,
            r#"{"c": 3}"#,
            r#"{"a": 1, "c": 3}"#,
            r#"{"a":1,"b":2,"c":3}"#,
        ],
        &[
            r#"{"b": 2, "a": 1}"#,
            r#"{"d": 4}"#,
            r#"{"a": 1, "a": 1}"#,
            r#"{,"a": 1}"#,
        ],
    );
}

#[test]
fn additional_properties() {
    // With a schema: extra keys (never one of the named ones) after the named ones.
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "aa": {"type": "integer"}, "ab": {"type": "integer"}, "": {"type": "null"}},
        "required": ["a"],
        "additionalProperties": {"type": "string"}
    });
    check(
        schema,
        &[
            r#"{"a": 1}"#,
            r#"{"a": 1, "aa": 2}"#,
            r#"{"a": 1, "": null}"#,
            r#"{"a": 1, "x": "s"}"#,
            r#"{"a": 1, "b": "s", "aaa": "t", "abc": "u", "a\n": "v", "\t": "w"}"#,
            r#"{"a": 1, "ab": 3, "zz": "s"}"#,
        ],
        &[
            r#"{"a": 1, "x": 2}"#,
            r#"{"a": 1, "a": "s"}"#,
            r#"{"a": 1, "aa": "s"}"#,
            r#"{"a": 1, "": "s"}"#,
            r#"{"a": 1, "x": "s", "aa": 2}"#,
            r#"{"x": "s"}"#,
        ],
    );
    // Names outside ASCII, excluded from extra keys character by character.
    check(
        json!({"properties": {"é": {"const": 1}, "日本": {"const": 2}}, "additionalProperties": {"const": 0}}),
        &[
            r#"{"é": 1, "日本": 2, "e": 0, "日": 0, "日本語": 0, "éé": 0}"#,
            "{}",
        ],
        &[r#"{"é": 0}"#, r#"{"日本": 0}"#, r#"{"x": 1}"#],
    );
    // `true`, and no `properties`: any object.
    for schema in [
        json!({"type": "object"}),
        json!({"type": "object", "additionalProperties": true}),
    ] {
        check(
            schema,
            &["{}", r#"{"k": [1, {"z": null}]}"#],
            &["[]", r#"{"k"}"#],
        );
    }
    // llama.cpp's default: with `properties`, nothing else.
    check(
        json!({"properties": {"a": {}}}),
        &["{}", r#"{"a": [1]}"#],
        &[r#"{"b": 1}"#],
    );
    check(
        json!({"type": "object", "additionalProperties": false}),
        &["{}", "{ }"],
        &[r#"{"a": 1}"#],
    );
    // Only extra properties, with a value schema.
    check(
        json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}}}),
        &["{}", r#"{"x": [], "y": [1, 2.5]}"#],
        &[r#"{"x": ["s"]}"#, r#"{"x": 1}"#],
    );
    // A required property not listed takes the extra properties' schema.
    check(
        json!({"properties": {"a": {"type": "integer"}}, "required": ["z"], "additionalProperties": {"type": "boolean"}}),
        &[r#"{"z": true}"#, r#"{"z": false, "a": 1, "q": true}"#],
        &["{}", r#"{"z": 1}"#, r#"{"a": 1}"#],
    );
}

#[test]
fn arrays_with_bounds() {
    check(
        json!({"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 3}),
        &[
            "[true, false]",
            "[true,true,true]",
            "[\n  true,\n  false\n]",
        ],
        &[
            "[]",
            "[true]",
            "[true, true, true, true]",
            "[true, 1]",
            "[true false]",
        ],
    );
    check(
        json!({"items": {"type": "integer"}, "maxItems": 0}),
        &["[]", "[ ]"],
        &["[1]"],
    );
    check(
        json!({"items": {"type": "integer"}, "maxItems": 1}),
        &["[]", "[1]"],
        &["[1, 2]"],
    );
    check(
        json!({"items": {"type": "integer"}, "minItems": 1}),
        &["[1]", "[1, 2, 3, 4]"],
        &["[]"],
    );
    check(
        json!({"type": "array"}),
        &["[]", r#"[1, "a", [null]]"#],
        &["{}", "[1,]"],
    );
    check(json!({"type": "array", "items": false}), &["[]"], &["[1]"]);
}

#[test]
fn tuples() {
    check(
        json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}),
        &[r#"["a", 1]"#, r#"[ "a",1 ]"#],
        &[r#"["a"]"#, r#"[1, "a"]"#, r#"["a", 1, 2]"#, "[]"],
    );
    // Further items with their own schema, within the length bounds.
    check(
        json!({"prefixItems": [{"const": "op"}], "items": {"type": "integer"}, "maxItems": 3}),
        &[r#"["op"]"#, r#"["op", 1]"#, r#"["op", 1, 2]"#],
        &[r#"["op", 1, 2, 3]"#, r#"["op", "x"]"#, "[1]"],
    );
    // Draft-4 tuples.
    check(
        json!({"items": [{"type": "null"}, {"type": "boolean"}], "additionalItems": false}),
        &["[null, true]"],
        &["[null]", "[null, true, 1]"],
    );
    check(json!({"prefixItems": []}), &["[]"], &["[1]"]);
}

#[test]
fn enum_and_const() {
    let schema = json!({"enum": [
        "red", "quote\"d", "back\\slash", "new\nline", "日本", "", null, 42, -1.5, true,
        ["a", 1], {"k": "v", "n": [null]}
    ]});
    check(
        schema,
        &[
            r#""red""#,
            r#""quote\"d""#,
            r#""back\\slash""#,
            r#""new\nline""#,
            "\"日本\"",
            r#""""#,
            "null",
            "42",
            "-1.5",
            "true",
            r#"["a",1]"#,
            r#"{"k":"v","n":[null]}"#,
        ],
        &[
            r#""blue""#,
            "43",
            "false",
            r#"["a", 1]"#,
            "\"new\nline\"",
            r#""Red""#,
        ],
    );
    check(
        json!({"const": {"a": [1, "x"]}}),
        &[r#"{"a":[1,"x"]}"#],
        &[r#"{"a":[1]}"#],
    );
    check(json!({"const": "foo"}), &[r#""foo""#], &["foo", r#""fo""#]);
    // `type` filters the values.
    check(
        json!({"type": "string", "enum": ["a", 1, "b"]}),
        &[r#""a""#, r#""b""#],
        &["1"],
    );
    check(
        json!({"type": "integer", "enum": [1, 1.0, 1.5]}),
        &["1", "1.0"],
        &["1.5"],
    );
}

#[test]
fn local_refs_and_recursion() {
    let tree = json!({
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}
                },
                "required": ["value"],
                "additionalProperties": false
            }
        }
    });
    check(
        tree,
        &[
            r#"{"value": 1}"#,
            r#"{"value": 1, "children": []}"#,
            r#"{"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}, {"value": 4}]}"#,
        ],
        &[
            r#"{"value": 1, "children": [{}]}"#,
            r#"{"children": []}"#,
            r#"{"value": 1, "children": [{"value": "x"}]}"#,
        ],
    );
    // A linked list through `definitions`, nullable via anyOf.
    let list = json!({
        "definitions": {
            "list": {"anyOf": [{"type": "null"}, {
                "type": "object",
                "properties": {"head": {"type": "string"}, "tail": {"$ref": "#/definitions/list"}},
                "required": ["head", "tail"]
            }]}
        },
        "$ref": "#/definitions/list"
    });
    check(
        list,
        &[
            "null",
            r#"{"head": "a", "tail": null}"#,
            r#"{"head": "a", "tail": {"head": "b", "tail": null}}"#,
        ],
        &[
            r#"{"head": "a"}"#,
            r#"{"head": "a", "tail": {"head": 1, "tail": null}}"#,
        ],
    );
    // References into properties and array items; `~1` escapes a slash.
    check(
        json!({
            "properties": {
                "a": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "b": {"$ref": "#/properties/a/anyOf/0"},
                "c": {"$ref": "#/$defs/x~1y"}
            },
            "$defs": {"x/y": {"type": "boolean"}},
            "required": ["a", "b", "c"]
        }),
        &[
            r#"{"a": 1, "b": "s", "c": true}"#,
            r#"{"a": "t", "b": "s", "c": false}"#,
        ],
        &[r#"{"a": 1, "b": 2, "c": true}"#],
    );
    // The whole document, recursively.
    check(
        json!({"type": "array", "items": {"$ref": "#"}, "maxItems": 2}),
        &["[]", "[[], [[]]]"],
        &["[[], [], []]", "[1]"],
    );
}

#[test]
fn any_of_one_of_all_of() {
    check(
        json!({"anyOf": [{"type": "integer", "minimum": 10}, {"type": "string", "maxLength": 1}]}),
        &["10", "99", r#""""#, r#""x""#],
        &["9", r#""xy""#, "null"],
    );
    check(
        json!({"oneOf": [{"const": 1}, {"const": "one"}]}),
        &["1", r#""one""#],
        &["2"],
    );
    // allOf merges object properties, through $refs; an inner anyOf of
    // optional properties adds them as optional.
    let schema = json!({
        "allOf": [
            {"$ref": "#/definitions/foo"},
            {"properties": {"b": {"type": "number"}}, "required": ["b"]},
            {"anyOf": [{"$ref": "#/definitions/baz"}, {"properties": {"c": {"type": "null"}}}]}
        ],
        "definitions": {
            "foo": {"properties": {"a": {"type": "string"}}, "required": ["a"]},
            "baz": {"properties": {"d": {"type": "boolean"}}}
        },
        "type": "object"
    });
    check(
        schema,
        &[
            r#"{"a": "x", "b": 1}"#,
            r#"{"a": "x", "b": 1, "d": true}"#,
            r#"{"a": "x", "b": 1, "d": true, "c": null}"#,
        ],
        &[
            r#"{"a": "x"}"#,
            r#"{"b": 1}"#,
            r#"{"a": "x", "b": 1, "e": 1}"#,
        ],
    );
    // allOf of enums: their intersection.
    check(
        json!({"allOf": [{"enum": ["a", "b", "c"]}, {"enum": ["b", "c", "d"]}, {"type": "string"}]}),
        &[r#""b""#, r#""c""#],
        &[r#""a""#, r#""d""#],
    );
    check(
        json!({"allOf": [{"type": ["string", "integer"]}, {"type": ["number", "null"]}]}),
        &["3"],
        &["3.5", "null", "\"s\""],
    );
}

#[test]
fn string_lengths() {
    check(
        json!({"type": "string", "minLength": 2, "maxLength": 3}),
        &[
            r#""ab""#,
            r#""abc""#,
            r#""\n\t""#,
            r#""\u00e9x""#,
            "\"日本語\"",
        ],
        &[r#""a""#, r#""abcd""#, r#""""#, "\"日本語ア\""],
    );
    check(json!({"minLength": 1}), &[r#""a""#], &[r#""""#]);
    check(
        json!({"type": "string", "maxLength": 0}),
        &[r#""""#],
        &[r#""a""#],
    );
}

#[test]
fn string_formats() {
    check(
        json!({"type": "string", "format": "date"}),
        &[r#""2024-02-29""#, r#""1999-12-31""#],
        &[
            r#""2024-13-01""#,
            r#""2024-1-01""#,
            r#""2024-01-32""#,
            "2024-01-01",
        ],
    );
    check(
        json!({"type": "string", "format": "time"}),
        &[r#""23:59:59Z""#, r#""00:00:00.123+05:30""#],
        &[r#""24:00:00Z""#, r#""12:00:00""#],
    );
    check(
        json!({"type": "string", "format": "date-time"}),
        &[
            r#""2024-06-01T12:30:00Z""#,
            r#""2024-06-01T12:30:00.000-01:00""#,
        ],
        &[r#""2024-06-01 12:30:00Z""#],
    );
    check(
        json!({"format": "uuid"}),
        &[
            r#""123e4567-e89b-12d3-a456-426614174000""#,
            r#""ABCDEF01-2345-6789-ABCD-EF0123456789""#,
        ],
        &[
            r#""123e4567e89b12d3a456426614174000""#,
            r#""123e4567-e89b-12d3-a456-42661417400g""#,
        ],
    );
    // Other formats are annotations.
    check(
        json!({"type": "string", "format": "email"}),
        &[r#""not an email""#],
        &["1"],
    );
}

#[test]
fn patterns() {
    check(
        json!({"type": "string", "pattern": r"^(\([0-9]{1,3}\))?[0-9]{3}-[0-9]{4} a{3,5}nd...$"}),
        &[r#""123-4567 aaandxyz""#, r#""(1)123-4567 aaaaand\"\\\t""#],
        &[
            r#""123-4567 aand xyz""#,
            r#""(1234)123-4567 aaand xyz""#,
            r#""123-4567 aaand \n12""#,
        ],
    );
    check(
        json!({"pattern": "^abc?d*efg+(hij)?kl$"}),
        &[r#""abefgkl""#, r#""abcdddefgghijkl""#],
        &[r#""abcefkl""#, r#""abefgklx""#],
    );
    // Alternatives anchor separately; an unanchored side takes anything.
    check(
        json!({"type": "string", "pattern": "^ab|cd$|ef"}),
        &[r#""ab""#, r#""abz""#, r#""zcd""#, r#""zzefzz""#, r#""ef""#],
        &[r#""zab""#, r#""cdz""#, r#""e f""#],
    );
    check(
        json!({"pattern": "[0-9]+"}),
        &[r#""a1b""#, r#""7""#],
        &[r#""ab""#, r#""""#],
    );
    check(json!({"pattern": ""}), &[r#""""#, r#""anything""#], &["1"]);
    // Shorthand classes, negated classes (JSON escapes for what they admit),
    // escapes, non-capturing and named groups, lazy quantifiers.
    check(
        json!({"pattern": r"^\d{2}\s\w+[^,]*(?:\.|!)(?<tail>x{2,}?)$"}),
        &[
            r#""12 ab_9.xx""#,
            r#""12\tZ\"\\\n\u0001!xxx""#,
            "\"12 a\u{e9}!xx\"",
        ],
        &[
            r#""12 ab,.xx""#,
            r#""1 ab.xx""#,
            r#""12 ab.x""#,
            r#""12  .xx""#,
        ],
    );
    // A literal quote and backslash are spelled as JSON escapes.
    check(
        json!({"pattern": r#"^"\\$"#}),
        &[r#""\"\\""#],
        &[r#"""\""#, r#""\"\""#],
    );
    // Repeating something that may be empty.
    check(
        json!({"pattern": "^(a?b?)*c(|d)+$"}),
        &[r#""c""#, r#""abbac""#, r#""bacd""#, r#""cdd""#],
        &[r#""abx""#, r#""ca""#],
    );
    check(
        json!({"pattern": "^.{2}$"}),
        &[r#""ab""#, r#""\"\\""#, "\"é日\""],
        &[r#""a\nb""#, r#""\n\n""#, r#""abc""#],
    );
    check(
        json!({"pattern": r"^[\x41-\x43\u00e9-]+$"}),
        &[r#""AB-é""#],
        &[r#""D""#],
    );
    check(
        json!({"pattern": "^(|a)b$"}),
        &[r#""b""#, r#""ab""#],
        &[r#""a""#, r#""aab""#],
    );
    check(json!({"pattern": "^$"}), &[r#""""#], &[r#""a""#]);
    // Classes beyond the BMP, and a surrogate pair escape.
    check(
        json!({"pattern": r"^[😀-😂]\ud83d\ude03$"}),
        &["\"😁😃\""],
        &["\"😃😃\"", "\"😀\""],
    );
}

#[test]
fn integer_bounds_match_brute_force() {
    let bounds: &[(Option<i64>, Option<i64>)] = &[
        (Some(0), None),
        (Some(1), None),
        (Some(3), None),
        (Some(10), None),
        (Some(25), None),
        (Some(-5), None),
        (Some(-123), None),
        (None, Some(30)),
        (None, Some(-5)),
        (None, Some(0)),
        (None, Some(100)),
        (Some(0), Some(23)),
        (Some(15), Some(300)),
        (Some(-123), Some(42)),
        (Some(-10), Some(10)),
        (Some(-1000), Some(-999)),
        (Some(7), Some(7)),
        (Some(99), Some(1001)),
        (Some(-12), Some(207)),
    ];
    for &(lo, hi) in bounds {
        let mut schema = json!({"type": "integer"});
        if let Some(lo) = lo {
            schema["minimum"] = json!(lo);
        }
        if let Some(hi) = hi {
            schema["maximum"] = json!(hi);
        }
        let gbnf = convert(&schema);
        let g = compile(&gbnf);
        for n in -1500i64..=1500 {
            let inside = lo.is_none_or(|lo| n >= lo) && hi.is_none_or(|hi| n <= hi);
            assert_eq!(
                g.accepts(&n.to_string()),
                inside,
                "{n} for {schema}\n{gbnf}"
            );
        }
        for text in ["007", "-0", "+1", "1.0", ""] {
            if text != "-0" {
                assert!(!g.accepts(text), "{text:?} for {schema}");
            }
        }
        // The oracle on the edges.
        let samples: Vec<String> = [lo, hi]
            .iter()
            .flatten()
            .flat_map(|&b| [b - 1, b, b + 1])
            .chain([0, 1_000_000_007, -1_000_000_007])
            .map(|n| n.to_string())
            .collect();
        if let Some(verdicts) = oracle_verdicts(
            &gbnf,
            &samples.iter().map(String::as_str).collect::<Vec<_>>(),
        ) {
            for (s, v) in samples.iter().zip(verdicts) {
                assert_eq!(
                    v,
                    g.accepts(s),
                    "llama.cpp disagrees on {s} for {schema}\n{gbnf}"
                );
            }
        }
    }
    // Exclusive bounds, in both drafts, and fractional bounds rounded inwards.
    check(
        json!({"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8}),
        &["6", "7"],
        &["5", "8"],
    );
    check(
        json!({"type": "integer", "minimum": 5, "exclusiveMinimum": true}),
        &["6"],
        &["5"],
    );
    check(
        json!({"type": "integer", "minimum": 1.5, "maximum": 3.5}),
        &["2", "3"],
        &["1", "4"],
    );
    // Large bounds.
    check(
        json!({"type": "integer", "minimum": -9_007_199_254_740_991i64, "maximum": 9_007_199_254_740_991i64}),
        &["9007199254740991", "-9007199254740991", "0"],
        &["9007199254740992", "-9007199254740992"],
    );
}

#[test]
fn rule_names_are_legal_and_unique() {
    // Names that collide with the fixed rules, with each other once
    // sanitized, or are empty.
    let schema = json!({
        "type": "object",
        "properties": {
            "root": {"type": "object", "properties": {"number": {"type": "integer", "minimum": 1}}, "required": ["number"]},
            "string": {"type": "string", "maxLength": 2},
            "a b": {"const": 1},
            "a-b": {"const": 2},
            "a_b": {"const": 3},
            "": {"const": 4},
            "日本": {"enum": [5]}
        },
        "required": ["root", "string", "a b", "a-b", "a_b", "", "日本"]
    });
    let gbnf = check(
        schema,
        &[
            r#"{"root": {"number": 1}, "string": "ab", "a b": 1, "a-b": 2, "a_b": 3, "": 4, "日本": 5}"#,
        ],
        &[
            r#"{"root": {"number": 0}, "string": "ab", "a b": 1, "a-b": 2, "a_b": 3, "": 4, "日本": 5}"#,
        ],
    );
    let mut names = std::collections::HashSet::new();
    for line in gbnf.lines() {
        let name = line.split(" ::= ").next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "rule name {name:?}"
        );
        assert!(names.insert(name.to_string()), "rule {name} defined twice");
    }
}

#[test]
fn output_follows_llama_cpp_conventions() {
    // Grammars from llama.cpp's tests/test-json-schema-to-grammar.cpp.
    let cases = [
        (
            json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}}, "additionalProperties": false}),
            r#"a-kv ::= "\"a\"" space ":" space string
a-rest ::= ( "," space b-kv )? b-rest
b-kv ::= "\"b\"" space ":" space string
b-rest ::= ( "," space c-kv )?
c-kv ::= "\"c\"" space ":" space string
char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})
root ::= "{" space  (a-kv a-rest | b-kv b-rest | c-kv )? space "}"
space ::= | " " | "\n"{1,2} [ \t]{0,20}
string ::= "\"" char* "\""
"#,
        ),
        (
            json!({"type": "integer", "minimum": 0}),
            r#"root ::= ([0] | [1-9] [0-9]{0,15})
space ::= | " " | "\n"{1,2} [ \t]{0,20}
"#,
        ),
        (
            json!({"items": {"type": "boolean"}, "minItems": 2}),
            r#"boolean ::= ("true" | "false")
root ::= "[" space boolean ("," space boolean)+ space "]"
space ::= | " " | "\n"{1,2} [ \t]{0,20}
"#,
        ),
        (
            json!({"enum": ["red", null, 42, ["foo"]]}),
            r#"root ::= ("\"red\"" | "null" | "42" | "[\"foo\"]")
space ::= | " " | "\n"{1,2} [ \t]{0,20}
"#,
        ),
        (
            json!({"$ref": "#/definitions/foo", "definitions": {"foo": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false}}}),
            r#"char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})
ref-definitions-foo ::= "{" space ref-definitions-foo-a-kv space "}"
ref-definitions-foo-a-kv ::= "\"a\"" space ":" space string
root ::= ref-definitions-foo
space ::= | " " | "\n"{1,2} [ \t]{0,20}
string ::= "\"" char* "\""
"#,
        ),
    ];
    for (schema, expected) in cases {
        assert_eq!(convert(&schema), expected, "{schema}");
    }
}

#[test]
fn errors_name_the_offending_part() {
    fn nested_arrays(depth: usize) -> Value {
        let mut schema = json!({"type": "integer"});
        for _ in 0..depth {
            schema = json!({"type": "array", "items": schema});
        }
        schema
    }
    fn nested_value(depth: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!([v]);
        }
        v
    }
    let cases: Vec<(Value, &str, String)> = vec![
        (json!({"type": 5}), "Invalid", "/type".into()),
        (json!({"type": "kaboom"}), "Invalid", "/type".into()),
        (json!({"type": ["string", 3]}), "Invalid", "/type/1".into()),
        (
            json!({"$ref": "#/$defs/missing"}),
            "UnresolvedRef",
            "/$ref".into(),
        ),
        (json!({"$ref": "http://x"}), "Unsupported", "/$ref".into()),
        (json!({"$ref": "#anchor"}), "Unsupported", "/$ref".into()),
        (
            json!({"properties": {"p": {"$ref": "other.json#/a"}}}),
            "Unsupported",
            "/properties/p/$ref".into(),
        ),
        (nested_arrays(1000), "TooDeep", "/items".repeat(65)),
        (
            json!({"type": "string", "pattern": "(?<=x)"}),
            "Unsupported",
            "/pattern".into(),
        ),
        (
            json!({"type": "string", "pattern": "^(ab"}),
            "Invalid",
            "/pattern".into(),
        ),
        (
            json!({"pattern": r"^\bx$"}),
            "Unsupported",
            "/pattern".into(),
        ),
        (
            json!({"pattern": r"^(a)\1$"}),
            "Unsupported",
            "/pattern".into(),
        ),
        (json!({"pattern": "^a**$"}), "Invalid", "/pattern".into()),
        (json!({"pattern": "a^b"}), "Unsupported", "/pattern".into()),
        (json!({"pattern": "[]"}), "Unsupported", "/pattern".into()),
        (json!({"pattern": "^a{5,2}$"}), "Invalid", "/pattern".into()),
        (json!({"pattern": 5}), "Invalid", "/pattern".into()),
        (
            json!({"properties": {"age": {"type": "integer", "minimum": "x"}}}),
            "Invalid",
            "/properties/age/minimum".into(),
        ),
        (
            json!({"properties": {"age": {"type": "number", "minimum": 0}}}),
            "Unsupported",
            "/properties/age/minimum".into(),
        ),
        (
            json!({"type": "integer", "multipleOf": 3}),
            "Unsupported",
            "/multipleOf".into(),
        ),
        (
            json!({"type": "integer", "minimum": 5, "maximum": 4}),
            "Unsatisfiable",
            "".into(),
        ),
        (
            json!({"type": "integer", "minimum": 1e30}),
            "Unsupported",
            "/minimum".into(),
        ),
        (
            json!({"not": {"type": "null"}}),
            "Unsupported",
            "/not".into(),
        ),
        (json!({"if": {}, "then": {}}), "Unsupported", "/if".into()),
        (
            json!({"type": "array", "uniqueItems": true}),
            "Unsupported",
            "/uniqueItems".into(),
        ),
        (
            json!({"type": "object", "patternProperties": {"^x": {}}}),
            "Unsupported",
            "/patternProperties".into(),
        ),
        (
            json!({"items": {"maxItems": 1e9}}),
            "Unsupported",
            "/items/maxItems".into(),
        ),
        (json!({"minItems": -1}), "Invalid", "/minItems".into()),
        (
            json!({"type": "string", "minLength": 5, "maxLength": 2}),
            "Unsatisfiable",
            "".into(),
        ),
        (json!({"enum": []}), "Invalid", "/enum".into()),
        (json!({"enum": 3}), "Invalid", "/enum".into()),
        (
            json!({"type": "string", "enum": [1, 2]}),
            "Unsatisfiable",
            "".into(),
        ),
        (
            json!({"const": nested_value(1000)}),
            "TooDeep",
            "/const".into(),
        ),
        (json!(false), "Unsatisfiable", "".into()),
        (json!(7), "Invalid", "".into()),
        (json!({"anyOf": []}), "Invalid", "/anyOf".into()),
        (
            json!({"anyOf": [{"type": "null"}], "minLength": 1}),
            "Unsupported",
            "/minLength".into(),
        ),
        (
            json!({"type": "string", "anyOf": [{"type": "null"}]}),
            "Unsupported",
            "/type".into(),
        ),
        (
            json!({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}),
            "Unsupported",
            "/$defs/a/$ref".into(),
        ),
        (
            json!({"$ref": "#/$defs/a", "$defs": {"a": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/a"}]}}}),
            "Unsupported",
            "/$defs/a/anyOf/1/$ref".into(),
        ),
        (
            json!({"allOf": [{"$ref": "#"}]}),
            "Unsupported",
            "/allOf/0/$ref".into(),
        ),
        (
            json!({"allOf": [{"type": "string", "minLength": 2}]}),
            "Unsupported",
            "/allOf/0/minLength".into(),
        ),
        (
            json!({"allOf": [{"properties": {"a": {"type": "string"}}}, {"properties": {"a": {"type": "integer"}}}]}),
            "Unsupported",
            "/allOf/1/properties/a".into(),
        ),
        (
            json!({"allOf": [{"properties": {"a": {}}}, {"anyOf": [false, false]}]}),
            "Unsatisfiable",
            "/allOf/1/anyOf".into(),
        ),
        (
            json!({"allOf": [{"enum": [1]}, {"enum": [2]}]}),
            "Unsatisfiable",
            "/allOf".into(),
        ),
        (
            json!({"properties": {"a": false}, "required": ["a"]}),
            "Unsatisfiable",
            "/properties/a".into(),
        ),
        (
            json!({"required": ["a"], "additionalProperties": false}),
            "Unsatisfiable",
            "/required".into(),
        ),
        (
            json!({"properties": {"x\"y": {}}, "additionalProperties": true}),
            "Unsupported",
            "".into(),
        ),
        (
            json!({"prefixItems": [{}, {}], "maxItems": 1}),
            "Unsupported",
            "/maxItems".into(),
        ),
        (json!({"required": [1]}), "Invalid", "/required/0".into()),
        (json!({"properties": []}), "Invalid", "/properties".into()),
        (
            json!({"additionalProperties": 1}),
            "Invalid",
            "/additionalProperties".into(),
        ),
    ];
    for (schema, kind, pointer) in cases {
        let err = json_schema_to_gbnf(&schema).expect_err(&format!("{schema:.200} should fail"));
        let got_kind = format!("{err:?}");
        assert!(
            got_kind.starts_with(kind),
            "{schema:.200}: expected {kind}, got {err}"
        );
        assert_eq!(err.pointer(), pointer, "{schema:.200}: {err}");
        let message = err.to_string();
        let shown = if pointer.is_empty() {
            "the root".to_string()
        } else {
            pointer.clone()
        };
        assert!(
            message.contains(&shown),
            "message {message:?} does not name {shown}"
        );
    }
}

#[test]
fn hostile_schemas_are_bounded() {
    // A grammar over 1 MiB.
    let big: Vec<String> = (0..3000).map(|i| format!("{i:0>400}")).collect();
    let err = json_schema_to_gbnf(&json!({"enum": big})).unwrap_err();
    assert!(matches!(err, SchemaError::TooLarge { .. }), "{err}");
    // Work exponential in the nesting: each definition uses the previous one twice.
    let mut defs = serde_json::Map::new();
    defs.insert(
        "d0".into(),
        json!({"properties": {"x": {"type": "integer"}}}),
    );
    for i in 1..40 {
        let prev = format!("#/$defs/d{}", i - 1);
        defs.insert(
            format!("d{i}"),
            json!({"allOf": [{"$ref": prev}, {"$ref": prev}]}),
        );
    }
    let err = json_schema_to_gbnf(&json!({"$defs": defs, "$ref": "#/$defs/d39"})).unwrap_err();
    assert!(
        matches!(
            err,
            SchemaError::TooLarge { .. } | SchemaError::TooDeep { .. }
        ),
        "{err}"
    );
    let mut types = json!({"type": "integer"});
    for _ in 0..40 {
        types = json!({"type": ["array", "array", "null"], "items": types});
    }
    assert!(json_schema_to_gbnf(&types).is_ok());
    // A long chain of `$ref`s.
    let mut defs = serde_json::Map::new();
    for i in 0..500 {
        defs.insert(
            format!("d{i}"),
            json!({"$ref": format!("#/$defs/d{}", i + 1)}),
        );
    }
    defs.insert("d500".into(), json!({"type": "null"}));
    let err = json_schema_to_gbnf(&json!({"$defs": defs, "$ref": "#/$defs/d0"})).unwrap_err();
    assert!(matches!(err, SchemaError::TooDeep { .. }), "{err}");
    // Deep regex groups, big repetition counts.
    let deep = format!("^{}a{}$", "(".repeat(200), ")".repeat(200));
    assert!(matches!(
        json_schema_to_gbnf(&json!({"pattern": deep})),
        Err(SchemaError::Unsupported { .. })
    ));
    assert!(matches!(
        json_schema_to_gbnf(&json!({"pattern": "^a{99999999999999999999}$"})),
        Err(SchemaError::Unsupported { .. })
    ));
    // Nullable repetitions nested in a long sequence stay bounded.
    let nullable = format!("^({})*$", "a?".repeat(2000));
    let _ = json_schema_to_gbnf(&json!({"pattern": nullable}));
}

// ---------------------------------------------------------------------------
// Random schemas and instances.

/// A schema from a small family, with a generator of its valid instances.
#[derive(Clone, Debug)]
enum Shape {
    Integer(Option<i64>, Option<i64>),
    Number,
    Str(usize, Option<usize>),
    Bool,
    Null,
    Enum(Vec<Value>),
    Array(Box<Shape>, usize, Option<usize>),
    Object(Vec<(String, Shape, bool)>, Option<Box<Shape>>),
    Nullable(Box<Shape>),
}

impl Shape {
    fn schema(&self) -> Value {
        match self {
            Shape::Integer(lo, hi) => {
                let mut s = json!({"type": "integer"});
                if let Some(lo) = lo {
                    s["minimum"] = json!(lo);
                }
                if let Some(hi) = hi {
                    s["maximum"] = json!(hi);
                }
                s
            }
            Shape::Number => json!({"type": "number"}),
            Shape::Str(min, max) => {
                let mut s = json!({"type": "string", "minLength": min});
                if let Some(max) = max {
                    s["maxLength"] = json!(max);
                }
                s
            }
            Shape::Bool => json!({"type": "boolean"}),
            Shape::Null => json!({"type": "null"}),
            Shape::Enum(values) => json!({"enum": values}),
            Shape::Array(item, min, max) => {
                let mut s = json!({"type": "array", "items": item.schema(), "minItems": min});
                if let Some(max) = max {
                    s["maxItems"] = json!(max);
                }
                s
            }
            Shape::Object(props, extra) => {
                let mut properties = serde_json::Map::new();
                let mut required = Vec::new();
                for (name, shape, req) in props {
                    properties.insert(name.clone(), shape.schema());
                    if *req {
                        required.push(json!(name));
                    }
                }
                let additional = extra.as_ref().map_or(json!(false), |e| e.schema());
                json!({"type": "object", "properties": properties, "required": required, "additionalProperties": additional})
            }
            Shape::Nullable(inner) => json!({"anyOf": [inner.schema(), {"type": "null"}]}),
        }
    }

    /// Whether pretty-printing keeps instances valid: an `enum` of arrays or
    /// objects matches their compact text only.
    fn pretty_ok(&self) -> bool {
        match self {
            Shape::Enum(values) => values.iter().all(|v| !v.is_array() && !v.is_object()),
            Shape::Array(item, _, _) | Shape::Nullable(item) => item.pretty_ok(),
            Shape::Object(props, extra) => {
                props.iter().all(|p| p.1.pretty_ok())
                    && extra.as_ref().is_none_or(|e| e.pretty_ok())
            }
            _ => true,
        }
    }

    fn instance(&self) -> BoxedStrategy<Value> {
        match self.clone() {
            Shape::Integer(lo, hi) => (lo.unwrap_or(-9_999_999_999_999_999)
                ..=hi.unwrap_or(9_999_999_999_999_999))
                .prop_map(Value::from)
                .boxed(),
            // Numbers whose shortest form fits llama.cpp's `number` rule (16
            // digits before and after the point): `1e20` prints as 21 digits.
            Shape::Number => prop_oneof![
                any::<i32>().prop_map(|n| json!(n)),
                (-99_999i32..99_999, -30i32..10)
                    .prop_map(|(m, e)| json!(format!("{m}e{e}").parse::<f64>().unwrap())),
            ]
            .boxed(),
            Shape::Str(min, max) => {
                let max = max.unwrap_or(min + 12);
                proptest::collection::vec(string_char(), min..=max)
                    .prop_map(|cs| Value::String(cs.into_iter().collect()))
                    .boxed()
            }
            Shape::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Shape::Null => Just(Value::Null).boxed(),
            Shape::Enum(values) => proptest::sample::select(values).boxed(),
            Shape::Array(item, min, max) => {
                proptest::collection::vec(item.instance(), min..=max.unwrap_or(min + 4))
                    .prop_map(Value::Array)
                    .boxed()
            }
            Shape::Object(props, extra) => {
                // Required properties come first, then optional ones, each
                // in schema order, then extra ones: the grammar's order.
                let required: Vec<_> = props
                    .iter()
                    .filter(|p| p.2)
                    .map(|p| (Just(p.0.clone()), p.1.instance()))
                    .collect();
                let optional: Vec<_> = props
                    .iter()
                    .filter(|p| !p.2)
                    .map(|p| (Just(p.0.clone()), proptest::option::of(p.1.instance())))
                    .collect();
                let names: Vec<String> = props.iter().map(|p| p.0.clone()).collect();
                let extras = match extra {
                    Some(e) => {
                        proptest::collection::vec(("[a-z]{1,3}", e.instance()), 0..3).boxed()
                    }
                    None => Just(Vec::new()).boxed(),
                };
                (required, optional, extras)
                    .prop_map(move |(req, opt, extras)| {
                        let mut m = serde_json::Map::new();
                        for (k, v) in req {
                            m.insert(k, v);
                        }
                        for (k, v) in opt {
                            if let Some(v) = v {
                                m.insert(k, v);
                            }
                        }
                        for (k, v) in extras {
                            if !names.contains(&k) && !m.contains_key(&k) {
                                m.insert(k, v);
                            }
                        }
                        Value::Object(m)
                    })
                    .boxed()
            }
            Shape::Nullable(inner) => prop_oneof![inner.instance(), Just(Value::Null)].boxed(),
        }
    }
}

/// Characters of strings: escapes, controls, quotes, non-ASCII, but not
/// DEL, which llama.cpp's `char` rule leaves out.
fn string_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => proptest::sample::select(vec!['"', '\\', '\n', '\t', '\u{1}', '/', ' ', 'é', '日', '🙂', '\u{2028}']),
        1 => any::<char>().prop_filter("no DEL", |c| *c != '\u{7f}'),
    ]
}

fn property_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        proptest::sample::select(vec![
            "a b", "日本", "", "x\"y", "tab\t", "number", "root", "string", "a-kv"
        ])
        .prop_map(String::from),
    ]
}

fn enum_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z\"\\\\\n ]{0,5}".prop_map(Value::String),
        any::<i32>().prop_map(Value::from),
        (-1000i32..1000).prop_map(|n| json!(n as f64 / 8.0)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(json!([1, "two", {"three": [null]}])),
        Just(json!({"k": "v", "n": 1})),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        (
            proptest::option::of(-1_000_000i64..1_000_000),
            proptest::option::of(0i64..2_000_000)
        )
            .prop_map(|(lo, span)| {
                let hi = match (lo, span) {
                    (Some(lo), Some(span)) => Some(lo + span),
                    (None, Some(span)) => Some(span - 1_000_000),
                    (_, None) => None,
                };
                Shape::Integer(lo, hi)
            }),
        Just(Shape::Number),
        (0usize..4, proptest::option::of(0usize..6))
            .prop_map(|(min, extra)| Shape::Str(min, extra.map(|e| min + e))),
        Just(Shape::Bool),
        Just(Shape::Null),
        proptest::collection::vec(enum_value(), 1..5).prop_map(Shape::Enum),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (inner.clone(), 0usize..3, proptest::option::of(0usize..3)).prop_map(
                |(item, min, extra)| Shape::Array(Box::new(item), min, extra.map(|e| min + e))
            ),
            (
                proptest::collection::vec((property_name(), inner.clone(), any::<bool>()), 0..5),
                proptest::option::of(inner.clone())
            )
                .prop_map(|(props, extra)| {
                    let mut seen = std::collections::HashSet::new();
                    let props: Vec<_> = props
                        .into_iter()
                        .filter(|p| seen.insert(p.0.clone()))
                        .collect();
                    // Names JSON must escape cannot be excluded from extra keys.
                    let plain = props.iter().all(|p| !p.0.contains(['"', '\t']));
                    Shape::Object(props, extra.filter(|_| plain).map(Box::new))
                }),
            inner.prop_map(|s| Shape::Nullable(Box::new(s))),
        ]
    })
}

fn shape_and_instances() -> impl Strategy<Value = (Shape, Vec<Value>)> {
    shape().prop_flat_map(|s| {
        let instances = proptest::collection::vec(s.instance(), 1..4);
        (Just(s), instances)
    })
}

/// How many random cases the oracle also judges (each costs processes).
const ORACLE_CASES: usize = 24;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_instances_are_accepted((shape, instances) in shape_and_instances()) {
        let schema = shape.schema();
        let gbnf = convert(&schema);
        let g = compile(&gbnf);
        let mut texts = Vec::new();
        for instance in &instances {
            let compact = serde_json::to_string(instance).unwrap();
            let pretty = serde_json::to_string_pretty(instance).unwrap();
            prop_assert!(g.accepts(&compact), "compact {compact}\nschema {schema}\n{gbnf}");
            texts.push(compact);
            if shape.pretty_ok() {
                prop_assert!(g.accepts(&pretty), "pretty {pretty}\nschema {schema}\n{gbnf}");
                texts.push(pretty);
            }
        }
        static JUDGED: AtomicUsize = AtomicUsize::new(0);
        if JUDGED.fetch_add(1, Ordering::Relaxed) < ORACLE_CASES {
            let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
            if let Some(verdicts) = oracle_verdicts(&gbnf, &inputs) {
                for (text, v) in inputs.iter().zip(verdicts) {
                    prop_assert!(v, "llama.cpp rejects {text}\nschema {schema}\n{gbnf}");
                }
            }
        }
    }

    #[test]
    fn arbitrary_schemas_never_panic(schema in arbitrary_schema()) {
        // Errors are fine; panics are not, and a grammar that is produced
        // must parse.
        if let Ok(gbnf) = json_schema_to_gbnf(&schema) {
            if let Err(e) = Grammar::parse(&gbnf) {
                prop_assert!(false, "{schema}\nproduced a grammar that does not parse: {e}\n{gbnf}");
            }
        }
    }
}

/// JSON made of schema keywords with values of any kind.
fn arbitrary_schema() -> impl Strategy<Value = Value> {
    let keywords = vec![
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "additionalItems",
        "minItems",
        "maxItems",
        "enum",
        "const",
        "$ref",
        "$defs",
        "definitions",
        "anyOf",
        "oneOf",
        "allOf",
        "pattern",
        "minLength",
        "maxLength",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "a",
        "",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..12).prop_map(Value::from),
        Just(json!(2.5)),
        proptest::sample::select(vec![
            "object",
            "array",
            "string",
            "integer",
            "number",
            "boolean",
            "null",
            "#",
            "#/$defs/a",
            "#/definitions/a",
            "#/properties/a",
            "#/items",
            "http://x",
            "^a+$",
            "[a-z]*",
            "(x|y)?z{2,3}$",
            "date",
            "uuid",
            "a",
            "",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(keywords.clone()), inner), 0..5)
                .prop_map(|kvs| Value::Object(
                    kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
        ]
    })
}
