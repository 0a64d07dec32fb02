//! `edgewasm tokenize`: token ids of a text, as JSON.

use anyhow::Result;
use clap::Parser;

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
    /// The text.
    text: String,
}

impl TokenizeCommand {
    pub fn execute(self) -> Result<()> {
        let model = self.model.load()?;
        let tok = model.tokenizer();
        let ids = tok.encode(&self.text, !self.no_bos, !self.no_parse_special);
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
