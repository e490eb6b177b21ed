/* engine/sampler.c — choosing the next token from a row of logits.
 *
 * Pipeline per call (the order is part of the contract, see bitnet.h):
 *   penalties (repetition / presence / frequency over the last N accepted tokens)
 *   -> temperature 0: argmax, done
 *   -> candidates: tokens whose probability is at least 2^-64 of the most likely one
 *      (the others cannot be drawn with a 53-bit uniform, so they are skipped)
 *   -> top-k (one pass keeping a k-element heap)
 *   -> top-p (quickselect on the probability mass, O(n): nothing is ever sorted)
 *   -> min-p (a logit threshold: p_i >= min_p * p_max)
 *   -> one draw from the renormalised weights with the sampler's own PRNG.
 * Everything is computed in a fixed order from the logits and the PRNG state only,
 * so results do not depend on threads or timing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

/* ln(2^-64): tokens further below the best one than this (in units of the
 * temperature) have probability < 2^-64 relative to it. */
#define LOG_NEGLIGIBLE (-44.3614195558365)

struct cand {
    float logit; /* penalised logit */
    float w;     /* exp((logit - max) / temperature), in (2^-64, 1] */
    int32_t id;
};

struct bn_sampler {
    struct bn_sampler_params p;
    int32_t n_vocab;
    uint64_t rng[4]; /* xoshiro256** state */
    /* Penalty window: the last p.penalty_last_n accepted ids (ring), and how often
     * each id occurs in it (count[n_vocab], NULL when penalties are off). */
    int32_t *ring;
    size_t ring_len, ring_pos;
    uint32_t *count;
    struct cand *cand; /* [n_vocab] scratch */
};

/* ---- PRNG: xoshiro256** (Blackman & Vigna), seeded by splitmix64 ---- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double uniform01(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53; }

static void seed_rng(struct bn_sampler *s)
{
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

/* ---- parameters ---- */
void bn_sampler_params_default(struct bn_sampler_params *p)
{
    *p = (struct bn_sampler_params){
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0,
    };
}

int bn_sampler_params_check(const struct bn_sampler_params *p, struct bn_err *err)
{
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return bn_errf(err, "sampler: temperature = %g must be a finite number >= 0 (0 = greedy)",
                       (double)p->temperature);
    if (p->top_k < 0)
        return bn_errf(err, "sampler: top_k = %d must be >= 0 (0 = off)", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return bn_errf(err, "sampler: top_p = %g must be in (0, 1] (1 = off)", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return bn_errf(err, "sampler: min_p = %g must be in [0, 1] (0 = off)", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return bn_errf(err, "sampler: repeat_penalty = %g must be a finite number > 0 (1 = off)",
                       (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty))
        return bn_errf(err, "sampler: presence_penalty = %g must be finite (0 = off)", (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return bn_errf(err, "sampler: frequency_penalty = %g must be finite (0 = off)",
                       (double)p->frequency_penalty);
    if (p->penalty_last_n < 0 || p->penalty_last_n > BN_SAMPLER_MAX_PENALTY_WINDOW)
        return bn_errf(err, "sampler: penalty_last_n = %d must be in [0, %d] (BN_SAMPLER_MAX_PENALTY_WINDOW)",
                       p->penalty_last_n, BN_SAMPLER_MAX_PENALTY_WINDOW);
    return 0;
}

static bool penalties_on(const struct bn_sampler_params *p)
{
    return p->penalty_last_n > 0 &&
           (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f);
}

struct bn_sampler *bn_sampler_new(const struct bn_sampler_params *p, int32_t n_vocab, struct bn_err *err)
{
    if (bn_sampler_params_check(p, err))
        return NULL;
    if (n_vocab <= 0 || n_vocab > BN_VOCAB_MAX_TOKENS) {
        bn_errf(err, "sampler: n_vocab = %d must be in [1, %d]", n_vocab, BN_VOCAB_MAX_TOKENS);
        return NULL;
    }
    struct bn_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        bn_errf(err, "sampler: out of memory");
        return NULL;
    }
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    bool ok = s->cand != NULL;
    if (ok && penalties_on(p)) {
        s->ring = malloc((size_t)p->penalty_last_n * sizeof *s->ring);
        s->count = calloc((size_t)n_vocab, sizeof *s->count);
        ok = s->ring && s->count;
    }
    if (!ok) {
        bn_sampler_free(s);
        bn_errf(err, "sampler: out of memory for %d logits", n_vocab);
        return NULL;
    }
    seed_rng(s);
    return s;
}

void bn_sampler_free(struct bn_sampler *s)
{
    if (!s)
        return;
    free(s->ring);
    free(s->count);
    free(s->cand);
    free(s);
}

void bn_sampler_accept(struct bn_sampler *s, int32_t id)
{
    if (!s->count || id < 0 || id >= s->n_vocab)
        return;
    size_t cap = (size_t)s->p.penalty_last_n;
    if (s->ring_len == cap) { /* window full: the oldest id leaves it */
        s->count[s->ring[s->ring_pos]]--;
        s->ring_len--;
    }
    s->ring[s->ring_pos] = id;
    s->ring_pos = (s->ring_pos + 1) % cap;
    s->ring_len++;
    s->count[id]++;
}

void bn_sampler_reset(struct bn_sampler *s)
{
    if (s->count)
        memset(s->count, 0, (size_t)s->n_vocab * sizeof *s->count);
    s->ring_len = s->ring_pos = 0;
    seed_rng(s);
}

/* The logit of id after penalties; NaN counts as -inf, +inf as the largest float. */
static float value(const struct bn_sampler *s, const float *logits, int32_t id)
{
    float l = logits[id];
    if (isnan(l))
        return -INFINITY;
    if (l == INFINITY)
        l = 3.4028235e38f;
    if (s->count && s->count[id]) {
        uint32_t c = s->count[id];
        l = l > 0.0f ? l / s->p.repeat_penalty : l * s->p.repeat_penalty;
        l -= (float)c * s->p.frequency_penalty + s->p.presence_penalty;
    }
    return l;
}

/* Candidate order: higher logit first, then lower id (a strict total order). */
static bool cand_before(const struct cand *a, const struct cand *b)
{
    return a->logit != b->logit ? a->logit > b->logit : a->id < b->id;
}

static void swap_cand(struct cand *a, struct cand *b)
{
    struct cand t = *a;
    *a = *b;
    *b = t;
}

/* Partition c[lo..hi) around the median of three pseudo-randomly placed elements
 * (a fixed LCG: random enough that no input order makes quickselect quadratic, and
 * the same for the same input, so results stay reproducible).  Afterwards c[lo..p)
 * come before c[p] in cand order and c[p+1..hi) after it.  Returns p. */
static size_t partition(struct cand *c, size_t lo, size_t hi, uint64_t *lcg)
{
    size_t at[3];
    for (int i = 0; i < 3; i++) {
        *lcg = *lcg * 6364136223846793005ull + 1442695040888963407ull;
        at[i] = lo + (size_t)((*lcg >> 33) % (hi - lo));
    }
    /* median of the three to hi - 1 */
    size_t a = at[0], b = at[1], m = at[2];
    if (cand_before(&c[b], &c[a])) {
        size_t t = a;
        a = b;
        b = t;
    } /* now a before b */
    if (cand_before(&c[m], &c[a]))
        m = a;
    else if (cand_before(&c[b], &c[m]))
        m = b;
    swap_cand(&c[m], &c[hi - 1]);
    struct cand pivot = c[hi - 1];
    size_t store = lo;
    for (size_t i = lo; i + 1 < hi; i++)
        if (cand_before(&c[i], &pivot))
            swap_cand(&c[i], &c[store++]);
    swap_cand(&c[store], &c[hi - 1]);
    return store;
}

/* Top-k in one pass: c[0..k) is a heap whose root is the worst kept candidate, so a
 * new token costs one comparison unless it beats the k-th best (expected
 * O(n + k log(n/k) log k) for logits in no particular order). */
static void heap_sift_down(struct cand *c, size_t n, size_t i)
{
    for (;;) {
        size_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_before(&c[w], &c[l]))
            w = l;
        if (r < n && cand_before(&c[w], &c[r]))
            w = r;
        if (w == i)
            return;
        swap_cand(&c[i], &c[w]);
        i = w;
    }
}

static void heap_sift_up(struct cand *c, size_t i)
{
    while (i > 0 && cand_before(&c[(i - 1) / 2], &c[i])) {
        swap_cand(&c[i], &c[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

/* Candidates with logit >= cut into s->cand: all of them, or the best k. */
static size_t collect(const struct bn_sampler *s, const float *logits, float cut, size_t k)
{
    struct cand *c = s->cand;
    size_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        float l = value(s, logits, i);
        if (l < cut)
            continue;
        struct cand x = { l, 0.0f, i };
        if (k == SIZE_MAX) { /* no top-k: keep every candidate, in id order */
            c[n++] = x;
        } else if (n < k) {
            c[n] = x;
            heap_sift_up(c, n++);
        } else if (cand_before(&x, &c[0])) {
            c[0] = x;
            heap_sift_down(c, n, 0);
        }
    }
    return n;
}

/* Top-p: move the nucleus — the shortest prefix of c[0..n) in cand order whose weight
 * reaches top_p of the total — to c[0..m) (in no particular order) and return m.
 * Quickselect on the mass instead of a sort: O(n) expected, so a flat distribution
 * over 128k tokens costs a few passes, not a sort. */
static size_t nucleus(struct cand *c, size_t n, float top_p)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += c[i].w;
    double need = (double)top_p * total; /* mass still missing beyond c[0..lo) */
    size_t lo = 0, hi = n;               /* the nucleus ends inside c[lo..hi) */
    uint64_t lcg = n;
    while (lo < hi) {
        size_t p = partition(c, lo, hi, &lcg);
        double before = 0.0;
        for (size_t i = lo; i < p; i++)
            before += c[i].w;
        if (before >= need) {
            hi = p;
        } else if (before + c[p].w >= need) {
            return p + 1;
        } else {
            need -= before + c[p].w;
            lo = p + 1;
        }
    }
    return lo; /* only when rounding left the whole set short of the target */
}

int32_t bn_sampler_sample(struct bn_sampler *s, const float *logits, struct bn_err *err)
{
    const struct bn_sampler_params *p = &s->p;
    int32_t best = -1;
    float max_logit = -INFINITY;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        float l = value(s, logits, i);
        if (l > max_logit) {
            max_logit = l;
            best = i;
        }
    }
    if (best < 0)
        return bn_errf(err, "sampler: none of the %d logits is a finite number", s->n_vocab);
    if (p->temperature == 0.0f)
        return best;

    /* Candidates: weight w = exp((l - max) / T) >= 2^-64. */
    float cut = max_logit + (float)(LOG_NEGLIGIBLE * p->temperature);
    if (p->top_p == 1.0f && p->min_p > 0.0f) /* min-p is the last filter: apply it here */
        cut = fmaxf(cut, max_logit + logf(p->min_p) * p->temperature);
    size_t n = collect(s, logits, cut, p->top_k > 0 ? (size_t)p->top_k : SIZE_MAX);
    for (size_t i = 0; i < n; i++)
        s->cand[i].w = expf((s->cand[i].logit - max_logit) / p->temperature);
    if (p->top_p < 1.0f) {
        n = nucleus(s->cand, n, p->top_p);
        if (p->min_p > 0.0f) { /* keep p_i >= min_p * p_max (the best token has w = 1) */
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (s->cand[i].w >= p->min_p)
                    s->cand[k++] = s->cand[i];
            n = k;
        }
    }

    double total = 0.0;
    for (size_t i = 0; i < n; i++)
        total += s->cand[i].w;
    double target = uniform01(s->rng) * total, cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += s->cand[i].w;
        if (target < cum)
            return s->cand[i].id;
    }
    return s->cand[n - 1].id; /* rounding: target landed on the total */
}
