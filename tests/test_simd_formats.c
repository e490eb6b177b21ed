/* Tests of the format traits: sizes, f16, quantize -> dequantize round trips, and
 * the scalar ternary matmul against a float computation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((rng() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }

Test(traits, sizes)
{
    uint64_t b;
    cr_assert(bn_tensor_bytes(BN_TYPE_I2_S, 2560, 2560, &b));
    cr_assert_eq(b, 2560ull * 2560 / 4 + 32);
    cr_assert(bn_tensor_bytes(BN_TYPE_F16, 128256, 2560, &b));
    cr_assert_eq(b, 128256ull * 2560 * 2);
    cr_assert(bn_tensor_bytes(BN_TYPE_TQ2_0, 640, 2560, &b));
    cr_assert_eq(b, 640ull * 10 * 66);
    cr_assert(bn_tensor_bytes(BN_TYPE_TQ1_0, 1, 256, &b));
    cr_assert_eq(b, 54);
    cr_assert(bn_tensor_bytes(BN_TYPE_Q6_K, 1, 512, &b));
    cr_assert_eq(b, 420);
    cr_assert_not(bn_tensor_bytes(BN_TYPE_I2_S, 2, 100, &b), "cols not a multiple of 128");
    cr_assert_not(bn_tensor_bytes(BN_TYPE_F32, INT64_MAX / 2, 8, &b), "overflow");
    cr_assert_null(bn_type_from_gguf(38));
    cr_assert_str_eq(bn_type_from_gguf(36)->name, "I2_S");
}

Test(f16, round_trip_and_rounding)
{
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* nan */
        cr_assert_eq(bn_f32_to_f16(bn_f16_to_f32((uint16_t)h)), h, "h=%04x", h);
    }
    cr_assert_eq(bn_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie -> even */
    cr_assert_eq(bn_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
    cr_assert_eq(bn_f32_to_f16(70000.0f), 0x7c00);
}

static void ternary_round_trip(enum bn_type type, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    float *w = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
    float s = 0.0375f;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng() % 3;
        w[i] = r == 0 ? 0.0f : r == 1 ? s : -s;
    }
    uint64_t bytes;
    cr_assert(bn_tensor_bytes(type, rows, cols, &bytes));
    uint8_t *q = malloc(bytes);
    const struct bn_type_traits *tr = bn_type_traits(type);
    cr_assert_eq(tr->quantize(w, q, rows, cols), bytes);
    float scale = bn_tensor_scale(type, q, rows, cols);
    size_t rb = bn_row_bytes(type, cols);
    for (int64_t r = 0; r < rows; r++)
        tr->row_to_float(q + r * rb, back + r * cols, cols, scale);
    /* TQ formats keep the scale as f16; I2_S keeps it as f32 */
    float ds = type == BN_TYPE_I2_S ? s : bn_f16_to_f32(bn_f32_to_f16(s));
    for (int64_t i = 0; i < n; i++) {
        float want = w[i] > 0 ? ds : w[i] < 0 ? -ds : 0.0f;
        cr_assert_eq(back[i], want, "%s element %lld: %g != %g", tr->name, (long long)i, back[i], want);
    }
    free(w);
    free(back);
    free(q);
}

Test(ternary, exact_round_trips)
{
    ternary_round_trip(BN_TYPE_I2_S, 3, 256);
    ternary_round_trip(BN_TYPE_TQ2_0, 3, 512);
    ternary_round_trip(BN_TYPE_TQ1_0, 3, 512);
}

Test(ternary, i2s_bit_layout)
{
    /* weight j of a 128-block: byte j % 32, shift 6 - 2 * (j / 32), code q + 1 */
    float w[128] = {0};
    w[0] = 1.0f;   /* code 2 at byte 0 bits 6-7 */
    w[33] = -1.0f; /* code 0 at byte 1 bits 4-5 */
    w[127] = 1.0f; /* code 2 at byte 31 bits 0-1 */
    uint8_t q[32 + 32];
    bn_type_traits(BN_TYPE_I2_S)->quantize(w, q, 1, 128);
    cr_assert_eq(q[0], (2 << 6) | (1 << 4) | (1 << 2) | 1);
    cr_assert_eq(q[1], (1 << 6) | (0 << 4) | (1 << 2) | 1);
    cr_assert_eq(q[31], (1 << 6) | (1 << 4) | (1 << 2) | 2);
    float scale;
    memcpy(&scale, q + 32, 4);
    cr_assert_eq(scale, 1.0f);
}

Test(matmul, ternary_matches_float_math)
{
    int64_t rows = 37, cols = 512, nt = 3;
    float *w = malloc(rows * cols * sizeof(float)), *x = malloc(nt * cols * sizeof(float));
    for (int64_t i = 0; i < rows * cols; i++) {
        uint64_t r = rng() % 3;
        w[i] = r == 0 ? 0.0f : r == 1 ? 0.5f : -0.5f;
    }
    for (int64_t i = 0; i < nt * cols; i++)
        x[i] = frand();
    enum bn_type types[] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    float ref[3][37 * 3];
    for (int k = 0; k < 3; k++) {
        uint64_t bytes;
        bn_tensor_bytes(types[k], rows, cols, &bytes);
        void *q = malloc(bytes);
        bn_type_traits(types[k])->quantize(w, q, rows, cols);
        struct bn_matrix m;
        cr_assert(bn_matrix_init(&m, types[k], q, rows, cols, types[k], NULL, BN_PATH_SCALAR, NULL, 0));
        bn_matmul(NULL, &m, x, nt, ref[k], 0);
        free(q);
    }
    /* Same ternary values and per-token activation quantization: identical output. */
    cr_assert_arr_eq(ref[0], ref[1], sizeof(float) * rows * nt);
    cr_assert_arr_eq(ref[0], ref[2], sizeof(float) * rows * nt);
    /* Against the integer math done here. */
    int8_t xq[512];
    for (int64_t t = 0; t < nt; t++) {
        float s = bn_quantize_act_i8(x + t * cols, cols, xq);
        for (int64_t r = 0; r < rows; r++) {
            int32_t acc = 0;
            for (int64_t c = 0; c < cols; c++)
                acc += (w[r * cols + c] > 0 ? 1 : w[r * cols + c] < 0 ? -1 : 0) * xq[c];
            cr_assert_float_eq(ref[0][t * rows + r], (float)acc / s * 0.5f, 1e-5);
        }
    }
    free(w);
    free(x);
}

Test(act_quant, round_half_even_and_clamp)
{
    float x[4] = {127.0f, 0.5f, 1.5f, -127.0f};
    int8_t q[4];
    float s = bn_quantize_act_i8(x, 4, q);
    cr_assert_eq(s, 1.0f);
    cr_assert_eq(q[1], 0);
    cr_assert_eq(q[2], 2);
    cr_assert_eq(q[3], -127);
}
