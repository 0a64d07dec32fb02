//! Every chat template of llama.cpp's `models/templates/` rendered by our
//! renderer and compared, byte for byte, with Python jinja2 configured as
//! Hugging Face transformers configures it (`tests/data/templates/*.json`,
//! made by `scripts/template-reference.py`; `just reference` checks them).
//!
//! A case where jinja2 raised must fail with us too (with the same message
//! when the template called `raise_exception`). A template that cannot pass
//! is listed in [`NOT_PASSING`] with its reason; the test fails for a
//! template that does not pass and is not listed, and for a listed one that
//! passes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use edgewasm_llm::chat::{ChatMessage, ChatTemplate, ChatTemplateError};
use serde::Deserialize;

/// Templates that do not render as jinja2 does, with the reason.
const NOT_PASSING: &[(&str, &str)] = &[];

#[derive(Deserialize)]
struct Reference {
    bos_token: String,
    eos_token: String,
    now_unix: i64,
    source: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    add_generation_prompt: bool,
    messages: Vec<ChatMessage>,
    expected: Option<String>,
    error: Option<RefError>,
}

#[derive(Deserialize)]
struct RefError {
    kind: String,
    message: String,
}

fn load() -> BTreeMap<String, Reference> {
    let dir = edgewasm_test_support::data_dir().join("templates");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let probes = path.file_name().is_some_and(|n| n == "_features.json");
        if path.extension().is_some_and(|e| e == "json") && !probes {
            let text = std::fs::read_to_string(&path).unwrap();
            let r: Reference = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(path.file_stem().unwrap().to_string_lossy().into_owned(), r);
        }
    }
    out
}

/// Where two strings first differ, with some context.
fn first_difference(want: &str, got: &str) -> String {
    let at = want.bytes().zip(got.bytes()).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
    let ctx = |s: &str| {
        let mut lo = at.saturating_sub(60);
        while !s.is_char_boundary(lo) {
            lo -= 1;
        }
        let mut hi = (at + 60).min(s.len());
        while !s.is_char_boundary(hi) {
            hi += 1;
        }
        format!("{:?}", &s[lo..hi])
    };
    format!("differ at byte {at} (lengths {} vs {}):\n      jinja2: {}\n    > ours:   {}", want.len(), got.len(), ctx(want), ctx(got))
}

/// Problems of one template (empty when it passes).
fn check(name: &str, r: &Reference) -> Vec<String> {
    let tmpl = ChatTemplate::new(&r.source, &r.bos_token, &r.eos_token).map(|t| t.with_fixed_time(r.now_unix));
    let tmpl = tmpl.as_ref().map_err(|e| e.to_string());
    let mut problems = Vec::new();
    for case in &r.cases {
        let label = format!("{name} / {} / add_generation_prompt={}", case.name, case.add_generation_prompt);
        let got = match &tmpl {
            Ok(t) => t.render(&case.messages, case.add_generation_prompt),
            Err(e) => Err(ChatTemplateError::Syntax(e.clone())),
        };
        match (&case.expected, &case.error, got) {
            (Some(want), _, Ok(got)) if *want == got => {}
            (Some(want), _, Ok(got)) => problems.push(format!("{label}: output {}", first_difference(want, &got))),
            (Some(_), _, Err(e)) => problems.push(format!("{label}: jinja2 renders, ours fails: {e}")),
            (None, Some(want), Ok(got)) => {
                problems.push(format!("{label}: jinja2 fails ({}), ours renders {} bytes", want.message, got.len()))
            }
            (None, Some(want), Err(e)) => {
                if want.kind == "raise_exception" && !matches!(&e, ChatTemplateError::Raised(m) if *m == want.message) {
                    problems.push(format!("{label}: jinja2 raise_exception({:?}), ours: {e}", want.message));
                }
            }
            (None, None, _) => panic!("{label}: case has neither expected output nor error"),
        }
    }
    problems
}

#[test]
fn templates_render_as_jinja2() {
    let refs = load();
    assert!(refs.len() >= 60, "only {} templates in tests/data/templates", refs.len());
    for (name, _) in NOT_PASSING {
        assert!(refs.contains_key(*name), "NOT_PASSING names {name}, which has no reference");
    }
    let mut report = String::new();
    let mut passed = 0;
    let mut unexpected = Vec::new();
    for (name, r) in &refs {
        let problems = check(name, r);
        let listed = NOT_PASSING.iter().find(|(n, _)| n == name);
        match (problems.is_empty(), listed) {
            (true, None) => passed += 1,
            (true, Some(_)) => unexpected.push(format!("{name} passes now: remove it from NOT_PASSING")),
            (false, Some((_, why))) => {
                let _ = writeln!(report, "not passing (listed: {why}): {name}");
            }
            (false, None) => {
                unexpected.push(format!("{name} does not pass:"));
                unexpected.extend(problems.iter().map(|p| format!("    {p}")));
            }
        }
    }
    eprint!("{report}");
    eprintln!("templates: {passed}/{} render as jinja2", refs.len());
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

/// Feature probes that do not render as jinja2 does, with the reason.
const FEATURES_NOT_PASSING: &[(&str, &str)] = &[
    ("print_tuple", "minijinja has no tuples: `(1, 2)` is a list and prints as `[1, 2]`"),
    ("items_tuples", "minijinja has no tuples: `dict.items()` pairs print as lists `['a', 1]`"),
    ("tilde_containers", "`~` formats with minijinja's own Display (`[1, \"a\"]`, `100000000000000000000.0`), not Python's str(); `{{ }}`, `|string` and `|join` use str()"),
    ("divide_by_zero", "minijinja's `/` on numbers gives inf instead of raising ZeroDivisionError"),
    ("percent_operator", "Python's `'%s' % x` string formatting: minijinja's `%` is numeric only (the `format` filter works)"),
    ("macro_varargs", "minijinja macros take no `varargs`/`kwargs` beyond their declared parameters"),
    (
        "none_literal_iteration",
        "minijinja's for-loop iterates its none as empty instead of raising TypeError (`tools` and `documents` are a Python-like None that raises)",
    ),
    ("ws_raw_lstrip", "minijinja applies trim_blocks after `{% raw %}`; jinja2 keeps that newline"),
];

#[derive(Deserialize)]
struct Features {
    bos_token: String,
    eos_token: String,
    now_unix: i64,
    messages: Vec<ChatMessage>,
    add_generation_prompt: bool,
    probes: Vec<Probe>,
}

#[derive(Deserialize)]
struct Probe {
    name: String,
    source: String,
    expected: Option<String>,
    error: Option<RefError>,
}

/// The small feature probes of `_features.json` (Python reprs, `tojson`
/// options, filters, tests, string methods, whitespace control...).
#[test]
fn features_render_as_jinja2() {
    let path = edgewasm_test_support::data_dir().join("templates/_features.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f: Features = serde_json::from_str(&text).unwrap();
    for (name, _) in FEATURES_NOT_PASSING {
        assert!(f.probes.iter().any(|p| p.name == *name), "FEATURES_NOT_PASSING names {name}, which is no probe");
    }
    let mut unexpected = Vec::new();
    let mut passed = 0;
    for p in &f.probes {
        let got = ChatTemplate::new(&p.source, &f.bos_token, &f.eos_token)
            .and_then(|t| t.with_fixed_time(f.now_unix).render(&f.messages, f.add_generation_prompt));
        let problem = match (&p.expected, &p.error, got) {
            (Some(want), _, Ok(got)) if *want == got => None,
            (Some(want), _, Ok(got)) => Some(format!("jinja2 {want:?}\n    > ours   {got:?}")),
            (Some(want), _, Err(e)) => Some(format!("jinja2 {want:?}\n    > ours fails: {e}")),
            (None, Some(want), Ok(got)) => Some(format!("jinja2 fails ({}), ours {got:?}", want.message)),
            (None, Some(want), Err(e)) => match &e {
                ChatTemplateError::Raised(m) if want.kind == "raise_exception" && *m != want.message => {
                    Some(format!("raise_exception({:?}), ours {e}", want.message))
                }
                ChatTemplateError::Raised(_) => None,
                _ if want.kind == "raise_exception" => Some(format!("raise_exception({:?}), ours {e}", want.message)),
                _ => None,
            },
            (None, None, _) => panic!("{}: probe has neither expected output nor error", p.name),
        };
        let listed = FEATURES_NOT_PASSING.iter().any(|(n, _)| *n == p.name);
        match (problem, listed) {
            (None, false) => passed += 1,
            (None, true) => unexpected.push(format!("{} passes now: remove it from FEATURES_NOT_PASSING", p.name)),
            (Some(_), true) => {}
            (Some(problem), false) => unexpected.push(format!("{}: {}\n    > source {:?}", p.name, problem, p.source)),
        }
    }
    eprintln!("feature probes: {passed}/{} render as jinja2", f.probes.len());
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}
