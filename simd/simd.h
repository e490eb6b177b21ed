/* simd/simd.h — tensor formats, ternary kernels, vector ops, threads, CPU dispatch.
 *
 * The only header of simd/.  Depends on nothing but libc.  Everything the rest of
 * bitnetd knows about a tensor format goes through the traits table below: adding a
 * format is adding a row in simd/traits.c, never a `switch (type)` elsewhere.
 *
 * Conventions
 *   - A matrix W has `rows` outputs and `cols` inputs; in GGUF terms cols = ne[0],
 *     rows = ne[1] (ggml lists the fastest-varying dimension first).  Row r is the
 *     bn_row_bytes(type, cols) bytes at offset r * bn_row_bytes(type, cols) — except
 *     in bitnetd's repacked layouts (I2_R16, TQ_R16, TL1, TL2), which interleave
 *     panels of 16 rows (same total size; read them through codes_get).
 *   - Activations are float [n_tokens][cols] row-major; outputs float [n_tokens][rows].
 *   - Every SIMD path has a scalar reference path computing the same thing; for the
 *     integer (ternary x int8) kernels the results are bit-identical.
 */
#ifndef BN_SIMD_H
#define BN_SIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel paths, chosen at run time (see "CPU dispatch" below). */
enum bn_path {
    BN_PATH_SCALAR = 0,
    BN_PATH_AVX2 = 1,   /* AVX2 + FMA + F16C */
    BN_PATH_AVX512 = 2, /* AVX-512 F/BW/VL/DQ + VNNI */
    BN_PATH_COUNT
};

/* ------------------------------------------------------------------------------
 * Tensor formats.  Values below 64 are GGUF/ggml type ids (the value stored in a
 * GGUF tensor info); 64 and up are bitnetd's own in-memory layouts, which never
 * appear in a file.
 * --------------------------------------------------------------------------- */
enum bn_type {
    BN_TYPE_F32 = 0,
    BN_TYPE_F16 = 1,
    BN_TYPE_Q4_0 = 2,
    BN_TYPE_Q4_1 = 3,
    BN_TYPE_Q5_0 = 6,
    BN_TYPE_Q5_1 = 7,
    BN_TYPE_Q8_0 = 8,
    BN_TYPE_Q8_1 = 9,
    BN_TYPE_Q2_K = 10,
    BN_TYPE_Q3_K = 11,
    BN_TYPE_Q4_K = 12,
    BN_TYPE_Q5_K = 13,
    BN_TYPE_Q6_K = 14,
    BN_TYPE_Q8_K = 15,
    BN_TYPE_BF16 = 30,
    BN_TYPE_TQ1_0 = 34,
    BN_TYPE_TQ2_0 = 35,
    BN_TYPE_I2_S = 36, /* bitnet.cpp x86 layout, REFERENCE §4 */
    /* 37..39 are bitnet.cpp's I8_S/TL1/TL2 ids: their layouts are shape-specific
     * and not supported in files; the reader names them in its error. */

    /* bitnetd in-memory layouts (never in a file) */
    BN_TYPE_I8_ACT = 64, /* int8 per-token activations (+ float scale per token) */
    BN_TYPE_TL1 = 65,    /* table lookup, 2 weights per 4-bit index (REFERENCE §5) */
    BN_TYPE_TL2 = 66,    /* table lookup, 3 weights per 5-bit index */
    /* 67..79: repacked layouts private to a kernel path (see simd/internal.h) */
    BN_TYPE_I2_R16 = 67, /* ternary codes in 16-row panels for the vpdpbusd kernels */
    BN_TYPE_TQ_R16 = 68, /* the same with one f32 scale per row per 256 columns */
    BN_TYPE_COUNT = 80
};

/* Dequantize n elements starting at the beginning of `row` (n is a multiple of
 * block_elems).  tensor_scale is bn_tensor_scale() of the tensor for formats that
 * keep one scale per tensor (I2_S, TL1, TL2); other formats ignore it. */
typedef void (*bn_row_to_float_fn)(const void *row, float *dst, int64_t n, float tensor_scale);

/* Quantize a whole tensor [nrows][ncols] (including any tail, e.g. the I2_S scale).
 * Ternary formats: if every value of src is in {-s, 0, +s}, it packs exactly with
 * scale s = max|w|; otherwise values are first ternarized with BitNet b1.58's absmean
 * rule (scale = mean|W|, q = clamp(round(W/scale), -1, 1)).  Returns the bytes
 * written (= bn_tensor_bytes), 0 if the shape is not valid for the format. */
typedef size_t (*bn_quantize_fn)(const float *src, void *dst, int64_t nrows, int64_t ncols);

struct bn_matrix;
/* Kernels (one per dispatch path; NULL falls back to the next lower path).
 * Both compute rows [r0, r1) of y = W x for n_tokens tokens: y[t * w->rows + r].
 * gemm_i8: ternary W times int8 activations xq [n_tokens][cols] with per-token
 *   scales xs (q = x * xs); int32 accumulation; y = dot / xs * W.scale.
 * gemm_f32: float activations x [n_tokens][cols]; scratch holds 4 * cols floats
 *   plus traits f32_scratch_bytes (bn_matmul gives each thread its own). */
typedef void (*bn_gemm_i8_fn)(const struct bn_matrix *w, int64_t r0, int64_t r1,
                              const int8_t *xq, const float *xs, int64_t n_tokens, float *y);
typedef void (*bn_gemm_f32_fn)(const struct bn_matrix *w, int64_t r0, int64_t r1,
                               const float *x, int64_t n_tokens, float *y, float *scratch);

/* Ternary formats: int8 codes (-1, 0, +1) of row r of a tensor [rows][cols] at data,
 * and the scale of each 256-column block of the row (ceil(cols/256) floats; formats
 * with one scale per tensor repeat it).  codes_put writes rows [r0, r0+n) (r0 a
 * multiple of 16, n <= 16) from codes [n][cols] and bscale [n][ceil(cols/256)];
 * per-tensor-scale formats take bscale[0] and write their tail.
 * These are what load-time conversion between ternary layouts goes through. */
typedef void (*bn_codes_get_fn)(const void *data, int64_t rows, int64_t cols, int64_t r,
                                int8_t *codes, float *bscale);
typedef void (*bn_codes_put_fn)(void *data, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                                const int8_t *codes, const float *bscale);
/* int8 activations quantized once per bn_matmul and prepared for a layout's kernels
 * (opaque outside simd/).  gemm_act computes rows [r0, r1) like gemm_i8. */
struct bn_act_i8;
typedef void (*bn_gemm_act_fn)(const struct bn_matrix *w, int64_t r0, int64_t r1,
                               const struct bn_act_i8 *act, float *y);
/* Layout-specific activation preparation: bytes needed for n_tokens x cols, and
 * filling tokens [t0, t1) of it (threads may fill disjoint token ranges). */
typedef size_t (*bn_act_prep_bytes_fn)(int64_t n_tokens, int64_t cols);
typedef void (*bn_act_prep_fn)(const struct bn_act_i8 *act, void *buf, int64_t t0, int64_t t1);

struct bn_type_traits {
    const char *name;      /* "I2_S", "TQ2_0", "F16" ... */
    int gguf_id;           /* id in GGUF files, -1 for in-memory layouts */
    int64_t block_elems;   /* elements per block (1 for F32/F16) */
    size_t block_bytes;    /* bytes per block */
    size_t tail_bytes;     /* bytes after all blocks of a tensor (I2_S: 32) */
    bool ternary;          /* weights in {-1,0,+1} x scale: int8-activation kernels apply */
    bool per_tensor_scale; /* one float scale per tensor, read by bn_tensor_scale */
    bn_row_to_float_fn row_to_float; /* NULL: size-only row (reader can list it, engine cannot use it) */
    bn_quantize_fn quantize;         /* NULL: no quantizer */
    bn_gemm_i8_fn gemm_i8[BN_PATH_COUNT];        /* by enum bn_path: ternary x int8 activations */
    bn_gemm_f32_fn gemm_f32[BN_PATH_COUNT];      /* by enum bn_path: float activations */
    int64_t row_align;               /* rows per kernel tile (threads split on multiples) */
    bn_codes_get_fn codes_get;       /* ternary formats: read codes (NULL otherwise) */
    bn_codes_put_fn codes_put;       /* ternary formats: write codes */
    bn_gemm_act_fn gemm_act[BN_PATH_COUNT]; /* by path: preferred over gemm_i8 by bn_matmul */
    bn_act_prep_bytes_fn act_prep_bytes;    /* NULL: gemm_act needs no preparation */
    bn_act_prep_fn act_prep;
    /* Bytes of gemm_f32 scratch per thread beyond 4 * cols floats (e.g. the int8
     * activations of the 8-bit head kernels), for n_tokens x cols; NULL: none. */
    bn_act_prep_bytes_fn f32_scratch_bytes;
    /* Layouts whose row size is not cols / block_elems * block_bytes (TL2: 10 bytes
     * per 48 columns, 4 per 16 left over): bytes per row, 0 if cols is not valid. */
    size_t (*row_bytes_fn)(int64_t cols);
};

/* Row of the table for a type, or NULL for an unknown type. */
const struct bn_type_traits *bn_type_traits(enum bn_type type);
/* Row for a GGUF type id, or NULL if bitnetd does not know it. */
const struct bn_type_traits *bn_type_from_gguf(uint32_t gguf_id);
const char *bn_type_name(enum bn_type type); /* "unknown" when not in the table */

/* Bytes of one row of `cols` elements; 0 if cols is not a positive multiple of the
 * block size (or the type is unknown). */
size_t bn_row_bytes(enum bn_type type, int64_t cols);
/* Bytes of a whole tensor [nrows][cols] including its tail (I2_S: n/4 + 32).
 * false (and *out untouched) when the shape is invalid for the format or the size
 * overflows. */
bool bn_tensor_bytes(enum bn_type type, int64_t nrows, int64_t cols, uint64_t *out);
/* The per-tensor scale of formats that have one (read from the tail); 1.0f otherwise. */
float bn_tensor_scale(enum bn_type type, const void *data, int64_t nrows, int64_t cols);

/* Dequantize a whole tensor [nrows][cols] of any format with a row decoder or, for
 * the interleaved ternary layouts, codes access: dst[r * cols + c] = value.  false
 * when the type cannot be decoded or the shape is invalid for it. */
bool bn_tensor_to_float(enum bn_type type, const void *data, int64_t nrows, int64_t cols, float *dst);

/* IEEE half <-> float (round to nearest even). */
float bn_f16_to_f32(uint16_t h);
uint16_t bn_f32_to_f16(float f);
void bn_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void bn_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);

/* ------------------------------------------------------------------------------
 * CPU dispatch.  The best path this CPU supports is chosen at run time;
 * BITNET_KERNEL=scalar|avx2|avx512 forces one (an unsupported forced path falls back
 * to the best supported one with a warning on stderr).
 * --------------------------------------------------------------------------- */
enum bn_path bn_path_default(void); /* honours BITNET_KERNEL; cached after first call */
bool bn_path_supported(enum bn_path path);
const char *bn_path_name(enum bn_path path); /* "scalar", "avx2", "avx512" */
/* Parse "scalar"/"avx2"/"avx512"; false if unknown. */
bool bn_path_parse(const char *name, enum bn_path *out);

/* ------------------------------------------------------------------------------
 * Thread pool.  A task runs on every thread of the pool (the caller is thread 0);
 * bn_pool_run returns when all have finished.  Work is split by output rows/tiles,
 * so results never depend on the thread count.  A pool serves one caller at a
 * time (bn_matmul keeps its scratch in the pool): give each thread its own pool.
 * --------------------------------------------------------------------------- */
struct bn_pool;
typedef void (*bn_task_fn)(void *arg, int ith, int nth);
struct bn_pool *bn_pool_create(int n_threads); /* <= 0: one thread per online core */
void bn_pool_destroy(struct bn_pool *pool);
int bn_pool_threads(const struct bn_pool *pool);
void bn_pool_run(struct bn_pool *pool, bn_task_fn fn, void *arg);
/* Chunks of work: fn(arg, chunk, thread) runs once for each chunk in [0, n_chunks),
 * on whichever threads get to run (thread: 0 for the caller, < bn_pool_threads,
 * e.g. to index per-thread scratch); returns when all are done.  The caller never
 * waits for a worker that has not started, so an oversubscribed machine costs no
 * time slices.  Results must not depend on which thread runs a chunk. */
typedef void (*bn_chunk_fn)(void *arg, int64_t chunk, int thread);
void bn_pool_run_chunks(struct bn_pool *pool, bn_chunk_fn fn, void *arg, int64_t n_chunks);
/* Split [0, n) in nth contiguous ranges aligned to `align`; range ith -> [*lo, *hi). */
void bn_split_range(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi);

/* ------------------------------------------------------------------------------
 * Matrices and matmul.
 * --------------------------------------------------------------------------- */

/* A weight matrix as the kernels see it.  `data` is not owned. */
struct bn_matrix {
    enum bn_type type; /* layout of data: a file format or a bitnetd layout */
    int64_t rows, cols;
    const void *data;
    float scale;       /* per-tensor scale of ternary formats; 1 otherwise */
    enum bn_path path; /* kernel path this matrix is laid out for */
};

/* The layout the kernels of `path` want for a tensor stored as src_type, and its
 * size.  Returns src_type itself (and the tensor's own size) when the kernels use
 * the stored bytes in place.  `prefer` may name TL1/TL2 to ask for table lookup;
 * pass BN_TYPE_COUNT for "fastest on this path" (BN_TYPE_I2_S: the I2 kernels).
 * For an F16/BF16/F32 matrix, prefer = BN_TYPE_Q8_0 asks for the optional load-time
 * requantization to 8 bits (e.g. the tied LM head: 656 MB F16 -> 349 MB Q8_0; off
 * unless asked).  The choice per source type and path is documented in
 * simd/layout.c. */
enum bn_type bn_matrix_layout(enum bn_type src_type, int64_t rows, int64_t cols,
                              enum bn_path path, enum bn_type prefer, uint64_t *bytes);

/* bn_matrix_layout, refined by looking at the data: a TQ1_0/TQ2_0 tensor whose
 * block scales are all equal takes the per-tensor-scale layout (I2_R16: 6% fewer
 * bytes than TQ_R16, identical results).  For loaders that have the bytes. */
enum bn_type bn_matrix_layout_for_data(enum bn_type src_type, const void *src, int64_t rows,
                                       int64_t cols, enum bn_path path, enum bn_type prefer,
                                       uint64_t *bytes);

/* Make `m` describe the tensor `src` (stored as src_type) in layout dst_type.
 * If dst_type == src_type, m points at src (no copy, buf unused); otherwise the
 * tensor is repacked into buf (bn_matrix_layout's byte count) and m points at buf.
 * Returns false when the conversion is not possible (message in err, may be NULL). */
bool bn_matrix_init(struct bn_matrix *m, enum bn_type src_type, const void *src,
                    int64_t rows, int64_t cols, enum bn_type dst_type, void *buf,
                    enum bn_path path, char *err, size_t err_len);

/* Re-describe an already packed buffer (e.g. from a shared-memory segment) without
 * touching its bytes; scale is read from the layout as bn_matrix_init would. */
void bn_matrix_view(struct bn_matrix *m, enum bn_type type, const void *data,
                    int64_t rows, int64_t cols, enum bn_path path);

/* Memory for weights the kernels stream (e.g. bn_matrix_init's buf): zeroed,
 * page-aligned, on transparent huge pages where the OS allows — decode reads every
 * weight once per token, and with 4 KB pages the TLB misses cost 15-25% of the
 * streaming rate (measured on Zen 4).  NULL on failure; the caller frees with
 * bn_weights_free(p, bytes). */
void *bn_weights_alloc(size_t bytes);
void bn_weights_free(void *p, size_t bytes);

/* Bump whenever any repacked layout produced by bn_matrix_init changes: resident
 * copies made by an older build are then recognised as stale. */
#define BN_SIMD_LAYOUT_VERSION 2 /* 2: I2_R16, TQ_R16, TL1, TL2 */

/* Flags of bn_matmul. */
enum {
    /* Reference mode: no activation quantization for ternary W; the ternary weights
     * times float activations in float (graph check against unquantized sources). */
    BN_MM_FLOAT_ACT = 1u << 0,
};

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens.
 * Ternary W: each token's activations are quantized to int8 with absmax
 * (s = 127 / max(|x|, 1e-5), q = clamp(round_half_even(x*s), -128, 127)), the dot
 * product is accumulated in int32 and y = dot / s * W.scale (REFERENCE §3).
 * Float/quantized W (F32, F16, Q8_0, Q6_K): float activations, float accumulation.
 * Threads split the rows; the result is identical for any pool size.  pool may be
 * NULL (runs on the caller).  Scratch memory is owned by the pool. */
void bn_matmul(struct bn_pool *pool, const struct bn_matrix *w, const float *x,
               int64_t n_tokens, float *y, unsigned flags);

/* Several matrices applied to the same input (q, k, v; gate, up): y[k] = w[k] x,
 * each exactly as bn_matmul computes it, with one activation quantization and one
 * thread dispatch when the matrices share layout, path and cols (n <=
 * BN_MATMUL_MAX_MATS); otherwise one bn_matmul each. */
#define BN_MATMUL_MAX_MATS 4
void bn_matmul_n(struct bn_pool *pool, int n, const struct bn_matrix *const *w, const float *x,
                 int64_t n_tokens, float *const *y, unsigned flags);

/* Per-token int8 absmax activation quantization (REFERENCE §3).  Writes n int8
 * values and returns the scale s (q = x * s). */
float bn_quantize_act_i8(const float *x, int64_t n, int8_t *q);

/* ------------------------------------------------------------------------------
 * Vector ops (vectorized, with scalar references).
 * --------------------------------------------------------------------------- */
/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]  (w may be NULL: no weight) */
void bn_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
/* in-place softmax over n values */
void bn_softmax(float *x, int64_t n);
/* NEOX RoPE on n_heads heads of head_dim values at position pos: dim i rotates with
 * i + head_dim/2, theta_i = pos * base^(-2i/head_dim). */
void bn_rope_neox(float *x, int n_heads, int head_dim, int64_t pos, float base);
float bn_dot_f32(const float *a, const float *b, int64_t n);
/* y += a * x */
void bn_axpy_f32(float *y, float a, const float *x, int64_t n);
/* y += x (residual adds), bit-identical on every path */
void bn_add_f32(float *y, const float *x, int64_t n);
/* g = max(g, 0)^2 * u: BitNet's squared-ReLU gate times the up projection, computed
 * as (g * g) * u on every path (bit-identical to the scalar loop) */
void bn_relu2_mul_f32(float *g, const float *u, int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* BN_SIMD_H */
