//! Every end-of-generation token a vocabulary marks ends generation.
//!
//! `tests/data/vocab/eog.jsonl` lists, for each llama.cpp vocab file of the
//! peer (`models/ggml-vocab-*.gguf`) and the project's two models, the
//! tokens llama.cpp marks as end of generation (`llama_vocab_is_eog`,
//! `scripts/peer/eog-oracle.cpp`). Our tokenizer must mark the same set,
//! and a model over that vocabulary whose greedy choice is each of them
//! must stop there: `<|eot_id|>` (Llama 3), `<|im_end|>` (Qwen, SmolLM),
//! `<end_of_turn>` (Gemma 3), `<|end|>` (Phi-3), `<|endoftext|>` and the
//! others, while an ordinary token is generated.

use std::collections::BTreeSet;
use std::sync::Arc;

use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use edgewasm_llm::generate::{GenerateOptions, Generation, StopReason};
use edgewasm_llm::sampling::SamplerConfig;
use edgewasm_llm::{Context, Model, ThreadPool};
use edgewasm_test_support::{data_dir, model_path, peer_models_dir, quantized, require};
use edgewasm_tokenizer::Tokenizer;

#[derive(serde::Deserialize)]
struct Entry {
    vocab: String,
    eog: Vec<u32>,
    texts: Vec<String>,
}

fn entries() -> Vec<Entry> {
    let path = data_dir().join("vocab/eog.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The GGUF file holding `vocab`'s tokenizer: a peer vocab file or one of
/// the project's models.
fn vocab_file(vocab: &str) -> GgufFile {
    let path = if vocab.contains("-q4") {
        model_path(&format!("{vocab}.gguf"))
    } else {
        peer_models_dir().join(format!("ggml-vocab-{vocab}.gguf"))
    };
    require(path.is_file(), &format!("{} is missing: run `./just peer`", path.display()));
    GgufFile::open(&path).unwrap()
}

/// The token tests expect to see covered by some vocabulary.
const NAMED: &[&str] = &["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"];

#[test]
fn tokenizer_marks_llama_cpp_eog_tokens() {
    let mut seen = BTreeSet::new();
    for e in entries() {
        let g = vocab_file(&e.vocab);
        let tok = Tokenizer::from_gguf(&g).unwrap_or_else(|err| panic!("{}: {err}", e.vocab));
        assert_eq!(tok.eog_tokens(), e.eog.as_slice(), "{}: EOG tokens (llama.cpp's: {:?})", e.vocab, e.texts);
        for (&id, text) in e.eog.iter().zip(&e.texts) {
            assert!(tok.is_eog(id), "{}: {text} ({id})", e.vocab);
            assert_eq!(tok.token_text(id), Some(text.as_str()), "{}: text of {id}", e.vocab);
            seen.insert(text.clone());
        }
    }
    for name in NAMED {
        assert!(seen.contains(*name), "no vocabulary has {name} as an EOG token");
    }
}

const N_EMBD: usize = 32;

/// A one-layer llama over `g`'s vocabulary whose greedy continuation of
/// `from[i]` is `to[i]`: every matrix is zero, so the last hidden state is
/// the input's embedding; `from[i]` embeds as the unit vector `e_i` and
/// `to[i]` as `2 e_i`, so with the tied output `to[i]` scores highest.
fn steering_model(g: &GgufFile, pairs: &[(u32, u32)]) -> Arc<Model> {
    assert!(pairs.len() <= N_EMBD);
    let n_vocab = g.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap().len();
    let d = N_EMBD as u64;
    let mut w = GgufWriter::new();
    let kv: Vec<(String, Value)> = vec![
        ("general.architecture".into(), "llama".into()),
        ("general.name".into(), "eog steering".into()),
        ("llama.block_count".into(), 1u32.into()),
        ("llama.context_length".into(), 64u32.into()),
        ("llama.embedding_length".into(), (N_EMBD as u32).into()),
        ("llama.feed_forward_length".into(), (N_EMBD as u32).into()),
        ("llama.attention.head_count".into(), 1u32.into()),
        ("llama.attention.head_count_kv".into(), 1u32.into()),
        ("llama.rope.freq_base".into(), 10000.0f32.into()),
        ("llama.attention.layer_norm_rms_epsilon".into(), 1e-5f32.into()),
    ];
    let tokenizer = g.metadata().iter().filter(|(k, _)| k.starts_with("tokenizer.")).cloned();
    for (k, v) in kv.into_iter().chain(tokenizer) {
        w.add_metadata(k, v).unwrap();
    }
    let mut embd = vec![0.0f32; n_vocab * N_EMBD];
    for (i, &(from, to)) in pairs.iter().enumerate() {
        embd[from as usize * N_EMBD + i] = 1.0;
        embd[to as usize * N_EMBD + i] = 2.0;
    }
    let q8 = GgmlType::Q8_0;
    w.add_tensor("token_embd.weight", q8, &[d, n_vocab as u64], quantized(q8, &embd, N_EMBD)).unwrap();
    let zeros = vec![0.0f32; N_EMBD * N_EMBD];
    for name in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
        w.add_f32_tensor(format!("blk.0.{name}.weight"), &[d, d], &zeros).unwrap();
    }
    for name in ["blk.0.attn_norm", "blk.0.ffn_norm", "output_norm"] {
        w.add_f32_tensor(format!("{name}.weight"), &[d], &[1.0; N_EMBD]).unwrap();
    }
    let file = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
    Arc::new(Model::from_gguf(Arc::new(file)).unwrap())
}

/// Greedy generation from `[from]`: why it stopped and what it generated.
fn generate(model: &Arc<Model>, from: u32) -> (StopReason, Vec<u32>) {
    let mut ctx = Context::new(Arc::clone(model), Arc::new(ThreadPool::new(1)), 16).unwrap();
    let opts = GenerateOptions {
        max_tokens: 1,
        sampler: SamplerConfig { temperature: 0.0, ..SamplerConfig::default() },
        ..GenerateOptions::default()
    };
    let mut gen = Generation::start(&mut ctx, &[from], opts).unwrap();
    let reason = gen.run(&mut ctx, |_| {}).unwrap();
    (reason, gen.tokens().to_vec())
}

#[test]
fn generation_stops_at_every_eog_token() {
    for e in entries() {
        let g = vocab_file(&e.vocab);
        // Inputs: ordinary tokens from id 1000 on; the last pair steers to an
        // ordinary token, which must be generated.
        let eog: BTreeSet<u32> = e.eog.iter().copied().collect();
        let mut ordinary = (1000u32..).filter(|id| !eog.contains(id));
        let mut pairs: Vec<(u32, u32)> = e.eog.iter().map(|&t| (ordinary.next().unwrap(), t)).collect();
        let control = (ordinary.next().unwrap(), ordinary.next().unwrap());
        pairs.push(control);
        let model = steering_model(&g, &pairs);
        for (&(from, to), text) in pairs.iter().zip(e.texts.iter().map(String::as_str).chain(["(ordinary)"])) {
            let (reason, tokens) = generate(&model, from);
            if to == control.1 {
                assert_eq!((reason, tokens.as_slice()), (StopReason::MaxTokens, &[to][..]), "{}: ordinary token {to}", e.vocab);
            } else {
                assert_eq!(
                    (reason, tokens.as_slice()),
                    (StopReason::EndOfGeneration, &[][..]),
                    "{}: {text} ({to}) did not end generation",
                    e.vocab
                );
            }
        }
    }
}
