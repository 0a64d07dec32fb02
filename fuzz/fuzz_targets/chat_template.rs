//! Hostile chat templates: arbitrary Jinja source and messages through
//! `ChatTemplate::new` + `render`. Every input must end in `Ok` or `Err`:
//! no panic, no hang (fuzzer `-timeout`), no unbounded allocation (fuzzer
//! `-rss_limit_mb` / `-malloc_limit_mb`).
//!
//! Input: NUL-separated parts, read lossily as UTF-8: the template source,
//! then role, content, role, content... The generation prompt is added when
//! the number of parts is even. Seeds are real templates (fuzz/seeds).
#![no_main]

use edgewasm_llm::chat::{ChatMessage, ChatTemplate};
use libfuzzer_sys::fuzz_target;

/// Smaller than the defaults (5M instructions, 16 MiB) so that a looping
/// input costs milliseconds, not a second, and the fuzzer stays fast; the
/// limits are enforced by the same code either way.
const FUEL: u64 = 200_000;
const MAX_OUTPUT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let parts: Vec<String> = data.split(|&b| b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let Some((source, rest)) = parts.split_first() else { return };
    let messages: Vec<ChatMessage> = rest.chunks(2).map(|p| ChatMessage::new(&p[0], p.get(1).map_or("", String::as_str))).collect();
    let add_generation_prompt = parts.len() % 2 == 0;

    let Ok(t) = ChatTemplate::new(source, "<s>", "</s>") else { return };
    let t = t.with_limits(FUEL, MAX_OUTPUT);
    match t.render(&messages, add_generation_prompt) {
        Ok(out) => assert!(out.len() <= MAX_OUTPUT, "output of {} bytes passed the cap", out.len()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
