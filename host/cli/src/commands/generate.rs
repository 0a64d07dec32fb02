//! `edgewasm generate`: stream a completion (or a chat answer) to stdout.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser};
use edgewasm_llm::chat::ChatMessage;
use edgewasm_llm::generate::{GenerateOptions, Generation};
use edgewasm_llm::sampling::SamplerConfig;
use edgewasm_llm::{Context, ModelError};

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
        }
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
        let mut gen = match Generation::start(&mut ctx, &tokens, self.sampling.options()) {
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
