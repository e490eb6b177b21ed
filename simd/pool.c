/* simd/pool.c — a small pthread pool (the caller is thread 0).
 *
 * bn_pool_run hands one task to every thread and returns when all are done.
 * bn_pool_run_chunks hands out chunks of work: every thread that gets to run takes
 * chunks until none are left, and the caller waits only for the threads that
 * actually joined — so when the machine is oversubscribed and a worker is not
 * scheduled, the caller does its share instead of waiting for a time slice (decode
 * issues ~120-210 short matmuls per token; a barrier per matmul cost 20x there).
 *
 * Waiting threads poll (pause, then sched_yield) before sleeping on a condition
 * variable: between the matmuls of a token the gaps are microseconds. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#define BN_POOL_MAX_THREADS 256
#define BN_POOL_SPIN_ITERS 2000 /* pause loops (~100 µs) of polling before yielding */
#define BN_POOL_YIELD_ITERS 200 /* then sched_yield: lets a preempted peer run when the
                                 * machine is oversubscribed, still no sleep/wake cost */
/* join word of a chunked task: generation << 32 | CLOSED | threads inside */
#define JOIN_CLOSED (1ull << 31)
#define JOIN_ACTIVE 0x7fffffffull

struct bn_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    /* task word, one per task: count << 1 | chunked (1: a bn_pool_run_chunks task);
     * read once, so a worker sees a task's number and kind together */
    atomic_uint generation;
    bool stop;
    /* bn_pool_run */
    atomic_uint pending;    /* workers still running the current task */
    bn_task_fn fn;
    void *arg;
    /* bn_pool_run_chunks */
    bn_chunk_fn chunk_fn;
    void *chunk_arg;
    int64_t n_chunks;
    atomic_llong next_chunk;
    atomic_ullong join;
    void *scratch; /* bn_pool_scratch: grown on demand, 64-byte aligned */
    size_t scratch_bytes;
};

struct worker_arg {
    struct bn_pool *pool;
    int ith;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Poll until check(pool) holds: spin, then yield; false: give up (the caller then
 * sleeps on a condition variable). */
static bool poll_until(struct bn_pool *pool, bool (*check)(struct bn_pool *, unsigned), unsigned arg)
{
    for (int i = 0; i < BN_POOL_SPIN_ITERS + BN_POOL_YIELD_ITERS; i++) {
        if (check(pool, arg))
            return true;
        if (i < BN_POOL_SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();
    }
    return false;
}

static bool new_generation(struct bn_pool *pool, unsigned seen)
{
    return atomic_load_explicit(&pool->generation, memory_order_acquire) != seen;
}

static bool none_pending(struct bn_pool *pool, unsigned unused)
{
    (void)unused;
    return atomic_load_explicit(&pool->pending, memory_order_acquire) == 0;
}

static bool none_inside(struct bn_pool *pool, unsigned unused)
{
    (void)unused;
    return (atomic_load_explicit(&pool->join, memory_order_acquire) & JOIN_ACTIVE) == 0;
}

static void run_chunks(struct bn_pool *pool, int ith)
{
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&pool->next_chunk, 1, memory_order_relaxed);
        if (c >= pool->n_chunks)
            return;
        pool->chunk_fn(pool->chunk_arg, c, ith);
    }
}

/* A worker's part of chunked task `gen`: join unless the caller closed it. */
static void worker_chunks(struct bn_pool *pool, unsigned gen, int ith)
{
    unsigned long long j = atomic_load_explicit(&pool->join, memory_order_acquire);
    do {
        if ((unsigned)(j >> 32) != gen || (j & JOIN_CLOSED))
            return; /* finished (or a newer task): the task data may be gone */
    } while (!atomic_compare_exchange_weak_explicit(&pool->join, &j, j + 1, memory_order_acq_rel,
                                                    memory_order_acquire));
    run_chunks(pool, ith);
    unsigned long long left = atomic_fetch_sub_explicit(&pool->join, 1, memory_order_acq_rel) - 1;
    if ((left & JOIN_CLOSED) && (left & JOIN_ACTIVE) == 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_signal(&pool->done);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void *worker_main(void *p)
{
    struct worker_arg wa = *(struct worker_arg *)p;
    free(p);
    struct bn_pool *pool = wa.pool;
    unsigned seen = 0;
    for (;;) {
        poll_until(pool, new_generation, seen);
        unsigned gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (gen == seen) {
            pthread_mutex_lock(&pool->mu);
            while ((gen = atomic_load(&pool->generation)) == seen && !pool->stop)
                pthread_cond_wait(&pool->wake, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        seen = gen;
        if (pool->stop)
            return NULL;
        if (gen & 1) {
            worker_chunks(pool, gen, wa.ith);
            continue;
        }
        pool->fn(pool->arg, wa.ith, pool->n_threads);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

/* The next task word (only the caller writes it). */
static unsigned next_task(struct bn_pool *pool, bool chunked)
{
    unsigned g = atomic_load_explicit(&pool->generation, memory_order_relaxed);
    return (((g >> 1) + 1) << 1) | (chunked ? 1u : 0u);
}

/* Publish a task: its fields are written before the task word (release). */
static void start_task(struct bn_pool *pool, unsigned word)
{
    pthread_mutex_lock(&pool->mu);
    atomic_store_explicit(&pool->generation, word, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
}

struct bn_pool *bn_pool_create(int n_threads)
{
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > BN_POOL_MAX_THREADS)
        n_threads = BN_POOL_MAX_THREADS;
    struct bn_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) {
        free(pool);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (wa) { /* filled before the thread starts: it reads wa at once */
            wa->pool = pool;
            wa->ith = i;
        }
        if (!wa || pthread_create(&pool->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            pool->n_threads = i; /* run with the threads we got */
            break;
        }
    }
    return pool;
}

void bn_pool_destroy(struct bn_pool *pool)
{
    if (!pool)
        return;
    pool->stop = true;
    start_task(pool, next_task(pool, false));
    for (int i = 1; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->threads);
    free(pool->scratch);
    free(pool);
}

void *bn_pool_scratch(struct bn_pool *pool, size_t bytes)
{
    if (bytes <= pool->scratch_bytes)
        return pool->scratch;
    size_t grow = bytes + bytes / 4; /* room for a slightly larger next call */
    grow = (grow + 63) / 64 * 64;
    void *p = aligned_alloc(64, grow);
    if (!p)
        return NULL;
    free(pool->scratch);
    pool->scratch = p;
    pool->scratch_bytes = grow;
    return p;
}

int bn_pool_threads(const struct bn_pool *pool) { return pool ? pool->n_threads : 1; }

void bn_pool_run(struct bn_pool *pool, bn_task_fn fn, void *arg)
{
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, (unsigned)(pool->n_threads - 1));
    start_task(pool, next_task(pool, false));
    fn(arg, 0, pool->n_threads);
    if (!poll_until(pool, none_pending, 0)) {
        pthread_mutex_lock(&pool->mu);
        while (atomic_load(&pool->pending) != 0)
            pthread_cond_wait(&pool->done, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
}

void bn_pool_run_chunks(struct bn_pool *pool, bn_chunk_fn fn, void *arg, int64_t n_chunks)
{
    if (n_chunks <= 0)
        return;
    if (!pool || pool->n_threads == 1 || n_chunks == 1) {
        for (int64_t c = 0; c < n_chunks; c++)
            fn(arg, c, 0);
        return;
    }
    pool->chunk_fn = fn;
    pool->chunk_arg = arg;
    pool->n_chunks = n_chunks;
    atomic_store_explicit(&pool->next_chunk, 0, memory_order_relaxed);
    unsigned word = next_task(pool, true);
    atomic_store_explicit(&pool->join, (unsigned long long)word << 32, memory_order_release);
    start_task(pool, word);
    run_chunks(pool, 0);
    /* no more chunks: close the task, then wait for the workers still inside it */
    unsigned long long j = atomic_fetch_or_explicit(&pool->join, JOIN_CLOSED, memory_order_acq_rel);
    if ((j & JOIN_ACTIVE) != 0 && !poll_until(pool, none_inside, 0)) {
        pthread_mutex_lock(&pool->mu);
        while ((atomic_load(&pool->join) & JOIN_ACTIVE) != 0)
            pthread_cond_wait(&pool->done, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
}

void bn_split_range(int64_t n, int64_t align, int ith, int nth, int64_t *lo, int64_t *hi)
{
    if (align < 1)
        align = 1;
    int64_t units = (n + align - 1) / align;
    int64_t per = units / nth, extra = units % nth;
    int64_t u0 = ith * per + (ith < extra ? ith : extra);
    int64_t u1 = u0 + per + (ith < extra ? 1 : 0);
    *lo = u0 * align < n ? u0 * align : n;
    *hi = u1 * align < n ? u1 * align : n;
}
