/* engine/gguf_raw.h — shared by the GGUF reader and writer only (not a public header).
 *
 * The writer's bn_gguf_set_from copies a value verbatim from a reader; this is the
 * one place where it sees the reader's bytes. */
#ifndef BN_GGUF_RAW_H
#define BN_GGUF_RAW_H

#include "bitnet.h"

/* Size in bytes of one value of a fixed-size type (0 for STRING and ARRAY, and for
 * type ids GGUF does not define). */
size_t bn_gguf_vtype_size(uint32_t type);
/* Name of a value type ("u32", "string", "array" ...), "unknown" for other ids. */
const char *bn_gguf_vtype_name(uint32_t type);

/* Key i's value as stored: its type, and the bytes after the type field
 * (for an ARRAY: element type u32, count u64, elements).  The bytes point into the
 * reader's region and were bounds-checked when it was opened.  false if i is out
 * of range. */
bool bn_gguf_kv_raw(const struct bn_gguf *g, int64_t i, enum bn_gguf_vtype *type,
                    const void **bytes, uint64_t *n_bytes);

#endif
