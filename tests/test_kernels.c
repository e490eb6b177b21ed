/* Tests of the SIMD kernels against the scalar reference, on every dispatch path this
 * machine has: ternary x int8 (bit-identical), float-activation head formats (close),
 * layout choice and conversion, thread-count independence. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((rng() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

/* A ternary tensor in a file format, from random codes (scale 0.0375). */
static void *make_ternary(enum bn_type type, int64_t rows, int64_t cols)
{
    float *w = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++) {
        uint64_t r = rng() % 3;
        w[i] = r == 0 ? 0.0f : r == 1 ? 0.0375f : -0.0375f;
    }
    uint64_t bytes;
    cr_assert(bn_tensor_bytes(type, rows, cols, &bytes));
    void *q = malloc(bytes);
    cr_assert_eq(bn_type_traits(type)->quantize(w, q, rows, cols), bytes);
    free(w);
    return q;
}

/* TQ block scales: runs of equal scales, a zero-scale block, random f16 values. */
static void vary_tq_scales(enum bn_type type, void *data, int64_t rows, int64_t cols)
{
    size_t bb = type == BN_TYPE_TQ2_0 ? 66 : 54, off = type == BN_TYPE_TQ2_0 ? 64 : 52;
    int64_t nb = rows * cols / 256;
    uint16_t d = bn_f32_to_f16(0.05f);
    for (int64_t b = 0; b < nb; b++) {
        uint64_t r = rng() % 8;
        if (r == 0)
            d = bn_f32_to_f16(0.01f + 0.1f * (frand() + 1.0f));
        uint16_t v = r == 1 ? 0 : d;
        memcpy((uint8_t *)data + b * bb + off, &v, 2);
    }
}

static float *rand_acts(int64_t n)
{
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        x[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
    return x;
}

/* The scalar reference on the stored format. */
static float *reference(enum bn_type type, const void *q, int64_t rows, int64_t cols,
                        const float *x, int64_t nt, unsigned flags)
{
    struct bn_matrix m;
    cr_assert(bn_matrix_init(&m, type, q, rows, cols, type, NULL, BN_PATH_SCALAR, NULL, 0));
    float *y = malloc((size_t)(rows * nt) * sizeof(float));
    bn_matmul(NULL, &m, x, nt, y, flags);
    return y;
}

/* Every path x layout x thread count must give exactly ref. */
static void check_all_paths(enum bn_type type, const void *q, int64_t rows, int64_t cols,
                            const float *x, int64_t nt, const float *ref, enum bn_type prefer,
                            struct bn_pool **pools, int n_pools)
{
    for (int p = 0; p < BN_PATH_COUNT; p++) {
        if (!bn_path_supported((enum bn_path)p))
            continue;
        uint64_t bytes;
        enum bn_type dt = bn_matrix_layout(type, rows, cols, (enum bn_path)p, prefer, &bytes);
        cr_assert_gt(bytes, 0);
        void *buf = dt == type ? NULL : malloc(bytes);
        struct bn_matrix m;
        char err[256] = "";
        cr_assert(bn_matrix_init(&m, type, q, rows, cols, dt, buf, (enum bn_path)p, err, sizeof err),
                  "%s", err);
        float *y = malloc((size_t)(rows * nt) * sizeof(float));
        for (int k = 0; k < n_pools; k++) {
            memset(y, 0xff, (size_t)(rows * nt) * sizeof(float));
            bn_matmul(pools[k], &m, x, nt, y, 0);
            for (int64_t i = 0; i < rows * nt; i++)
                cr_assert(memcmp(&y[i], &ref[i], sizeof(float)) == 0,
                          "%s as %s on %s, %lld x %lld, %lld tokens, %d threads: y[%lld] = %a, "
                          "reference %a",
                          bn_type_name(type), bn_type_name(dt), bn_path_name((enum bn_path)p),
                          (long long)rows, (long long)cols, (long long)nt,
                          bn_pool_threads(pools[k]), (long long)i, y[i], ref[i]);
        }
        free(y);
        free(buf);
    }
}

#define TL_TEST_MACS (20 * 1000 * 1000) /* bound on the TL checks of one case */

static struct bn_pool *pools[3];
static void make_pools(void)
{
    pools[0] = NULL; /* the caller alone */
    pools[1] = bn_pool_create(2);
    pools[2] = bn_pool_create(3);
}
static void free_pools(void)
{
    bn_pool_destroy(pools[1]);
    bn_pool_destroy(pools[2]);
}

static void ternary_case(enum bn_type type, int64_t rows, int64_t cols, int64_t nt, bool vary,
                         enum bn_type prefer)
{
    void *q = make_ternary(type, rows, cols);
    if (vary)
        vary_tq_scales(type, q, rows, cols);
    float *x = rand_acts(nt * cols);
    float *ref = reference(type, q, rows, cols, x, nt, 0);
    check_all_paths(type, q, rows, cols, x, nt, ref, prefer, pools, 3);
    /* the table-lookup layouts hold any one-scale tensor (their scalar kernel is slow:
     * large shapes only with one token) */
    if (!vary && prefer == BN_TYPE_COUNT && rows * cols * nt <= TL_TEST_MACS) {
        check_all_paths(type, q, rows, cols, x, nt, ref, BN_TYPE_TL1, pools, 3);
        check_all_paths(type, q, rows, cols, x, nt, ref, BN_TYPE_TL2, pools, 3);
    }
    free(ref);
    free(x);
    free(q);
}

TestSuite(ternary, .init = make_pools, .fini = free_pools);

Test(ternary, awkward_shapes_all_formats)
{
    const int64_t shapes[][2] = {{1, 128}, {15, 256}, {16, 128}, {17, 384}, {37, 512}, {100, 768}};
    const int64_t tokens[] = {1, 2, 7, 16, 17, 33};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t k = 0; k < sizeof tokens / sizeof tokens[0]; k++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1], nt = tokens[k];
            ternary_case(BN_TYPE_I2_S, rows, cols, nt, false, BN_TYPE_COUNT);
            if (cols % 256 == 0) {
                ternary_case(BN_TYPE_TQ2_0, rows, cols, nt, false, BN_TYPE_COUNT);
                ternary_case(BN_TYPE_TQ2_0, rows, cols, nt, true, BN_TYPE_COUNT);
                ternary_case(BN_TYPE_TQ1_0, rows, cols, nt, true, BN_TYPE_COUNT);
            }
        }
}

Test(ternary, model_shapes_1_and_7_tokens, .timeout = 60)
{
    const int64_t shapes[][2] = {{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int64_t nt = 1; nt <= 7; nt += 6)
            ternary_case(BN_TYPE_I2_S, shapes[s][0], shapes[s][1], nt, false, BN_TYPE_COUNT);
}

Test(ternary, prefill_tokens)
{
    /* 128 tokens: 8 full tiles; 40: 3 tiles of 13-14 */
    ternary_case(BN_TYPE_I2_S, 96, 2560, 128, false, BN_TYPE_COUNT);
    ternary_case(BN_TYPE_I2_S, 50, 1024, 40, false, BN_TYPE_COUNT);
    ternary_case(BN_TYPE_TQ2_0, 40, 1024, 40, true, BN_TYPE_COUNT);
}

Test(ternary, tq_with_one_scale_takes_i2_layout)
{
    int64_t rows = 33, cols = 512;
    void *q = make_ternary(BN_TYPE_TQ2_0, rows, cols);
    uint64_t bytes;
    cr_assert_eq(bn_matrix_layout(BN_TYPE_TQ2_0, rows, cols, BN_PATH_AVX2, BN_TYPE_COUNT, &bytes),
                 BN_TYPE_TQ_R16);
    cr_assert_eq(bn_matrix_layout_for_data(BN_TYPE_TQ2_0, q, rows, cols, BN_PATH_AVX2, BN_TYPE_COUNT,
                                           &bytes), BN_TYPE_I2_R16);
    cr_assert_eq(bytes, (uint64_t)(rows * cols / 4 + 32));
    float *x = rand_acts(3 * cols);
    float *ref = reference(BN_TYPE_TQ2_0, q, rows, cols, x, 3, 0);
    check_all_paths(BN_TYPE_TQ2_0, q, rows, cols, x, 3, ref, BN_TYPE_I2_R16, pools, 3);
    /* differing scales: I2_R16 refuses with a message naming the layouts */
    vary_tq_scales(BN_TYPE_TQ2_0, q, rows, cols);
    cr_assert_eq(bn_matrix_layout_for_data(BN_TYPE_TQ2_0, q, rows, cols, BN_PATH_AVX2, BN_TYPE_COUNT,
                                           NULL), BN_TYPE_TQ_R16);
    void *buf = malloc(bytes);
    struct bn_matrix m;
    char err[256] = "";
    cr_assert_not(bn_matrix_init(&m, BN_TYPE_TQ2_0, q, rows, cols, BN_TYPE_I2_R16, buf,
                                 BN_PATH_AVX2, err, sizeof err));
    cr_assert(strstr(err, "I2_R16") && strstr(err, "TQ2_0"), "%s", err);
    free(buf);
    free(ref);
    free(x);
    free(q);
}

Test(ternary, float_activation_mode_matches_stored_format)
{
    int64_t rows = 21, cols = 384, nt = 2;
    void *q = make_ternary(BN_TYPE_I2_S, rows, cols);
    float *x = rand_acts(nt * cols);
    float *ref = reference(BN_TYPE_I2_S, q, rows, cols, x, nt, BN_MM_FLOAT_ACT);
    uint64_t bytes;
    bn_matrix_layout(BN_TYPE_I2_S, rows, cols, BN_PATH_AVX2, BN_TYPE_COUNT, &bytes);
    void *buf = malloc(bytes);
    struct bn_matrix m;
    cr_assert(bn_matrix_init(&m, BN_TYPE_I2_S, q, rows, cols, BN_TYPE_I2_R16, buf, BN_PATH_AVX2, NULL, 0));
    float y[21 * 2];
    bn_matmul(pools[1], &m, x, nt, y, BN_MM_FLOAT_ACT);
    cr_assert_arr_eq(y, ref, sizeof y);
    free(buf);
    free(ref);
    free(x);
    free(q);
}

Test(ternary, codes_round_trip_through_every_layout)
{
    int64_t rows = 19, cols = 768;
    void *q = make_ternary(BN_TYPE_I2_S, rows, cols);
    const enum bn_type layouts[] = {BN_TYPE_I2_R16, BN_TYPE_TQ_R16, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0,
                                    BN_TYPE_TL1, BN_TYPE_TL2};
    int8_t *a = malloc((size_t)cols), *b = malloc((size_t)cols);
    float sa[3], sb[3];
    for (size_t k = 0; k < sizeof layouts / sizeof layouts[0]; k++) {
        uint64_t bytes;
        cr_assert(bn_tensor_bytes(layouts[k], rows, cols, &bytes));
        void *buf = malloc(bytes);
        struct bn_matrix m;
        char err[256] = "";
        cr_assert(bn_matrix_init(&m, BN_TYPE_I2_S, q, rows, cols, layouts[k], buf, BN_PATH_SCALAR,
                                 err, sizeof err), "%s", err);
        for (int64_t r = 0; r < rows; r++) {
            bn_type_traits(BN_TYPE_I2_S)->codes_get(q, rows, cols, r, a, sa);
            bn_type_traits(layouts[k])->codes_get(buf, rows, cols, r, b, sb);
            cr_assert_arr_eq(a, b, (size_t)cols, "%s row %lld", bn_type_name(layouts[k]), (long long)r);
        }
        free(buf);
    }
    free(a);
    free(b);
    free(q);
}

/* ---- float-activation head formats ---- */

static void head_case(enum bn_type type, int64_t rows, int64_t cols, int64_t nt)
{
    float *w = rand_acts(rows * cols);
    uint64_t bytes;
    cr_assert(bn_tensor_bytes(type, rows, cols, &bytes));
    void *q = malloc(bytes);
    bn_type_traits(type)->quantize(w, q, rows, cols);
    float *x = rand_acts(nt * cols);
    float *ref = reference(type, q, rows, cols, x, nt, 0);
    float *y = malloc((size_t)(rows * nt) * sizeof(float));
    /* Error bound per output: float rounding, plus for Q8_0 / Q6_K (int8 activations,
     * one scale per block of 32 / 256) half a step of each activation times |w|. */
    int64_t blk = type == BN_TYPE_Q8_0 ? 32 : type == BN_TYPE_Q6_K ? 256 : 0;
    float *wf = malloc((size_t)cols * sizeof(float)), *bound = malloc((size_t)(rows * nt) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        bn_type_traits(type)->row_to_float((uint8_t *)q + r * bn_row_bytes(type, cols), wf, cols, 1.0f);
        for (int64_t t = 0; t < nt; t++) {
            const float *xt = x + t * cols;
            double b = 0, mag = 0;
            for (int64_t c0 = 0; c0 < cols; c0 += blk ? blk : cols) {
                int64_t n = blk ? blk : cols;
                float amax = 0.0f;
                for (int64_t c = c0; c < c0 + n; c++)
                    amax = fmaxf(amax, fabsf(xt[c]));
                for (int64_t c = c0; c < c0 + n; c++) {
                    mag += fabs((double)wf[c] * xt[c]);
                    if (blk)
                        b += fabs((double)wf[c]) * amax / 254.0 * 1.01;
                }
            }
            bound[t * rows + r] = (float)(b + 1e-5 * mag + 1e-6);
        }
    }
    for (int p = 1; p < BN_PATH_COUNT; p++) {
        if (!bn_path_supported((enum bn_path)p))
            continue;
        struct bn_matrix m;
        bn_matrix_view(&m, type, q, rows, cols, (enum bn_path)p);
        for (int k = 0; k < 3; k++) {
            bn_matmul(pools[k], &m, x, nt, y, 0);
            for (int64_t i = 0; i < rows * nt; i++)
                cr_assert(fabsf(y[i] - ref[i]) <= bound[i],
                          "%s on %s, %lld x %lld, %lld tokens: y[%lld] = %g, reference %g (bound %g)",
                          bn_type_name(type), bn_path_name((enum bn_path)p), (long long)rows,
                          (long long)cols, (long long)nt, (long long)i, y[i], ref[i], bound[i]);
        }
    }
    free(wf);
    free(bound);
    free(y);
    free(ref);
    free(x);
    free(q);
    free(w);
}

TestSuite(head, .init = make_pools, .fini = free_pools);

Test(head, formats_against_scalar)
{
    const int64_t tokens[] = {1, 3};
    for (int k = 0; k < 2; k++) {
        head_case(BN_TYPE_F16, 7, 100, tokens[k]);
        head_case(BN_TYPE_F16, 33, 2560, tokens[k]);
        head_case(BN_TYPE_F32, 9, 77, tokens[k]);
        head_case(BN_TYPE_Q8_0, 13, 2560, tokens[k]);
        head_case(BN_TYPE_Q6_K, 11, 2560, tokens[k]);
        head_case(BN_TYPE_Q6_K, 5, 256, tokens[k]);
    }
}

/* A token's logits must not depend on the tokens sharing the call (batched decode
 * gives each sequence what it would get alone): 9 tokens at once (groups of up to
 * BN_HEAD_GROUP_TOKENS, rows in L2-sized blocks) equal 9 one-token calls, bit for
 * bit, on every path and thread count. */
Test(head, tokens_do_not_change_each_other)
{
    static const struct { enum bn_type type; int64_t rows, cols; } cases[] = {
        {BN_TYPE_F16, 300, 2560}, {BN_TYPE_F32, 37, 160}, {BN_TYPE_Q8_0, 150, 2560},
        {BN_TYPE_Q6_K, 150, 2560}, {BN_TYPE_F16, 5, 100}};
    const int64_t nt = 9;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        enum bn_type type = cases[ci].type;
        int64_t rows = cases[ci].rows, cols = cases[ci].cols;
        float *w = rand_acts(rows * cols), *x = rand_acts(nt * cols);
        uint64_t bytes;
        cr_assert(bn_tensor_bytes(type, rows, cols, &bytes));
        void *q = malloc(bytes);
        bn_type_traits(type)->quantize(w, q, rows, cols);
        float *all = malloc((size_t)(rows * nt) * sizeof(float)), *one = malloc((size_t)rows * sizeof(float));
        for (int p = 1; p < BN_PATH_COUNT; p++) {
            if (!bn_path_supported((enum bn_path)p))
                continue;
            struct bn_matrix m;
            bn_matrix_view(&m, type, q, rows, cols, (enum bn_path)p);
            for (int k = 0; k < 3; k++) {
                bn_matmul(pools[k], &m, x, nt, all, 0);
                for (int64_t t = 0; t < nt; t++) {
                    bn_matmul(pools[k], &m, x + t * cols, 1, one, 0);
                    cr_assert_arr_eq(one, all + t * rows, (size_t)rows * sizeof(float),
                                     "%s on %s, %lld x %lld: token %lld of %lld differs from alone",
                                     bn_type_name(type), bn_path_name((enum bn_path)p),
                                     (long long)rows, (long long)cols, (long long)t, (long long)nt);
                }
            }
        }
        free(all);
        free(one);
        free(q);
        free(x);
        free(w);
    }
}

Test(head, requantized_f16_head_is_q8_0)
{
    int64_t rows = 64, cols = 2560;
    float *w = rand_acts(rows * cols);
    uint16_t *h = malloc((size_t)(rows * cols) * 2);
    bn_f32_to_f16_row(w, h, rows * cols);
    uint64_t bytes;
    cr_assert_eq(bn_matrix_layout(BN_TYPE_F16, rows, cols, BN_PATH_AVX2, BN_TYPE_COUNT, &bytes), BN_TYPE_F16);
    cr_assert_eq(bn_matrix_layout(BN_TYPE_F16, rows, cols, BN_PATH_AVX2, BN_TYPE_Q8_0, &bytes), BN_TYPE_Q8_0);
    cr_assert_eq(bytes, (uint64_t)(rows * cols / 32 * 34));
    void *buf = malloc(bytes);
    struct bn_matrix m, mf;
    cr_assert(bn_matrix_init(&m, BN_TYPE_F16, h, rows, cols, BN_TYPE_Q8_0, buf, BN_PATH_AVX2, NULL, 0));
    bn_matrix_view(&mf, BN_TYPE_F16, h, rows, cols, BN_PATH_AVX2);
    float *x = rand_acts(cols), y8[64], y16[64];
    bn_matmul(NULL, &m, x, 1, y8, 0);
    bn_matmul(NULL, &mf, x, 1, y16, 0);
    /* 8-bit weights: each weight is off by at most half a step (block absmax / 254,
     * plus the f16 rounding of the step), so |y8 - y16| <= sum |x| * absmax / 127 */
    for (int i = 0; i < rows; i++) {
        float bound = 1e-3f;
        for (int64_t b = 0; b < cols / 32; b++) {
            float amax = 0.0f, sx = 0.0f;
            for (int j = 0; j < 32; j++) {
                amax = fmaxf(amax, fabsf(bn_f16_to_f32(h[i * cols + 32 * b + j])));
                sx += fabsf(x[32 * b + j]);
            }
            bound += sx * amax / 127.0f;
        }
        cr_assert_lt(fabsf(y8[i] - y16[i]), bound, "row %d: %g vs %g (bound %g)", i, y8[i], y16[i], bound);
    }
    free(x);
    free(buf);
    free(h);
    free(w);
}

/* ---- vector ops per path ---- */

Test(vec, quantize_act_bit_identical)
{
    const int64_t sizes[] = {1, 7, 16, 31, 100, 2560, 6913};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *x = rand_acts(n);
        if (n > 5) {
            x[3] = NAN;      /* ignored by the max, quantized to 0 */
            x[4] = 0.5f / 127.0f * 1e-3f;
        }
        int8_t *q0 = malloc((size_t)n), *q1 = malloc((size_t)n);
        int32_t s0 = 0, s1 = 0;
        float sc0 = bn_vec_scalar.quantize_act_i8(x, n, q0, &s0);
        for (int p = 1; p < BN_PATH_COUNT; p++) {
            if (!bn_path_supported((enum bn_path)p))
                continue;
            float sc1 = bn_vec_kernels_for((enum bn_path)p)->quantize_act_i8(x, n, q1, &s1);
            cr_assert(memcmp(&sc0, &sc1, 4) == 0, "%s n=%lld scale", bn_path_name((enum bn_path)p), (long long)n);
            cr_assert_arr_eq(q0, q1, (size_t)n, "%s n=%lld", bn_path_name((enum bn_path)p), (long long)n);
            cr_assert_eq(s0, s1);
        }
        int32_t check = 0;
        for (int64_t i = 0; i < n; i++)
            check += q0[i];
        cr_assert_eq(check, s0);
        free(q0);
        free(q1);
        free(x);
    }
    /* ties round to even, clamp */
    float t[6] = {127.0f, 0.5f, 1.5f, 2.5f, -127.0f, -0.5f};
    int8_t q[6];
    for (int p = 0; p < BN_PATH_COUNT; p++) {
        if (!bn_path_supported((enum bn_path)p))
            continue;
        bn_vec_kernels_for((enum bn_path)p)->quantize_act_i8(t, 6, q, NULL);
        cr_assert(q[1] == 0 && q[2] == 2 && q[3] == 2 && q[4] == -127 && q[5] == 0);
    }
}

Test(vec, rope_bit_identical_others_close)
{
    int heads = 5, hd = 128;
    float *x = rand_acts(heads * hd), *a = malloc(heads * hd * 4), *b = malloc(heads * hd * 4);
    float cs[64], sn[64];
    for (int i = 0; i < 64; i++) {
        cs[i] = cosf(0.3f * i);
        sn[i] = sinf(0.3f * i);
    }
    for (int p = 1; p < BN_PATH_COUNT; p++) {
        if (!bn_path_supported((enum bn_path)p))
            continue;
        const struct bn_vec_kernels *k = bn_vec_kernels_for((enum bn_path)p);
        memcpy(a, x, heads * hd * 4);
        memcpy(b, x, heads * hd * 4);
        bn_vec_scalar.rope_apply(a, heads, hd, cs, sn);
        k->rope_apply(b, heads, hd, cs, sn);
        cr_assert_arr_eq(a, b, heads * hd * 4);
        for (int64_t n = 1; n <= 517; n += 129) {
            float w[517];
            for (int i = 0; i < n; i++)
                w[i] = 1.0f + 0.1f * frand();
            bn_vec_scalar.rmsnorm(a, x, w, n, 1e-5f);
            k->rmsnorm(b, x, w, n, 1e-5f);
            for (int i = 0; i < n; i++)
                cr_assert_float_eq(a[i], b[i], 1e-5f * (1 + fabsf(a[i])));
            memcpy(a, x, n * 4);
            memcpy(b, x, n * 4);
            for (int i = 0; i < n; i++) {
                a[i] *= 30.0f;
                b[i] *= 30.0f;
            }
            a[0] = b[0] = -INFINITY; /* a masked position */
            if (n == 1)
                a[0] = b[0] = 2.0f;
            bn_vec_scalar.softmax(a, n);
            k->softmax(b, n);
            for (int i = 0; i < n; i++)
                cr_assert_float_eq(a[i], b[i], 2e-6f + 2e-6f * a[i], "%s softmax n=%lld i=%d: %g vs %g",
                                   bn_path_name((enum bn_path)p), (long long)n, i, a[i], b[i]);
            float d0 = bn_vec_scalar.dot(x, x + 1, n), d1 = k->dot(x, x + 1, n);
            cr_assert_float_eq(d0, d1, 1e-4f * (1 + fabsf(d0)));
            memcpy(a, x, n * 4);
            memcpy(b, x, n * 4);
            bn_vec_scalar.axpy(a, 0.7f, x + 3, n);
            k->axpy(b, 0.7f, x + 3, n);
            for (int i = 0; i < n; i++)
                cr_assert_float_eq(a[i], b[i], 1e-6f * (1 + fabsf(a[i])));
        }
    }
    free(x);
    free(a);
    free(b);
}

Test(vec, f16_rows_match_scalar)
{
    uint16_t h[1000], h2[1000];
    float f[1000], g[1000];
    for (int i = 0; i < 1000; i++)
        h[i] = (uint16_t)(rng() & 0x7bff); /* finite halves, both signs via bit 15 below */
    for (int i = 0; i < 1000; i += 3)
        h[i] |= 0x8000;
    for (int p = 1; p < BN_PATH_COUNT; p++) {
        if (!bn_path_supported((enum bn_path)p))
            continue;
        const struct bn_vec_kernels *k = bn_vec_kernels_for((enum bn_path)p);
        bn_vec_scalar.f16_to_f32(h, f, 999);
        k->f16_to_f32(h, g, 999);
        cr_assert_arr_eq(f, g, 999 * 4);
        for (int i = 0; i < 999; i++)
            f[i] = frand() * 1000.0f;
        bn_vec_scalar.f32_to_f16(f, h, 999);
        k->f32_to_f16(f, h2, 999);
        cr_assert_arr_eq(h, h2, 999 * 2);
    }
}

Test(vec, rope_public_matches_reference_math)
{
    float x[2 * 128], y[2 * 128];
    for (int i = 0; i < 256; i++)
        x[i] = y[i] = frand();
    bn_rope_neox(x, 2, 128, 12345, 500000.0f);
    for (int i = 0; i < 64; i++) {
        double th = 12345.0 * pow(500000.0, -2.0 * i / 128);
        float c = (float)cos(th), s = (float)sin(th);
        for (int h = 0; h < 2; h++) {
            float a = y[h * 128 + i], b = y[h * 128 + i + 64];
            cr_assert_eq(x[h * 128 + i], a * c - b * s);
            cr_assert_eq(x[h * 128 + i + 64], a * s + b * c);
        }
    }
}

Test(ternary, matmul_n_equals_separate_calls)
{
    const int64_t rows[3] = {64, 16, 24}, cols = 512, nt = 5;
    void *q[3];
    struct bn_matrix m[3];
    void *buf[3];
    float *y1[3], *y2[3];
    float *x = rand_acts(nt * cols);
    enum bn_path path = bn_path_supported(BN_PATH_AVX512) ? BN_PATH_AVX512
                        : bn_path_supported(BN_PATH_AVX2) ? BN_PATH_AVX2 : BN_PATH_SCALAR;
    for (int k = 0; k < 3; k++) {
        q[k] = make_ternary(BN_TYPE_I2_S, rows[k], cols);
        uint64_t bytes;
        enum bn_type dt = bn_matrix_layout(BN_TYPE_I2_S, rows[k], cols, path, BN_TYPE_COUNT, &bytes);
        buf[k] = malloc(bytes);
        cr_assert(bn_matrix_init(&m[k], BN_TYPE_I2_S, q[k], rows[k], cols, dt, buf[k], path, NULL, 0));
        y1[k] = malloc((size_t)(rows[k] * nt) * sizeof(float));
        y2[k] = malloc((size_t)(rows[k] * nt) * sizeof(float));
        bn_matmul(NULL, &m[k], x, nt, y1[k], 0);
    }
    const struct bn_matrix *mp[3] = {&m[0], &m[1], &m[2]};
    for (int p = 0; p < 3; p++) {
        bn_matmul_n(pools[p], 3, mp, x, nt, y2, 0);
        for (int k = 0; k < 3; k++)
            cr_assert_arr_eq(y1[k], y2[k], (size_t)(rows[k] * nt) * sizeof(float), "matrix %d", k);
    }
    for (int k = 0; k < 3; k++) {
        free(q[k]);
        free(buf[k]);
        free(y1[k]);
        free(y2[k]);
    }
    free(x);
}

Test(vec, ternary_quantize_kernels_identical_on_every_path)
{
    const int64_t sizes[] = {1, 31, 128, 1000, 4096, 100003};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t n = sizes[k];
        float *x = rand_acts(n);
        int8_t *c0 = malloc((size_t)n + 128), *c1 = malloc((size_t)n + 128);
        struct bn_ternary_stats s0, s1;
        bn_vec_scalar.ternary_stats(x, n, &s0);
        bn_vec_scalar.ternary_codes(x, n, 1.0f / 0.37f, false, c0);
        for (int p = 1; p < BN_PATH_COUNT; p++) {
            if (!bn_path_supported((enum bn_path)p))
                continue;
            const struct bn_vec_kernels *kv = bn_vec_kernels_for((enum bn_path)p);
            kv->ternary_stats(x, n, &s1);
            cr_assert(memcmp(&s0.sum, &s1.sum, sizeof s0.sum) == 0, "%s n=%lld: sum %.17g vs %.17g",
                      bn_path_name((enum bn_path)p), (long long)n, s0.sum, s1.sum);
            cr_assert(s0.amax == s1.amax && s0.min_nonzero == s1.min_nonzero && s0.nan == s1.nan);
            kv->ternary_codes(x, n, 1.0f / 0.37f, false, c1);
            cr_assert_arr_eq(c0, c1, (size_t)n);
            bn_vec_scalar.ternary_codes(x, n, 0.0f, true, c0);
            kv->ternary_codes(x, n, 0.0f, true, c1);
            cr_assert_arr_eq(c0, c1, (size_t)n);
            if (n % 128 == 0)
                for (int msb = 0; msb < 2; msb++) {
                    uint8_t o0[1024], o1[1024];
                    int64_t m = n < 4096 ? n : 4096;
                    bn_vec_scalar.pack2(c0, m, o0, 32, msb);
                    kv->pack2(c0, m, o1, 32, msb);
                    cr_assert_arr_eq(o0, o1, (size_t)(m / 4));
                }
            bn_vec_scalar.ternary_codes(x, n, 1.0f / 0.37f, false, c0);
        }
        x[n / 2] = NAN;
        bn_vec_scalar.ternary_stats(x, n, &s0);
        cr_assert(s0.nan);
        free(c0);
        free(c1);
        free(x);
    }
}

Test(vec, dequantize_any_layout)
{
    int64_t rows = 20, cols = 528; /* TL2: 11 groups; TL1 33 */
    float *w = malloc((size_t)(rows * cols) * sizeof(float)), *back = malloc((size_t)(rows * cols) * sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = (float)((int64_t)(rng() % 3) - 1) * 0.25f;
    const enum bn_type types[] = {BN_TYPE_TL1, BN_TYPE_TL2, BN_TYPE_I2_R16};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        uint64_t bytes;
        cr_assert(bn_tensor_bytes(types[k], rows, cols, &bytes), "%s", bn_type_name(types[k]));
        void *q = malloc(bytes);
        cr_assert_eq(bn_type_traits(types[k])->quantize(w, q, rows, cols), bytes);
        cr_assert(bn_tensor_to_float(types[k], q, rows, cols, back));
        cr_assert_arr_eq(w, back, (size_t)(rows * cols) * sizeof(float), "%s", bn_type_name(types[k]));
        free(q);
    }
    free(w);
    free(back);
}

/* ---- thread pool ---- */

struct chunk_count {
    int64_t n;
    int threads;
    _Atomic int *hits;
    _Atomic int bad_thread;
};

static void count_chunk(void *p, int64_t c, int thread)
{
    struct chunk_count *cc = p;
    if (c < 0 || c >= cc->n || thread < 0 || thread >= cc->threads)
        cc->bad_thread = 1;
    else
        cc->hits[c]++;
}

static void count_all(void *p, int ith, int nth)
{
    struct chunk_count *cc = p;
    if (ith < 0 || ith >= nth || nth != cc->threads)
        cc->bad_thread = 1;
    else
        cc->hits[ith]++;
}

Test(pool, chunks_run_once_and_mix_with_run)
{
    for (int nt = 1; nt <= 3; nt++) {
        struct bn_pool *pool = bn_pool_create(nt);
        cr_assert_not_null(pool);
        for (int iter = 0; iter < 2000; iter++) {
            int64_t n = 1 + iter % 13;
            _Atomic int hits[16] = {0};
            struct chunk_count cc = {.n = n, .threads = bn_pool_threads(pool), .hits = hits};
            if (iter % 3 == 2) {
                bn_pool_run(pool, count_all, &cc);
                for (int i = 0; i < cc.threads; i++)
                    cr_assert_eq(hits[i], 1, "bn_pool_run: thread %d ran %d times", i, (int)hits[i]);
            } else {
                bn_pool_run_chunks(pool, count_chunk, &cc, n);
                for (int64_t i = 0; i < n; i++)
                    cr_assert_eq(hits[i], 1, "chunk %lld ran %d times", (long long)i, (int)hits[i]);
            }
            cr_assert_eq(cc.bad_thread, 0);
        }
        bn_pool_destroy(pool);
    }
}

Test(vec, tl_tables_identical_on_every_path)
{
    int8_t q[48 * 5];
    for (size_t i = 0; i < sizeof q; i++)
        q[i] = (int8_t)(rng() % 255 - 127);
    q[0] = -128; /* extremes */
    q[1] = 127;
    uint8_t a[BN_TL1_LUT_BYTES * 15], b[BN_TL1_LUT_BYTES * 15]; /* >= 5 TL2 groups */
    for (int p = 1; p < BN_PATH_COUNT; p++) {
        if (!bn_path_supported((enum bn_path)p))
            continue;
        const struct bn_vec_kernels *k = bn_vec_kernels_for((enum bn_path)p);
        memset(b, 0xaa, sizeof b);
        bn_tl1_luts_scalar(q, 15, a);
        k->tl1_luts(q, 15, b);
        cr_assert_arr_eq(a, b, 15 * BN_TL1_LUT_BYTES, "TL1 tables on %s", bn_path_name((enum bn_path)p));
        memset(b, 0xaa, sizeof b);
        bn_tl2_luts_scalar(q, 5, a);
        k->tl2_luts(q, 5, b);
        cr_assert_arr_eq(a, b, 5 * BN_TL2_LUT_BYTES, "TL2 tables on %s", bn_path_name((enum bn_path)p));
    }
}

Test(vec, add_and_relu2_mul_bit_identical)
{
    for (int64_t n = 1; n <= 1000; n += 333) {
        float *g = rand_acts(n), *u = rand_acts(n), *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
        g[0] = -0.0f;
        for (int p = 1; p < BN_PATH_COUNT; p++) {
            if (!bn_path_supported((enum bn_path)p))
                continue;
            const struct bn_vec_kernels *k = bn_vec_kernels_for((enum bn_path)p);
            memcpy(a, g, (size_t)n * 4);
            memcpy(b, g, (size_t)n * 4);
            bn_vec_scalar.relu2_mul(a, u, n);
            k->relu2_mul(b, u, n);
            cr_assert_arr_eq(a, b, (size_t)n * 4);
            bn_vec_scalar.add(a, u, n);
            k->add(b, u, n);
            cr_assert_arr_eq(a, b, (size_t)n * 4);
        }
        free(g);
        free(u);
        free(a);
        free(b);
    }
}
