//! `edgewasm`: the command line.
//!
//! One clap struct per subcommand, each with an `execute()` (as in
//! wasmtime's `src/commands/`).

mod commands;
mod models;

use clap::{Parser, Subcommand};

/// Run WebAssembly AI components and small language models on edge CPUs.
#[derive(Parser, Debug)]
#[command(name = "edgewasm", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Inspect(commands::inspect::InspectCommand),
    Tokenize(commands::tokenize::TokenizeCommand),
    Generate(commands::generate::GenerateCommand),
    Logits(commands::logits::LogitsCommand),
    Perplexity(commands::perplexity::PerplexityCommand),
    Bench(commands::bench::BenchCommand),
    Run(commands::run::RunCommand),
    Compile(commands::compile::CompileCommand),
    Quantize(commands::quantize::QuantizeCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse_from(commands::run::implicit_run(std::env::args_os()));
    let result = match cli.command {
        Command::Inspect(c) => c.execute(),
        Command::Tokenize(c) => c.execute(),
        Command::Generate(c) => c.execute(),
        Command::Logits(c) => c.execute(),
        Command::Perplexity(c) => c.execute(),
        Command::Bench(c) => c.execute(),
        Command::Run(c) => c.execute(),
        Command::Compile(c) => c.execute(),
        Command::Quantize(c) => c.execute(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
