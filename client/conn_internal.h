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
