//! Writes the committed seed corpora under fuzz/seeds/<target>/ (small
//! files only). Run from the repo root: `./just fuzz-seeds`, or
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`.
//! Chat-template seeds also take the templates of the real models in
//! models/ when they are present.

use std::fs;
use std::path::{Path, PathBuf};

use edgewasm_fuzz::{misc_gguf_seeds, tiny_llama_gguf, Vocab};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");

    let gguf = root.join("gguf");
    for (v, name) in [(Vocab::Gpt2, "gpt2"), (Vocab::SpmGemma, "spm_gemma"), (Vocab::SpmLlama, "spm_llama")] {
        write(&gguf, &format!("tiny_llama_{name}.gguf"), &tiny_llama_gguf(v));
    }
    for (name, bytes) in misc_gguf_seeds() {
        write(&gguf, &format!("{name}.gguf"), &bytes);
    }

    // Structure-aware: any bytes decode to some writer calls; a few fixed
    // patterns to start from (the long runs' corpus adds more).
    let writer = root.join("gguf_writer");
    write(&writer, "zeros", &[0u8; 64]);
    write(&writer, "ones", &[0xFFu8; 64]);
    write(&writer, "counting", &(0..=255u8).collect::<Vec<_>>());
    write(&writer, "sparse", &(0..=255u8).map(|b| b.wrapping_mul(37) & 0x0F).collect::<Vec<_>>());

    let mem = root.join("wasmedge_memory");
    write(&mem, "zeros", &[0u8; 64]);
    write(&mem, "ones", &[0xFFu8; 64]);
    write(&mem, "counting", &(0..=255u8).collect::<Vec<_>>());

    let tok = root.join("tokenizer");
    let texts = [
        "Hello world",
        " the  cat's\n\nhat é 日本語 12345 🤖",
        "<|im_start|>user\nHi<|im_end|><tool_call>",
        "<start_of_turn>user\n<br>x<end_of_turn><unk>",
        "\u{2581}\u{2581}a \t\r\n\u{0}\u{7f}\u{feff}",
        "",
    ];
    for (i, t) in texts.iter().enumerate() {
        for sel in 0..3u8 {
            let mut b = vec![sel];
            b.extend_from_slice(t.as_bytes());
            write(&tok, &format!("text_{i}_{sel}"), &b);
        }
    }
    for sel in 0..3u8 {
        // Ids: ascending through the vocabulary, then past its end.
        let mut b = vec![0x80 | sel];
        for id in (0u16..400).chain([0xFFFF, 0xFF00]) {
            b.extend_from_slice(&id.to_le_bytes());
        }
        write(&tok, &format!("ids_{sel}"), &b);
    }

    let chat = root.join("chat_template");
    let conv = "\0system\0Be brief.\0user\0Hello\0assistant\0Hi!\0user\0Bye";
    let builtin = [
        ("chatml", "{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"),
        ("loops", "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}"),
        ("output", "{% for a in range(100000) %}{{ 'x' * 10000 }}{% endfor %}"),
        ("recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
        ("raise", "{% if messages[0]['role'] != 'user' %}{{ raise_exception('roles must alternate') }}{% endif %}"),
        ("helpers", "{% for m in messages %}{% if m.content.strip().startswith('H') %}{{ m.role | upper }}{% endif %}{% endfor %}{{ bos_token }}|{{ {'a': [1, 'é']} | tojson(indent=2) }}|{{ strftime_now('%Y-%m-%d %A') }}|{{ messages | length }}{% set ns = namespace(x='') %}{% for m in messages|reverse %}{% set ns.x = ns.x ~ m.content[:2] %}{% endfor %}{{ ns.x }}"),
        ("filters", "{{ messages|map(attribute='content')|join(', ')|replace('H','h')|title|center(40)|trim|wordcount }}{{ '%5d|%-4s|%.2f'|format(3, 'ab', 1.5) }}{{ messages|tojson }}{{ (messages|first).items()|list }}{{ 'a,b'.split(',') }}"),
    ];
    for (name, src) in builtin {
        write(&chat, name, format!("{src}{conv}").as_bytes());
    }
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models");
    for (name, file) in [("smollm2", "smollm2-135m-instruct-q4_1.gguf"), ("gemma3", "gemma-3-270m-q4_k_m.gguf")] {
        match edgewasm_gguf::GgufFile::open(models.join(file)) {
            Ok(f) => {
                let src = f.get_str("tokenizer.chat_template").unwrap().unwrap_or_default().to_string();
                write(&chat, name, format!("{src}{conv}").as_bytes());
            }
            Err(e) => eprintln!("skipping the {name} template: {e}"),
        }
    }

    let nn = root.join("nn_config");
    let configs = [
        r#"{"n-predict": 16, "temp": 0, "top-k": 5, "top-p": 0.9, "min-p": 0.05, "repeat-penalty": 1.1, "seed": -1, "ctx-size": 512, "reverse-prompt": "User:", "enable-log": true, "foo": 1}"#,
        r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], "reverse-prompt": ["a", "b"]}"#,
        r#"{"n-predict": -1, "seed": 18446744073709551615, "temp": 1e308, "top-k": 1.0e3, "ctx-size": 9e15}"#,
        r#"{"temp": "hot", "messages": [{"role": 1}]}"#,
        "  ",
        "[1, {\"a\": null}]",
    ];
    for (i, c) in configs.iter().enumerate() {
        write(&nn, &format!("config_{i}.json"), c.as_bytes());
    }
    eprintln!("seeds written to {}", root.display());
}
