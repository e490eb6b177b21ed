/* tests/test_sampler.c — parameter checks, greedy, determinism, and the effect of
 * each option (temperature, top-k, top-p, min-p, penalties and their window). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"

static struct bn_sampler_params neutral(void)
{
    struct bn_sampler_params p;
    bn_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    return p;
}

static struct bn_sampler *make(const struct bn_sampler_params *p, int32_t n_vocab)
{
    struct bn_err err = { { 0 } };
    struct bn_sampler *s = bn_sampler_new(p, n_vocab, &err);
    cr_assert(s, "%s", err.msg);
    return s;
}

static int32_t draw(struct bn_sampler *s, const float *logits)
{
    struct bn_err err = { { 0 } };
    int32_t id = bn_sampler_sample(s, logits, &err);
    cr_assert_geq(id, 0, "%s", err.msg);
    return id;
}

/* counts[id] over n draws. */
static void histogram(struct bn_sampler *s, const float *logits, int32_t n_vocab, int n, int *counts)
{
    memset(counts, 0, (size_t)n_vocab * sizeof *counts);
    for (int i = 0; i < n; i++)
        counts[draw(s, logits)]++;
}

static void expect_bad(struct bn_sampler_params p, const char *field)
{
    struct bn_err err = { { 0 } };
    cr_assert_eq(bn_sampler_params_check(&p, &err), -1, "%s accepted", field);
    cr_assert(strstr(err.msg, field), "error \"%s\" does not name %s", err.msg, field);
    cr_assert_null(bn_sampler_new(&p, 10, NULL));
}

Test(sampler, bad_parameters)
{
    struct bn_sampler_params p = neutral();
    cr_assert_eq(bn_sampler_params_check(&p, NULL), 0);
    p.temperature = -0.1f;
    expect_bad(p, "temperature");
    p.temperature = NAN;
    expect_bad(p, "temperature");
    p.temperature = INFINITY;
    expect_bad(p, "temperature");
    p = neutral();
    p.top_k = -1;
    expect_bad(p, "top_k");
    p = neutral();
    p.top_p = 0.0f;
    expect_bad(p, "top_p");
    p.top_p = 1.01f;
    expect_bad(p, "top_p");
    p.top_p = NAN;
    expect_bad(p, "top_p");
    p = neutral();
    p.min_p = -0.01f;
    expect_bad(p, "min_p");
    p.min_p = 1.5f;
    expect_bad(p, "min_p");
    p = neutral();
    p.repeat_penalty = 0.0f;
    expect_bad(p, "repeat_penalty");
    p.repeat_penalty = -1.0f;
    expect_bad(p, "repeat_penalty");
    p = neutral();
    p.presence_penalty = NAN;
    expect_bad(p, "presence_penalty");
    p = neutral();
    p.frequency_penalty = INFINITY;
    expect_bad(p, "frequency_penalty");
    p = neutral();
    p.penalty_last_n = -1;
    expect_bad(p, "penalty_last_n");
    p.penalty_last_n = BN_SAMPLER_MAX_PENALTY_WINDOW + 1;
    expect_bad(p, "penalty_last_n");

    struct bn_err err = { { 0 } };
    p = neutral();
    cr_assert_null(bn_sampler_new(&p, 0, &err));
    cr_assert(strstr(err.msg, "n_vocab"), "%s", err.msg);
    /* Edges that are allowed. */
    p.top_p = 1.0f;
    p.min_p = 1.0f;
    p.temperature = 0.0f;
    p.penalty_last_n = BN_SAMPLER_MAX_PENALTY_WINDOW;
    p.presence_penalty = -2.0f;
    cr_assert_eq(bn_sampler_params_check(&p, NULL), 0);
}

Test(sampler, greedy)
{
    struct bn_sampler_params p = neutral();
    p.temperature = 0.0f;
    p.top_k = 5; /* ignored by greedy */
    struct bn_sampler *s = make(&p, 6);
    float logits[6] = { 0.5f, 3.0f, -1.0f, 3.0f, NAN, -INFINITY };
    for (int i = 0; i < 10; i++)
        cr_assert_eq(draw(s, logits), 1, "ties go to the lowest id; NaN never wins");
    float with_inf[6] = { 0.5f, 3.0f, -1.0f, INFINITY, 1.0f, 2.0f };
    cr_assert_eq(draw(s, with_inf), 3);
    float none[6] = { NAN, -INFINITY, NAN, -INFINITY, NAN, NAN };
    struct bn_err err = { { 0 } };
    cr_assert_eq(bn_sampler_sample(s, none, &err), -1);
    cr_assert(strstr(err.msg, "finite"), "%s", err.msg);
    bn_sampler_free(s);
}

#define BIG_VOCAB 128256
static float *random_logits(uint32_t seed)
{
    float *l = malloc(BIG_VOCAB * sizeof *l);
    cr_assert(l);
    uint32_t x = seed;
    for (int i = 0; i < BIG_VOCAB; i++) {
        x = x * 1664525u + 1013904223u;
        l[i] = (float)(x >> 8) / (float)(1u << 24) * 12.0f - 6.0f;
    }
    return l;
}

Test(sampler, deterministic_per_seed)
{
    float *logits = random_logits(7);
    struct bn_sampler_params p = neutral();
    p.temperature = 1.5f;
    p.top_p = 0.9f;
    p.repeat_penalty = 1.1f;
    p.seed = 1234;
    struct bn_sampler *a = make(&p, BIG_VOCAB), *b = make(&p, BIG_VOCAB);
    p.seed = 1235;
    struct bn_sampler *c = make(&p, BIG_VOCAB);
    int32_t first[32];
    int differ = 0;
    for (int i = 0; i < 32; i++) {
        int32_t x = draw(a, logits), y = draw(b, logits), z = draw(c, logits);
        cr_assert_eq(x, y, "same seed, same logits, step %d", i);
        differ += x != z;
        first[i] = x;
        bn_sampler_accept(a, x);
        bn_sampler_accept(b, y);
        bn_sampler_accept(c, z);
    }
    cr_assert_gt(differ, 16, "another seed gives another sequence");
    bn_sampler_reset(a);
    for (int i = 0; i < 32; i++) {
        int32_t x = draw(a, logits);
        cr_assert_eq(x, first[i], "reset restarts the PRNG and the history, step %d", i);
        bn_sampler_accept(a, x);
    }
    bn_sampler_free(a);
    bn_sampler_free(b);
    bn_sampler_free(c);
    free(logits);
}

Test(sampler, temperature)
{
    float logits[2] = { 1.0f, 0.0f };
    int counts[2];
    struct bn_sampler_params p = neutral();
    p.temperature = 0.1f; /* p(0) = 1 / (1 + e^-10) */
    struct bn_sampler *s = make(&p, 2);
    histogram(s, logits, 2, 2000, counts);
    cr_assert_geq(counts[0], 1995);
    bn_sampler_free(s);
    p.temperature = 1.0f; /* p(0) = 0.731 */
    s = make(&p, 2);
    histogram(s, logits, 2, 2000, counts);
    cr_assert(counts[0] > 1350 && counts[0] < 1570, "%d", counts[0]);
    bn_sampler_free(s);
    p.temperature = 10.0f; /* p(0) = 0.525 */
    s = make(&p, 2);
    histogram(s, logits, 2, 2000, counts);
    cr_assert(counts[0] > 930 && counts[0] < 1170, "%d", counts[0]);
    bn_sampler_free(s);
}

Test(sampler, top_k)
{
    float logits[8] = { 0.1f, 0.5f, 0.3f, 0.45f, 0.2f, 0.0f, 0.4f, 0.35f };
    int counts[8];
    struct bn_sampler_params p = neutral();
    p.temperature = 5.0f;
    p.top_k = 3; /* ids 1, 3, 6 */
    struct bn_sampler *s = make(&p, 8);
    histogram(s, logits, 8, 3000, counts);
    for (int i = 0; i < 8; i++) {
        bool in = i == 1 || i == 3 || i == 6;
        cr_assert(in ? counts[i] > 700 : counts[i] == 0, "id %d drawn %d times", i, counts[i]);
    }
    bn_sampler_free(s);
    p.top_k = 1;
    s = make(&p, 8);
    histogram(s, logits, 8, 200, counts);
    cr_assert_eq(counts[1], 200);
    bn_sampler_free(s);

    /* On the full vocabulary: only the k best ids ever come out. */
    float *big = random_logits(3);
    p.top_k = 50;
    p.temperature = 3.0f;
    s = make(&p, BIG_VOCAB);
    /* the 50th largest logit */
    float kth = -INFINITY;
    {
        float best[50];
        int nb = 0;
        for (int i = 0; i < BIG_VOCAB; i++) {
            if (nb < 50) {
                best[nb++] = big[i];
                continue;
            }
            int lo = 0;
            for (int j = 1; j < 50; j++)
                if (best[j] < best[lo])
                    lo = j;
            if (big[i] > best[lo])
                best[lo] = big[i];
        }
        kth = best[0];
        for (int j = 1; j < 50; j++)
            kth = fminf(kth, best[j]);
    }
    int distinct = 0;
    char *seen = calloc(BIG_VOCAB, 1);
    for (int i = 0; i < 500; i++) {
        int32_t id = draw(s, big);
        cr_assert_geq(big[id], kth, "id %d (logit %g) is not among the 50 best", id, (double)big[id]);
        distinct += !seen[id];
        seen[id] = 1;
    }
    cr_assert_gt(distinct, 40);
    free(seen);
    free(big);
    bn_sampler_free(s);
}

Test(sampler, top_p_and_min_p)
{
    /* probabilities 0.5, 0.3, 0.15, 0.05 */
    float logits[4] = { logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f) };
    int counts[4];
    struct bn_sampler_params p = neutral();
    p.top_p = 0.45f; /* {0} */
    struct bn_sampler *s = make(&p, 4);
    histogram(s, logits, 4, 500, counts);
    cr_assert_eq(counts[0], 500);
    bn_sampler_free(s);
    p.top_p = 0.7f; /* {0, 1} */
    s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    cr_assert(counts[0] > 1100 && counts[1] > 600 && counts[2] == 0 && counts[3] == 0);
    bn_sampler_free(s);
    p.top_p = 0.9f; /* {0, 1, 2} */
    s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    cr_assert(counts[2] > 150 && counts[3] == 0);
    bn_sampler_free(s);

    p = neutral();
    p.min_p = 0.5f; /* keeps p >= 0.25: {0, 1} */
    s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    cr_assert(counts[1] > 600 && counts[2] == 0 && counts[3] == 0);
    bn_sampler_free(s);
    p.min_p = 0.2f; /* keeps p >= 0.1: {0, 1, 2}, here after top-p */
    p.top_p = 0.99f;
    s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    cr_assert(counts[2] > 150 && counts[3] == 0);
    bn_sampler_free(s);

    /* Full vocabulary: the 13 ids i % 10000 == 5 at logit 5, the rest at 0, so they
     * hold 13 / (13 + 128243 e^-5) = 1.5 % of the mass: top_p 0.01 keeps only (9 of)
     * them, and top_p 0.5 also ~63000 of the others, lowest ids first (ties). */
    float *big = malloc(BIG_VOCAB * sizeof *big);
    for (int i = 0; i < BIG_VOCAB; i++)
        big[i] = (i % 10000 == 5) ? 5.0f : 0.0f;
    p = neutral();
    p.top_p = 0.01f;
    s = make(&p, BIG_VOCAB);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(draw(s, big) % 10000, 5);
    bn_sampler_free(s);
    p.top_p = 0.5f;
    s = make(&p, BIG_VOCAB);
    double w = expf(-5.0f), total = 13.0 + (BIG_VOCAB - 13) * w;
    int need = (int)ceil(((double)0.5f * total - 13.0) / w); /* small tokens in the nucleus */
    int small = 0, max_small = -1;
    for (int i = 0; i < 300; i++) {
        int32_t id = draw(s, big);
        if (id % 10000 != 5) {
            small++;
            if (id > max_small)
                max_small = id;
        }
    }
    cr_assert_gt(small, 250);
    cr_assert_leq(max_small, need + 13, "a small token beyond the nucleus: id %d (nucleus ~%d)", max_small, need);
    cr_assert_gt(max_small, need * 9 / 10, "the nucleus looks too small: largest small id %d of ~%d", max_small,
                 need);
    bn_sampler_free(s);
    free(big);
}

Test(sampler, penalties)
{
    struct bn_sampler_params p = neutral();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f;
    p.penalty_last_n = 2;
    float pos[8] = { 2.0f, 1.9f, 0, 0, 0, 0, 0, 0 };
    struct bn_sampler *s = make(&p, 8);
    cr_assert_eq(draw(s, pos), 0);
    bn_sampler_accept(s, 0);
    cr_assert_eq(draw(s, pos), 1, "2.0 / 1.5 < 1.9");
    bn_sampler_accept(s, 5);
    bn_sampler_accept(s, 6); /* 0 leaves the 2-token window */
    cr_assert_eq(draw(s, pos), 0);
    float neg[8] = { -1.0f, -1.2f, -9, -9, -9, -9, -9, -9 };
    bn_sampler_accept(s, 0);
    cr_assert_eq(draw(s, neg), 1, "-1.0 * 1.5 < -1.2");
    bn_sampler_reset(s);
    cr_assert_eq(draw(s, neg), 0, "reset empties the window");
    bn_sampler_free(s);

    p = neutral();
    p.temperature = 0.0f;
    p.presence_penalty = 1.0f;
    float two[4] = { 2.0f, 1.5f, 0, 0 };
    s = make(&p, 4);
    bn_sampler_accept(s, 0);
    cr_assert_eq(draw(s, two), 1, "2.0 - 1.0 < 1.5");
    bn_sampler_free(s);

    p = neutral();
    p.temperature = 0.0f;
    p.frequency_penalty = 0.3f;
    s = make(&p, 4);
    bn_sampler_accept(s, 0);
    cr_assert_eq(draw(s, two), 0, "2.0 - 0.3 > 1.5");
    bn_sampler_accept(s, 0);
    cr_assert_eq(draw(s, two), 1, "2.0 - 0.6 < 1.5");
    bn_sampler_accept(s, 99); /* out of range: ignored */
    bn_sampler_accept(s, -1);
    cr_assert_eq(draw(s, two), 1);
    bn_sampler_free(s);

    /* penalty_last_n = 0 switches them off. */
    p.penalty_last_n = 0;
    s = make(&p, 4);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 0);
    cr_assert_eq(draw(s, two), 0);
    bn_sampler_free(s);
}
