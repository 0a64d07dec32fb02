//! The same answer on aarch64 as on x86_64.
//!
//! The aarch64 build of `edgewasm` runs under qemu-aarch64 (user-mode
//! emulation of the instructions, so the NEON and dotprod kernels really
//! execute) next to the native x86_64 build, on the same model files and
//! the same `.wasm` guests built once here. The engine's guarantee is bit
//! identity: every SIMD kernel reduces in the scalar reference's order, and
//! the rest of the forward pass is plain IEEE f32 code that the compiler
//! may not reorder, so the logits, not only the tokens, must be equal.
//! Speed under emulation means nothing; only results are compared.

use std::process::{Command, Output};

use edgewasm_tests::*;

fn check(o: Output, what: &str) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{what} failed: {}\n{out}", String::from_utf8_lossy(&o.stderr));
    out
}

fn native(args: &[&str]) -> String {
    let o = Command::new(edgewasm()).current_dir(repo_root()).args(args).output().expect("spawn edgewasm");
    check(o, &format!("x86_64 edgewasm {}", args.join(" ")))
}

fn emulated(cpu: &str, args: &[&str]) -> String {
    let o = qemu_aarch64(&edgewasm_aarch64(), cpu).current_dir(repo_root()).args(args).output().expect("spawn qemu-aarch64");
    check(o, &format!("aarch64 ({cpu}) edgewasm {}", args.join(" ")))
}

/// Teacher-forced logits of llama.cpp's reference generations: digests of
/// every logit at every position agree bit for bit.
fn reference_digests(model_file: &str, folder: &str, cpus: &[&str]) {
    let model = model_path(model_file);
    for (name, g) in generations(folder) {
        let ids: Vec<String> = g.prompt_ids.iter().chain(&g.gen_ids).map(u32::to_string).collect();
        let ids = ids.join(",");
        let args = ["logits", "--model", model.to_str().unwrap(), "--ids", &ids, "--all-positions", "--digest", "-t", "2"];
        let want = native(&args);
        for cpu in cpus {
            let got = emulated(cpu, &args);
            eprintln!("{name}: x86_64 {} | aarch64 {cpu} {}", want.trim(), got.trim());
            assert_eq!(got, want, "{name}: aarch64 ({cpu}) logits differ from x86_64");
        }
    }
}

#[test]
fn smollm2_reference_logits_are_bit_identical_on_aarch64() {
    // max: NEON + dotprod kernels; cortex-a53: NEON without dotprod.
    reference_digests(SMOLLM2, "smollm2-135m-instruct-q4_1", &["max", "cortex-a53"]);
}

#[test]
fn gemma3_reference_logits_are_bit_identical_on_aarch64() {
    reference_digests(GEMMA3, "gemma-3-270m-q4_k_m", &["max"]);
}

/// The guests built once on x86_64 run unchanged on aarch64 and print the
/// same bytes: the chat guest (edgewasm:llm, chat template, greedy) and the
/// token-mode guest (wasi:nn, its own greedy loop, top-5 logits printed).
#[test]
fn guests_built_on_x86_64_answer_the_same_on_aarch64() {
    let model = model_path(SMOLLM2);
    let reg = format!("default={}", model.display());
    let chat = guest("chat");
    let nn = guest("nn-greedy");
    let ids: Vec<String> =
        edgewasm_tests::model(SMOLLM2).tokenizer().encode("The quick brown fox jumps over the", true, false).iter().map(u32::to_string).collect();
    let ids = ids.join(",");
    let cases: [Vec<&str>; 2] = [
        vec!["run", "--no-cache", "--model", &reg, chat.to_str().unwrap(), "--temp", "0", "--max-tokens", "32", "What is the capital of France?"],
        vec!["run", "--no-cache", "--model", &reg, nn.to_str().unwrap(), "--max-tokens", "32", &ids],
    ];
    for args in &cases {
        let want = native(args);
        assert!(!want.trim().is_empty());
        let got = emulated("max", args);
        eprintln!("x86_64:  {want:?}\naarch64: {got:?}");
        assert_eq!(got, want, "aarch64 output differs for {args:?}");
    }
}

/// Run-time detection picks the best path the emulated CPU has.
#[test]
fn aarch64_detects_its_kernel_path() {
    let max = emulated("max", &["inspect", "--system"]);
    assert!(max.contains("kernel path in use: neon-dotprod"), "{max}");
    let a53 = emulated("cortex-a53", &["inspect", "--system"]);
    assert!(a53.lines().any(|l| l.trim() == "kernel path in use: neon"), "{a53}");
}
