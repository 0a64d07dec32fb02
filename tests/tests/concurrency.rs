//! Eight guests at once in one process, through the `edgewasm-runtime`
//! library as `edgewasm run` uses it: one wasmtime `Engine`, one
//! memory-mapped model set and one thread pool shared by every store. Each
//! guest's output must equal its output when run alone, a guest trapping
//! mid-stream next to them must change nothing, and the memory the eight
//! add must be their own state (KV caches, scratch, wasm memories), not
//! copies of the weights.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use edgewasm_nn::{Limits, ModelSet, Preload};
use edgewasm_runtime::{MemoryOutputPipe, Outcome, RunConfig};
use edgewasm_tests::*;

/// (RssAnon, RssFile) of this process, in bytes.
fn rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> usize {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in /proc/self/status"));
        line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// Resident bytes of this process's mappings of `file` (/proc/self/smaps),
/// and how many mappings there are.
fn mapped_rss(file: &std::path::Path) -> (usize, usize) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = file.to_str().unwrap();
    let (mut rss, mut maps, mut inside) = (0, 0, false);
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            inside = line.trim_end().ends_with(name);
            maps += inside as usize;
        } else if inside && line.starts_with("Rss:") {
            rss += line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024;
        }
    }
    (rss, maps)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

fn config(app: &std::path::Path, args: &[&str]) -> (RunConfig, MemoryOutputPipe) {
    let out = MemoryOutputPipe::new(1 << 20);
    let mut argv = vec![app.file_name().unwrap().to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let cfg = RunConfig {
        component: app.to_path_buf(),
        args: argv,
        dirs: Vec::new(),
        env: Vec::new(),
        max_memory: 256 << 20,
        timeout: None,
        limits: Limits::default(),
        cache: true,
        verbose: false,
        stdout: Some(out.clone()),
    };
    (cfg, out)
}

#[test]
fn eight_guests_share_one_engine_and_one_mapped_model() {
    let chat = guest("chat");
    let nn = guest("nn-greedy");
    let hostile = guest("test-hostile");
    let guests: Vec<(std::path::PathBuf, Vec<&str>)> = vec![
        (chat.clone(), vec!["--temp", "0", "--max-tokens", "12", "What is the capital of France?"]),
        (chat.clone(), vec!["--temp", "0", "--max-tokens", "12", "Write a haiku about small computers."]),
        (chat.clone(), vec!["--raw", "--temp", "0", "--max-tokens", "12", "The three primary colors are"]),
        (chat.clone(), vec!["--temp", "0.8", "--max-tokens", "12", "Name a fruit."]),
        (nn.clone(), vec!["--text", "Once upon a time", "--config", r#"{"n-predict": 12, "temp": 0}"#]),
        (nn.clone(), vec!["--text", "The quick brown fox", "--config", r#"{"n-predict": 12, "temp": 0}"#]),
        (nn.clone(), vec!["--max-tokens", "12", "1,504,2365,6354,16438,27003,690,260,23790"]),
        (nn.clone(), vec!["--max-tokens", "12", "1,19556,28,905"]),
    ];

    let (anon0, file0) = rss();
    let engine = edgewasm_runtime::engine().unwrap();
    let path = model_path(SMOLLM2).canonicalize().unwrap();
    let weights = std::fs::metadata(&path).unwrap().len() as usize;
    let set = ModelSet::load(&[Preload { name: "default".into(), path: path.clone() }]).unwrap();
    let (models, pool) = edgewasm_runtime::host_models(set, 2);
    let (anon_mapped, file_mapped) = rss();

    // Each guest alone (this also fills the compile cache and pages the
    // weights in).
    let t = Instant::now();
    let alone: Vec<Vec<u8>> = guests
        .iter()
        .map(|(app, args)| {
            let (cfg, out) = config(app, args);
            let o = edgewasm_runtime::run_with_engine(&engine, &cfg, Arc::clone(&models), Arc::clone(&pool)).unwrap();
            assert!(matches!(o, Outcome::Exited(0)), "{app:?} {args:?}: {o:?}");
            let bytes = out.contents().to_vec();
            assert!(!bytes.is_empty());
            bytes
        })
        .collect();
    let t_alone = t.elapsed();
    let (anon_warm, file_warm) = rss();

    // All eight at once, plus one that traps after three streamed chunks.
    // A sampler records the peak while they are alive.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        let path = path.clone();
        std::thread::spawn(move || {
            let mut peak = (0usize, 0usize, 0usize, 0usize);
            while !done.load(Ordering::SeqCst) {
                let (a, f) = rss();
                let (w, maps) = mapped_rss(&path);
                peak = (peak.0.max(a), peak.1.max(f), peak.2.max(w), peak.3.max(maps));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let start = Arc::new(Barrier::new(guests.len() + 1));
    let t = Instant::now();
    let together: Vec<_> = guests
        .iter()
        .cloned()
        .chain(std::iter::once((hostile.clone(), vec!["trap-mid-stream", "3"])))
        .map(|(app, args)| {
            let (engine, models, pool, start) = (engine.clone(), Arc::clone(&models), Arc::clone(&pool), Arc::clone(&start));
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (cfg, out) = config(&app, &args);
                start.wait();
                let r = edgewasm_runtime::run_with_engine(&engine, &cfg, models, pool);
                (r.map_err(|e| format!("{e:#}")), out.contents().to_vec())
            })
        })
        .collect();
    let results: Vec<_> = together.into_iter().map(|h| h.join().expect("a guest thread panicked")).collect();
    let t_together = t.elapsed();
    done.store(true, Ordering::SeqCst);
    let (peak_anon, peak_file, peak_weights, weight_maps) = sampler.join().unwrap();

    for (i, ((r, out), want)) in results.iter().zip(&alone).enumerate() {
        assert!(matches!(r, Ok(Outcome::Exited(0))), "guest {i}: {r:?}");
        assert_eq!(
            String::from_utf8_lossy(out),
            String::from_utf8_lossy(want),
            "guest {i} ({:?}) differs when run next to the others",
            guests[i].1
        );
    }
    let (trap, trap_out) = results.last().unwrap();
    let e = trap.as_ref().expect_err("the trapping guest must fail");
    assert!(e.contains("wasm `unreachable` instruction executed"), "{e}");
    assert!(String::from_utf8_lossy(trap_out).contains("trapping now"));

    let grow_anon = peak_anon.saturating_sub(anon_warm);
    eprintln!(
        "RSS (MiB)            anon    file\n\
         before models     {:7.1} {:7.1}\n\
         models mapped     {:7.1} {:7.1}\n\
         after 8 alone     {:7.1} {:7.1}\n\
         peak, 8+1 at once {:7.1} {:7.1}\n\
         weights file {:.1} MiB, resident through {} mapping(s): {:.1} MiB at peak; anonymous growth with 9 live guests {:.1} MiB ({:.1} MiB per guest); \
         file-backed growth {:.1} MiB\n\
         8 guests one after another {:.2?}, 8+1 at once {:.2?}",
        mib(anon0),
        mib(file0),
        mib(anon_mapped),
        mib(file_mapped),
        mib(anon_warm),
        mib(file_warm),
        mib(peak_anon),
        mib(peak_file),
        mib(weights),
        weight_maps,
        mib(peak_weights),
        mib(grow_anon),
        mib(grow_anon) / 9.0,
        mib(peak_file.saturating_sub(file_warm)),
        t_alone,
        t_together,
    );
    // The weights are shared file pages: each live guest adds its own state
    // (a few MiB: touched KV pages, scratch, logits, wasm memory), far less
    // than a copy of the weights; the nine together add less than two.
    let per_guest = grow_anon / 9;
    assert!(per_guest < weights / 4, "each live guest added {:.1} MiB of anonymous memory (weights: {:.1} MiB)", mib(per_guest), mib(weights));
    assert!(grow_anon < 2 * weights, "9 live guests added {:.1} MiB of anonymous memory", mib(grow_anon));
    // One mapping of the weights file for the whole process, never more
    // resident than the file.
    assert_eq!(weight_maps, 1, "the weights file is mapped {weight_maps} times");
    assert!(peak_weights <= weights.next_multiple_of(4096), "{:.1} MiB of the weights file resident", mib(peak_weights));
}
