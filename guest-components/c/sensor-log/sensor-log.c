// c-sensor-log.wasm: finds anomalies in a sensor log (deterministic C) and
// has the local model explain them in plain language (edgewasm:llm
// session.chat, streamed). World edgewasm:llm/command, bindings in ../gen.
//
//   c-sensor-log.wasm [--z Z] [--range SENSOR=MIN:MAX]... [--no-explain]
//       [--max-tokens N] [--temp T] [--model NAME] FILE.csv
//
// The file (given to the guest with `edgewasm run --dir HOST::GUEST`) is a
// CSV log with the header `timestamp,sensor,value` and one reading per line
// (no quoting; blank lines and lines starting with `#` are skipped). A
// reading is an anomaly when
//   - its sensor has a --range and the value lies outside it, or
//   - its robust z-score |0.6745 (x - median) / MAD| over all readings of
//     the same sensor exceeds --z (default 3.5; Iglewicz and Hoaglin's
//     modified z-score, which a single spike cannot mask the way it masks
//     a mean/stddev z-score in a short log). A sensor whose MAD is 0 uses
//     the mean absolute deviation (x - median) / (1.2533 * MeanAD) instead.
//
// Prints a summary per sensor and the anomaly list, then (unless
// --no-explain, or when nothing is flagged) streams the model's explanation.
// A missing, unreadable or malformed file is an error on stderr (with the
// line number) and exit status 1.

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "command.h"

#define MAX_LINE 4096

struct reading {
    size_t line;
    char *timestamp;
    size_t sensor; // index into sensors
    double value;
    // filled by the analysis
    bool flagged;
    char reason[160];
};

struct range {
    char *sensor;
    double min, max;
};

struct sensor {
    char *name;
    size_t count;
    double median, mad, min, max;
};

struct args {
    char *path;
    double z;
    struct range *ranges;
    size_t n_ranges;
    bool explain;
    bool has_max_tokens, has_temp;
    uint32_t max_tokens;
    float temp;
    char *model;
};

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("sensor-log: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) abort();
    return p;
}

static char *xstrndup(const char *s, size_t n) {
    char *c = xmalloc(n + 1);
    memcpy(c, s, n);
    c[n] = 0;
    return c;
}

static char *cstr(const command_string_t *s) { return xstrndup((const char *)s->ptr, s->len); }

static bool usage(void) {
    fail("usage: c-sensor-log.wasm [--z Z] [--range SENSOR=MIN:MAX]... [--no-explain] [--max-tokens N] [--temp T] [--model NAME] FILE.csv");
    return false;
}

// Whole-string number parse.
static bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return *s != 0 && *end == 0 && errno == 0 && isfinite(*out);
}

static bool parse_args(struct args *a) {
    command_list_string_t argv;
    wasi_cli_environment_get_arguments(&argv);
    memset(a, 0, sizeof *a);
    a->z = 3.5;
    a->explain = true;
    a->model = strdup("default");
    bool ok = true;
    for (size_t i = 1; ok && i < argv.len; i++) {
        char *arg = cstr(&argv.ptr[i]);
        if (strcmp(arg, "--no-explain") == 0) {
            a->explain = false;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            ok = usage();
        } else if (strncmp(arg, "--", 2) == 0) {
            if (i + 1 >= argv.len) {
                fail("%s needs a value", arg);
                ok = usage();
                free(arg);
                break;
            }
            char *value = cstr(&argv.ptr[++i]);
            double d;
            if (strcmp(arg, "--z") == 0) {
                if (!parse_double(value, &a->z) || a->z <= 0) {
                    fail("--z needs a positive number, got `%s`", value);
                    ok = false;
                }
            } else if (strcmp(arg, "--range") == 0) {
                // SENSOR=MIN:MAX
                char *orig = strdup(value);
                char *eq = strrchr(value, '='), *colon = eq ? strchr(eq, ':') : NULL;
                struct range r;
                bool good = eq && colon && eq != value;
                if (good) {
                    *eq = 0;
                    *colon = 0;
                    good = parse_double(eq + 1, &r.min) && parse_double(colon + 1, &r.max) && r.min <= r.max;
                }
                if (!good) {
                    fail("--range needs SENSOR=MIN:MAX with MIN <= MAX, got `%s`", orig);
                    ok = false;
                } else {
                    r.sensor = strdup(value);
                    a->ranges = xrealloc(a->ranges, (a->n_ranges + 1) * sizeof *a->ranges);
                    a->ranges[a->n_ranges++] = r;
                }
                free(orig);
            } else if (strcmp(arg, "--max-tokens") == 0) {
                if (!parse_double(value, &d) || d < 1 || d > UINT32_MAX || d != floor(d)) {
                    fail("--max-tokens needs a positive integer, got `%s`", value);
                    ok = false;
                }
                a->has_max_tokens = true;
                a->max_tokens = (uint32_t)d;
            } else if (strcmp(arg, "--temp") == 0) {
                if (!parse_double(value, &d) || d < 0) {
                    fail("--temp needs a number >= 0, got `%s`", value);
                    ok = false;
                }
                a->has_temp = true;
                a->temp = (float)d;
            } else if (strcmp(arg, "--model") == 0) {
                free(a->model);
                a->model = value;
                value = NULL;
            } else {
                fail("unknown flag %s", arg);
                ok = usage();
            }
            free(value);
        } else if (a->path) {
            fail("one log file only (got `%s` and `%s`)", a->path, arg);
            ok = usage();
        } else {
            a->path = arg;
            arg = NULL;
        }
        free(arg);
    }
    command_list_string_free(&argv);
    if (ok && !a->path) {
        fail("no log file given");
        ok = usage();
    }
    return ok;
}

// ---------------------------------------------------------------- parsing

struct log {
    struct reading *rows;
    size_t n_rows;
    struct sensor *sensors;
    size_t n_sensors;
};

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

static size_t sensor_index(struct log *log, const char *name) {
    for (size_t i = 0; i < log->n_sensors; i++)
        if (strcmp(log->sensors[i].name, name) == 0) return i;
    log->sensors = xrealloc(log->sensors, (log->n_sensors + 1) * sizeof *log->sensors);
    memset(&log->sensors[log->n_sensors], 0, sizeof *log->sensors);
    log->sensors[log->n_sensors].name = strdup(name);
    return log->n_sensors++;
}

// Splits a CSV line into exactly 3 fields (in place); false if the count differs.
static bool split3(char *line, char *fields[3]) {
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (n == 3) return false;
        fields[n++] = trim(p);
        if (!comma) break;
        *comma = 0;
        p = comma + 1;
    }
    return n == 3;
}

static bool read_log(const char *path, struct log *log) {
    memset(log, 0, sizeof *log);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fail("%s: is a directory, not a log file", path);
        return false;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            fail("%s: no such file (is its folder given to the guest with `edgewasm run --dir HOST::GUEST`?)", path);
        else if (errno == ENOTCAPABLE)
            fail("%s: outside the folders given to the guest (`edgewasm run --dir HOST::GUEST`)", path);
        else
            fail("%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    char buf[MAX_LINE];
    size_t line = 0;
    bool header = false, ok = true;
    while (ok && fgets(buf, sizeof buf, f)) {
        line++;
        size_t len = strlen(buf);
        if (len == sizeof buf - 1 && buf[len - 1] != '\n' && !feof(f)) {
            fail("%s:%zu: line longer than %d bytes", path, line, MAX_LINE - 2);
            ok = false;
            break;
        }
        if (memchr(buf, 0, len) != NULL || strlen(buf) != len) {
            fail("%s:%zu: not a text file (NUL byte)", path, line);
            ok = false;
            break;
        }
        char *s = trim(buf);
        if (*s == 0 || *s == '#') continue;
        char *fields[3];
        char copy[MAX_LINE];
        snprintf(copy, sizeof copy, "%s", s);
        if (!split3(s, fields)) {
            fail("%s:%zu: expected 3 comma-separated fields (timestamp,sensor,value), got `%s`", path, line, copy);
            ok = false;
            break;
        }
        if (!header) {
            if (strcmp(fields[0], "timestamp") != 0 || strcmp(fields[1], "sensor") != 0 || strcmp(fields[2], "value") != 0) {
                fail("%s:%zu: expected the header `timestamp,sensor,value`, got `%s`", path, line, copy);
                ok = false;
            }
            header = true;
            continue;
        }
        double v;
        if (*fields[0] == 0 || *fields[1] == 0) {
            fail("%s:%zu: empty timestamp or sensor in `%s`", path, line, copy);
            ok = false;
        } else if (!parse_double(fields[2], &v)) {
            fail("%s:%zu: value `%s` is not a number", path, line, fields[2]);
            ok = false;
        } else {
            log->rows = xrealloc(log->rows, (log->n_rows + 1) * sizeof *log->rows);
            struct reading *r = &log->rows[log->n_rows++];
            memset(r, 0, sizeof *r);
            r->line = line;
            r->timestamp = strdup(fields[0]);
            r->sensor = sensor_index(log, fields[1]);
            r->value = v;
        }
    }
    if (ok && ferror(f)) {
        fail("%s: read error: %s", path, strerror(errno));
        ok = false;
    }
    fclose(f);
    if (ok && !header) {
        fail("%s: empty file (expected the header `timestamp,sensor,value` and readings)", path);
        ok = false;
    } else if (ok && log->n_rows == 0) {
        fail("%s: no readings after the header", path);
        ok = false;
    }
    return ok;
}

// --------------------------------------------------------------- analysis

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Flags anomalies; returns how many.
static size_t analyze(struct log *log, const struct args *a) {
    double *vals = xmalloc(log->n_rows * sizeof *vals);
    size_t flagged = 0;
    for (size_t s = 0; s < log->n_sensors; s++) {
        struct sensor *sn = &log->sensors[s];
        size_t n = 0;
        for (size_t i = 0; i < log->n_rows; i++)
            if (log->rows[i].sensor == s) vals[n++] = log->rows[i].value;
        sn->count = n;
        sn->median = median_of(vals, n);
        sn->min = vals[0];
        sn->max = vals[n - 1];
        double mean_ad = 0;
        for (size_t i = 0; i < n; i++) {
            vals[i] = fabs(vals[i] - sn->median);
            mean_ad += vals[i];
        }
        mean_ad /= (double)n;
        sn->mad = median_of(vals, n);
        const struct range *rg = NULL;
        for (size_t k = 0; k < a->n_ranges; k++)
            if (strcmp(a->ranges[k].sensor, sn->name) == 0) rg = &a->ranges[k];
        for (size_t i = 0; i < log->n_rows; i++) {
            struct reading *r = &log->rows[i];
            if (r->sensor != s) continue;
            double dev = r->value - sn->median;
            double z = sn->mad > 0 ? 0.6745 * dev / sn->mad : mean_ad > 0 ? dev / (1.2533 * mean_ad) : 0;
            int len = 0;
            if (rg && (r->value < rg->min || r->value > rg->max))
                len += snprintf(r->reason + len, sizeof r->reason - len, "outside the allowed range %g..%g; ", rg->min, rg->max);
            if (n >= 3 && fabs(z) > a->z)
                len += snprintf(r->reason + len, sizeof r->reason - len, "robust z-score %+.1f (typical value %g); ", z, sn->median);
            if (len > 0) {
                r->reason[len - 2] = 0; // drop the last "; "
                r->flagged = true;
                flagged++;
            }
        }
    }
    free(vals);
    return flagged;
}

// ------------------------------------------------------------ edgewasm:llm

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

// A growable string.
struct buf {
    char *p;
    size_t len, cap;
};

static void appendf(struct buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, n + 1, fmt, ap);
    va_end(ap);
    b->len += n;
}

// Streams the model's explanation of the flagged readings.
static bool explain(const struct log *log, const struct args *a) {
    struct buf prompt = {0};
    appendf(&prompt, "An automatic check of a machine's sensor log flagged these readings as anomalies:\n");
    for (size_t i = 0; i < log->n_rows; i++) {
        const struct reading *r = &log->rows[i];
        if (!r->flagged) continue;
        const struct sensor *sn = &log->sensors[r->sensor];
        appendf(&prompt, "- at %s, sensor %s read %g, %s its usual value of about %g\n", r->timestamp, sn->name, r->value,
                r->value > sn->median ? "far above" : "far below", sn->median);
    }
    appendf(&prompt, "Explain in plain language what these readings may mean and what a technician should check first.");

    command_string_t name;
    command_string_set(&name, a->model);
    edgewasm_llm_llm_own_model_t model;
    edgewasm_llm_llm_error_t err;
    if (!edgewasm_llm_llm_static_model_open(&name, &model, &err)) {
        char what[300];
        snprintf(what, sizeof what, "model.open `%s`", a->model);
        llm_fail(what, &err);
        free(prompt.p);
        return false;
    }
    edgewasm_llm_llm_model_info_t info;
    edgewasm_llm_llm_method_model_info(edgewasm_llm_llm_borrow_model(model), &info);
    const command_string_t *shown = info.display_name.is_some ? &info.display_name.val : &info.name;
    printf("\nExplanation (%.*s):\n", (int)shown->len, (const char *)shown->ptr);
    fflush(stdout);
    edgewasm_llm_llm_model_info_free(&info);

    edgewasm_llm_llm_own_session_t session;
    bool ok = edgewasm_llm_llm_static_session_create(edgewasm_llm_llm_borrow_model(model), NULL, &session, &err);
    if (!ok) {
        llm_fail("session.create", &err);
        edgewasm_llm_llm_model_drop_own(model);
        free(prompt.p);
        return false;
    }
    command_string_t system;
    command_string_set(&system, "You are a maintenance assistant for industrial equipment. Answer briefly.");
    edgewasm_llm_llm_method_session_set_system(edgewasm_llm_llm_borrow_session(session), &system);

    edgewasm_llm_llm_sampling_t sampling;
    memset(&sampling, 0, sizeof sampling); // unset options take the host defaults; no stop strings
    sampling.max_tokens.is_some = true;
    sampling.max_tokens.val = a->has_max_tokens ? a->max_tokens : 192;
    sampling.temperature.is_some = a->has_temp;
    sampling.temperature.val = a->temp;
    command_string_t content = {(uint8_t *)prompt.p, prompt.len};
    edgewasm_llm_llm_own_generation_t gen;
    ok = edgewasm_llm_llm_method_session_chat(edgewasm_llm_llm_borrow_session(session), &content, &sampling, &gen, &err);
    if (!ok) {
        llm_fail("session.chat", &err);
    } else {
        size_t printed = 0;
        for (;;) {
            command_option_string_t chunk;
            if (!edgewasm_llm_llm_method_generation_next(edgewasm_llm_llm_borrow_generation(gen), &chunk, &err)) {
                fputc('\n', stdout);
                fflush(stdout);
                llm_fail("generation.next", &err);
                ok = false;
                break;
            }
            if (!chunk.is_some) break;
            fwrite(chunk.val.ptr, 1, chunk.val.len, stdout);
            fflush(stdout);
            printed += chunk.val.len;
            command_option_string_free(&chunk);
        }
        if (ok) {
            fputc('\n', stdout);
            fflush(stdout);
            if (printed == 0) {
                fail("the model returned no text");
                ok = false;
            }
        }
        edgewasm_llm_llm_generation_drop_own(gen);
    }
    edgewasm_llm_llm_session_drop_own(session);
    edgewasm_llm_llm_model_drop_own(model);
    free(prompt.p);
    return ok;
}

// ------------------------------------------------------------------- main

static bool run(const struct args *a) {
    struct log log;
    if (!read_log(a->path, &log)) return false;
    for (size_t k = 0; k < a->n_ranges; k++) {
        bool known = false;
        for (size_t s = 0; s < log.n_sensors; s++) known |= strcmp(log.sensors[s].name, a->ranges[k].sensor) == 0;
        if (!known) fprintf(stderr, "sensor-log: warning: --range for `%s`, which the log does not contain\n", a->ranges[k].sensor);
    }
    size_t flagged = analyze(&log, a);
    printf("%s: %zu readings of %zu sensors\n", a->path, log.n_rows, log.n_sensors);
    int width = 0;
    for (size_t s = 0; s < log.n_sensors; s++) width = strlen(log.sensors[s].name) > (size_t)width ? (int)strlen(log.sensors[s].name) : width;
    for (size_t s = 0; s < log.n_sensors; s++) {
        const struct sensor *sn = &log.sensors[s];
        printf("  %-*s %3zu readings, median %g, min %g, max %g\n", width, sn->name, sn->count, sn->median, sn->min, sn->max);
    }
    bool ok = true;
    if (flagged == 0) {
        printf("\nNo anomalies (robust z-score limit %g).\n", a->z);
    } else {
        printf("\nAnomalies (%zu):\n", flagged);
        for (size_t i = 0; i < log.n_rows; i++) {
            const struct reading *r = &log.rows[i];
            if (r->flagged) printf("  line %zu: %s %s = %g: %s\n", r->line, r->timestamp, log.sensors[r->sensor].name, r->value, r->reason);
        }
        fflush(stdout);
        if (a->explain) ok = explain(&log, a);
    }
    fflush(stdout);
    for (size_t i = 0; i < log.n_rows; i++) free(log.rows[i].timestamp);
    for (size_t s = 0; s < log.n_sensors; s++) free(log.sensors[s].name);
    free(log.rows);
    free(log.sensors);
    return ok;
}

// wasi:cli/run. Returning false makes `run` return `err`: exit status 1.
bool exports_wasi_cli_run_run(void) {
    struct args a;
    bool ok = parse_args(&a) && run(&a);
    free(a.path);
    free(a.model);
    for (size_t k = 0; k < a.n_ranges; k++) free(a.ranges[k].sensor);
    free(a.ranges);
    fflush(stdout);
    fflush(stderr);
    return ok;
}
