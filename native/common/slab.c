/*
 * Warm memory for large received messages: a block handed out as an ArrayBuffer of the exact size
 * asked for comes back to a small process-wide pool when that ArrayBuffer is collected (its
 * finalizer; the ArrayBuffer itself, so no view or `.buffer` of it can outlive the block), and is
 * handed out again. Fresh memory costs a page fault per 4 KiB on first touch, which on these
 * virtual machines is most of the cost of receiving a 1 MiB message (about 550 µs of faults
 * against 27 µs of copy); a warm block costs none. The pool keeps at most SLAB_KEEP idle bytes in
 * SLAB_SLOTS blocks; the rest is freed. A spin lock guards it: a finalizer may run on another
 * thread (an ArrayBuffer transferred to a worker), and the work under it is a few loads.
 */
#include "addon.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define SLAB_MAX_BLOCK ((size_t)32 * 1024 * 1024)
#define SLAB_KEEP ((size_t)64 * 1024 * 1024)
#define SLAB_ROUND ((size_t)64 * 1024)
#define SLAB_SLOTS 64

typedef struct {
  void* base;
  size_t size;
} slab_block_t;

static slab_block_t slab_idle_blocks[SLAB_SLOTS];
static size_t slab_idle_count;
static size_t slab_idle_bytes;
static atomic_flag slab_busy = ATOMIC_FLAG_INIT;
/* Set once the runtime has refused an external ArrayBuffer (a V8 sandbox): take() stops trying. */
static atomic_bool slab_refused;

static void slab_lock(void) {
  while (atomic_flag_test_and_set_explicit(&slab_busy, memory_order_acquire)) {
  }
}

static void slab_unlock(void) { atomic_flag_clear_explicit(&slab_busy, memory_order_release); }

/* An idle block of `need` to twice `need` bytes (the smallest), else a new one; base NULL if out of memory. */
static slab_block_t slab_get(size_t need) {
  slab_block_t found = {NULL, 0};
  slab_lock();
  size_t best = SLAB_SLOTS;
  for (size_t i = 0; i < slab_idle_count; i++) {
    size_t size = slab_idle_blocks[i].size;
    if (size >= need && size / 2 <= need && (best == SLAB_SLOTS || size < slab_idle_blocks[best].size)) best = i;
  }
  if (best != SLAB_SLOTS) {
    found = slab_idle_blocks[best];
    slab_idle_blocks[best] = slab_idle_blocks[--slab_idle_count];
    slab_idle_bytes -= found.size;
  }
  slab_unlock();
  if (found.base != NULL) return found;
  found.size = (need + SLAB_ROUND - 1) / SLAB_ROUND * SLAB_ROUND;
  found.base = malloc(found.size == 0 ? 1 : found.size);
  return found;
}

/* A block back from its ArrayBuffer: kept idle if there is room, else freed. */
static void slab_put(void* base, size_t size) {
  slab_lock();
  bool kept = slab_idle_count < SLAB_SLOTS && slab_idle_bytes + size <= SLAB_KEEP;
  if (kept) {
    slab_idle_blocks[slab_idle_count++] = (slab_block_t){base, size};
    slab_idle_bytes += size;
  }
  slab_unlock();
  if (!kept) free(base);
}

static void slab_on_finalize(napi_env env, void* data, void* hint) {
  size_t size = (size_t)(uintptr_t)hint;
  int64_t ignored;
  if (env != NULL) napi_adjust_external_memory(env, -(int64_t)size, &ignored);
  slab_put(data, size);
}

/*
 * take(size) -> an ArrayBuffer of `size` bytes (at most 32 MiB) over a warm block, its contents
 * whatever the block held; undefined where the runtime refuses external ArrayBuffers (a V8
 * sandbox, as in Electron: the caller allocates as usual then).
 */
static napi_value slab_take(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t size;
  if (!ipc_args(env, info, 1, argv) || !ipc_get_int(env, argv[0], 0, (int64_t)SLAB_MAX_BLOCK, "the size", &size)) return NULL;
  napi_value undefined;
  NAPI_CALL(env, napi_get_undefined(env, &undefined));
  if (atomic_load_explicit(&slab_refused, memory_order_relaxed)) return undefined;
  slab_block_t block = slab_get((size_t)size);
  if (block.base == NULL) {
    ipc_throw(env, IPC_ERROR, "ENOMEM", "out of memory for a received message");
    return NULL;
  }
  napi_value buffer;
  napi_status status =
      napi_create_external_arraybuffer(env, block.base, (size_t)size, slab_on_finalize, (void*)(uintptr_t)block.size, &buffer);
  if (status != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    /* Refused up front: the block is still ours. On any other failure the runtime may already
     * have released it or will run the finalizer: left to it (at worst a leak, never a block
     * handed out twice). */
    if (status == napi_no_external_buffers_allowed) {
      atomic_store_explicit(&slab_refused, true, memory_order_relaxed);
      slab_put(block.base, block.size);
    }
    return undefined;
  }
  /* Counted as the engine's external memory, so that collecting these buffers keeps pace with them. */
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)block.size, &ignored);
  return buffer;
}

/* idle() -> [blocks, bytes] kept idle now (for the tests). */
static napi_value slab_idle(napi_env env, napi_callback_info info) {
  (void)info;
  slab_lock();
  size_t count = slab_idle_count, bytes = slab_idle_bytes;
  slab_unlock();
  return ipc_int_pair(env, (int64_t)count, (int64_t)bytes);
}

napi_value slab_init(napi_env env, napi_value exports) {
  napi_value slabs;
  NAPI_CALL(env, napi_create_object(env, &slabs));
  NAPI_CALL(env, ipc_set_fn(env, slabs, "take", slab_take));
  NAPI_CALL(env, ipc_set_fn(env, slabs, "idle", slab_idle));
  NAPI_CALL(env, napi_set_named_property(env, exports, "slabs", slabs));
  return exports;
}
