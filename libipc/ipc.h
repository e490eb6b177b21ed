/* libipc/ipc.h — bitnetd's wire protocol (msgpack-RPC codec, framing) and the
 * format of shared-memory model segments.  The only header of libipc/; depends on
 * msgpack-c and libc, never on the engine.
 */
#ifndef BN_IPC_H
#define BN_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Protocol: messages, framing, error codes (libipc/proto*.c) ==== */

/* ==== Shared-memory model segments (libipc/segment*.c) ==== */

#ifdef __cplusplus
}
#endif
#endif /* BN_IPC_H */
