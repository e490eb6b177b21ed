/* simd/vec.c — vector ops on float rows (scalar reference implementations; SIMD
 * variants are selected per path where they pay off). */
#include "internal.h"

void bn_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
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

void bn_softmax(float *x, int64_t n)
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

void bn_rope_neox(float *x, int n_heads, int head_dim, int64_t pos, float base)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* theta_i = pos * base^(-2i/d), computed in double for stability at large pos */
        double theta = (double)pos * pow((double)base, -2.0 * i / head_dim);
        float c = (float)cos(theta), s = (float)sin(theta);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (int64_t)h * head_dim;
            float a = v[i], b = v[i + half];
            v[i] = a * c - b * s;
            v[i + half] = a * s + b * c;
        }
    }
}

float bn_dot_f32(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

void bn_axpy_f32(float *y, float a, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}
