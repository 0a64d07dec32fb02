//! Chat templates: turning a conversation into a prompt string.
//!
//! Templates are Hugging Face style Jinja (`tokenizer.chat_template` in a
//! GGUF file), rendered with minijinja configured like transformers'
//! `apply_chat_template` (Python jinja2's ImmutableSandboxedEnvironment):
//! `trim_blocks` and `lstrip_blocks` on, loop controls, the
//! `{% generation %}` tag, `raise_exception`, `strftime_now`, and Python
//! semantics where minijinja differs ([`python`]): values print as Python's
//! `str()`, `tojson` is `json.dumps`, dicts keep insertion order, jinja2's
//! filters and tests, Python string/list/dict methods. The templates of
//! llama.cpp's `models/templates/` render byte for byte as jinja2 renders
//! them (`tests/templates.rs`; the exceptions are listed there and in
//! `docs/templates.md`). A template is untrusted input, so rendering runs on
//! a fuel budget (bounding loops) and a cap on output size: a hostile
//! template fails with an error instead of hanging.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

mod python;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// Why a template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ChatTemplateError {
    /// The template does not parse.
    #[error("chat template syntax error: {0}")]
    Syntax(String),
    /// The template called `raise_exception(message)`.
    #[error("chat template raised an exception: {0}")]
    Raised(String),
    /// The template ran more instructions than its fuel allows.
    #[error("chat template ran out of fuel ({0} instructions); is it looping?")]
    OutOfFuel(u64),
    /// The rendered prompt would be larger than the output cap.
    #[error("chat template output exceeds {0} bytes")]
    OutputTooLarge(usize),
    /// Any other rendering error.
    #[error("chat template render error: {0}")]
    Render(String),
}

/// Instruction budget of one render. A ChatML render costs about ten
/// instructions per message, so this allows very long conversations while
/// stopping a runaway loop within a fraction of a second.
pub const DEFAULT_FUEL: u64 = 5_000_000;
/// Largest prompt a render may produce.
pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;

const TEMPLATE_NAME: &str = "chat";
/// Marks errors that come from `raise_exception`.
const RAISED: &str = "raise_exception: ";

/// ChatML, as llama.cpp's built-in `chatml` template.
const CHATML: &str = "{%- for message in messages -%}\
{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}\
{%- endfor -%}\
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/// Gemma, as llama.cpp's built-in `gemma` template: no system turn (system
/// text is prepended to the next user turn), `assistant` is `model`,
/// contents trimmed. No BOS: the tokenizer adds it.
const GEMMA: &str = "{%- set ns = namespace(system='') -%}\
{%- for message in messages -%}\
{%- if message['role'] == 'system' -%}\
{%- set ns.system = ns.system + message['content'] | trim -%}\
{%- else -%}\
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}\
{{- '<start_of_turn>' + role + '\\n' -}}\
{%- if ns.system != '' and role != 'model' -%}{{- ns.system + '\\n\\n' -}}{%- set ns.system = '' -%}{%- endif -%}\
{{- message['content'] | trim + '<end_of_turn>\\n' -}}\
{%- endif -%}\
{%- endfor -%}\
{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}";

/// A compiled chat template with its BOS/EOS token texts.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    fuel: u64,
    max_output: usize,
}

impl ChatTemplate {
    /// Compiles `source`. `bos_token`/`eos_token` are the texts templates
    /// see as `bos_token` and `eos_token`.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, ChatTemplateError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_fuel(Some(DEFAULT_FUEL));
        env.set_formatter(python::format);
        env.set_unknown_method_callback(python::method);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, format!("{RAISED}{msg}")))
        });
        env.add_function("strftime_now", |fmt: String| strftime_now(&fmt));
        env.add_function("joiner", python::joiner);
        env.add_filter("tojson", python::tojson);
        env.add_filter("string", python::string);
        env.add_filter("join", python::join);
        env.add_filter("replace", python::replace);
        env.add_filter("int", python::int);
        env.add_filter("float", python::float);
        env.add_filter("round", python::round);
        env.add_filter("indent", python::indent);
        env.add_filter("length", python::length);
        env.add_filter("count", python::length);
        env.add_filter("trim", python::trim);
        env.add_filter("wordcount", python::wordcount);
        env.add_filter("truncate", python::truncate);
        env.add_filter("center", python::center);
        python::add_select_filters(&mut env);
        // minijinja's own filters and tests that jinja2 lacks: a template
        // using them fails under transformers, so it fails here too.
        for name in ["bool", "chain", "lines", "split", "zip"] {
            env.remove_filter(name);
        }
        for name in ["endingwith", "startingwith"] {
            env.remove_test(name);
        }
        env.add_test("iterable", python::is_iterable);
        env.add_test("callable", python::is_callable);
        env.add_test("number", python::is_number);
        env.add_test("none", python::is_none);
        env.add_test("sequence", python::is_sequence);
        env.add_template_owned(TEMPLATE_NAME, rewrite_generation_tags(source))
            .map_err(|e| ChatTemplateError::Syntax(describe(&e)))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            fuel: DEFAULT_FUEL,
            max_output: DEFAULT_MAX_OUTPUT,
        })
    }

    /// The built-in ChatML template (`<|im_start|>role\n...<|im_end|>\n`).
    pub fn chatml() -> Self {
        Self::new(CHATML, "", "").expect("built-in ChatML template compiles")
    }

    /// The built-in Gemma template
    /// (`<start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n`).
    pub fn gemma() -> Self {
        Self::new(GEMMA, "", "").expect("built-in Gemma template compiles")
    }

    /// Sets the instruction budget and output cap of each render.
    pub fn with_limits(mut self, fuel: u64, max_output: usize) -> Self {
        self.env.set_fuel(Some(fuel));
        self.fuel = fuel;
        self.max_output = max_output;
        self
    }

    /// Makes `strftime_now` format the fixed instant `unix_seconds` (UTC)
    /// instead of the current time: for reproducible prompts and tests.
    pub fn with_fixed_time(mut self, unix_seconds: i64) -> Self {
        self.env.add_function("strftime_now", move |fmt: String| strftime(&fmt, unix_seconds));
        self
    }

    /// Renders `messages` to a prompt; with `add_generation_prompt` the
    /// prompt ends with the header of an assistant turn.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String, ChatTemplateError> {
        let tmpl = self.env.get_template(TEMPLATE_NAME).map_err(|e| ChatTemplateError::Render(describe(&e)))?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            tools => python::none(),
            documents => python::none(),
        };
        let overflow = Rc::new(Cell::new(false));
        let mut out = CappedWriter { buf: Vec::new(), cap: self.max_output, overflow: overflow.clone() };
        match tmpl.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.buf).map_err(|e| ChatTemplateError::Render(e.to_string())),
            Err(_) if overflow.get() => Err(ChatTemplateError::OutputTooLarge(self.max_output)),
            Err(e) => Err(self.classify(&e)),
        }
    }

    fn classify(&self, e: &Error) -> ChatTemplateError {
        if e.kind() == ErrorKind::OutOfFuel {
            return ChatTemplateError::OutOfFuel(self.fuel);
        }
        // A raise_exception error may be wrapped (e.g. inside a macro call).
        let mut err: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(cur) = err {
            if let Some(me) = cur.downcast_ref::<Error>() {
                if let Some(msg) = me.detail().and_then(|d| d.strip_prefix(RAISED)) {
                    return ChatTemplateError::Raised(msg.to_string());
                }
                if me.kind() == ErrorKind::OutOfFuel {
                    return ChatTemplateError::OutOfFuel(self.fuel);
                }
            }
            err = cur.source();
        }
        ChatTemplateError::Render(describe(e))
    }
}

/// transformers' `{% generation %}...{% endgeneration %}` extension tag
/// (marking assistant text for `return_assistant_tokens_mask`) renders its
/// body unchanged, in a scope of its own (a jinja2 call block): the same as
/// `{% with %}...{% endwith %}`, which minijinja knows. Tags are rewritten
/// keeping their whitespace-control marks.
fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        // The closing `%}` comes after the opening `{%`: in `{%}` they overlap.
        let Some(end) = tag[2..].find("%}").map(|i| i + 2) else { break };
        let inner = &tag[2..end];
        let (open, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, close) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &body[b.len()..]),
            None => (body, ""),
        };
        let word = match body.trim() {
            "generation" => Some("with"),
            "endgeneration" => Some("endwith"),
            _ => None,
        };
        match word {
            Some(word) => {
                out.push_str(&format!("{{%{open} {word} {close}%}}"));
                rest = &tag[end + 2..];
            }
            None => {
                out.push_str("{%");
                rest = &tag[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// An error's message with its template line, if known.
fn describe(e: &Error) -> String {
    match e.line() {
        Some(line) => format!("{e} (line {line})"),
        None => e.to_string(),
    }
}

/// Collects output, failing once it passes `cap` bytes.
struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    overflow: Rc<Cell<bool>>,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            self.overflow.set(true);
            return Err(io::Error::other("chat template output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `strftime_now(format)`: the current UTC time, formatted with the common
/// `strftime` directives (`%Y %m %d %e %B %b %A %a %H %I %M %S %p %j %y %%`).
fn strftime_now(fmt: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    strftime(fmt, secs)
}

fn strftime(fmt: &str, unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ];
    const DAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
    let days = unix.div_euclid(86_400);
    let sod = unix.rem_euclid(86_400);
    let (hour, min, sec) = (sod / 3600, sod % 3600 / 60, sod % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = doy_mar - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cum[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month_name = MONTHS[(month - 1) as usize];

    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:>2}")),
            Some('B') => out.push_str(month_name),
            Some('b') | Some('h') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(weekday),
            Some('a') => out.push_str(&weekday[..3]),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('I') => out.push_str(&format!("{:02}", (hour + 11) % 12 + 1)),
            Some('M') => out.push_str(&format!("{min:02}")),
            Some('S') => out.push_str(&format!("{sec:02}")),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
    const USER: &str = "Write a short story about a robot who learns to paint.";

    /// `tokenizer.chat_template` of the SmolLM2 model (fetched if missing).
    fn smollm_template() -> String {
        let path = edgewasm_test_support::model_path(edgewasm_test_support::SMOLLM2);
        let file = edgewasm_gguf::GgufFile::open(&path).expect("open SmolLM2 gguf");
        file.get_str("tokenizer.chat_template").unwrap().expect("SmolLM2 has a chat template").to_string()
    }

    fn reference_prompt() -> String {
        let dir = edgewasm_test_support::data_dir();
        let path = dir.join("smollm2-135m-instruct-q4_1/smollm2-chat-robot-story.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["prompt"].as_str().unwrap().to_string()
    }

    fn msgs(list: &[(&str, &str)]) -> Vec<ChatMessage> {
        list.iter().map(|(r, c)| ChatMessage::new(*r, *c)).collect()
    }

    #[test]
    fn smollm_template_matches_llama_cpp_prompt() {
        let t = ChatTemplate::new(&smollm_template(), "<|im_start|>", "<|im_end|>").unwrap();
        let want = reference_prompt();
        let got = t.render(&msgs(&[("system", SYSTEM), ("user", USER)]), true).unwrap();
        assert_eq!(got, want);
        // Without a system message the template inserts the same default one.
        assert_eq!(t.render(&msgs(&[("user", USER)]), true).unwrap(), want);
        // The built-in ChatML agrees when the system message is explicit.
        assert_eq!(ChatTemplate::chatml().render(&msgs(&[("system", SYSTEM), ("user", USER)]), true).unwrap(), want);
        let no_gen = t.render(&msgs(&[("user", "hi")]), false).unwrap();
        assert!(no_gen.ends_with("<|im_start|>user\nhi<|im_end|>\n"), "{no_gen:?}");
    }

    #[test]
    fn gemma_builtin() {
        let g = ChatTemplate::gemma();
        assert_eq!(
            g.render(&msgs(&[("user", "Hello")]), true).unwrap(),
            "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(
            g.render(&msgs(&[("system", " Be brief. "), ("user", "Hi"), ("assistant", "Hello! "), ("user", "Bye")]), false)
                .unwrap(),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n"
        );
    }

    #[test]
    fn hf_compat_helpers() {
        let src = "{% for m in messages %}{% if m.content.strip().startswith('x') %}{{ m.role | upper }}{% endif %}{% endfor %}\
{{ bos_token }}|{{ {'a': [1, 'é']} | tojson }}|{{ tools is none }}|{% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        let out = t.render(&msgs(&[("user", "  xyz "), ("assistant", "no")]), false).unwrap();
        assert_eq!(out, "USER<s>|{\"a\": [1, \"é\"]}|True|01");
        // trim_blocks / lstrip_blocks: block tags leave no blank lines behind.
        let t = ChatTemplate::new("  {% if true %}\nA\n  {% endif %}\nB", "", "").unwrap();
        assert_eq!(t.render(&[], false).unwrap(), "A\nB");
        let date = ChatTemplate::new("{{ strftime_now('%Y-%m-%d') }}", "", "").unwrap().render(&[], false).unwrap();
        assert_eq!(date.len(), 10, "{date}");
    }

    #[test]
    fn strftime_formats() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S %A %a %B %b %j %I%p %y %e %%", 1_709_211_909), "2024-02-29 13:05:09 Thursday Thu February Feb 060 01PM 24 29 %");
        assert_eq!(strftime("%d %B %Y", 0), "01 January 1970");
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(ChatTemplate::new("{% for %}", "", ""), Err(ChatTemplateError::Syntax(_))));
        let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        match t.render(&[], true) {
            Err(ChatTemplateError::Raised(m)) => assert_eq!(m, "roles must alternate"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_templates_end_with_an_error() {
        // Each case is bounded by fuel and output size, not by a clock: a
        // regression shows as a test that does not end (CI's timeout), and
        // this one must also pass under qemu, where it takes 25 s.
        // Nested loops: 10^15 iterations.
        let spin = "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}";
        let r = ChatTemplate::new(spin, "", "").unwrap().render(&[], true);
        assert!(matches!(r, Err(ChatTemplateError::OutOfFuel(_))), "{r:?}");
        // Huge output.
        let big = "{% for a in range(100000) %}{{ 'x' * 10000 }}{% endfor %}";
        let r = ChatTemplate::new(big, "", "").unwrap().render(&[], true);
        assert!(matches!(r, Err(ChatTemplateError::OutputTooLarge(_))), "{r:?}");
        // Unbounded recursion.
        let rec = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        assert!(ChatTemplate::new(rec, "", "").unwrap().render(&[], true).is_err());
        // Values that explode when printed or serialized: 2^40 leaves, and
        // deep nesting.
        let wide = "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}";
        for out in ["{{ ns.a }}", "{{ ns.a | tojson }}", "{{ ns.a | tojson(indent=2) }}", "{{ ns.a | string | length }}"] {
            let r = ChatTemplate::new(&format!("{wide}{out}"), "", "").unwrap().render(&[], true);
            assert!(r.is_err(), "{out}: {r:?}");
        }
        let deep = "{% set ns = namespace(a=1) %}{% for i in range(5000) %}{% set ns.a = [ns.a] %}{% endfor %}";
        for out in ["{{ ns.a }}", "{{ ns.a | tojson }}"] {
            let r = ChatTemplate::new(&format!("{deep}{out}"), "", "").unwrap().render(&[], true);
            assert!(r.is_err(), "{out}: {r:?}");
        }
        // Filters and methods that pad or repeat refuse huge results.
        for big in ["{{ 'a' | indent(1000000000) }}", "{{ 'a'.zfill(1000000000) }}", "{{ 'a' | center(1000000000) }}", "{{ 'abc'.count('') }}{{ ('a' * 1000000).replace('a', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb') }}"] {
            let r = ChatTemplate::new(big, "", "").unwrap().render(&[], true);
            assert!(r.is_err(), "{big}: {r:?}");
        }
        // Overlapping delimiters (`{%}`, found by fuzzing) are a syntax
        // error, not a panic.
        for src in ["{%}", "{%} f0) }}", "{%-}", "{%%}"] {
            let _ = ChatTemplate::new(src, "", "").and_then(|t| t.render(&[], true));
        }
        // Tighter limits are honoured.
        let small = ChatTemplate::chatml().with_limits(1000, 64);
        let long = msgs(&[("user", &"y".repeat(100))]);
        assert!(matches!(small.render(&long, true), Err(ChatTemplateError::OutputTooLarge(64))));
    }
}
