//! Hostile GGUF files (issue 20): the generator in fuzz/src/hostile.rs
//! writes structurally valid models with extreme and inconsistent
//! hyperparameters and vocabularies; each goes through `edgewasm generate`
//! and, as a guest's own bytes, through wasi:nn `load`, context and
//! `compute` under `edgewasm run` with memory and time limits. Every run
//! must end in a clean exit (0, or 1 with an error; 124 is run's own
//! --timeout) within its time and memory budgets: no signal, no panic, no
//! runaway allocation or host call. docs/RELIABILITY.md ("Hostile model
//! files") explains the budgets.
//!
//! Reproduce one case: `EDGEWASM_HOSTILE_CASES=6 EDGEWASM_HOSTILE_KEEP=/tmp/h
//! cargo test --release -p edgewasm-tests --test hostile_gguf` keeps the file
//! and prompts in /tmp/h/6/ (EDGEWASM_HOSTILE_SEED picks another seed).

#[allow(dead_code)]
#[path = "../../fuzz/src/hostile.rs"]
mod hostile;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgewasm_tests::*;

/// The CI set: seed 1, cases 0..32 (the curated ones and 18 random).
const SEED: u64 = 1;
const CASES: u64 = 32;

/// `--timeout` given to `run` and `generate`.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Past the timeout: process start and exit, the last forward pass or
/// tokenizer step before the deadline is seen, on a loaded 2-core box.
const TIME_MARGIN: Duration = Duration::from_secs(3);

const MAX_MEMORY_MIB: u64 = 64;
const MAX_LOAD_MIB: u64 = 64;
/// Room for the KV cache of the wide-head cases at 512 positions, so they
/// get past the KV check to the scratch buffers (the 1 GiB one is refused).
const MAX_KV_MIB: u64 = 256;
/// `generate` has no memory flags: a sanity cap for a file of a few MiB
/// at 64 positions and 4 tokens (honest cases peak at a few MiB; the
/// hostile ones ask for tens of GiB).
const GENERATE_RSS_MIB: u64 = 1024;
/// Host memory no limit covers: the runtime, wasmtime and the compiled
/// guest (an honest case peaks at about 135 MiB under `run`), thread stacks,
/// scratch buffers and logits of an honest small model. A hostile file must
/// not add hundreds of MiB beyond the operator's limits.
const RSS_MARGIN_MIB: u64 = 256;

/// How one process ended.
#[derive(Debug)]
struct Measured {
    code: Option<i32>,
    signal: Option<i32>,
    wall: Duration,
    peak_mib: u64,
    /// Why the runner killed it (over its time or memory budget).
    killed: Option<String>,
    stderr: String,
}

/// Runs `cmd` (stdout and stderr to files in `dir`), killing it once it is
/// over `wall` or `rss_mib`.
///
/// The peak RSS: wait4's ru_maxrss counts spikes between polls, but it is
/// at least this process's own high-water mark (the kernel carries the
/// spawning mm's over exec), so when it is not above that, the child's
/// peak is the VmHWM polled from /proc (the child stayed below this
/// process's size, far below any budget), or ru_maxrss as an upper bound
/// if it exited before the first poll.
fn measure(mut cmd: Command, dir: &Path, tag: &str, wall: Duration, rss_mib: u64) -> Measured {
    let err_path = dir.join(format!("{tag}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("{tag}.stdout"))).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let own_hwm = proc_status_mib("self", "VmHWM:");
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn edgewasm");
    let pid = child.id() as libc::pid_t;
    let mut killed = None;
    let mut polled_hwm = 0;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our unreaped child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        let rss = proc_status_mib(&pid.to_string(), "VmRSS:");
        polled_hwm = polled_hwm.max(proc_status_mib(&pid.to_string(), "VmHWM:"));
        let over = if start.elapsed() > wall {
            Some(format!("still running after {:.1?}", start.elapsed()))
        } else if rss > rss_mib {
            Some(format!("RSS reached {rss} MiB"))
        } else {
            None
        };
        if killed.is_none() {
            if let Some(why) = over {
                // SAFETY: the child is not reaped yet (wait4 returned 0), so
                // the pid is still ours.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed = Some(why);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(child);
    let max_rss = usage.ru_maxrss as u64 / 1024;
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        wall: start.elapsed(),
        // A child that exited before the first poll: ru_maxrss is an upper bound.
        peak_mib: if max_rss <= own_hwm && polled_hwm > 0 { polled_hwm } else { max_rss },
        killed,
        stderr,
    }
}

/// A `kB` field of /proc/PID/status in MiB (0 once the process is gone).
fn proc_status_mib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) / 1024
}

/// Why a run breaks the contract, if it does.
fn verdict(m: &Measured, ok_codes: &[i32], wall: Duration, rss_mib: u64) -> Option<String> {
    let panicked = m.stderr.contains("panicked at");
    let key_line = ["memory allocation of", "panicked at", "error:", "refused:"].iter().find_map(|k| m.stderr.lines().find(|l| l.contains(k)));
    let last_err = key_line.or_else(|| m.stderr.lines().rev().find(|l| !l.trim().is_empty())).unwrap_or("").chars().take(300).collect::<String>();
    let problem = if let Some(why) = &m.killed {
        format!("killed by the runner: {why}")
    } else if let Some(sig) = m.signal {
        format!("signal {sig}{}", if sig == libc::SIGABRT { " (SIGABRT)" } else if sig == libc::SIGSEGV { " (SIGSEGV)" } else { "" })
    } else if panicked || m.code == Some(101) {
        "host panic".to_string()
    } else if !m.code.is_some_and(|c| ok_codes.contains(&c)) {
        format!("unexpected exit {:?}", m.code)
    } else if m.peak_mib > rss_mib {
        format!("peak RSS {} MiB over the budget of {rss_mib} MiB", m.peak_mib)
    } else if m.wall > wall {
        format!("took {:.1?}, over the budget of {wall:.1?}", m.wall)
    } else {
        return None;
    };
    Some(format!("{problem}; exit {:?} signal {:?} in {:.2?}, peak {} MiB; stderr: {last_err}", m.code, m.signal, m.wall, m.peak_mib))
}

fn cases() -> (u64, Vec<u64>) {
    let seed = std::env::var("EDGEWASM_HOSTILE_SEED").map(|s| s.parse().expect("EDGEWASM_HOSTILE_SEED")).unwrap_or(SEED);
    let list = match std::env::var("EDGEWASM_HOSTILE_CASES") {
        Ok(s) => s.split(',').map(|i| i.trim().parse().expect("EDGEWASM_HOSTILE_CASES: comma-separated indices")).collect(),
        Err(_) => (0..CASES).collect(),
    };
    (seed, list)
}

fn mib_of(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(1 << 20)
}

#[test]
fn hostile_model_files_end_cleanly_within_limits() {
    let bin = edgewasm();
    let guest = guest("test-hostile");
    let scratch = tempfile::tempdir().unwrap();
    let root = std::env::var_os("EDGEWASM_HOSTILE_KEEP").map(PathBuf::from).unwrap_or_else(|| scratch.path().to_path_buf());
    let (seed, indices) = cases();
    let wall = TIMEOUT + TIME_MARGIN;
    let timeout = format!("{}s", TIMEOUT.as_secs());
    let started = Instant::now();
    let mut failures = Vec::new();
    let run_args = |dir: &Path| -> Command {
        let mut run = Command::new(&bin);
        run.args(["run", "--dir", &format!("{}::/data", dir.display()), "--timeout", &timeout, "-t", "1", "--max-ctx", "512"])
            .args(["--max-memory", &format!("{MAX_MEMORY_MIB}MiB"), "--max-load-size", &format!("{MAX_LOAD_MIB}MiB")])
            .args(["--max-kv-memory", &format!("{MAX_KV_MIB}MiB")])
            .arg(&guest)
            .args(["nn-load-compute", "/data/model.gguf", "/data/prompt.txt"]);
        run
    };
    // The first run compiles the guest into the cache: done here on the
    // honest case 0, not measured.
    let warm = root.join("warmup");
    std::fs::create_dir_all(&warm).unwrap();
    std::fs::write(warm.join("model.gguf"), hostile::case(seed, 0).gguf()).unwrap();
    std::fs::write(warm.join("prompt.txt"), "hello").unwrap();
    let m = measure(run_args(&warm), &warm, "run", Duration::from_secs(600), u64::MAX);
    eprintln!("warm-up run (compiles the guest): exit {:?} signal {:?} in {:.1?}", m.code, m.signal, m.wall);

    for &i in &indices {
        let case = hostile::case(seed, i);
        let dir = root.join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = case.gguf();
        let model = dir.join("model.gguf");
        std::fs::write(&model, &bytes).unwrap();
        // A long self-similar prompt for the tokenizer cases (generate's
        // fits one argv string, < 128 KiB), else one batch of hundreds of
        // positions so scratch buffers are written, not just reserved.
        let (gen_prompt, guest_prompt) = if case.stresses_tokenizer() { (case.prompt(100 << 10), case.prompt(1 << 20)) } else { (case.prompt(40), case.prompt(400)) };
        std::fs::write(dir.join("prompt.txt"), &guest_prompt).unwrap();
        eprintln!("{case} ({} bytes)", bytes.len());
        // The honest controls must run to the end: proof that the generated
        // models work, so the hostile ones fail for what they change.
        let honest = i < hostile::HONEST;

        let mut gen = Command::new(&bin);
        let model_arg = model.to_str().unwrap();
        gen.args(["generate", "--model", model_arg, "--prompt", &gen_prompt, "--max-tokens", "4", "--temp", "0", "--ctx-size", "64", "-t", "1"]);
        gen.args(["--timeout", &timeout]);
        let gen_budget = GENERATE_RSS_MIB;
        let m = measure(gen, &dir, "generate", wall, gen_budget);
        let v = verdict(&m, if honest { &[0] } else { &[0, 1, 124] }, wall, gen_budget);
        eprintln!("  generate: exit {:?} signal {:?} in {:.2?}, peak {} MiB (budget {gen_budget}): {}", m.code, m.signal, m.wall, m.peak_mib, v.as_deref().unwrap_or("ok"));
        if let Some(v) = v {
            failures.push(format!("{case}\n    generate: {v}"));
        }

        // The guest's copy of the file is inside --max-memory; the host
        // holds one more and its interleaved matrices.
        let run_budget = MAX_MEMORY_MIB + MAX_KV_MIB + 2 * mib_of(bytes.len()) + RSS_MARGIN_MIB;
        let m = measure(run_args(&dir), &dir, "run", wall, run_budget);
        let v = verdict(&m, if honest { &[0] } else { &[0, 1, 124] }, wall, run_budget);
        eprintln!("  run:      exit {:?} signal {:?} in {:.2?}, peak {} MiB (budget {run_budget}): {}", m.code, m.signal, m.wall, m.peak_mib, v.as_deref().unwrap_or("ok"));
        if let Some(v) = v {
            failures.push(format!("{case}\n    run: {v}"));
        }
    }
    eprintln!("{} cases in {:.1?}", indices.len(), started.elapsed());
    assert!(
        failures.is_empty(),
        "{} of {} runs broke the contract (seed {seed}; reproduce with EDGEWASM_HOSTILE_CASES=INDEX EDGEWASM_HOSTILE_KEEP=DIR):\n{}",
        failures.len(),
        2 * indices.len(),
        failures.join("\n")
    );
}
