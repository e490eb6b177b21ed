/* contrib/bitnet-gguf-dump.c — print a GGUF file's header, metadata and tensor table.
 *
 *   bitnet-gguf-dump [-n N] FILE
 *
 * Arrays show their first N elements (default 8; 0 = all), strings their first
 * 120 bytes, escaped.  One line per tensor: index, name, type, shape (ne0 first),
 * absolute file offset, bytes.  Exit status 1 when the file does not parse.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

#define DEFAULT_ARRAY_SHOWN 8
#define STRING_SHOWN_BYTES 120

static const char *vtype_name(enum bn_gguf_vtype t)
{
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* A string with quotes, C escapes for control bytes and a length cap. */
static void print_str(struct bn_str s)
{
    uint64_t shown = s.len > STRING_SHOWN_BYTES ? STRING_SHOWN_BYTES : s.len;
    putchar('"');
    for (uint64_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (shown < s.len)
        printf("...(%" PRIu64 " bytes)", s.len);
}

static void print_arr(const struct bn_gguf_arr *a, uint64_t max_shown)
{
    printf("%s[%" PRIu64 "] [", vtype_name(a->type), a->n);
    uint64_t shown = max_shown && a->n > max_shown ? max_shown : a->n;
    for (uint64_t i = 0; i < shown; i++) {
        if (i)
            fputs(", ", stdout);
        switch (a->type) {
        case BN_GGUF_STRING:
            print_str(bn_gguf_arr_str(a, i));
            break;
        case BN_GGUF_FLOAT32:
        case BN_GGUF_FLOAT64:
            printf("%g", bn_gguf_arr_float(a, i));
            break;
        case BN_GGUF_BOOL:
            fputs(bn_gguf_arr_int(a, i) ? "true" : "false", stdout);
            break;
        case BN_GGUF_UINT64:
            printf("%" PRIu64, (uint64_t)bn_gguf_arr_int(a, i));
            break;
        case BN_GGUF_ARRAY: {
            struct bn_gguf_arr sub;
            if (bn_gguf_arr_sub(a, i, &sub) == 0)
                print_arr(&sub, max_shown);
            break;
        }
        default:
            printf("%" PRId64, bn_gguf_arr_int(a, i));
        }
    }
    if (shown < a->n)
        printf(", ... %" PRIu64 " more", a->n - shown);
    putchar(']');
}

static void print_value(const struct bn_gguf *g, int64_t i, uint64_t max_shown)
{
    struct bn_str k = bn_gguf_key(g, i);
    char key[512];
    snprintf(key, sizeof key, "%.*s", (int)(k.len < 500 ? k.len : 500), k.ptr);
    enum bn_gguf_vtype t = bn_gguf_kv_type(g, i);
    printf("  %-44s %-6s ", key, t == BN_GGUF_ARRAY ? "array" : vtype_name(t));
    switch (t) {
    case BN_GGUF_STRING: {
        struct bn_str s;
        bn_gguf_get_str(g, key, &s, NULL);
        print_str(s);
        break;
    }
    case BN_GGUF_ARRAY: {
        struct bn_gguf_arr a;
        bn_gguf_get_arr(g, key, &a, NULL);
        print_arr(&a, max_shown);
        break;
    }
    case BN_GGUF_FLOAT32:
    case BN_GGUF_FLOAT64: {
        float f;
        bn_gguf_get_f32(g, key, &f, NULL);
        printf("%g", f);
        break;
    }
    case BN_GGUF_BOOL: {
        bool b;
        bn_gguf_get_bool(g, key, &b, NULL);
        fputs(b ? "true" : "false", stdout);
        break;
    }
    default: {
        int64_t v;
        uint64_t u;
        if (bn_gguf_get_i64(g, key, &v, NULL) == 0)
            printf("%" PRId64, v);
        else if (bn_gguf_get_u64(g, key, &u, NULL) == 0)
            printf("%" PRIu64, u);
    }
    }
    putchar('\n');
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bitnet-gguf-dump [-n N] FILE\n"
               "Print a GGUF file's header, metadata (arrays abbreviated to N elements,\n"
               "default %d, 0 = all) and one line per tensor: name, type, shape (ne0 first),\n"
               "absolute file offset, bytes.\n",
            DEFAULT_ARRAY_SHOWN);
}

int main(int argc, char **argv)
{
    uint64_t max_shown = DEFAULT_ARRAY_SHOWN;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            char *end;
            max_shown = strtoull(argv[++i], &end, 10);
            if (*end || argv[i][0] == '-') {
                fprintf(stderr, "bitnet-gguf-dump: -n wants a count, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "bitnet-gguf-dump: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "bitnet-gguf-dump: one FILE only ('%s' is extra)\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    struct bn_err err;
    struct bn_mapped_file m;
    struct bn_gguf *g;
    if (bn_map_file(path, &m, &err) || bn_gguf_open(&g, m.base, m.size, path, 0, &err)) {
        fprintf(stderr, "bitnet-gguf-dump: %s\n", err.msg);
        return 1;
    }
    printf("%s: GGUF v%" PRIu32 ", %" PRIu64 " bytes, %" PRId64 " keys, %" PRId64
           " tensors, alignment %" PRIu64 ", data at offset %" PRIu64 "\n",
           path, bn_gguf_version(g), m.size, bn_gguf_n_kv(g), bn_gguf_n_tensors(g),
           bn_gguf_alignment(g), bn_gguf_data_offset(g));
    printf("metadata:\n");
    for (int64_t i = 0; i < bn_gguf_n_kv(g); i++)
        print_value(g, i, max_shown);

    printf("tensors:\n");
    uint64_t total = 0;
    uint64_t per_type[BN_TYPE_COUNT] = {0}, bytes_type[BN_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor(g, i);
        char shape[128];
        int n = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%" PRId64, d ? ", " : "", t->ne[d]);
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %4" PRId64 " %-32.*s %-6s %-16s offset %11" PRIu64 " bytes %10" PRIu64 "\n", i,
               (int)t->name.len, t->name.ptr, bn_type_name(t->type), shape,
               bn_gguf_data_offset(g) + t->offset, t->bytes);
        total += t->bytes;
        per_type[t->type]++;
        bytes_type[t->type] += t->bytes;
    }
    printf("%" PRId64 " tensors, %" PRIu64 " bytes of tensor data (%.1f MB):", bn_gguf_n_tensors(g),
           total, (double)total / (1 << 20));
    for (int t = 0; t < BN_TYPE_COUNT; t++)
        if (per_type[t])
            printf(" %s x%" PRIu64 " (%.1f MB)", bn_type_name((enum bn_type)t), per_type[t],
                   (double)bytes_type[t] / (1 << 20));
    putchar('\n');
    bn_gguf_close(g);
    bn_unmap_file(&m);
    return 0;
}
