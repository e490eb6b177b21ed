/* simd/vec.c — vector ops on float rows: the scalar reference kernels, the choice of
 * the per-path kernel table (simd/vec_avx2.c, simd/vec_avx512.c) and the public
 * bn_* wrappers. */
#include <stdatomic.h>

#include "internal.h"

#define BN_ROPE_CACHE_DIM 1024 /* head dims up to this use the per-thread cos/sin cache */

/* ---- scalar reference ---- */

static float quantize_act_i8_scalar(const float *x, int64_t n, int8_t *q, int32_t *sum)
{
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float s = 127.0f / fmaxf(amax, BN_ACT_EPS);
    int32_t acc = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = rintf(x[i] * s); /* current rounding mode: nearest, ties to even */
        q[i] = v != v ? 0 : (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : v); /* NaN: 0 */
        acc += q[i];
    }
    if (sum)
        *sum = acc;
    return s;
}

static void rmsnorm_scalar(float *out, const float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    if (w) {
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i] * inv * w[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i] * inv;
    }
}

static void softmax_scalar(float *x, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        mx = fmaxf(mx, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

static void rope_apply_scalar(float *x, int n_heads, int head_dim, const float *cs, const float *sn)
{
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cs[i] - b * sn[i];
            v[i + half] = a * sn[i] + b * cs[i];
        }
    }
}

static float dot_scalar(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_scalar(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void add_scalar(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

static void relu2_mul_scalar(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = g[i] > 0.0f ? g[i] : 0.0f;
        g[i] = v * v * u[i];
    }
}

static void f16_to_f32_scalar(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = bn_f16_to_f32(src[i]);
}

static void f32_to_f16_scalar(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = bn_f32_to_f16(src[i]);
}

static void ternary_stats_scalar(const float *x, int64_t n, struct bn_ternary_stats *out)
{
    double s[BN_TERNARY_SUM_LANES] = {0};
    float amax = 0.0f, mnz = INFINITY;
    bool nan = false;
    int64_t full = n - n % BN_TERNARY_SUM_LANES;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        s[i < full ? i % BN_TERNARY_SUM_LANES : i - full] += a;
        amax = a > amax ? a : amax;
        mnz = a > 0.0f && a < mnz ? a : mnz;
        nan |= a != a;
    }
    for (int h = BN_TERNARY_SUM_LANES / 2; h >= 1; h /= 2)
        for (int k = 0; k < h; k++)
            s[k] += s[k + h];
    *out = (struct bn_ternary_stats){.sum = s[0], .amax = amax, .min_nonzero = mnz, .nan = nan};
}

static void ternary_codes_scalar(const float *x, int64_t n, float inv, bool exact, int8_t *codes)
{
    for (int64_t i = 0; i < n; i++) {
        float v = exact ? x[i] : x[i] * inv;
        codes[i] = exact ? (int8_t)((v > 0.0f) - (v < 0.0f)) : (int8_t)((v > 0.5f) - (v < -0.5f));
    }
}

static void pack2_scalar(const int8_t *c, int64_t n, uint8_t *out, int64_t out_stride, bool msb_first)
{
    for (int64_t i = 0; i < n; i += 128, c += 128, out += out_stride)
        for (int m = 0; m < 32; m++) {
            unsigned v = 0;
            for (int k = 0; k < 4; k++)
                v |= (unsigned)(c[32 * k + m] + 1) << (msb_first ? 6 - 2 * k : 2 * k);
            out[m] = (uint8_t)v;
        }
}

const struct bn_vec_kernels bn_vec_scalar = {
    .quantize_act_i8 = quantize_act_i8_scalar,
    .rmsnorm = rmsnorm_scalar,
    .softmax = softmax_scalar,
    .rope_apply = rope_apply_scalar,
    .dot = dot_scalar,
    .axpy = axpy_scalar,
    .add = add_scalar,
    .relu2_mul = relu2_mul_scalar,
    .f16_to_f32 = f16_to_f32_scalar,
    .f32_to_f16 = f32_to_f16_scalar,
    .ternary_stats = ternary_stats_scalar,
    .ternary_codes = ternary_codes_scalar,
    .pack2 = pack2_scalar,
    .tl1_luts = bn_tl1_luts_scalar,
    .tl2_luts = bn_tl2_luts_scalar,
};

#if !BN_X86
const struct bn_vec_kernels bn_vec_avx2 = {0};   /* never chosen: the paths are x86 only */
const struct bn_vec_kernels bn_vec_avx512 = {0};
#endif

/* ---- dispatch ---- */

const struct bn_vec_kernels *bn_vec_kernels_for(enum bn_path path)
{
    static const struct bn_vec_kernels *const by_path[BN_PATH_COUNT] = {
        [BN_PATH_SCALAR] = &bn_vec_scalar,
        [BN_PATH_AVX2] = &bn_vec_avx2,
        [BN_PATH_AVX512] = &bn_vec_avx512,
    };
    return (unsigned)path < BN_PATH_COUNT && bn_path_supported(path) ? by_path[path] : &bn_vec_scalar;
}

/* The table of bn_path_default(), looked up once. */
static const struct bn_vec_kernels *vk(void)
{
    static _Atomic(const struct bn_vec_kernels *) cached;
    const struct bn_vec_kernels *k = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!k) {
        k = bn_vec_kernels_for(bn_path_default());
        atomic_store_explicit(&cached, k, memory_order_relaxed);
    }
    return k;
}

/* ---- public ops ---- */

void bn_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    vk()->rmsnorm(out, x, w, n, eps);
}

void bn_softmax(float *x, int64_t n) { vk()->softmax(x, n); }

float bn_dot_f32(const float *a, const float *b, int64_t n) { return vk()->dot(a, b, n); }

void bn_axpy_f32(float *y, float a, const float *x, int64_t n) { vk()->axpy(y, a, x, n); }

void bn_add_f32(float *y, const float *x, int64_t n) { vk()->add(y, x, n); }

void bn_relu2_mul_f32(float *g, const float *u, int64_t n) { vk()->relu2_mul(g, u, n); }

void bn_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n) { vk()->f16_to_f32(src, dst, n); }

void bn_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) { vk()->f32_to_f16(src, dst, n); }

/* cos/sin of theta_i = pos * base^(-2i/d), computed in double for stability at large
 * pos.  The same position is rotated for q and k of every layer, so each thread
 * keeps the last table it made. */
static void rope_table(int64_t pos, int head_dim, float base, float *cs, float *sn)
{
    for (int i = 0; i < head_dim / 2; i++) {
        double theta = (double)pos * pow((double)base, -2.0 * i / head_dim);
        cs[i] = (float)cos(theta);
        sn[i] = (float)sin(theta);
    }
}

void bn_rope_neox(float *x, int n_heads, int head_dim, int64_t pos, float base)
{
    static _Thread_local struct {
        int64_t pos;
        int head_dim;
        float base;
        float cs[BN_ROPE_CACHE_DIM / 2], sn[BN_ROPE_CACHE_DIM / 2];
    } c = {.head_dim = -1};
    if (head_dim > BN_ROPE_CACHE_DIM || head_dim < 2) {
        float cs[1], sn[1];
        for (int i = 0; i < head_dim / 2; i++) { /* rare shape: one dim at a time */
            double theta = (double)pos * pow((double)base, -2.0 * i / head_dim);
            cs[0] = (float)cos(theta);
            sn[0] = (float)sin(theta);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + (int64_t)h * head_dim;
                float a = v[i], b = v[i + head_dim / 2];
                v[i] = a * cs[0] - b * sn[0];
                v[i + head_dim / 2] = a * sn[0] + b * cs[0];
            }
        }
        return;
    }
    if (c.pos != pos || c.head_dim != head_dim || c.base != base) {
        rope_table(pos, head_dim, base, c.cs, c.sn);
        c.pos = pos;
        c.head_dim = head_dim;
        c.base = base;
    }
    vk()->rope_apply(x, n_heads, head_dim, c.cs, c.sn);
}
