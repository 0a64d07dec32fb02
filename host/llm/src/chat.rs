//! Chat templates: renders GGUF `tokenizer.chat_template` with minijinja.
