//! `edgewasm tokenize`: token ids of a text, as JSON.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use edgewasm_gguf::GgufFile;
use edgewasm_tokenizer::Tokenizer;

use super::args::ModelArgs;

/// Print the token ids of TEXT as a JSON array.
#[derive(Parser, Debug)]
pub struct TokenizeCommand {
    #[command(flatten)]
    model: ModelArgs,
    /// Treat special-token text such as `<|im_start|>` as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// Do not add BOS/EOS even if the model asks for them.
    #[arg(long)]
    no_bos: bool,
    /// Also print each token's text.
    #[arg(long)]
    pieces: bool,
    /// Read the text from this file (`-`: standard input) instead: a long
    /// text does not fit in one command-line argument (128 KiB on Linux).
    #[arg(long, value_name = "PATH", conflicts_with = "text")]
    file: Option<PathBuf>,
    /// The text.
    #[arg(required_unless_present = "file")]
    text: Option<String>,
}

impl TokenizeCommand {
    pub fn execute(self) -> Result<()> {
        // Only the vocabulary is read, so a vocab-only GGUF (llama.cpp's
        // models/ggml-vocab-*.gguf) or a model of an unsupported
        // architecture works too.
        let path = self.model.resolve()?;
        let file = GgufFile::open(&path).with_context(|| format!("reading {}", path.display()))?;
        let tok = Tokenizer::from_gguf(&file).with_context(|| format!("the tokenizer of {}", path.display()))?;
        let text = match (&self.file, self.text) {
            (Some(p), _) if p.as_os_str() == "-" => {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading the text from standard input")?;
                s
            }
            (Some(p), _) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            (None, t) => t.unwrap_or_default(),
        };
        let ids = tok.encode(&text, !self.no_bos, !self.no_parse_special);
        if self.pieces {
            let pieces: Vec<_> = ids
                .iter()
                .map(|&id| serde_json::json!({"id": id, "piece": tok.token_text(id).unwrap_or("")}))
                .collect();
            println!("{}", serde_json::to_string(&pieces)?);
        } else {
            println!("{}", serde_json::to_string(&ids)?);
        }
        Ok(())
    }
}
