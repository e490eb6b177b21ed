/* client/ctl_output.c — how bitnetctl prints: human sizes and durations, aligned
 * tables like `ollama ps`, and a small streaming JSON writer whose strings are always
 * valid JSON whatever bytes they are given. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define TABLE_GAP 4 /* spaces between table columns */

/* ---- numbers ---- */

const char *ctl_fmt_bytes(int64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
    if (bytes < 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    if (bytes < 1000) {
        snprintf(buf, size, "%" PRId64 " B", bytes);
        return buf;
    }
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000;
        u++;
    }
    /* One decimal below 10 ("1.2 GB"), whole numbers above ("664 KB"); rounding
     * 999.6 up to the next unit keeps "1000 KB" from appearing. */
    if (v >= 999.5 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000;
        u++;
    }
    if (v < 9.95)
        snprintf(buf, size, "%.1f %s", v, units[u]);
    else
        snprintf(buf, size, "%.0f %s", v, units[u]);
    return buf;
}

const char *ctl_fmt_count(int64_t n, char *buf, size_t size)
{
    static const char *const sfx[] = {"", "K", "M", "B", "T"};
    double v = (double)(n < 0 ? -n : n);
    size_t u = 0;
    while (v >= 1000 && u + 1 < sizeof(sfx) / sizeof(sfx[0])) {
        v /= 1000;
        u++;
    }
    if (v >= 999.5 && u + 1 < sizeof(sfx) / sizeof(sfx[0])) {
        v /= 1000;
        u++;
    }
    const char *sign = n < 0 ? "-" : "";
    if (u == 0)
        snprintf(buf, size, "%s%.0f", sign, v);
    else if (v < 9.95)
        snprintf(buf, size, "%s%.1f%s", sign, v, sfx[u]);
    else
        snprintf(buf, size, "%s%.0f%s", sign, v, sfx[u]);
    return buf;
}

const char *ctl_fmt_duration(double s, char *buf, size_t size)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, size, "forever");
        return buf;
    }
    if (s < 1) {
        snprintf(buf, size, "%.0fms", s * 1000);
        if (strcmp(buf, "1000ms") != 0)
            return buf;
        s = 1;
    }
    if (s < 9.95) {
        snprintf(buf, size, "%.1fs", s);
        return buf;
    }
    int64_t t = (int64_t)llround(s);
    if (t < 60)
        snprintf(buf, size, "%" PRId64 "s", t);
    else if (t < 3600)
        snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", t / 3600, (t % 3600) / 60);
    else
        snprintf(buf, size, "%" PRId64 "d%" PRId64 "h", t / 86400, (t % 86400) / 3600);
    return buf;
}

const char *ctl_fmt_relative(double s, bool future, char *buf, size_t size)
{
    const char *suffix = future ? " from now" : " ago";
    if (!isfinite(s)) {
        snprintf(buf, size, "forever");
        return buf;
    }
    if (s < 0)
        s = 0;
    char what[48];
    int64_t t = (int64_t)floor(s);
    if (s < 1)
        snprintf(what, sizeof(what), "less than a second");
    else if (t == 1)
        snprintf(what, sizeof(what), "1 second");
    else if (t < 60)
        snprintf(what, sizeof(what), "%" PRId64 " seconds", t);
    else if (t < 120)
        snprintf(what, sizeof(what), "about a minute");
    else if (t < 3600)
        snprintf(what, sizeof(what), "%" PRId64 " minutes", t / 60);
    else if (t < 7200)
        snprintf(what, sizeof(what), "about an hour");
    else if (t < 2 * 86400)
        snprintf(what, sizeof(what), "%" PRId64 " hours", t / 3600);
    else
        snprintf(what, sizeof(what), "%" PRId64 " days", t / 86400);
    snprintf(buf, size, "%s%s", what, suffix);
    return buf;
}

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one
 * (overlong, surrogate, above U+10FFFF, truncated); *cp gets the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 (always overlong) or 0xf5.. */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

void ctl_json_write_string(FILE *f, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_seq(s + i, n - i, &cp);
        if (len == 0) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        switch (cp) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (cp < 0x20 || cp == 0x7f || cp == 0x2028 || cp == 0x2029)
                fprintf(f, "\\u%04x", (unsigned)cp);
            else
                fwrite(s + i, 1, len, f);
        }
        i += len;
    }
    fputc('"', f);
}

void ctl_json_init(struct ctl_json *j, FILE *f, bool pretty)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
    j->pretty = pretty;
}

static void newline_indent(struct ctl_json *j)
{
    if (!j->pretty)
        return;
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->f);
}

/* Before a value: the comma and indentation that separate it from the previous one. */
static void before_value(struct ctl_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        if (j->has_items[j->depth])
            fputc(',', j->f);
        j->has_items[j->depth] = true;
        newline_indent(j);
    }
}

static void json_open(struct ctl_json *j, char c)
{
    before_value(j);
    fputc(c, j->f);
    if (j->depth + 1 < CTL_JSON_DEPTH_MAX)
        j->depth++;
    j->has_items[j->depth] = false;
}

static void json_close(struct ctl_json *j, char c)
{
    bool had = j->has_items[j->depth];
    if (j->depth > 0)
        j->depth--;
    if (had)
        newline_indent(j);
    fputc(c, j->f);
}

void ctl_json_begin_object(struct ctl_json *j) { json_open(j, '{'); }
void ctl_json_end_object(struct ctl_json *j) { json_close(j, '}'); }
void ctl_json_begin_array(struct ctl_json *j) { json_open(j, '['); }
void ctl_json_end_array(struct ctl_json *j) { json_close(j, ']'); }

void ctl_json_key(struct ctl_json *j, const char *key)
{
    before_value(j);
    ctl_json_write_string(j->f, key, strlen(key));
    fputs(j->pretty ? ": " : ":", j->f);
    j->after_key = true;
}

void ctl_json_string_n(struct ctl_json *j, const char *s, size_t n)
{
    before_value(j);
    ctl_json_write_string(j->f, s, n);
}

void ctl_json_string(struct ctl_json *j, const char *s)
{
    if (!s) {
        ctl_json_null(j);
        return;
    }
    ctl_json_string_n(j, s, strlen(s));
}

void ctl_json_int(struct ctl_json *j, int64_t v)
{
    before_value(j);
    fprintf(j->f, "%" PRId64, v);
}

void ctl_json_number(struct ctl_json *j, double v)
{
    if (!isfinite(v)) {
        ctl_json_null(j);
        return;
    }
    before_value(j);
    /* Shortest text that reads back as the same double, within 17 digits. */
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, j->f);
}

void ctl_json_bool(struct ctl_json *j, bool v)
{
    before_value(j);
    fputs(v ? "true" : "false", j->f);
}

void ctl_json_null(struct ctl_json *j)
{
    before_value(j);
    fputs("null", j->f);
}

void ctl_json_finish(struct ctl_json *j)
{
    fputc('\n', j->f);
    fflush(j->f);
}

/* ---- tables ---- */

size_t ctl_text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80 && *p >= 0x20 && *p != 0x7f)
            w++;
    return w;
}

static int table_push(struct ctl_table *t, const char *const *cells)
{
    if ((t->nrows + 1) * t->ncols > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : t->ncols * 8;
        while (cap < (t->nrows + 1) * t->ncols)
            cap *= 2;
        char **c = realloc(t->cells, cap * sizeof(*c));
        if (!c)
            return -1;
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (!row[i]) {
            while (i--)
                free(row[i]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

int ctl_table_init(struct ctl_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    return table_push(t, headers);
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
    return table_push(t, cells);
}

void ctl_table_print(const struct ctl_table *t, FILE *f)
{
    size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof(*w));
    if (!w)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t cw = ctl_text_width(t->cells[r * t->ncols + c]);
            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            fputs(cell, f);
            if (c + 1 < t->ncols)
                fprintf(f, "%*s", (int)(w[c] - ctl_text_width(cell) + TABLE_GAP), "");
        }
        fputc('\n', f);
    }
    free(w);
}

void ctl_table_free(struct ctl_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
