// c-conformance.wasm: one completion, three ways (the same program as
// guest-components/rust/conformance, in C; bindings in ../gen by
// `wit-bindgen c`, world edgewasm:llm/command).
//
//   c-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T]
//       [--model NAME] PROMPT...
//
// text:   wasi:nn text mode (inputs `prompt` + `config` JSON, output `text`)
// stream: edgewasm:llm session.complete, chunks printed as they come
// tokens: wasi:nn token mode with our own greedy loop (tokenize/detokenize
//         through edgewasm:llm's model; stops after N tokens or at an
//         end-of-generation token; --temp must be 0)
//
// Prints the generated text and a newline; on error, the error on stderr
// and exit status 1 (wasi:cli/run returns `err`).
//
// Built as a *reactor* (no main): the component exports wasi:cli/run
// itself (exports_wasi_cli_run_run below), takes its arguments from
// wasi:cli/environment, and must flush stdout before returning.

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"

enum mode { MODE_TEXT, MODE_STREAM, MODE_TOKENS };

struct args {
    enum mode mode;
    uint32_t max_tokens;
    float temp;
    char *model;
    char *prompt;
};

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("conformance: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

static const char *nn_code_name(wasi_nn_errors_error_code_t c) {
    switch (c) {
    case WASI_NN_ERRORS_ERROR_CODE_INVALID_ARGUMENT: return "invalid-argument";
    case WASI_NN_ERRORS_ERROR_CODE_INVALID_ENCODING: return "invalid-encoding";
    case WASI_NN_ERRORS_ERROR_CODE_TIMEOUT: return "timeout";
    case WASI_NN_ERRORS_ERROR_CODE_RUNTIME_ERROR: return "runtime-error";
    case WASI_NN_ERRORS_ERROR_CODE_UNSUPPORTED_OPERATION: return "unsupported-operation";
    case WASI_NN_ERRORS_ERROR_CODE_TOO_LARGE: return "too-large";
    case WASI_NN_ERRORS_ERROR_CODE_NOT_FOUND: return "not-found";
    case WASI_NN_ERRORS_ERROR_CODE_SECURITY: return "security";
    default: return "unknown";
    }
}

// Reports a wasi:nn error (and drops the error resource).
static void nn_fail(const char *what, wasi_nn_errors_own_error_t err) {
    wasi_nn_errors_borrow_error_t b = wasi_nn_errors_borrow_error(err);
    command_string_t data;
    wasi_nn_errors_method_error_data(b, &data);
    fail("%s: wasi-nn error %s: %.*s", what, nn_code_name(wasi_nn_errors_method_error_code(b)), (int)data.len, (const char *)data.ptr);
    command_string_free(&data);
    wasi_nn_errors_error_drop_own(err);
}

// Reports an edgewasm:llm error (and frees it).
static void llm_fail(const char *what, edgewasm_llm_llm_error_t *err) {
    static const char *names[] = {"not-found", "invalid-argument", "limit-exceeded", "timeout", "runtime"};
    const char *name = err->tag < 5 ? names[err->tag] : "unknown";
    const command_string_t *msg = NULL;
    switch (err->tag) {
    case EDGEWASM_LLM_TYPES_ERROR_NOT_FOUND: msg = &err->val.not_found; break;
    case EDGEWASM_LLM_TYPES_ERROR_INVALID_ARGUMENT: msg = &err->val.invalid_argument; break;
    case EDGEWASM_LLM_TYPES_ERROR_LIMIT_EXCEEDED: msg = &err->val.limit_exceeded; break;
    case EDGEWASM_LLM_TYPES_ERROR_RUNTIME: msg = &err->val.runtime; break;
    default: break;
    }
    if (msg)
        fail("%s: edgewasm:llm error %s: %.*s", what, name, (int)msg->len, (const char *)msg->ptr);
    else
        fail("%s: edgewasm:llm error %s", what, name);
    edgewasm_llm_llm_error_free(err);
}

static void write_out(const uint8_t *p, size_t n) {
    fwrite(p, 1, n, stdout);
    fflush(stdout);
}

static char *cstr(const command_string_t *s) {
    char *c = malloc(s->len + 1);
    if (!c) abort();
    memcpy(c, s->ptr, s->len);
    c[s->len] = 0;
    return c;
}

static bool usage(void) {
    fail("usage: c-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T] [--model NAME] PROMPT...");
    return false;
}

static bool parse_args(struct args *a) {
    command_list_string_t argv;
    wasi_cli_environment_get_arguments(&argv);
    a->mode = MODE_TEXT;
    a->max_tokens = 16;
    a->temp = 0.0f;
    a->model = strdup("default");
    size_t cap = 1, len = 0;
    for (size_t i = 1; i < argv.len; i++) cap += argv.ptr[i].len + 1;
    a->prompt = calloc(cap, 1);
    bool ok = true, rest_words = false;
    for (size_t i = 1; ok && i < argv.len; i++) {
        char *arg = cstr(&argv.ptr[i]);
        bool flag = !rest_words && strncmp(arg, "--", 2) == 0;
        char *value = NULL;
        if (flag && strcmp(arg, "--") != 0) {
            if (i + 1 >= argv.len) {
                fail("%s needs a value", arg);
                ok = usage();
                free(arg);
                break;
            }
            value = cstr(&argv.ptr[++i]);
        }
        if (!flag) {
            if (len) a->prompt[len++] = ' ';
            memcpy(a->prompt + len, arg, strlen(arg));
            len += strlen(arg);
        } else if (strcmp(arg, "--") == 0) {
            rest_words = true;
        } else if (strcmp(arg, "--mode") == 0) {
            if (strcmp(value, "text") == 0) a->mode = MODE_TEXT;
            else if (strcmp(value, "stream") == 0) a->mode = MODE_STREAM;
            else if (strcmp(value, "tokens") == 0) a->mode = MODE_TOKENS;
            else {
                fail("unknown mode `%s`", value);
                ok = usage();
            }
        } else if (strcmp(arg, "--max-tokens") == 0) {
            char *end;
            unsigned long n = strtoul(value, &end, 10);
            if (*value == 0 || *end != 0 || *value == '-' || n > UINT32_MAX) ok = usage();
            a->max_tokens = (uint32_t)n;
        } else if (strcmp(arg, "--temp") == 0) {
            char *end;
            a->temp = strtof(value, &end);
            if (*value == 0 || *end != 0 || !isfinite(a->temp)) ok = usage();
        } else if (strcmp(arg, "--model") == 0) {
            free(a->model);
            a->model = value;
            value = NULL;
        } else {
            fail("unknown flag %s", arg);
            ok = usage();
        }
        free(value);
        free(arg);
    }
    command_list_string_free(&argv);
    if (ok && len == 0) ok = usage();
    return ok;
}

static wasi_nn_tensor_own_tensor_t new_tensor(wasi_nn_tensor_tensor_type_t ty, uint32_t n_elems, const void *bytes, size_t n_bytes) {
    wasi_nn_tensor_tensor_dimensions_t dims = {&n_elems, 1};
    wasi_nn_tensor_tensor_data_t data = {(uint8_t *)bytes, n_bytes};
    return wasi_nn_tensor_constructor_tensor(&dims, ty, &data);
}

// graph.load-by-name + init-execution-context.
static bool nn_context(const struct args *a, wasi_nn_graph_own_graph_t *g, wasi_nn_inference_own_graph_execution_context_t *ctx) {
    command_string_t name;
    command_string_set(&name, a->model);
    wasi_nn_errors_own_error_t err;
    if (!wasi_nn_graph_load_by_name(&name, g, &err)) {
        char what[300];
        snprintf(what, sizeof what, "load-by-name `%s`", a->model);
        nn_fail(what, err);
        return false;
    }
    if (!wasi_nn_graph_method_graph_init_execution_context(wasi_nn_graph_borrow_graph(*g), ctx, &err)) {
        nn_fail("init-execution-context", err);
        wasi_nn_graph_graph_drop_own(*g);
        return false;
    }
    return true;
}

// Finds output NAME in a compute result (or reports its absence).
static wasi_nn_tensor_own_tensor_t *find_output(wasi_nn_inference_list_named_tensor_t *outs, const char *name) {
    for (size_t i = 0; i < outs->len; i++) {
        command_string_t *n = &outs->ptr[i].f0;
        if (n->len == strlen(name) && memcmp(n->ptr, name, n->len) == 0) return &outs->ptr[i].f1;
    }
    fail("compute returned no `%s` output", name);
    return NULL;
}

// wasi:nn text mode: prompt + config in, `text` out.
static bool text_mode(const struct args *a) {
    wasi_nn_graph_own_graph_t g;
    wasi_nn_inference_own_graph_execution_context_t ctx;
    if (!nn_context(a, &g, &ctx)) return false;
    char config[128];
    snprintf(config, sizeof config, "{\"n-predict\": %u, \"temp\": %g}", a->max_tokens, (double)a->temp);
    wasi_nn_inference_named_tensor_t in[2];
    command_string_set(&in[0].f0, "prompt");
    in[0].f1 = new_tensor(WASI_NN_TENSOR_TENSOR_TYPE_U8, strlen(a->prompt), a->prompt, strlen(a->prompt));
    command_string_set(&in[1].f0, "config");
    in[1].f1 = new_tensor(WASI_NN_TENSOR_TENSOR_TYPE_U8, strlen(config), config, strlen(config));
    wasi_nn_inference_list_named_tensor_t inputs = {in, 2}, outputs;
    wasi_nn_errors_own_error_t err;
    // The input tensors' ownership passes to the host.
    bool ok = wasi_nn_inference_method_graph_execution_context_compute(wasi_nn_inference_borrow_graph_execution_context(ctx), &inputs, &outputs, &err);
    if (!ok) {
        nn_fail("compute", err);
    } else {
        wasi_nn_tensor_own_tensor_t *text = find_output(&outputs, "text");
        ok = text != NULL;
        if (ok) {
            wasi_nn_tensor_tensor_data_t data;
            wasi_nn_tensor_method_tensor_data(wasi_nn_tensor_borrow_tensor(*text), &data);
            write_out(data.ptr, data.len);
            write_out((const uint8_t *)"\n", 1);
            wasi_nn_tensor_tensor_data_free(&data);
        }
        wasi_nn_inference_list_named_tensor_free(&outputs);
    }
    wasi_nn_inference_graph_execution_context_drop_own(ctx);
    wasi_nn_graph_graph_drop_own(g);
    return ok;
}

static bool open_model(const struct args *a, edgewasm_llm_llm_own_model_t *m) {
    command_string_t name;
    command_string_set(&name, a->model);
    edgewasm_llm_llm_error_t err;
    if (!edgewasm_llm_llm_static_model_open(&name, m, &err)) {
        char what[300];
        snprintf(what, sizeof what, "model.open `%s`", a->model);
        llm_fail(what, &err);
        return false;
    }
    return true;
}

// edgewasm:llm streaming: raw completion, each chunk printed as it comes.
static bool stream_mode(const struct args *a) {
    edgewasm_llm_llm_own_model_t model;
    if (!open_model(a, &model)) return false;
    edgewasm_llm_llm_own_session_t session;
    edgewasm_llm_llm_error_t err;
    bool ok = edgewasm_llm_llm_static_session_create(edgewasm_llm_llm_borrow_model(model), NULL, &session, &err);
    if (!ok) {
        llm_fail("session.create", &err);
        edgewasm_llm_llm_model_drop_own(model);
        return false;
    }
    edgewasm_llm_llm_sampling_t sampling;
    memset(&sampling, 0, sizeof sampling); // every option unset, no stop strings
    sampling.max_tokens.is_some = true;
    sampling.max_tokens.val = a->max_tokens;
    sampling.temperature.is_some = true;
    sampling.temperature.val = a->temp;
    command_string_t prompt;
    command_string_set(&prompt, a->prompt);
    edgewasm_llm_llm_own_generation_t gen;
    ok = edgewasm_llm_llm_method_session_complete(edgewasm_llm_llm_borrow_session(session), &prompt, &sampling, &gen, &err);
    if (!ok) {
        llm_fail("session.complete", &err);
    } else {
        for (;;) {
            command_option_string_t chunk;
            if (!edgewasm_llm_llm_method_generation_next(edgewasm_llm_llm_borrow_generation(gen), &chunk, &err)) {
                write_out((const uint8_t *)"\n", 1);
                llm_fail("generation.next", &err);
                ok = false;
                break;
            }
            if (!chunk.is_some) break;
            write_out(chunk.val.ptr, chunk.val.len);
            command_option_string_free(&chunk);
        }
        if (ok) write_out((const uint8_t *)"\n", 1);
        edgewasm_llm_llm_generation_drop_own(gen);
    }
    edgewasm_llm_llm_session_drop_own(session);
    edgewasm_llm_llm_model_drop_own(model);
    return ok;
}

// wasi:nn token mode: the guest's own greedy loop over the logits.
static bool tokens_mode(const struct args *a) {
    if (a->temp != 0.0f) {
        fail("--mode tokens decodes greedily only (use --temp 0)");
        return false;
    }
    edgewasm_llm_llm_own_model_t model;
    if (!open_model(a, &model)) return false;
    edgewasm_llm_llm_borrow_model_t m = edgewasm_llm_llm_borrow_model(model);
    // As text mode and session.complete do: BOS added, special tokens parsed.
    command_string_t text;
    command_string_set(&text, a->prompt);
    command_list_u32_t prompt;
    edgewasm_llm_llm_method_model_tokenize(m, &text, true, true, &prompt);

    wasi_nn_graph_own_graph_t g;
    wasi_nn_inference_own_graph_execution_context_t ctx;
    if (!nn_context(a, &g, &ctx)) {
        command_list_u32_free(&prompt);
        edgewasm_llm_llm_model_drop_own(model);
        return false;
    }
    uint32_t *generated = malloc(((size_t)a->max_tokens + 1) * sizeof(uint32_t));
    if (!generated) abort();
    size_t n_gen = 0;
    // Token ids go in as i32 (little-endian, like wasm memory itself).
    const uint32_t *feed = prompt.ptr;
    size_t n_feed = prompt.len;
    bool ok = true;
    while (n_gen < a->max_tokens) {
        wasi_nn_inference_named_tensor_t in;
        command_string_set(&in.f0, "tokens");
        in.f1 = new_tensor(WASI_NN_TENSOR_TENSOR_TYPE_I32, (uint32_t)n_feed, feed, n_feed * 4);
        wasi_nn_inference_list_named_tensor_t inputs = {&in, 1}, outputs;
        wasi_nn_errors_own_error_t err;
        if (!wasi_nn_inference_method_graph_execution_context_compute(wasi_nn_inference_borrow_graph_execution_context(ctx), &inputs, &outputs, &err)) {
            nn_fail("compute", err);
            ok = false;
            break;
        }
        wasi_nn_tensor_own_tensor_t *logits = find_output(&outputs, "logits");
        if (!logits) {
            wasi_nn_inference_list_named_tensor_free(&outputs);
            ok = false;
            break;
        }
        wasi_nn_tensor_tensor_data_t data;
        wasi_nn_tensor_method_tensor_data(wasi_nn_tensor_borrow_tensor(*logits), &data);
        // Greedy: the first maximum (ties go to the lowest id), as the engine does.
        uint32_t best = 0;
        float best_v = -INFINITY;
        for (size_t i = 0; i + 4 <= data.len; i += 4) {
            float v;
            memcpy(&v, data.ptr + i, 4);
            if (v > best_v) {
                best_v = v;
                best = (uint32_t)(i / 4);
            }
        }
        wasi_nn_tensor_tensor_data_free(&data);
        wasi_nn_inference_list_named_tensor_free(&outputs);
        if (edgewasm_llm_llm_method_model_is_eog(m, best)) break;
        generated[n_gen++] = best;
        feed = &generated[n_gen - 1];
        n_feed = 1;
    }
    if (ok) {
        command_list_u32_t ids = {generated, n_gen};
        command_string_t out;
        edgewasm_llm_llm_method_model_detokenize(m, &ids, false, &out);
        write_out(out.ptr, out.len);
        write_out((const uint8_t *)"\n", 1);
        command_string_free(&out);
    }
    free(generated);
    command_list_u32_free(&prompt);
    wasi_nn_inference_graph_execution_context_drop_own(ctx);
    wasi_nn_graph_graph_drop_own(g);
    edgewasm_llm_llm_model_drop_own(model);
    return ok;
}

// wasi:cli/run. Returning false makes `run` return `err`: exit status 1.
bool exports_wasi_cli_run_run(void) {
    struct args a;
    bool ok = parse_args(&a);
    if (ok) {
        switch (a.mode) {
        case MODE_TEXT: ok = text_mode(&a); break;
        case MODE_STREAM: ok = stream_mode(&a); break;
        case MODE_TOKENS: ok = tokens_mode(&a); break;
        }
    }
    free(a.model);
    free(a.prompt);
    fflush(stdout);
    fflush(stderr);
    return ok;
}
