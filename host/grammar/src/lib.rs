//! Constrained generation: the text a model may produce, as a grammar.
//!
//! Data path: GBNF source (llama.cpp's grammar syntax) or a JSON Schema
//! ([`schema::json_schema_to_gbnf`]) → [`Grammar`] (rules compiled to flat
//! elements, checked for undefined rules and left recursion) →
//! [`Matcher`] (the set of pushdown stacks after the text so far) →
//! [`TokenMask`] (which tokens of a vocabulary may come next, found by one
//! walk over a [`TokenTrie`] that shares work between tokens with a common
//! prefix, and cached per matcher state).
//!
//! Matching is over Unicode code points, as llama.cpp's is; token bytes
//! that end inside a multi-byte character are accepted when some
//! completion of that character can match.

mod error;
mod mask;
mod matcher;
mod parse;
pub mod schema;
mod trie;

pub use error::GrammarError;
pub use mask::TokenMask;
pub use matcher::Matcher;
pub use parse::Grammar;
pub use trie::TokenTrie;
