//! The three guest apps (guest-components/c/sensor-log,
//! guest-components/js/assistant, guest-components/python/classify), run
//! end to end on the default model with greedy sampling and few tokens.
//!
//! Builds the guests like tests/tests/conformance.rs does
//! (scripts/build-guest-components.sh, cached by input hash) and the release
//! `edgewasm`. The JS and Python components take 10-30 s to compile on their
//! first run; `edgewasm run` caches them.

use std::path::Path;
use std::sync::{Arc, Mutex};

use edgewasm_llm::chat::ChatMessage;
use edgewasm_llm::{Context, ThreadPool};
use edgewasm_tests::*;

/// One app at a time: the machine running the suite has two cores, and a
/// cold compile of a 14-18 MB component competes with the other tests.
static SERIAL: Mutex<()> = Mutex::new(());

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("UTF-8 output")
}

// ------------------------------------------------------------- sensor-log

/// The readings guest-components/c/sensor-log/sample/sensors.csv makes
/// anomalous on purpose (CSV line, timestamp, sensor, value): a temperature
/// spike, a pressure drop-out and a vibration burst among steady readings.
const SAMPLE_ANOMALIES: &[(usize, &str, &str, &str)] = &[
    (24, "2024-05-14T10:35:00Z", "pump_temp_c", "78.9"),
    (31, "2024-05-14T10:45:00Z", "outlet_pressure_bar", "0.2"),
    (35, "2024-05-14T10:50:00Z", "vibration_mm_s", "11.8"),
];

/// `line N: TIMESTAMP SENSOR = VALUE: reason` lines of the anomaly list.
fn anomaly_lines(stdout: &str) -> Vec<(usize, String, String, String)> {
    let list = stdout.split_once("\nAnomalies (").map_or("", |(_, l)| l);
    let list = list.split_once("\nExplanation (").map_or(list, |(l, _)| l);
    list.lines()
        .filter_map(|l| l.trim_start().strip_prefix("line "))
        .map(|l| {
            let (n, rest) = l.split_once(": ").unwrap();
            let mut w = rest.split_whitespace();
            let (ts, sensor, eq, value) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
            assert_eq!(eq, "=", "{l}");
            (n.parse().unwrap(), ts.to_string(), sensor.to_string(), value.trim_end_matches(':').to_string())
        })
        .collect()
}

#[test]
fn sensor_log_flags_exactly_the_anomalous_rows_and_explains_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = guest("c-sensor-log");
    let sample = repo_root().join("guest-components/c/sensor-log/sample");
    let csv = std::fs::read_to_string(sample.join("sensors.csv")).unwrap();
    // The expected rows are where the sample says they are.
    for (line, ts, sensor, value) in SAMPLE_ANOMALIES {
        let row = csv.lines().nth(line - 1).unwrap();
        let (prefix, v) = row.rsplit_once(',').unwrap();
        assert_eq!(prefix, format!("{ts},{sensor}"), "line {line}");
        assert_eq!(v.parse::<f64>().unwrap(), value.parse::<f64>().unwrap(), "line {line}");
    }
    let dir = format!("{}::/data", sample.display());
    let out = run_edgewasm(&["run", "--dir", &dir, s(&wasm), "--temp", "0", "--max-tokens", "24", "/data/sensors.csv"], None);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let found = anomaly_lines(&stdout);
    let expected: Vec<_> = SAMPLE_ANOMALIES.iter().map(|(n, t, s, v)| (*n, t.to_string(), s.to_string(), v.to_string())).collect();
    assert_eq!(found, expected, "anomaly list differs:\n{stdout}");
    assert!(stdout.starts_with("/data/sensors.csv: 36 readings of 3 sensors\n"), "{stdout}");
    assert!(stdout.contains("\nAnomalies (3):\n"), "{stdout}");
    // The explanation follows the list and is the model's (non-empty) text.
    let (_, explanation) = stdout.split_once("\nExplanation (").expect("an explanation section");
    let (_, body) = explanation.split_once("):\n").unwrap();
    assert!(body.trim().len() > 20, "explanation too short: {body:?}");
}

#[test]
fn sensor_log_range_limits_and_bad_input() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = guest("c-sensor-log");
    let sample = repo_root().join("guest-components/c/sensor-log/sample");
    let dir = format!("{}::/data", sample.display());
    // --range adds out-of-range readings to the robust-z ones; deterministic, no model.
    let out = run_edgewasm(
        &["run", "--dir", &dir, s(&wasm), "--no-explain", "--range", "pump_temp_c=0:42", "/data/sensors.csv"],
        None,
    );
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<usize> = anomaly_lines(&stdout).iter().map(|a| a.0).collect();
    // 42.1 (line 21) and 42.2 (line 36) are above 42 but ordinary readings otherwise.
    assert_eq!(lines, [21, 24, 31, 35, 36], "{stdout}");
    assert!(!stdout.contains("Explanation"), "--no-explain ran the model:\n{stdout}");

    // A missing file: a clear message, exit status 1, nothing on stdout.
    let out = run_edgewasm(&["run", "--dir", &dir, s(&wasm), "/data/no-such.csv"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("/data/no-such.csv: no such file"), "{stderr}");
    // A file outside every --dir is just as missing.
    let out = run_edgewasm(&["run", s(&wasm), "/etc/passwd"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/etc/passwd: outside the folders given to the guest"), "{}", text(&out.stderr));
    let out = run_edgewasm(&["run", "--dir", &dir, s(&wasm), "/data"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/data: is a directory"), "{}", text(&out.stderr));

    // Malformed logs: the line and what is wrong with it.
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("bad-value.csv", "timestamp,sensor,value\nt1,a,1.5\nt2,a,warm\n", "/data/bad-value.csv:3: value `warm` is not a number"),
        ("bad-header.csv", "time,name,reading\nt1,a,1\n", "/data/bad-header.csv:1: expected the header `timestamp,sensor,value`"),
        ("bad-fields.csv", "timestamp,sensor,value\nt1,a,1,2\n", "/data/bad-fields.csv:2: expected 3 comma-separated fields"),
        ("empty.csv", "", "/data/empty.csv: empty file"),
        ("header-only.csv", "timestamp,sensor,value\n", "/data/header-only.csv: no readings after the header"),
    ];
    for (name, content, _) in &cases {
        std::fs::write(tmp.path().join(name), content).unwrap();
    }
    let tmp_dir = format!("{}::/data", tmp.path().display());
    for (name, _, message) in &cases {
        let out = run_edgewasm(&["run", "--dir", &tmp_dir, s(&wasm), &format!("/data/{name}")], None);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(out.stdout.is_empty(), "{name}");
        assert!(text(&out.stderr).contains(message), "{name}: {}", text(&out.stderr));
    }
    // A usage error.
    let out = run_edgewasm(&["run", s(&wasm), "--range", "x=5", "/data/a.csv"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--range needs SENSOR=MIN:MAX"));
}

// -------------------------------------------------------------- assistant

const TURNS: [&str; 2] = ["What is an edge device?", "Give one example."];
const SYSTEM: &str = "You are a concise assistant.";

/// `> ` prompt-separated answers of a REPL transcript (chat.wasm and
/// js-assistant.wasm print the same shape: `> ANSWER\n` per turn, `> \n` at the end).
fn repl_answers(stdout: &str) -> Vec<String> {
    let body = stdout.strip_suffix("> \n").unwrap_or_else(|| panic!("transcript does not end with the prompt: {stdout:?}"));
    body.split_terminator('\n').map(|l| l.strip_prefix("> ").unwrap_or(l).to_string()).collect()
}

/// `[assistant] turn N: prompt P tokens, R reused ...` → (P, R) per turn.
fn turn_stats(stderr: &str) -> Vec<(u32, u32)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("[assistant] turn "))
        .map(|l| {
            let rest = l.split_once(": prompt ").unwrap().1;
            let (p, rest) = rest.split_once(" tokens, ").unwrap();
            let r = rest.split_once(' ').unwrap().0;
            (p.parse().unwrap(), r.parse().unwrap())
        })
        .collect()
}

#[test]
fn assistant_keeps_the_conversation_in_the_kv_cache_and_matches_the_rust_chat_guest() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = guest("js-assistant");
    let chat = guest("chat");
    let flags = ["--system", SYSTEM, "--temp", "0", "--max-tokens", "16"];

    // Scripted: --turn twice.
    let mut args = vec!["run", s(&wasm)];
    args.extend(flags);
    for t in TURNS {
        args.extend(["--turn", t]);
    }
    let out = run_edgewasm(&args, None);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout:?}");
    assert_eq!(lines[0], format!("> {}", TURNS[0]));
    assert_eq!(lines[2], format!("> {}", TURNS[1]));
    let scripted = vec![lines[1].to_string(), lines[3].to_string()];
    assert!(scripted.iter().all(|a| !a.trim().is_empty()), "{scripted:?}");
    let stats = turn_stats(&text(&out.stderr));
    assert_eq!(stats.len(), 2, "{}", text(&out.stderr));
    assert_eq!(stats[0].1, 0, "nothing to reuse on the first turn");
    // The second turn's prompt is the whole conversation; all of turn 1
    // (system, question, answer) comes from the cache.
    assert!(stats[1].1 > 0 && stats[1].1 < stats[1].0, "turn 2 reused {} of {} tokens", stats[1].1, stats[1].0);
    assert!(stats[1].1 > stats[0].0, "turn 2 reused {} tokens, fewer than turn 1's prompt ({})", stats[1].1, stats[0].0);

    // The REPL on stdin gives the same dialogue...
    let input = format!("{}\n{}\n", TURNS[0], TURNS[1]);
    let mut args = vec!["run", s(&wasm)];
    args.extend(flags);
    let repl = run_edgewasm(&args, Some(&input));
    assert!(repl.status.success());
    assert_eq!(repl_answers(&text(&repl.stdout)), scripted);
    assert_eq!(turn_stats(&text(&repl.stderr)), stats);

    // ... and so does the Rust chat guest's REPL (the same edgewasm:llm calls).
    let mut args = vec!["run", s(&chat)];
    args.extend(flags);
    let rust = run_edgewasm(&args, Some(&input));
    assert!(rust.status.success());
    assert_eq!(repl_answers(&text(&rust.stdout)), scripted);

    // The first turn is what the native engine answers to that chat.
    let native = run_edgewasm(
        &["generate", "--chat", "--system", SYSTEM, "--temp", "0", "--max-tokens", "16", "--prompt", TURNS[0]],
        None,
    );
    assert!(native.status.success());
    assert_eq!(text(&native.stdout), format!("{}\n", scripted[0]));

    // Bad arguments: a message and exit status 1.
    let out = run_edgewasm(&["run", s(&wasm), "--temp", "hot", "--turn", "Hi"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--temp needs a number"), "{}", text(&out.stderr));
    let out = run_edgewasm(&["run", s(&wasm), "--model", "nope", "--turn", "Hi"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not-found"), "{}", text(&out.stderr));
}

// --------------------------------------------------------------- classify

#[derive(serde::Deserialize, Debug)]
struct Scored {
    label: String,
    p: f64,
    logprob: f64,
}

#[derive(serde::Deserialize, Debug)]
struct Classified {
    text: String,
    labels: Vec<Scored>,
}

fn parse_classified(stdout: &str) -> Vec<Classified> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// What the app computes, natively: the same chat prompt, then log P(label)
/// by teacher forcing over the label's tokens (one batch, every position's
/// logits), calibrated by the content-free input `N/A` and normalized over
/// the labels. Returns (label, p, logprob) per label, in the given order.
fn native_classify(texts: &[&str], labels: &[&str], question: &str) -> Vec<Vec<(String, f64, f64)>> {
    let m = model(SMOLLM2);
    let tok = m.tokenizer();
    let template = m.chat_template().expect("chat template");
    let pool = Arc::new(ThreadPool::new(2));
    let n_vocab = m.config().n_vocab;
    let score = |text: &str| -> Vec<f64> {
        let content = format!("{question} Answer with one of: {}.\n\nText: {text}", labels.join(", "));
        let prompt = template.render(&[ChatMessage::new("user", content)], true).unwrap();
        let prompt_ids = tok.encode(&prompt, true, true);
        labels
            .iter()
            .map(|label| {
                let ids = tok.encode(label, false, false);
                let mut seq = prompt_ids.clone();
                seq.extend_from_slice(&ids[..ids.len() - 1]);
                let mut ctx = Context::new(Arc::clone(&m), Arc::clone(&pool), seq.len()).unwrap();
                let logits = ctx.eval(&seq, true).unwrap();
                ids.iter()
                    .enumerate()
                    .map(|(k, &t)| {
                        let row = &logits[(prompt_ids.len() - 1 + k) * n_vocab..][..n_vocab];
                        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                        let z: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                        row[t as usize] as f64 - max - z.ln()
                    })
                    .sum()
            })
            .collect()
    };
    let baseline = score("N/A");
    texts
        .iter()
        .map(|t| {
            let lp = score(t);
            let cal: Vec<f64> = lp.iter().zip(&baseline).map(|(a, b)| a - b).collect();
            let max = cal.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = cal.iter().map(|c| (c - max).exp()).sum();
            labels.iter().zip(cal.iter().zip(&lp)).map(|(l, (c, lp))| (l.to_string(), (c - max).exp() / z, *lp)).collect()
        })
        .collect()
}

/// Checks the app's output against the native computation: same labels,
/// sorted by probability, probabilities summing to 1, each within 0.01 of
/// the native value (the guest evaluates token by token with prefix reuse,
/// the native side in one batch: float rounding differs slightly), and the
/// same top label wherever the native margin is clear.
fn check_against_native(got: &[Classified], texts: &[&str], labels: &[&str], question: &str) {
    assert_eq!(got.len(), texts.len());
    let native = native_classify(texts, labels, question);
    for ((g, text), want) in got.iter().zip(texts).zip(&native) {
        assert_eq!(g.text, *text);
        let sum: f64 = g.labels.iter().map(|l| l.p).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{text}: probabilities sum to {sum}");
        assert!(g.labels.windows(2).all(|w| w[0].p >= w[1].p), "{text}: not sorted: {g:?}");
        let mut names: Vec<&str> = g.labels.iter().map(|l| l.label.as_str()).collect();
        names.sort();
        let mut expected: Vec<&str> = labels.to_vec();
        expected.sort();
        assert_eq!(names, expected);
        for (label, p, lp) in want {
            let mine = g.labels.iter().find(|l| &l.label == label).unwrap();
            assert!((mine.p - p).abs() < 0.01, "{text}: p({label}) {} vs native {p}", mine.p);
            assert!((mine.logprob - lp).abs() < 0.05, "{text}: log P({label}) {} vs native {lp}", mine.logprob);
        }
        let mut sorted = want.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        if sorted[0].1 - sorted[1].1 > 0.02 {
            assert_eq!(g.labels[0].label, sorted[0].0, "{text}: top label differs from the native one");
        }
    }
}

const QUESTION: &str = "Which category does this support ticket belong to?";

#[test]
fn classify_scores_labels_from_token_mode_logits_like_the_native_engine() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = guest("python-classify");
    let sample = repo_root().join("guest-components/python/classify/sample");
    let file = std::fs::read_to_string(sample.join("tickets.txt")).unwrap();
    let texts: Vec<&str> = file.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    let labels = ["hardware", "software", "network", "other"];
    let dir = format!("{}::/data", sample.display());
    let args = ["run", "--dir", &dir, s(&wasm), "--json", "--file", "/data/tickets.txt"];
    let out = run_edgewasm(&args, None);
    assert!(out.status.success());
    let got = parse_classified(&text(&out.stdout));
    check_against_native(&got, &texts, &labels, QUESTION);
    // The obviously-network tickets (the first two of the sample) rank
    // `network` first; so does the native computation (checked above).
    for g in &got[..2] {
        assert!(g.text.contains("wifi") || g.text.contains("router"), "{}", g.text);
        assert_eq!(g.labels[0].label, "network", "{g:?}");
    }
    // Deterministic: the same run prints the same bytes.
    let again = run_edgewasm(&args, None);
    assert!(again.status.success());
    assert_eq!(text(&again.stdout), text(&out.stdout));

    // Multi-token labels (teacher forcing over every label token) from --labels, texts as arguments.
    let mlabels = ["power supply failure", "network outage", "paperwork"];
    let tok = model(SMOLLM2);
    assert!(mlabels.iter().filter(|l| tok.tokenizer().encode(l, false, false).len() > 1).count() >= 2);
    let mtexts = ["No internet on the whole floor since the switch rebooted"];
    let out = run_edgewasm(&["run", s(&wasm), "--json", "--labels", &mlabels.join(","), mtexts[0]], None);
    assert!(out.status.success());
    check_against_native(&parse_classified(&text(&out.stdout)), &mtexts, &mlabels, QUESTION);

    // Errors: a missing file, no input, a bad --labels.
    let out = run_edgewasm(&["run", "--dir", &dir, s(&wasm), "--file", "/data/nope.txt"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/data/nope.txt: no such file"), "{}", text(&out.stderr));
    let out = run_edgewasm(&["run", s(&wasm)], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing to classify"));
    let out = run_edgewasm(&["run", s(&wasm), "--labels", "only-one", "text"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--labels needs at least two"));
}
