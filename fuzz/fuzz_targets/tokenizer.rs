//! The tokenizers on arbitrary input. Three small vocabularies, built once
//! from GGUF bytes like the engine builds them: GPT-2 byte-level BPE
//! (`smollm` pre-tokenizer, add_bos on), SentencePiece BPE with Gemma's flags
//! (no space prefix) and with Llama 2's defaults (space prefix on).
//!
//! The round-trip properties asserted, exactly as they hold:
//! * every tokenizer: `decode(encode(s, false, false), false) == s`, except
//!   that SentencePiece decodes its space marker `▁` (U+2581) as a space;
//! * GPT-2 and Gemma-like: the same with special parsing and rendering on
//!   (`encode(s, false, true)` / `decode(.., true)`);
//! * add_special prepends exactly BOS; decoding with BOS drops it (or renders
//!   its text), except that Llama-like then keeps the prefix space, as
//!   llama.cpp's `llama_detokenize` does;
//! * arbitrary ids: `decode` and `StreamDecoder` never panic, out-of-range
//!   ids are `None` from `token_piece`, and the streamed text equals
//!   `decode` (minus the space prefix `decode` strips).
#![no_main]

use std::sync::LazyLock;

use edgewasm_fuzz::Vocab;
use edgewasm_tokenizer::{StreamDecoder, Tokenizer};
use libfuzzer_sys::fuzz_target;

static TOKENIZERS: LazyLock<Vec<(Vocab, Tokenizer)>> =
    LazyLock::new(|| Vocab::ALL.into_iter().map(|v| (v, v.tokenizer())).collect());

fn round_trips(vocab: Vocab, tok: &Tokenizer, s: &str) {
    let n = tok.vocab_size() as u32;
    let spm = vocab != Vocab::Gpt2;
    let plain = if spm { s.replace('\u{2581}', " ") } else { s.to_string() };

    let ids = tok.encode(s, false, false);
    assert!(ids.iter().all(|&id| id < n), "{vocab:?}: out-of-range id in {ids:?}");
    assert_eq!(tok.decode(&ids, false), plain, "{vocab:?}: round trip of {s:?} via {ids:?}");

    let special = tok.encode(s, false, true);
    assert!(special.iter().all(|&id| id < n));
    let rendered = tok.decode(&special, true);
    if vocab != Vocab::SpmLlama {
        assert_eq!(rendered, plain, "{vocab:?}: special round trip of {s:?} via {special:?}");
    }

    // add_special: BOS first, nothing else changes (no model adds EOS here).
    let bos = tok.bos().expect("every test vocabulary has BOS");
    assert!(tok.add_bos() && !tok.add_eos());
    let with_bos = tok.encode(s, true, false);
    assert_eq!(with_bos.first(), Some(&bos));
    assert_eq!(&with_bos[1..], &ids[..], "{vocab:?}: add_special changed the tokens");
    let bos_text = tok.token_text(bos).unwrap();
    let (dropped, shown) = match vocab {
        Vocab::SpmLlama if !s.is_empty() => (format!(" {plain}"), format!("{bos_text} {plain}")),
        _ => (plain.clone(), format!("{bos_text}{plain}")),
    };
    assert_eq!(tok.decode(&with_bos, false), dropped, "{vocab:?}: {s:?}");
    assert_eq!(tok.decode(&with_bos, true), shown, "{vocab:?}: {s:?}");
}

fn arbitrary_ids(vocab: Vocab, tok: &Tokenizer, data: &[u8]) {
    let n = tok.vocab_size() as u32;
    let (pairs, _) = data.as_chunks::<2>();
    // Mostly in range, some just past the end, some near u32::MAX.
    let ids: Vec<u32> = pairs
        .iter()
        .map(|p| match u16::from_le_bytes(*p) {
            v @ 0xFF00.. => u32::MAX - u32::from(v & 0xFF),
            v => u32::from(v) % (n + 8),
        })
        .collect();
    for render in [false, true] {
        let text = tok.decode(&ids, render);
        let mut d = StreamDecoder::with_special(render);
        let mut streamed = String::new();
        for &id in &ids {
            assert_eq!(tok.token_piece(id, render).is_some(), id < n, "{vocab:?}: id {id}");
            assert_eq!(tok.token_text(id).is_some(), id < n);
            let _ = (tok.is_control(id), tok.is_eog(id), tok.token_bytes(id));
            streamed.push_str(&d.push(tok, id));
            // Held back: at most one unfinished UTF-8 character.
            assert!(d.pending().len() < 4, "{vocab:?}: {} bytes pending", d.pending().len());
        }
        streamed.push_str(&d.finish());
        assert!(d.pending().is_empty());
        // `decode` strips the space-prefix marker's space from the first
        // token (Llama-like only); the stream keeps it.
        let first_has_prefix = vocab == Vocab::SpmLlama
            && ids.first().and_then(|&id| tok.token_piece(id, render)).is_some_and(|p| p.starts_with(b" "));
        let expected_stream = if first_has_prefix { format!(" {text}") } else { text };
        assert_eq!(streamed, expected_stream, "{vocab:?}: stream vs decode of {ids:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let (vocab, tok) = &TOKENIZERS[sel as usize % 3];
    if sel & 0x80 == 0 {
        if let Ok(s) = std::str::from_utf8(rest) {
            round_trips(*vocab, tok, s);
        }
    } else {
        arbitrary_ids(*vocab, tok, rest);
    }
});
