//! Decoding, streaming, special tokens and large inputs on the real models.

mod common;

use std::cell::Cell;
use std::time::Instant;

use common::*;
use edgewasm_tokenizer::{Interrupted, StreamDecoder, Tokenizer};

#[test]
fn special_tokens_and_flags() {
    let s = smollm();
    assert_eq!(s.vocab_size(), 49152);
    assert_eq!((s.bos(), s.eos(), s.add_bos()), (Some(1), Some(2), false));
    assert_eq!(s.token_id("<|im_end|>"), Some(2));
    assert_eq!(s.token_text(19556), Some("Hello"));
    // <|endoftext|>, <|im_end|> and <reponame> (a FIM repo token) end generation.
    assert_eq!(s.eog_tokens(), &[0, 2, 4]);
    assert!(s.is_eog(2) && !s.is_eog(1) && !s.is_eog(19556));

    let g = gemma();
    assert_eq!(g.vocab_size(), 262144);
    assert_eq!((g.bos(), g.eos(), g.add_bos()), (Some(2), Some(1), true));
    assert!(g.is_eog(1) && g.is_eog(106), "{:?}", g.eog_tokens());
    assert!(!g.is_eog(105) && !g.is_eog(2));
    assert_eq!(g.eot(), Some(106));
}

#[test]
fn token_bytes_and_decode() {
    let s = smollm();
    assert_eq!(s.token_bytes(216), Some(&b" "[..])); // "Ġ"
    assert_eq!(s.token_bytes(1), Some(&b""[..])); // control
    assert_eq!(s.token_piece(1, true), Some(&b"<|im_start|>"[..]));
    assert_eq!(s.token_bytes(u32::MAX), None);
    let ids = s.encode("<|im_start|>user\nHi<|im_end|>", false, true);
    assert_eq!(s.decode(&ids, false), "user\nHi");
    assert_eq!(s.decode(&ids, true), "<|im_start|>user\nHi<|im_end|>");

    let g = gemma();
    assert_eq!(g.token_bytes(248), Some(&b"\n"[..])); // <0x0A>
    assert_eq!(g.token_bytes(236743), Some(&b" "[..])); // ▁
    assert_eq!(g.token_bytes(107), Some(&b"\n"[..])); // user-defined "\n"
    let ids = g.encode("Hello world", true, false);
    assert_eq!(ids, [2, 9259, 1902]);
    assert_eq!(g.decode(&ids, false), "Hello world");
    assert_eq!(g.decode(&ids, true), "<bos>Hello world");
}

/// The teacher-forced reference generations: prompt ids and decoded text.
#[test]
fn reference_prompts_and_texts() {
    for (model, tok, file) in [
        (SMOLLM, smollm(), "smollm2-chat-robot-story.json"),
        (SMOLLM, smollm(), "smollm2-chat-edge-zh.json"),
        (GEMMA, gemma(), "gemma3-plain-capitals.json"),
        (GEMMA, gemma(), "gemma3-plain-edge.json"),
    ] {
        let path = reference_dir().join(model).join(file);
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let ids = |k: &str| -> Vec<u32> { v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect() };
        let prompt = v["prompt"].as_str().unwrap();
        assert_eq!(tok.encode(prompt, true, true), ids("prompt_ids"), "{file}: prompt ids");
        assert_eq!(tok.decode(&ids("gen_ids"), false), v["text"].as_str().unwrap(), "{file}: text");
    }
}

/// `llama-perplexity` cut the corpus into 14 chunks of 512 tokens for both models.
#[test]
fn corpus_token_count() {
    let corpus = std::fs::read_to_string(reference_dir().join("corpus/gpl-3.txt")).unwrap();
    for tok in [smollm(), gemma()] {
        let n = tok.encode(&corpus, true, false).len();
        assert_eq!(n / 512, 14, "{n} tokens");
        assert_eq!(tok.decode(&tok.encode(&corpus, false, false), false), corpus);
    }
}

fn stream(tok: &Tokenizer, ids: &[u32]) -> (String, usize) {
    let mut d = StreamDecoder::new();
    let mut out = String::new();
    let mut empty_pushes = 0;
    for &id in ids {
        let s = d.push(tok, id);
        assert!(!s.contains('\u{FFFD}'), "broken UTF-8 emitted: {s:?}");
        empty_pushes += usize::from(s.is_empty());
        out.push_str(&s);
    }
    out.push_str(&d.finish());
    (out, empty_pushes)
}

#[test]
fn stream_decoder_holds_back_split_characters() {
    // Gemma has whole-character tokens for common CJK and emoji; rare
    // characters (private use, hieroglyphs) go through <0xNN> byte fallback.
    let text = "日本語🤖 and 在边缘计算中 😀🚀 \u{10FFFD}𓀀";
    for tok in [smollm(), gemma()] {
        let ids = tok.encode(text, false, false);
        let (out, held) = stream(tok, &ids);
        assert_eq!(out, text);
        assert!(held > 0, "expected some characters split across tokens: {ids:?}");
    }
    // Byte-fallback pieces of 🤖, one at a time.
    let g = gemma();
    let bytes: Vec<u32> = "🤖".bytes().map(|b| g.token_id(&format!("<0x{b:02X}>")).unwrap()).collect();
    let mut d = StreamDecoder::new();
    let outs: Vec<String> = bytes.iter().map(|&id| d.push(g, id)).collect();
    assert_eq!(outs, ["", "", "", "🤖"]);
    // An unfinished character is flushed lossily by finish().
    let mut d = StreamDecoder::new();
    assert_eq!(d.push(g, bytes[0]), "");
    assert_eq!(d.pending(), &[0xF0]);
    assert_eq!(d.finish(), "\u{FFFD}");
    // A byte that can never start a character is replaced right away.
    let bad = g.token_id("<0xFF>").unwrap();
    let a = g.token_id("a").unwrap();
    let mut d = StreamDecoder::new();
    assert_eq!(d.push(g, bad), "\u{FFFD}");
    assert_eq!(d.push(g, a), "a");
}

fn assert_fast(what: &str, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let dt = t.elapsed();
    eprintln!("{what}: {dt:?}");
    assert!(dt.as_secs_f64() < 20.0, "{what} took {dt:?}");
}

#[test]
fn huge_inputs_stay_fast() {
    const MB: usize = 1 << 20;
    let inputs = [
        "a".repeat(MB),
        " ".repeat(MB),
        "\n".repeat(MB),
        "1".repeat(MB),
        "<".repeat(MB),
        "<|im_start|>".repeat(MB / 12),
        "日本語🤖 ".repeat(MB / 18),
    ];
    for (name, tok) in [("smollm", smollm()), ("gemma", gemma())] {
        for input in &inputs {
            let head: String = input.chars().take(4).collect();
            assert_fast(&format!("{name} {head:?}..."), || {
                let ids = tok.encode(input, false, true);
                assert!(!ids.is_empty());
                assert_eq!(tok.decode(&ids, true), *input, "{name} {head:?} round trip");
            });
        }
    }
}

/// `encode_checked` asks its caller throughout a long text (at least once
/// per 16 KiB) and stops when told to; asked nothing, it is `encode`.
#[test]
fn encode_checked_asks_throughout_and_stops() {
    for (tok, text) in [
        (gemma(), "Hello <start_of_turn>user\nworld<end_of_turn>\n ".repeat(25_000)),
        (smollm(), "Hello <|im_start|>user\nworld<|im_end|>\n ".repeat(25_000)),
        (gemma(), "word ".repeat(200_000)),
        (smollm(), "word ".repeat(200_000)),
    ] {
        let calls = Cell::new(0usize);
        let count = || {
            calls.set(calls.get() + 1);
            false
        };
        assert_eq!(tok.encode_checked(&text, true, true, &count), Ok(tok.encode(&text, true, true)));
        assert!(calls.get() >= text.len() >> 14, "{} checks for {} bytes", calls.get(), text.len());
        assert_eq!(tok.encode_checked(&text, true, true, &|| true), Err(Interrupted));
        // Told to stop late, it still stops.
        let late = Cell::new(0usize);
        let stop_late = || {
            late.set(late.get() + 1);
            late.get() > calls.get() / 2
        };
        assert_eq!(tok.encode_checked(&text, true, true, &stop_late), Err(Interrupted));
    }
}
