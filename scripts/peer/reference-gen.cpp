// reference-gen: one teacher-forced reference generation from llama.cpp
// (the peer), in the format of tests/data/*/NAME.json. Reads the prompt
// text on stdin, tokenizes it with the model's BOS rule and special tokens
// parsed, then generates N tokens by pure argmax (no sampler, not stopping
// at end-of-generation) with llama.cpp's defaults (flash attention, f16 KV
// cache), printing for each step the 16 highest logits of the forward pass
// that produced the token. Built by scripts/reference.py.
//
//   reference-gen MODEL.gguf NAME N_GEN [--threads N] < prompt.txt
#include "llama.h"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

// JSON string literal: escapes quotes, backslashes and control bytes;
// UTF-8 passes through as is (as Python's json.dump(ensure_ascii=False)).
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
                if (c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); o += b; }
                else o += (char) c;
        }
    }
    return o + "\"";
}

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODEL NAME N_GEN [--threads N] < prompt.txt\n", argv[0]); return 2; }
    const std::string name = argv[2];
    const int n_gen = atoi(argv[3]);
    int threads = 2;
    for (int i = 4; i + 1 < argc; i++) if (std::string(argv[i]) == "--threads") threads = atoi(argv[++i]);
    std::string prompt((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());

    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    std::vector<llama_token> ids(prompt.size() + 8);
    int n = llama_tokenize(vocab, prompt.data(), (int) prompt.size(), ids.data(), (int) ids.size(), true, true);
    if (n < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    ids.resize(n);

    auto cp = llama_context_default_params();
    cp.n_ctx = std::max(512, n + n_gen + 8);
    cp.n_threads = threads; cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);

    std::vector<llama_token> gen;
    std::vector<float> margin;
    std::string steps, text;
    std::vector<llama_token> feed = ids;
    for (int s = 0; s < n_gen; s++) {
        if (llama_decode(ctx, llama_batch_get_one(feed.data(), (int) feed.size()))) { fprintf(stderr, "decode failed\n"); return 1; }
        const float * l = llama_get_logits_ith(ctx, -1);
        std::vector<int> idx(n_vocab);
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + 16, idx.end(), [&](int a, int b) { return l[a] > l[b]; });
        steps += s ? ",\n  {\"top_ids\": [" : "\n  {\"top_ids\": [";
        for (int k = 0; k < 16; k++) steps += (k ? ", " : "") + std::to_string(idx[k]);
        steps += "], \"top_logits\": [";
        for (int k = 0; k < 16; k++) { char b[32]; snprintf(b, sizeof b, "%s%.4f", k ? ", " : "", l[idx[k]]); steps += b; }
        steps += "]}";
        gen.push_back(idx[0]);
        margin.push_back(l[idx[0]] - l[idx[1]]);
        char piece[256];
        int np = llama_token_to_piece(vocab, idx[0], piece, sizeof piece, 0, false);
        if (np > 0) text.append(piece, np);
        feed.assign(1, idx[0]);
    }
    auto list = [](const std::vector<llama_token> & v) {
        std::string o = "[";
        for (size_t i = 0; i < v.size(); i++) o += (i ? ", " : "") + std::to_string(v[i]);
        return o + "]";
    };
    std::string m = "[";
    for (size_t i = 0; i < margin.size(); i++) { char b[32]; snprintf(b, sizeof b, "%s%.3f", i ? ", " : "", margin[i]); m += b; }
    m += "]";
    printf("{\n \"name\": %s,\n \"prompt\": %s,\n \"prompt_ids\": %s,\n \"gen_ids\": %s,\n \"top1_top2_margin\": %s,\n \"text\": %s,\n \"steps\": [%s\n ]\n}\n",
           json_str(name).c_str(), json_str(prompt).c_str(), list(ids).c_str(), list(gen).c_str(), m.c_str(), json_str(text).c_str(),
           steps.c_str());
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
