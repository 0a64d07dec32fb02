//! `edgewasm generate`: stream a completion (or a chat answer) to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser};
use edgewasm_grammar::Grammar;
use edgewasm_llm::chat::ChatMessage;
use edgewasm_llm::constrain::GrammarSource;
use edgewasm_llm::generate::{GenerateOptions, Generation};
use edgewasm_llm::sampling::SamplerConfig;
use edgewasm_llm::{Context, Model, ModelError};

use super::args::{ModelArgs, ThreadsArgs};

/// Sampling flags shared by the commands that generate.
#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Most tokens to generate.
    #[arg(long, short = 'n', default_value_t = 256)]
    pub max_tokens: usize,
    /// Temperature; 0 means greedy.
    #[arg(long, value_parser = super::args::non_negative, default_value_t = 0.8)]
    pub temp: f32,
    /// Keep the K most likely tokens (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, value_parser = super::args::non_negative, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens below this fraction of the best one's probability (0 = off).
    #[arg(long, value_parser = super::args::non_negative, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalty for repeating recent tokens (1 = off).
    #[arg(long, value_parser = super::args::non_negative, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed: the same seed gives the same output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop when this string appears (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            max_tokens: self.max_tokens,
            sampler: SamplerConfig {
                temperature: self.temp,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                seed: self.seed,
                ..SamplerConfig::default()
            },
            stop: self.stop.clone(),
            stop_at_eog: true,
            grammar: None,
        }
    }
}

/// Constrained output: at most one of these.
#[derive(Args, Debug, Clone)]
#[group(multiple = false)]
pub struct GrammarArgs {
    /// Only generate text of this GBNF grammar (llama.cpp's syntax, start
    /// rule `root`).
    #[arg(long, value_name = "GBNF")]
    pub grammar: Option<String>,
    /// Like --grammar, read from a file.
    #[arg(long, value_name = "PATH")]
    pub grammar_file: Option<PathBuf>,
    /// Only generate JSON that fits this JSON Schema (`{}`: any JSON).
    #[arg(long, value_name = "JSON")]
    pub json_schema: Option<String>,
    /// Like --json-schema, read from a file.
    #[arg(long, value_name = "PATH")]
    pub json_schema_file: Option<PathBuf>,
}

impl GrammarArgs {
    /// The grammar the flags ask for, compiled for `model`.
    pub fn compile(&self, model: &Model) -> Result<Option<Arc<Grammar>>> {
        let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
        let gbnf = match (&self.grammar, &self.grammar_file) {
            (Some(g), _) => Some(("--grammar".to_string(), g.clone())),
            (_, Some(p)) => Some((format!("--grammar-file {}", p.display()), read(p)?)),
            _ => None,
        };
        if let Some((flag, text)) = gbnf {
            return Ok(Some(model.compile_grammar(GrammarSource::Gbnf(&text)).with_context(|| flag)?));
        }
        let schema = match (&self.json_schema, &self.json_schema_file) {
            (Some(s), _) => Some(("--json-schema".to_string(), s.clone())),
            (_, Some(p)) => Some((format!("--json-schema-file {}", p.display()), read(p)?)),
            _ => None,
        };
        let Some((flag, text)) = schema else { return Ok(None) };
        let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{flag}: not JSON"))?;
        Ok(Some(model.compile_grammar(GrammarSource::JsonSchema(&value)).with_context(|| flag)?))
    }
}

/// Generate text from a prompt, streaming it to stdout.
#[derive(Parser, Debug)]
pub struct GenerateCommand {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt (the user message with --chat).
    #[arg(long, short)]
    prompt: String,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat: bool,
    /// System message for --chat.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    grammar: GrammarArgs,
    /// Context size in tokens.
    #[arg(long, value_parser = super::args::positive, default_value_t = 2048)]
    ctx_size: usize,
    #[command(flatten)]
    kv: super::args::KvCacheArgs,
    #[command(flatten)]
    threads: ThreadsArgs,
    /// Stop with exit code 124 after this long (e.g. `30s`, `500ms`):
    /// bounds tokenizing, prompt processing and generation together.
    #[arg(long)]
    timeout: Option<String>,
    /// Print timings to stderr when done.
    #[arg(long, short)]
    verbose: bool,
}

impl GenerateCommand {
    pub fn execute(self) -> Result<()> {
        let limit = self.timeout.as_deref().map(super::run::parse_duration).transpose().context("--timeout")?;
        let model = self.model.load()?;
        let deadline = limit.map(|l| Instant::now() + l);
        let timed_out = || -> ! {
            let _ = std::io::stdout().flush();
            eprintln!("error: generation exceeded the time limit of {:?} (--timeout)", limit.unwrap_or_default());
            std::process::exit(super::run::EXIT_TIMEOUT)
        };
        let prompt = if self.chat {
            let mut messages = Vec::new();
            if let Some(s) = &self.system {
                messages.push(ChatMessage { role: "system".into(), content: s.clone() });
            }
            messages.push(ChatMessage { role: "user".into(), content: self.prompt.clone() });
            model.chat_template()?.render(&messages, true).context("rendering the chat template")?
        } else {
            self.prompt.clone()
        };
        let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
        let tokens = match model.tokenizer().encode_checked(&prompt, true, self.chat, &past_deadline) {
            Ok(t) => t,
            Err(_) => timed_out(),
        };
        let pool = self.threads.pool();
        let mut ctx = Context::with_kv_types(Arc::clone(&model), pool, self.ctx_size, self.kv.types())?;
        ctx.set_deadline(deadline);
        let opts = GenerateOptions { grammar: self.grammar.compile(&model)?, ..self.sampling.options() };
        let mut gen = match Generation::start(&mut ctx, &tokens, opts) {
            Err(ModelError::DeadlineExceeded) => timed_out(),
            r => r?,
        };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let mut io_err = None;
        let reason = match gen.run(&mut ctx, |text| {
            if io_err.is_none() {
                if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    io_err = Some(e);
                }
            }
        }) {
            Err(ModelError::DeadlineExceeded) => {
                drop(out);
                timed_out()
            }
            r => r?,
        };
        if let Some(e) = io_err {
            return Err(e).context("writing to stdout");
        }
        writeln!(out)?;
        if self.verbose {
            let s = gen.stats();
            eprintln!(
                "prompt: {} tokens in {:.1} ms ({:.1} t/s); generated: {} tokens in {:.1} ms ({:.1} t/s); stop: {}",
                s.prompt_tokens,
                s.prompt_time.as_secs_f64() * 1e3,
                s.prompt_tokens as f64 / s.prompt_time.as_secs_f64(),
                s.generated_tokens,
                s.generate_time.as_secs_f64() * 1e3,
                s.generated_tokens as f64 / s.generate_time.as_secs_f64().max(1e-9),
                reason.as_str()
            );
        }
        Ok(())
    }
}
