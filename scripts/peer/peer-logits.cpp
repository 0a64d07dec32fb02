// peer-logits: teacher-forced logits from llama.cpp (the peer), for
// investigating numerical differences with edgewasm. Reads token ids on
// stdin (whitespace separated), evaluates them in one batch (or one token at
// a time with --incremental), and prints one JSON line per position with the
// top-16 (id, logit) pairs.
//
//   peer-logits MODEL.gguf [--fa on|off] [--kv f16|f32] [--incremental] [--threads N] < ids.txt
#include "llama.h"
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

int main(int argc, char ** argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s MODEL [--fa on|off] [--kv f16|f32] [--incremental] [--threads N]\n", argv[0]); return 2; }
    bool fa = true, incremental = false; ggml_type kv = GGML_TYPE_F16; int threads = 2;
    for (int i = 2; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--fa" && i + 1 < argc) fa = std::string(argv[++i]) == "on";
        else if (a == "--kv" && i + 1 < argc) kv = std::string(argv[++i]) == "f32" ? GGML_TYPE_F32 : GGML_TYPE_F16;
        else if (a == "--incremental") incremental = true;
        else if (a == "--threads" && i + 1 < argc) threads = atoi(argv[++i]);
    }
    std::vector<llama_token> ids; long v; while (std::cin >> v) ids.push_back((llama_token) v);
    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    auto mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    auto cp = llama_context_default_params();
    cp.n_ctx = std::max<size_t>(512, ids.size() + 8); cp.n_batch = cp.n_ctx; cp.n_ubatch = cp.n_ctx;
    cp.flash_attn_type = fa ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = kv; cp.type_v = kv; cp.n_threads = threads; cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    auto dump = [&](int pos, const float * l) {
        std::vector<int> idx(n_vocab); std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + 16, idx.end(), [&](int a, int b) { return l[a] > l[b]; });
        printf("{\"pos\":%d,\"top_ids\":[", pos);
        for (int k = 0; k < 16; k++) printf("%s%d", k ? "," : "", idx[k]);
        printf("],\"top_logits\":[");
        for (int k = 0; k < 16; k++) printf("%s%.5f", k ? "," : "", l[idx[k]]);
        printf("]}\n");
    };
    if (incremental) {
        for (size_t i = 0; i < ids.size(); i++) {
            llama_batch b = llama_batch_get_one(&ids[i], 1);
            if (llama_decode(ctx, b)) { fprintf(stderr, "decode failed\n"); return 1; }
            dump((int) i, llama_get_logits_ith(ctx, -1));
        }
    } else {
        llama_batch b = llama_batch_init((int) ids.size(), 0, 1);
        for (size_t i = 0; i < ids.size(); i++) {
            b.token[i] = ids[i]; b.pos[i] = (llama_pos) i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
        }
        b.n_tokens = (int) ids.size();
        if (llama_decode(ctx, b)) { fprintf(stderr, "decode failed\n"); return 1; }
        for (size_t i = 0; i < ids.size(); i++) dump((int) i, llama_get_logits_ith(ctx, (int) i));
    }
    llama_free(ctx); llama_model_free(model);
    return 0;
}
