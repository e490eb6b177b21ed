/* client/conn_internal.h — private to libbitnet-client: the connection and the one
 * request/answer loop every method goes through.  Not installed. */
#ifndef BNC_CONN_INTERNAL_H
#define BNC_CONN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "bitnet_client.h"
#include "ipc.h"

#define BNC_HIDDEN __attribute__((visibility("hidden")))
#define BNC_READ_CHUNK (64u << 10) /* bytes asked of read() per wake-up */
#define BNC_CANCEL_GRACE_MS 1000   /* time allowed to send a cancel after a timeout */
/* Before sleeping in poll() for an answer, look for it without sleeping for this
 * long: bitnetd answers a ping in ~10 µs, and a sleeping caller pays a scheduler
 * wake-up on top (tens of µs on a busy or virtualized machine: bench-ipc ping p50
 * 45-50 µs without, 17 µs with 20 µs of spin, 11 µs with 50 µs, measured on 2 busy
 * cores).  Once per call: spinning again after every streamed token took CPU from
 * the engine on a 2-core machine (stream ratio 0.91-0.95 with, 0.96-1.04 without). */
#define BNC_SPIN_NS 50000

struct bnc_conn {
    int fd;
    int wake_fd;                   /* eventfd: bnc_cancel() wakes the poll() of a call */
    pthread_mutex_t mu;            /* one call at a time */
    atomic_bool cancel_requested;
    atomic_bool in_call;
    uint32_t next_msgid;
    int timeout_ms;
    size_t server_max_message;     /* from hello: requests larger are refused locally */
    bool broken;                   /* after a fatal error every call fails with it */
    struct bnc_error broken_err;
    struct bn_rpc_framer fr;
    msgpack_sbuffer sb;            /* outgoing message, reused */
    msgpack_packer pk;
    msgpack_zone *info_zone;       /* owns info's strings */
    struct bnc_server_info info;
};

/* One request and its answer. */
struct bnc_call {
    enum bn_rpc_method method;
    const void *params;  /* bn_rpc_*_params (NULL: empty map) */
    void *result;        /* bn_rpc_*_result to fill */
    msgpack_zone *zone;  /* decoding target of result */
    bnc_token_fn on_token;
    bnc_progress_fn on_progress;
    void *user;
};

/* Send the request and wait for its answer; 0 with k->result filled, or -1 with err. */
BNC_HIDDEN int bnc_call_run(struct bnc_conn *c, struct bnc_call *k, struct bnc_error *err);
/* Fill err from a protocol error. */
BNC_HIDDEN int bnc_set_error(struct bnc_error *err, int code, const char *message);
BNC_HIDDEN int bnc_errorf(struct bnc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
