//! Building the binaries the end-to-end tests run: the release `edgewasm`
//! (native and aarch64) and the guest components.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{model_path, repo_root, SMOLLM2};

static BUILD: Mutex<()> = Mutex::new(());

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// The release binary (`EDGEWASM_BIN` overrides), built (or brought up to date) once per process.
pub fn edgewasm() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = std::env::var_os("EDGEWASM_BIN") {
            return PathBuf::from(b);
        }
        let root = repo_root();
        let target = target_dir();
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["build", "--release", "-p", "edgewasm"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building edgewasm failed");
        target.join("release/edgewasm")
    })
    .clone()
}

/// `edgewasm ARGS` run from the repository root with the models folder as
/// its model folder (so `--model NAME` resolves), output captured.
pub fn edgewasm_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(edgewasm());
    cmd.current_dir(repo_root())
        .env("EDGEWASM_MODELS_DIR", model_path(SMOLLM2).parent().unwrap())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs [`edgewasm_command`] with `stdin` as input (or none), and prints the
/// command, exit status, time taken, the end of stdout and stderr: the test
/// harness shows them when the test fails.
pub fn run_edgewasm(args: &[&str], stdin: Option<&str>) -> Output {
    let start = Instant::now();
    let mut cmd = edgewasm_command(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().expect("spawn edgewasm");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for edgewasm");
    let out_text = stdout(&out);
    let lines: Vec<&str> = out_text.lines().collect();
    eprintln!(
        "$ edgewasm {}\n-> {:?} in {:.2?}\nstdout (last 40 lines):\n{}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        start.elapsed(),
        lines[lines.len().saturating_sub(40)..].join("\n"),
        stderr(&out)
    );
    out
}

/// Spawns `edgewasm ARGS` (as [`edgewasm_command`]) whose guest prints a
/// line once its work is done and then waits for stdin to close. Reads the
/// process's peak RSS (VmHWM, in KiB) at that line, lets it exit, and
/// returns the peak, the output (that line included) and the time to it.
pub fn peak_rss_when_ready(args: &[&str]) -> (u64, Output, Duration) {
    let t0 = Instant::now();
    let mut child = edgewasm_command(args).stdin(Stdio::piped()).spawn().expect("spawn edgewasm");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).expect("read stdout");
    let took = t0.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    drop(child.stdin.take());
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).expect("read stdout");
    let mut o = child.wait_with_output().expect("wait for edgewasm");
    o.stdout = [line.into_bytes(), rest].concat();
    eprintln!(
        "$ edgewasm {}\n-> {:?} (ready after {took:.2?}, VmHWM {hwm} kB)\nstdout: {}\nstderr: {}",
        args.join(" "),
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    (hwm, o, took)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// target/guests/NAME.wasm, building all guests once per process (the same
/// steps as `just guests`). `c-*`, `js-*` and `python-*` guests come from
/// [`other_language_guests`].
pub fn guest(name: &str) -> PathBuf {
    if ["c-", "js-", "python-"].iter().any(|p| name.starts_with(p)) {
        let p = other_language_guests().join(format!("{name}.wasm"));
        assert!(p.is_file(), "{} missing", p.display());
        return p;
    }
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| build_rust_guests("guest-components/rust", "wasm32-wasip2", "target/guests"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} missing", p.display());
    p
}

/// target/guests/wasmedge/NAME.wasm: the WasmEdge-style core modules
/// (guest-components/wasmedge, wasm32-wasip1), built once per process.
pub fn wasmedge_guest(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| build_rust_guests("guest-components/wasmedge", "wasm32-wasip1", "target/guests/wasmedge"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} missing", p.display());
    p
}

/// Builds the guest workspace `ws` for `target` (adding the rustup target
/// first: a no-op when installed, needed on a fresh CI box) and copies its
/// `.wasm` files into `out`, as `just guests` does.
fn build_rust_guests(ws: &str, target: &str, out: &str) -> PathBuf {
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let root = repo_root();
    let ws = root.join(ws);
    let _ = Command::new("rustup").args(["target", "add", target]).output();
    let status = Command::new(env!("CARGO"))
        .current_dir(&ws)
        .env("CARGO_TARGET_DIR", ws.join("target"))
        .args(["build", "--release", "--target", target])
        .status()
        .expect("run cargo build for the guests");
    assert!(status.success(), "building the guests in {} failed (is the {target} target installed?)", ws.display());
    let out = root.join(out);
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(ws.join("target").join(target).join("release")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "wasm") {
            // Library guests (cdylib, e.g. openai_server) get the crate's
            // hyphenated name, as `just guests` copies them.
            let name = p.file_name().unwrap().to_string_lossy().replace('_', "-");
            std::fs::copy(&p, out.join(name)).unwrap();
        }
    }
    out
}

/// The C, JavaScript and Python guests (guest-components/{c,js,python}),
/// built into target/guests/ once per process by
/// scripts/build-guest-components.sh, as `just guests` does: it installs the
/// pinned toolchains when missing (apt, PyPI, npm, crates.io) and rebuilds a
/// component only when its inputs changed, so `edgewasm run`'s compile cache
/// (keyed by the component's bytes) keeps serving the 12-18 MB JS and Python
/// components.
fn other_language_guests() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        let root = repo_root();
        let status = Command::new("bash")
            .current_dir(&root)
            .arg(root.join("scripts/build-guest-components.sh"))
            .status()
            .expect("run scripts/build-guest-components.sh");
        assert!(status.success(), "building the C/JS/Python guests failed (scripts/build-guest-components.sh)");
        root.join("target/guests")
    })
    .clone()
}

/// The aarch64 target triple the cross tests use.
pub const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// The release `edgewasm` cross-built for aarch64 (`EDGEWASM_AARCH64_BIN`
/// overrides), built once per process with Debian's cross gcc as the
/// linker. Needs `scripts/setup-aarch64.sh` (run by `just test`).
pub fn edgewasm_aarch64() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = std::env::var_os("EDGEWASM_AARCH64_BIN") {
            return PathBuf::from(b);
        }
        let status = Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
            .args(["build", "--release", "-p", "edgewasm", "--target", AARCH64])
            .status()
            .expect("run cargo build --target aarch64-unknown-linux-gnu");
        crate::require(status.success(), "cross-building edgewasm for aarch64 failed: run `./just setup-aarch64`");
        target_dir().join(AARCH64).join("release/edgewasm")
    })
    .clone()
}

/// A command running `bin` under qemu-aarch64 with the Debian cross
/// sysroot, emulating `cpu` (`max` has NEON and dotprod; `cortex-a53`
/// has NEON only).
pub fn qemu_aarch64(bin: &std::path::Path, cpu: &str) -> Command {
    let mut c = Command::new("qemu-aarch64");
    c.env("QEMU_LD_PREFIX", "/usr/aarch64-linux-gnu").env("QEMU_CPU", cpu).arg(bin);
    c
}

