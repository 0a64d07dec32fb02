//! `edgewasm`: the command line.
//!
//! One clap struct per subcommand, each with an `execute()` (as in
//! wasmtime's `src/commands/`).

mod commands;
mod logger;
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
    Embed(commands::embed::EmbedCommand),
    Logits(commands::logits::LogitsCommand),
    Perplexity(commands::perplexity::PerplexityCommand),
    Bench(commands::bench::BenchCommand),
    Run(commands::run::RunCommand),
    Serve(commands::serve::ServeCommand),
    Compile(commands::compile::CompileCommand),
    Quantize(commands::quantize::QuantizeCommand),
}

/// Gives SIGPIPE back its default action. Rust ignores it, so writing to a
/// closed pipe (`edgewasm tokenize ... | head`) fails with EPIPE and
/// `println!` panics; with the default, the process ends quietly the
/// moment its reader goes away, as `cat` and every Unix filter do (status
/// 141 in a shell). One place for every command, and for a guest's stdout
/// (`serve` ignores it again: see [`set_sigpipe`]).
fn default_sigpipe() {
    set_sigpipe(true);
}

/// SIGPIPE's disposition: the default action (`true`) or ignored.
#[cfg(unix)]
pub(crate) fn set_sigpipe(default: bool) {
    // SAFETY: called before any thread that could race on the process's
    // signal dispositions exists (first thing in `main`, or before a
    // command starts its threads); SIG_DFL and SIG_IGN install no handler
    // code.
    unsafe {
        libc::signal(libc::SIGPIPE, if default { libc::SIG_DFL } else { libc::SIG_IGN });
    }
}

#[cfg(not(unix))]
pub(crate) fn set_sigpipe(_default: bool) {}

fn main() -> std::process::ExitCode {
    default_sigpipe();
    logger::init();
    let cli = Cli::parse_from(commands::run::implicit_run(std::env::args_os()));
    let result = match cli.command {
        Command::Inspect(c) => c.execute(),
        Command::Tokenize(c) => c.execute(),
        Command::Generate(c) => c.execute(),
        Command::Embed(c) => c.execute(),
        Command::Logits(c) => c.execute(),
        Command::Perplexity(c) => c.execute(),
        Command::Bench(c) => c.execute(),
        Command::Run(c) => c.execute(),
        Command::Serve(c) => c.execute(),
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
