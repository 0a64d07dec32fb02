//! `nn-greedy.wasm`: greedy decoding with only standard wasi:nn, so it runs
//! on any wasi-nn host whose GGML backend follows the token convention
//! (input `tokens` i32 → output `logits` f32 [n_vocab], KV cache kept
//! across `compute` calls).
//!
//!   nn-greedy.wasm [--model NAME] [--max-tokens N] [--eos ID]... TOKEN-ID...
//!   nn-greedy.wasm [--model NAME] --text PROMPT [--config JSON]
//!
//! `--load FILE` loads a GGUF file the guest can read (`graph.load`, encoding
//! ggml) instead of a preloaded model.
//!
//! Token mode prints the generated ids (`tokens: ...`) and the top-5 logits
//! of each step (`step I: id=logit ...`). Text mode prints the `text`
//! output and its `metadata` on stderr.

use std::process::exit;

use edgewasm_guest::nn::{graph, inference, tensor};
use edgewasm_guest::nn_error;

fn fail(what: &str, e: &edgewasm_guest::nn::errors::Error) -> ! {
    eprintln!("wasi-nn error: {what}: {}", nn_error(e));
    exit(2)
}

fn main() {
    let mut model = "default".to_string();
    let mut max_tokens = 16usize;
    let mut eos: Vec<u32> = Vec::new();
    let mut text: Option<String> = None;
    let mut load: Option<String> = None;
    let mut config: Option<String> = None;
    let mut prompt: Vec<u32> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut next = || it.next().unwrap_or_else(|| { eprintln!("{a} needs a value"); exit(2) });
        match a.as_str() {
            "--model" => model = next(),
            "--max-tokens" => max_tokens = next().parse().expect("--max-tokens N"),
            "--eos" => eos.push(next().parse().expect("--eos ID")),
            "--text" => text = Some(next()),
            "--load" => load = Some(next()),
            "--config" => config = Some(next()),
            s => prompt.extend(s.split(',').filter(|x| !x.is_empty()).map(|x| x.parse::<u32>().expect("token ids"))),
        }
    }

    let g = match &load {
        // Guest-supplied bytes (a GGUF file the guest can read, e.g. via --dir).
        Some(path) => {
            let bytes = std::fs::read(path).unwrap_or_else(|e| {
                eprintln!("cannot read {path}: {e}");
                exit(2)
            });
            graph::load(&[bytes], graph::GraphEncoding::Ggml, graph::ExecutionTarget::Cpu)
                .unwrap_or_else(|e| fail(&format!("load {path}"), &e))
        }
        None => graph::load_by_name(&model).unwrap_or_else(|e| fail(&format!("load-by-name `{model}`"), &e)),
    };
    let ctx = g.init_execution_context().unwrap_or_else(|e| fail("init-execution-context", &e));

    if let Some(t) = text {
        let mut inputs = vec![("prompt".to_string(), tensor::Tensor::new(&[t.len() as u32], tensor::TensorType::U8, t.as_bytes()))];
        if let Some(c) = config {
            inputs.push(("config".to_string(), tensor::Tensor::new(&[c.len() as u32], tensor::TensorType::U8, c.as_bytes())));
        }
        let outputs = ctx.compute(inputs).unwrap_or_else(|e| fail("compute (text)", &e));
        for (name, t) in outputs {
            let data = t.data();
            match name.as_str() {
                "text" => println!("{}", String::from_utf8_lossy(&data)),
                "metadata" => eprintln!("metadata: {}", String::from_utf8_lossy(&data)),
                _ => {}
            }
        }
        return;
    }

    if prompt.is_empty() {
        eprintln!("usage: nn-greedy.wasm [--model NAME] [--max-tokens N] TOKEN-ID... | --text PROMPT");
        exit(2);
    }
    let mut generated = Vec::new();
    let mut feed = prompt;
    for step in 0..max_tokens {
        let data: Vec<u8> = feed.iter().flat_map(|&t| (t as i32).to_le_bytes()).collect();
        let input = tensor::Tensor::new(&[feed.len() as u32], tensor::TensorType::I32, &data);
        let outputs: Vec<inference::NamedTensor> =
            ctx.compute(vec![("tokens".to_string(), input)]).unwrap_or_else(|e| fail("compute (tokens)", &e));
        let Some((_, logits)) = outputs.into_iter().find(|(n, _)| n == "logits") else {
            eprintln!("no `logits` output");
            exit(2)
        };
        let bytes = logits.data();
        let row: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        // Greedy: the first maximum (ties → lowest id), like the engine.
        let mut best = 0usize;
        for (i, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = i;
            }
        }
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let top: Vec<String> = idx[..5.min(idx.len())].iter().map(|&i| format!("{i}={:?}", row[i])).collect();
        println!("step {step}: {}", top.join(" "));
        let id = best as u32;
        if eos.contains(&id) {
            break;
        }
        generated.push(id);
        feed = vec![id];
    }
    println!("tokens: {}", generated.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
}
