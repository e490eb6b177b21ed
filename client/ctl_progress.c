/* client/ctl_progress.c — the load progress bar: one line on a terminal, redrawn in
 * place from the daemon's `progress` notifications (bytes read / total). */
#include "config.h"

#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_PROGRESS_REDRAW_S 0.1  /* at most 10 redraws a second */
#define CTL_PROGRESS_WIDTH_DEFAULT 80 /* columns when the terminal does not say */
#define CTL_PROGRESS_BAR_MIN 10    /* narrowest bar worth drawing, in cells */
#define CTL_PROGRESS_BAR_MAX 40

double ctl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int term_width(FILE *f)
{
    struct winsize ws;
    int fd = fileno(f);
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return CTL_PROGRESS_WIDTH_DEFAULT;
}

void ctl_progress_render(char *buf, size_t size, const char *label, int64_t done, int64_t total,
                         double rate, int width)
{
    if (size == 0)
        return;
    if (total < 0)
        total = 0;
    if (done < 0)
        done = 0;
    if (total > 0 && done > total)
        done = total;
    int pct = total > 0 ? (int)((double)done * 100.0 / (double)total) : 0;
    char d[24], t[24], r[32] = "";
    ctl_fmt_bytes(done, d, sizeof(d));
    ctl_fmt_bytes(total, t, sizeof(t));
    if (rate >= 0) {
        char rb[24];
        snprintf(r, sizeof(r), " %s/s", ctl_fmt_bytes((int64_t)rate, rb, sizeof(rb)));
    }
    char tail[96];
    snprintf(tail, sizeof(tail), " %s/%s%s", d, t, r);
    char head[128];
    snprintf(head, sizeof(head), "%s %3d%% ", label, pct);
    /* The bar takes what is left of the line, within [BAR_MIN, BAR_MAX]; a terminal
     * too narrow for it gets the text alone. */
    int bar = width - 1 - (int)ctl_text_width(head) - (int)ctl_text_width(tail) - 2;
    if (bar > CTL_PROGRESS_BAR_MAX)
        bar = CTL_PROGRESS_BAR_MAX;
    if (bar < CTL_PROGRESS_BAR_MIN) {
        snprintf(buf, size, "%s%s", head, tail + 1);
        return;
    }
    char cells[CTL_PROGRESS_BAR_MAX + 1];
    int filled = total > 0 ? (int)((double)done * bar / (double)total) : 0;
    for (int i = 0; i < bar; i++)
        cells[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    if (filled >= bar && bar > 0)
        cells[bar - 1] = '=';
    cells[bar] = 0;
    snprintf(buf, size, "%s[%s]%s", head, cells, tail);
}

void ctl_progress_start(struct ctl_progress *p, FILE *f, const char *label)
{
    memset(p, 0, sizeof(*p));
    p->f = f;
    snprintf(p->label, sizeof(p->label), "%s", label);
    p->t0 = ctl_now();
    p->last_draw = -1;
}

void ctl_progress_update(struct ctl_progress *p, int64_t done, int64_t total)
{
    if (!p->f)
        return;
    double now = ctl_now();
    bool last = total > 0 && done >= total;
    if (!last && p->last_draw >= 0 && now - p->last_draw < CTL_PROGRESS_REDRAW_S)
        return;
    p->last_draw = now;
    double el = now - p->t0;
    double rate = el > 0.05 ? (double)done / el : -1; /* the first 50 ms say little */
    char line[512];
    int width = term_width(p->f);
    ctl_progress_render(line, sizeof(line), p->label, done, total, rate, width);
    fprintf(p->f, "\r%s\033[K", line); /* ESC[K: clear what a longer line left */
    fflush(p->f);
    p->drawn = true;
}

void ctl_progress_finish(struct ctl_progress *p)
{
    if (p->f && p->drawn) {
        fputs("\r\033[K", p->f);
        fflush(p->f);
    }
    p->drawn = false;
}
