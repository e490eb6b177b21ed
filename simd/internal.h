/* simd/internal.h — shared between the files of simd/ (and simd's own tests) only;
 * not a public header. */
#ifndef BN_SIMD_INTERNAL_H
#define BN_SIMD_INTERNAL_H

#include <math.h>
#include <string.h>

#include "simd.h"

#if defined(__x86_64__) || defined(__i386__)
#define BN_X86 1 /* the AVX2 / AVX-512 kernel files are compiled */
#else
#define BN_X86 0
#endif

/* Block geometry of the formats (REFERENCE §4, ggml). */
#define BN_QK_I2S 128        /* I2_S: weights per block (x86 layout) */
#define BN_I2S_BLOCK_BYTES 32
#define BN_I2S_TAIL_BYTES 32 /* f32 scale + 28 bytes of padding */
#define BN_QK_K 256          /* super-block of K-quants and TQ formats */
#define BN_QK8_0 32
#define BN_TQ2_BLOCK_BYTES 66 /* qs[64] + f16 d */
#define BN_TQ1_BLOCK_BYTES 54 /* qs[48] + qh[4] + f16 d */
#define BN_Q8_0_BLOCK_BYTES 34
#define BN_Q6_K_BLOCK_BYTES 210 /* ql[128] qh[64] scales[16] d */

/* Activation quantization limit (REFERENCE §3). */
#define BN_ACT_EPS 1e-5f

/* ---- bitnetd's repacked ternary layouts (simd/fmt_r16.c) ----
 *
 * I2_R16: rows in panels of BN_R16_ROWS (the last panel may be shorter: h rows).
 *   Panel p starts at byte p * 16 * cols/4.  Inside it, each group of 16 columns
 *   takes 4*h bytes: byte 4*r + (k % 4) holds, at bits 2*((k % 16) / 4), the code
 *   w + 1 (0, 1, 2) of row r, column k.  One 64-byte load thus gives 16 rows x 16
 *   columns, and (byte >> 2j) & 3 is a vector of 16 rows x 4 consecutive columns:
 *   exactly what vpdpbusd (u8 x s8, 4 products per int32 lane) wants.  Same bytes as
 *   I2_S (cols/4 per row) and the same 32-byte tail holding the f32 tensor scale.
 * TQ_R16: the same panels, but every 256 columns of a panel end with the h rows'
 *   f32 block scales: [codes 64*h bytes][scales 4*h bytes] per 256 columns, i.e. 68
 *   bytes per row per 256 weights.  Holds TQ1_0/TQ2_0 whose block scales differ. */
#define BN_R16_ROWS 16
#define BN_R16_GROUP 16                          /* columns per 4-byte lane group */
#define BN_TQR16_BLOCK_BYTES (BN_QK_K / 4 + 4)   /* per row per 256 weights */

/* ---- int8 activations prepared for the ternary kernels ----
 * bn_matmul quantizes each token once (q, scale, sum) and lets the layout prepare
 * what its kernels read (prep): for the R16 kernels, tokens in blocks of
 * BN_ACT_BLOCK with 4-byte column groups interleaved, [cols/4][T] int32 per block, so
 * that one broadcast feeds one vpdpbusd and a block is read as one stream. */
#define BN_ACT_BLOCK 16 /* max tokens per GEMM tile: accumulators of the AVX-512 tile
                         * (more than ~18 make GCC spill them; measured on Zen 4) */
/* n tokens are cut into ceil(n / BN_ACT_BLOCK) blocks of nearly equal size (20 ->
 * 10 + 10, not 16 + 4: small tiles waste the unpacking); block b is tokens
 * [*t0, *t0 + *tb), and its prepared activations start at byte *t0 * cols. */
static inline int64_t bn_act_blocks(int64_t n) { return (n + BN_ACT_BLOCK - 1) / BN_ACT_BLOCK; }
static inline void bn_act_block(int64_t n, int64_t b, int64_t *t0, int64_t *tb)
{
    int64_t nb = bn_act_blocks(n);
    *t0 = n * b / nb;
    *tb = n * (b + 1) / nb - *t0;
}
struct bn_act_i8 {
    int64_t n_tokens, cols;
    const int8_t *q;     /* [n_tokens][cols] */
    const float *scale;  /* [n_tokens]: q = x * scale */
    const int32_t *sum;  /* [n_tokens]: sum of q over the row */
    const void *prep;    /* layout-specific (traits act_prep), NULL if none */
};

/* Table-lookup layouts (simd/fmt_tl.c; bit layout described there) and their
 * per-token lookup tables (simd/kern_tl.c): per 16-column TL1 group 4 x 64 bytes
 * (low bytes of pairs 0-3, of pairs 4-7, then the high bytes), per 48-column TL2
 * group 4 index vectors x (64 low + 64 high bytes). */
#define BN_TL_ROWS 16             /* rows per panel: one 16-byte pshufb lane */
#define BN_TL1_LUT_BYTES 256      /* per token per TL1 group */
#define BN_TL2_LUT_BYTES 512      /* per token per TL2 group */
size_t bn_tl1_row_bytes(int64_t cols);
size_t bn_tl2_row_bytes(int64_t cols);
size_t bn_tl_lut_bytes(enum bn_type type, int64_t cols); /* per token */
size_t bn_act_prep_tl1_bytes(int64_t n_tokens, int64_t cols);
size_t bn_act_prep_tl2_bytes(int64_t n_tokens, int64_t cols);
void bn_act_prep_tl1(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1);
void bn_act_prep_tl2(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1);
void bn_gemm_tl1_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y);
void bn_gemm_tl2_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y);
void bn_gemm_tl1_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y);
void bn_gemm_tl2_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y);
void bn_gemm_tl1_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y);
void bn_gemm_tl2_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const struct bn_act_i8 *a, float *y);

static inline uint16_t bn_rd_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline void bn_wr_u16(void *p, uint16_t v) { memcpy(p, &v, 2); }

/* Row formats (simd/fmt_*.c). */
void bn_f32_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_f16_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_bf16_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_q8_0_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_q6_k_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_i2s_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_tq2_row_to_float(const void *row, float *dst, int64_t n, float scale);
void bn_tq1_row_to_float(const void *row, float *dst, int64_t n, float scale);

size_t bn_f32_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_f16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_bf16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_q8_0_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_q6_k_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_i2s_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_tq2_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_tq1_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_i2r16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_tqr16_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_tl1_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);
size_t bn_tl2_quantize(const float *src, void *dst, int64_t nrows, int64_t ncols);

/* Ternary codes of a whole tensor: each value -> -1/0/+1 and one scale
 * (exact when values are already {-s,0,+s}; absmean rule otherwise). */
float bn_ternarize(const float *src, int64_t n, int8_t *codes);

/* Ternary row -> int8 codes {-1,0,1}, n multiple of the block size; and the block
 * scales (TQ formats: one per 256; I2_S: none, returns 0 scales). */
void bn_i2s_row_codes(const void *row, int8_t *codes, int64_t n);
void bn_tq2_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d);
void bn_tq1_row_codes(const void *row, int8_t *codes, int64_t n, float *block_d);

/* Codes access of every ternary format (traits codes_get / codes_put). */
void bn_i2s_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale);
void bn_i2s_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale);
void bn_tq2_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale);
void bn_tq2_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale);
void bn_tq1_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale);
void bn_tq1_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale);
void bn_i2r16_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                        float *bscale);
void bn_i2r16_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                        const int8_t *codes, const float *bscale);
void bn_tqr16_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                        float *bscale);
void bn_tqr16_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                        const int8_t *codes, const float *bscale);
void bn_tl1_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale);
void bn_tl1_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale);
void bn_tl2_codes_get(const void *data, int64_t rows, int64_t cols, int64_t r, int8_t *codes,
                      float *bscale);
void bn_tl2_codes_put(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                      const int8_t *codes, const float *bscale);
/* Direct I2_S -> I2_R16 repack (simd/fmt_r16.c), same result as through codes. */
void bn_i2s_to_i2r16(const void *src, void *dst, int64_t rows, int64_t cols);
/* Quantize [nrows][ncols] floats into any ternary format through its codes_put
 * (ternarized as bn_ternarize does). */
size_t bn_ternary_quantize_via_codes(enum bn_type type, const float *src, void *dst,
                                     int64_t nrows, int64_t ncols);

/* Scalar reference kernels (simd/matmul.c). */
void bn_gemm_i8_ternary_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                               const int8_t *xq, const float *xs, int64_t n_tokens, float *y);
void bn_gemm_f32_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                        int64_t n_tokens, float *y, float *scratch);
/* Any ternary layout with codes_get: codes and block scales per row, then the same
 * integer dot and float op order as bn_gemm_i8_ternary_scalar. */
void bn_gemm_i8_codes_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                             const int8_t *xq, const float *xs, int64_t n_tokens, float *y);
void bn_gemm_act_codes_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1,
                              const struct bn_act_i8 *a, float *y);
/* Float activations through codes_get (BN_MM_FLOAT_ACT on repacked layouts). */
void bn_gemm_f32_codes_scalar(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                              int64_t n_tokens, float *y, float *scratch);

/* Activation preparation (simd/act.c). */
size_t bn_act_prep_r16_bytes(int64_t n_tokens, int64_t cols);
void bn_act_prep_r16(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1);
size_t bn_act_prep_tq_bytes(int64_t n_tokens, int64_t cols);
void bn_act_prep_tq(const struct bn_act_i8 *a, void *buf, int64_t t0, int64_t t1);
const int32_t *bn_act_prep_tq_block_sums(const struct bn_act_i8 *a);
/* Prepare `a` over caller memory and call a gemm_act kernel (the gemm_i8 entry of
 * layouts whose kernels take prepared activations). */
void bn_gemm_i8_via_act(const struct bn_matrix *w, int64_t r0, int64_t r1, const int8_t *xq,
                        const float *xs, int64_t n_tokens, float *y);

/* R16 kernels (simd/kern_r16_*.c). */
void bn_gemm_i2r16_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1,
                          const struct bn_act_i8 *a, float *y);
void bn_gemm_tqr16_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1,
                          const struct bn_act_i8 *a, float *y);
void bn_gemm_i2r16_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1,
                        const struct bn_act_i8 *a, float *y);
void bn_gemm_tqr16_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1,
                        const struct bn_act_i8 *a, float *y);

struct bn_ternary_stats {
    double sum;
    float amax, min_nonzero;
    bool nan;
};
#define BN_TERNARY_SUM_LANES 32

/* Per-path vector kernels (simd/vec*.c); the public bn_* vector ops call the ones of
 * bn_path_default().  Tests call each path's table directly. */
struct bn_vec_kernels {
    /* q = clamp(rint(x * s)), s = 127 / max(max|x|, eps); *sum = sum of q (may be NULL) */
    float (*quantize_act_i8)(const float *x, int64_t n, int8_t *q, int32_t *sum);
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    void (*softmax)(float *x, int64_t n);
    /* rotate n_heads heads by precomputed cos/sin of the half dims */
    void (*rope_apply)(float *x, int n_heads, int head_dim, const float *cs, const float *sn);
    float (*dot)(const float *a, const float *b, int64_t n);
    void (*axpy)(float *y, float a, const float *x, int64_t n);
    void (*add)(float *y, const float *x, int64_t n);
    void (*relu2_mul)(float *g, const float *u, int64_t n);
    void (*f16_to_f32)(const uint16_t *src, float *dst, int64_t n);
    void (*f32_to_f16)(const float *src, uint16_t *dst, int64_t n);
    /* Ternary quantization (simd/fmt_ternary.c).  stats: max |x|, smallest non-zero
     * |x| (INFINITY if none), whether a NaN was seen, and sum |x| accumulated in 32
     * double lanes (element i into lane i % 32 for i < n - n % 32, the rest into
     * lanes 0, 1, ... in order) combined as s[k] += s[k + h] for h = 16, 8, 4, 2, 1:
     * the same sum on every path. */
    void (*ternary_stats)(const float *x, int64_t n, struct bn_ternary_stats *out);
    /* codes: exact ? sign(x) : (x * inv > 0.5) - (x * inv < -0.5) */
    void (*ternary_codes)(const float *x, int64_t n, float inv, bool exact, int8_t *codes);
    /* 128 codes -> 32 bytes: byte m = sum_k (c[32k + m] + 1) << shift_k, shifts
     * 6,4,2,0 (I2_S, msb_first) or 0,2,4,6 (TQ2_0); n a multiple of 128. */
    void (*pack2)(const int8_t *codes, int64_t n, uint8_t *out, int64_t out_stride, bool msb_first);
    /* TL lookup tables of one token for n_groups groups (simd/kern_tl.c layout): TL1
     * from 16 activations per group, TL2 from 48. */
    void (*tl1_luts)(const int8_t *q, int64_t n_groups, uint8_t *lut);
    void (*tl2_luts)(const int8_t *q, int64_t n_groups, uint8_t *lut);
};
void bn_tl1_luts_scalar(const int8_t *q, int64_t n_groups, uint8_t *lut);
void bn_tl2_luts_scalar(const int8_t *q, int64_t n_groups, uint8_t *lut);
const struct bn_vec_kernels *bn_vec_kernels_for(enum bn_path path);
extern const struct bn_vec_kernels bn_vec_scalar;
extern const struct bn_vec_kernels bn_vec_avx2;
extern const struct bn_vec_kernels bn_vec_avx512;
float bn_quantize_act_i8_sum(const float *x, int64_t n, int8_t *q, int32_t *sum);

/* Several tokens through a head kernel (the logits of a batched decode step): each
 * row meets a group of tokens while it is in L1, and groups of tokens take turns
 * over a block of rows that stays in L2, so neither the weights (from memory) nor
 * the activations (from L2) are streamed once per token.  Sizes for 32 KB L1D /
 * >= 512 KB L2 per core; each token's arithmetic is the same whatever the grouping. */
#define BN_HEAD_GROUP_TOKENS 4            /* most tokens per row pass (accumulators) */
#define BN_HEAD_L1_ACT_BYTES (24u << 10)  /* activations of one token group */
#define BN_HEAD_L2_ROW_BYTES (256u << 10) /* weights of one row block */
struct head_blocking {
    int64_t rows;   /* rows per block */
    int64_t tokens; /* tokens per group, 1..BN_HEAD_GROUP_TOKENS */
};
static inline struct head_blocking head_blocking(size_t row_bytes, size_t token_bytes)
{
    struct head_blocking b;
    b.rows = (int64_t)(BN_HEAD_L2_ROW_BYTES / (row_bytes ? row_bytes : 1));
    b.rows = b.rows < 1 ? 1 : b.rows;
    b.tokens = (int64_t)(BN_HEAD_L1_ACT_BYTES / (token_bytes ? token_bytes : 1));
    b.tokens = b.tokens < 1 ? 1 : b.tokens > BN_HEAD_GROUP_TOKENS ? BN_HEAD_GROUP_TOKENS : b.tokens;
    return b;
}

/* One row pass of a head kernel: row p, nt tokens (activations xa, token_bytes
 * apart), outputs y[t * ystride]. */
typedef void (*head_rows_fn)(const uint8_t *p, const uint8_t *xa, size_t token_bytes,
                             int64_t cols, int64_t nt, float *y, int64_t ystride);

/* Two rows at once (p, q = p + a row), outputs y[t * ystride] and y[t * ystride + 1]. */
typedef void (*head_pair_fn)(const uint8_t *p, const uint8_t *q, const uint8_t *xa,
                             size_t token_bytes, int64_t cols, int64_t nt, float *y,
                             int64_t ystride);

/* Rows r0..r1 of w against n_tokens activations (xa, token_bytes apart, as floats
 * or a kernel's quantized form), walked as head_blocking says with groups of at
 * most max_group tokens; y is [n_tokens][w->rows].  With a pair kernel, rows go two
 * at a time (the kernel prefetches the rows ahead itself: the hardware prefetcher
 * follows two interleaved rows badly) and several tokens go in groups of max_group
 * whatever L1 holds (each activation load feeds two rows, so they may come from L2).
 * A row left without a partner takes the one-row kernel, which gives it the same
 * arithmetic. */
static inline void head_walk_pairs(const struct bn_matrix *w, int64_t r0, int64_t r1,
                                   const uint8_t *xa, size_t token_bytes, int64_t n_tokens,
                                   int64_t max_group, float *y, head_rows_fn rows,
                                   head_pair_fn pair)
{
    size_t rb = bn_row_bytes(w->type, w->cols);
    struct head_blocking hb = head_blocking(rb, token_bytes);
    hb.tokens = pair && n_tokens > 1 ? max_group : hb.tokens < max_group ? hb.tokens : max_group;
    if (pair)
        hb.rows += hb.rows & 1; /* whole pairs: a block's odd row would go alone */
    for (int64_t b0 = r0; b0 < r1; b0 += hb.rows) {
        int64_t b1 = r1 - b0 < hb.rows ? r1 : b0 + hb.rows;
        for (int64_t t = 0; t < n_tokens; t += hb.tokens) {
            int64_t nt = n_tokens - t < hb.tokens ? n_tokens - t : hb.tokens;
            for (int64_t r = b0; r < b1;) {
                const uint8_t *p = (const uint8_t *)w->data + (size_t)r * rb;
                float *yr = y + t * w->rows + r;
                if (pair && r + 1 < b1) {
                    pair(p, p + rb, xa + (size_t)t * token_bytes, token_bytes, w->cols, nt, yr,
                         w->rows);
                    r += 2;
                } else {
                    rows(p, xa + (size_t)t * token_bytes, token_bytes, w->cols, nt, yr, w->rows);
                    r++;
                }
            }
        }
    }
}

static inline void head_walk(const struct bn_matrix *w, int64_t r0, int64_t r1, const uint8_t *xa,
                             size_t token_bytes, int64_t n_tokens, int64_t max_group, float *y,
                             head_rows_fn rows)
{
    head_walk_pairs(w, r0, r1, xa, token_bytes, n_tokens, max_group, y, rows, NULL);
}

/* A head kernel with int8 activations (Q8_0, Q6_K), expanded in each kern_head_*.c
 * under its target: all tokens are quantized (token_bytes, quant_token) into the
 * scratch first — one token at a time through the rows would re-stream the matrix
 * per token — then head_walk takes the rows in L2-sized blocks, the tokens max_group
 * (<= 4) at a time, through row_dot instantiated per token count (the accumulators
 * stay in registers). */
#define HEAD_INT8_KERNEL(name, token_bytes, quant_token, row_dot, max_group)              \
    static void name##_rows(const uint8_t *p, const uint8_t *xa, size_t tb, int64_t cols,  \
                            int64_t nt, float *y, int64_t ystride)                         \
    {                                                                                      \
        switch (nt) {                                                                      \
        case 1: row_dot(p, xa, tb, cols, 1, y, ystride); break;                            \
        case 2: row_dot(p, xa, tb, cols, 2, y, ystride); break;                            \
        case 3: row_dot(p, xa, tb, cols, 3, y, ystride); break;                            \
        default: row_dot(p, xa, tb, cols, 4, y, ystride); break;                           \
        }                                                                                  \
    }                                                                                      \
    void name(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,           \
              int64_t n_tokens, float *y, float *scratch)                                  \
    {                                                                                      \
        int64_t cols = w->cols;                                                            \
        size_t tb = (token_bytes(cols) + 63) / 64 * 64;                                    \
        uint8_t *xa = (uint8_t *)scratch;                                                  \
        for (int64_t t = 0; t < n_tokens; t++)                                             \
            quant_token(x + t * cols, cols, xa + (size_t)t * tb);                          \
        head_walk(w, r0, r1, xa, tb, n_tokens, max_group, y, name##_rows);                 \
    }

/* Float-activation kernels of the float head formats (simd/kern_head_*.c); the Q8_0
 * and Q6_K ones quantize activations per block into bn_head_act_bytes of scratch. */
size_t bn_head_act_bytes(int64_t n_tokens, int64_t cols);
void bn_gemm_f16_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                      int64_t n_tokens, float *y, float *scratch);
void bn_gemm_f16_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                        int64_t n_tokens, float *y, float *scratch);
void bn_gemm_q8_0_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                       int64_t n_tokens, float *y, float *scratch);
void bn_gemm_q8_0_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                         int64_t n_tokens, float *y, float *scratch);
void bn_gemm_q6_k_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                       int64_t n_tokens, float *y, float *scratch);
void bn_gemm_q6_k_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                         int64_t n_tokens, float *y, float *scratch);
void bn_gemm_f32_avx2(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                      int64_t n_tokens, float *y, float *scratch);
void bn_gemm_f32_avx512(const struct bn_matrix *w, int64_t r0, int64_t r1, const float *x,
                        int64_t n_tokens, float *y, float *scratch);

/* Pool scratch (simd/pool.c): per-pool memory reused across bn_matmul calls. */
void *bn_pool_scratch(struct bn_pool *pool, size_t bytes);

#endif
