// eog-oracle: the tokens llama.cpp (the peer) marks as end of generation
// (`llama_vocab_is_eog`) in each vocab-only GGUF, for
// tests/data/vocab/eog.jsonl (scripts/vocab-reference.py). One JSON line
// per file: {"eog": [ids], "texts": [their texts]}.
//
//   eog-oracle VOCAB.gguf... > eog.jsonl
#include "llama.h"
#include <cstdio>
#include <string>

// JSON string literal: UTF-8 passes through.
static std::string json_str(const std::string & s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); o += b; }
                else o += (char) c;
        }
    }
    return o + "\"";
}

int main(int argc, char ** argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s VOCAB.gguf...\n", argv[0]); return 2; }
    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    for (int a = 1; a < argc; a++) {
        auto mp = llama_model_default_params();
        mp.vocab_only = true;
        llama_model * model = llama_model_load_from_file(argv[a], mp);
        if (!model) { fprintf(stderr, "load failed: %s\n", argv[a]); return 1; }
        const llama_vocab * vocab = llama_model_get_vocab(model);
        std::string ids = "[", texts = "[";
        for (llama_token t = 0; t < llama_vocab_n_tokens(vocab); t++) {
            if (!llama_vocab_is_eog(vocab, t)) continue;
            if (ids.size() > 1) { ids += ","; texts += ","; }
            ids += std::to_string(t);
            texts += json_str(llama_vocab_get_text(vocab, t));
        }
        std::string line = "{\"eog\":" + ids + "],\"texts\":" + texts + "]}\n";
        fwrite(line.data(), 1, line.size(), stdout);
        llama_model_free(model);
    }
    return 0;
}
