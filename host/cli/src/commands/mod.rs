//! Subcommands, one module each.

pub mod args;
pub mod bench;
pub mod compile;
pub mod embed;
pub mod generate;
pub mod inspect;
pub mod logits;
pub mod perplexity;
pub mod quantize;
pub mod run;
pub mod sandbox;
pub mod serve;
pub mod tokenize;
