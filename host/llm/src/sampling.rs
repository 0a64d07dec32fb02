//! Sampling: turns logits into the next token.
