//! Every architecture against llama.cpp on the same file (issue 16): a tiny
//! random-weight model of each (tests/support/src/arch.rs: every feature of
//! the architecture exercised) in F32, Q8_0 and Q4_K, with its family's
//! vocabulary from llama.cpp's `models/ggml-vocab-*.gguf` (`vocab_for`).
//!
//! * Teacher-forced logits of 200 positions, against `peer-logits`
//!   (scripts/peer, flash attention off, f32 KV cache, so both sides
//!   compute the same thing): the top-16 logits of every position.
//! * Perplexity over 8 chunks of 128 tokens of the GPL-3 text, against
//!   `llama-perplexity --chunks 8` on the same text.
//!
//! Tolerances, and what limits them: in F32 both sides do the same
//! arithmetic in a different order, so logits agree to a few 1e-5 of their
//! spread and perplexity to 1e-6. In quantized files activations are
//! rounded to Q8 blocks before each product; where the two sides' f32
//! inputs differ in the last bit, a value can round to the neighbouring
//! step, and random weights carry that through the layers. llama.cpp's own
//! default run (flash attention, f16 KV cache) differs from its exact run
//! by as much, so the quantized bounds are set from that spread, measured
//! on the same file in the same test. The printed table gives every value.
//!
//! Keep a file: `EDGEWASM_ARCH_KEEP=DIR`; one architecture:
//! `EDGEWASM_ARCHS=qwen3,phi3`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use edgewasm_gguf::GgmlType;
use edgewasm_llm::perplexity::perplexity;
use edgewasm_llm::{Context, KvTypes, Model, ThreadPool};
use edgewasm_test_support::{data_dir, family_vocab, llama_cpp_vocab, peer_bin, TinyArch, TINY_ARCHS};

/// Architectures (`llama-moe`: llama with experts, as Mixtral).
const TYPES: &[GgmlType] = &[GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_K];
/// Positions of teacher-forced logits (the peer's context is 512, ours too:
/// longrope picks its factors from the context size).
const N_POS: usize = 200;
const N_CTX: usize = 512;
const PPL_CTX: usize = 128;
const PPL_CHUNKS: usize = 8;

/// Largest |Δ| over a position's top-16 logits, relative to the spread
/// (max − min) of the reference's 16, allowed at any position: in F32
/// 1e-3 (measured: ≤ 3e-5 for most architectures), or half of llama.cpp's
/// own worst difference between its default and exact runs where that is
/// larger: Gemma 4's worst F32 difference is 1.8e-3 to 3.2e-3, a tenth to a
/// fifth of its peer spread (1.7e-2 to 4e-2, twenty times Gemma 3's), and
/// ablating the per-layer embeddings, the shared KV, the per-layer head
/// widths, the soft-cap and the RoPE divisors of the tiny model did not
/// bring it to Gemma 3's 2e-5 (a wrong block gives differences of order
/// one); in quantized files, where one activation that
/// rounds to the other Q8 step moves later layers, 2 × llama.cpp's own
/// worst difference between its default run (flash attention, f16 KV
/// cache) and the exact one, at least 2e-2. The worst of 200 positions is
/// one rounding event, so it scatters from file to file on both sides
/// (measured: up to 1.6 × llama.cpp's, lfm2moe Q8_0, whose mean is 0.05).
fn max_rel_logit(ty: GgmlType, peer_self: f32) -> f32 {
    match ty {
        GgmlType::F32 => (0.5 * peer_self).max(1e-3),
        _ => (2.0 * peer_self).max(2e-2),
    }
}
/// Relative perplexity difference allowed: 0.1% (issue 16) in F32
/// (measured: ≤ 0.001%); in quantized files 3 × llama.cpp's own spread
/// between its default and exact runs (measured: up to 0.42%, gemma4 Q8_0),
/// and at least 0.15%, for the reason given at [`max_rel_logit`]: on these
/// random-weight files one rounding event in an activation's quantization
/// moves the perplexity by a few hundredths of a percent either way. When
/// the K-quant dots changed their rounding order (issue 23) the 17 Q4_K
/// files scattered as before, mean 0.043% (was 0.044%), worst 0.101%
/// (gemma2; was 0.099%, qwen3).
fn max_ppl_rel(ty: GgmlType, peer_self: f64) -> f64 {
    match ty {
        GgmlType::F32 => 1e-3,
        _ => (3.0 * peer_self).max(1.5e-3),
    }
}

/// A prefix of the corpus our tokenizer makes into `PPL_CHUNKS` chunks and
/// half of one more: llama-perplexity needs more than `PPL_CHUNKS ×
/// PPL_CTX` tokens for `--chunks PPL_CHUNKS` (it makes 7 chunks of 1024
/// tokens), and we score `floor(tokens / PPL_CTX)`.
fn corpus_prefix(m: &Model) -> String {
    let text = std::fs::read_to_string(data_dir().join("corpus/gpl-3.txt")).unwrap();
    let want = PPL_CHUNKS * PPL_CTX + PPL_CTX / 2;
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        end += line.len();
        if m.tokenizer().encode(&text[..end], true, true).len() >= want {
            return text[..end].to_string();
        }
    }
    panic!("the corpus is shorter than {want} tokens");
}

#[derive(serde::Deserialize)]
struct PeerRow {
    pos: usize,
    top_ids: Vec<u32>,
    top_logits: Vec<f32>,
}

/// The peer's computation: `exact` is ours (no flash attention, f32 KV
/// cache), else llama.cpp's defaults (flash attention, f16 KV cache).
fn peer_args(exact: bool) -> [&'static str; 4] {
    if exact {
        ["--fa", "off", "--kv", "f32"]
    } else {
        ["--fa", "on", "--kv", "f16"]
    }
}

fn peer_logits(file: &Path, ids: &[u32], exact: bool) -> Vec<PeerRow> {
    let mut child = Command::new(peer_bin("peer-logits"))
        .arg(file)
        .args(peer_args(exact))
        .args(["--threads", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text: Vec<String> = ids.iter().map(u32::to_string).collect();
    child.stdin.take().unwrap().write_all(text.join(" ").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "peer-logits on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn peer_perplexity(file: &Path, text_file: &Path, exact: bool) -> f64 {
    let kv = if exact { "f32" } else { "f16" };
    // llama.cpp logs through a worker thread, and a process that exits
    // right after its last line sometimes loses it (seen: the chunks up to
    // [7] and no "Final estimate", exit 0; under load, three runs in a row
    // once): a run whose output lacks the estimate is repeated, at most
    // 10 times (a run takes a fraction of a second).
    let mut text = String::new();
    for _ in 0..10 {
        let out = Command::new(peer_bin("llama-perplexity"))
            .args(["-m", file.to_str().unwrap(), "-f", text_file.to_str().unwrap()])
            .args(["-fa", if exact { "off" } else { "on" }, "-ctk", kv, "-ctv", kv])
            .args(["-c", &PPL_CTX.to_string(), "-b", &PPL_CTX.to_string(), "--chunks", &PPL_CHUNKS.to_string(), "-t", "2"])
            .output()
            .unwrap();
        text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "llama-perplexity on {}: {}", file.display(), &text[text.len().saturating_sub(2000)..]);
        if let Some(at) = text.rfind("Final estimate: PPL = ") {
            return text[at + 22..].split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("no perplexity in 10 runs of llama-perplexity on {}; the last printed:\n{text}", file.display());
}

/// Worst relative top-16 difference over all positions, and the mean.
fn compare_logits(ours: &[f32], n_vocab: usize, peer: &[PeerRow]) -> (f32, f32) {
    let (mut worst, mut sum) = (0f32, 0f32);
    for row in peer {
        let mine = &ours[row.pos * n_vocab..(row.pos + 1) * n_vocab];
        let spread = row.top_logits.iter().copied().fold(f32::MIN, f32::max) - row.top_logits.iter().copied().fold(f32::MAX, f32::min);
        let d = row.top_ids.iter().zip(&row.top_logits).map(|(&id, &l)| (mine[id as usize] - l).abs()).fold(0.0, f32::max);
        let rel = d / spread.max(1e-3);
        worst = worst.max(rel);
        sum += rel;
    }
    (worst, sum / peer.len() as f32)
}

/// Worst relative difference between two peer runs, over the ids in both
/// top-16 lists of a position.
fn self_spread(a: &[PeerRow], b: &[PeerRow]) -> f32 {
    let mut worst = 0f32;
    for (ra, rb) in a.iter().zip(b) {
        let spread = ra.top_logits.iter().copied().fold(f32::MIN, f32::max) - ra.top_logits.iter().copied().fold(f32::MAX, f32::min);
        for (id, la) in ra.top_ids.iter().zip(&ra.top_logits) {
            if let Some(i) = rb.top_ids.iter().position(|x| x == id) {
                worst = worst.max((la - rb.top_logits[i]).abs() / spread.max(1e-3));
            }
        }
    }
    worst
}

#[test]
fn every_architecture_matches_llama_cpp() {
    let archs: Vec<String> = match std::env::var("EDGEWASM_ARCHS") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => TINY_ARCHS.iter().map(|s| s.to_string()).collect(),
    };
    let scratch = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::env::var_os("EDGEWASM_ARCH_KEEP").map(PathBuf::from).unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let pool = Arc::new(ThreadPool::new(2));
    let mut failures = Vec::new();
    eprintln!(
        "{:<11} {:<5} {:>12} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "arch", "type", "logit worst", "logit mean", "peer self", "ppl ours", "ppl peer", "ppl Δ", "peer self"
    );
    for arch in &archs {
        for &ty in TYPES {
            let (tok_keys, n_vocab) = llama_cpp_vocab(family_vocab(arch));
            let file = dir.join(format!("tiny-{arch}-{}.gguf", ty.name().to_lowercase()));
            std::fs::write(&file, TinyArch::new(arch, ty, tok_keys.clone(), n_vocab).gguf()).unwrap();
            let m = match Model::open(&file) {
                Ok(m) => Arc::new(m),
                Err(e) => {
                    failures.push(format!("{arch} {ty}: does not load: {e}"));
                    continue;
                }
            };
            let text_path = dir.join(format!("corpus-{}.txt", family_vocab(arch)));
            if !text_path.exists() {
                std::fs::write(&text_path, corpus_prefix(&m)).unwrap();
            }
            let text = std::fs::read_to_string(&text_path).unwrap();

            let ids: Vec<u32> = m.tokenizer().encode(&text, true, true).into_iter().take(N_POS).collect();
            // f32 keys and values, as the exact peer run: only arithmetic differs.
            let mut ctx = Context::with_kv_types(Arc::clone(&m), Arc::clone(&pool), N_CTX, KvTypes::F32).unwrap();
            let ours = ctx.eval(&ids, true).unwrap().to_vec();
            let (worst, mean) = compare_logits(&ours, m.config().n_vocab, &peer_logits(&file, &ids, true));
            // llama.cpp's own spread: its defaults against the exact run.
            let self_worst = self_spread(&peer_logits(&file, &ids, true), &peer_logits(&file, &ids, false));

            let ppl = perplexity(&m, Arc::clone(&pool), &text, PPL_CTX, KvTypes::F32, |_, _, _| {}).unwrap();
            assert_eq!(ppl.chunks, PPL_CHUNKS, "corpus prefix");
            let peer_ppl = peer_perplexity(&file, &text_path, true);
            let peer_default = peer_perplexity(&file, &text_path, false);
            let ppl_rel = (ppl.ppl - peer_ppl).abs() / peer_ppl;
            let self_rel = (peer_default - peer_ppl).abs() / peer_ppl;
            eprintln!(
                "{arch:<11} {:<5} {worst:>12.2e} {mean:>12.2e} {self_worst:>12.2e} {:>12.4} {peer_ppl:>12.4} {:>8.4}% {:>8.4}%",
                ty.name(),
                ppl.ppl,
                100.0 * ppl_rel,
                100.0 * self_rel
            );
            let limit = max_rel_logit(ty, self_worst);
            if worst > limit {
                failures.push(format!("{arch} {ty}: top-16 logits differ by up to {worst:.2e} of their spread (limit {limit:.2e})"));
            }
            let limit = max_ppl_rel(ty, self_rel);
            if ppl_rel > limit {
                failures.push(format!("{arch} {ty}: perplexity {:.4} vs llama.cpp {peer_ppl:.4} ({:.3}%, limit {:.3}%)", ppl.ppl, 100.0 * ppl_rel, 100.0 * limit));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
