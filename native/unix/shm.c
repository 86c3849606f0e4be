/*
 * Shared-memory regions for the shared-memory channel (docs/shared-memory.md): make one
 * (memfd_create on Linux, sealed against shrinking; shm_open + shm_unlink elsewhere), map one as
 * an external ArrayBuffer (no copy; unmapped when collected, or at once by unmap(), which detaches
 * the buffer first so every view of it reads as empty instead of touching unmapped memory), the
 * atomic loads and stores on its indices that JS cannot do on an external buffer (Atomics need a
 * SharedArrayBuffer), and the doorbell (an eventfd on Linux, a pipe elsewhere).
 *
 * Nothing here trusts the region: the peer can write any word of it at any time. This file reads
 * and writes only at offsets checked against the mapping's size, and reads each word once; what a
 * word means is checked in JS (src/shared-memory/ring.ts).
 */
#if defined(__linux__)
#define _GNU_SOURCE /* memfd_create, F_ADD_SEALS */
#endif
#include "unix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#endif

#define SHM_MIN_SIZE 4096
#define SHM_MAX_SIZE ((int64_t)1 << 31)

typedef struct {
  uint8_t* base;
  size_t size;
  bool unmapped;
  int refs; /* the wrapped Region object and the ArrayBuffer each hold one */
} shm_region_t;

static void region_unref(shm_region_t* r) {
  if (--r->refs > 0) return;
  if (!r->unmapped) munmap(r->base, r->size);
  free(r);
}

static void on_buffer_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)data;
  region_unref((shm_region_t*)hint);
}

static void on_region_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  region_unref((shm_region_t*)data);
}

#if !defined(__linux__)
static int set_fd_flags(int fd, bool nonblocking) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) return errno;
  if (nonblocking) {
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  }
  return 0;
}
#endif

/* create(size) -> [memoryFd, doorbellReadFd, doorbellWriteFd]: a new zeroed region of `size` bytes
 * and a doorbell (on Linux one eventfd, given twice). All in the registry of unclaimed descriptors. */
static napi_value shm_create(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ipc_args(env, info, 1, argv)) return NULL;
  int64_t size;
  if (!ipc_get_int(env, argv[0], SHM_MIN_SIZE, SHM_MAX_SIZE, "the region size", &size)) return NULL;
  int fds[3] = {-1, -1, -1};
  const char* syscall = NULL;
  int err = 0;
#if defined(__linux__)
  fds[0] = memfd_create("interprocess-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fds[0] < 0) {
    err = errno;
    syscall = "memfd_create";
  } else if (ftruncate(fds[0], (off_t)size) != 0) {
    err = errno;
    syscall = "ftruncate";
  } else if (fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    err = errno;
    syscall = "fcntl";
  } else {
    fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fds[1] < 0) {
      err = errno;
      syscall = "eventfd";
    } else {
      fds[2] = dup(fds[1]);
      if (fds[2] < 0) {
        err = errno;
        syscall = "dup";
      } else if (fcntl(fds[2], F_SETFD, FD_CLOEXEC) != 0) {
        err = errno;
        syscall = "fcntl";
      }
    }
  }
#else
  /* An unguessable name, opened exclusively and unlinked at once: only descriptors reach it. */
  char name[64];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  for (int attempt = 0; attempt < 16 && fds[0] < 0; attempt++) {
    snprintf(name, sizeof name, "/ipc-shm-%ld-%lx%lx", (long)getpid(), (unsigned long)ts.tv_nsec,
             (unsigned long)arc4random());
    fds[0] = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fds[0] < 0 && errno != EEXIST) break;
  }
  if (fds[0] < 0) {
    err = errno;
    syscall = "shm_open";
  } else {
    shm_unlink(name);
    if ((err = set_fd_flags(fds[0], false)) != 0) {
      syscall = "fcntl";
    } else if (ftruncate(fds[0], (off_t)size) != 0) {
      err = errno;
      syscall = "ftruncate";
    } else {
      int p[2];
      if (pipe(p) != 0) {
        err = errno;
        syscall = "pipe";
      } else {
        fds[1] = p[0];
        fds[2] = p[1];
        if ((err = set_fd_flags(fds[1], true)) != 0 || (err = set_fd_flags(fds[2], true)) != 0) syscall = "fcntl";
      }
    }
  }
#endif
  if (syscall != NULL) {
    for (int i = 0; i < 3; i++)
      if (fds[i] >= 0) close(fds[i]);
    ipc_throw_errno(env, err, syscall);
    return NULL;
  }
  if (!ipc_hold_fds(env, fds, 3)) {
    for (int i = 0; i < 3; i++) close(fds[i]);
    return NULL;
  }
  napi_value result, value;
  bool ok = napi_create_array_with_length(env, 3, &result) == napi_ok;
  for (int i = 0; ok && i < 3; i++)
    ok = napi_create_int32(env, fds[i], &value) == napi_ok && napi_set_element(env, result, (uint32_t)i, value) == napi_ok;
  if (!ok) {
    for (int i = 0; i < 3; i++) ipc_close_held(env, fds[i]);
    ipc_throw_napi_failure(env, "returning the region's descriptors");
    return NULL;
  }
  return result;
}

/* The region's struct, or NULL with ERR_INTERPROCESS_CLOSED thrown once it is unmapped. */
static shm_region_t* region_of(napi_env env, napi_value self) {
  shm_region_t* r = NULL;
  if (napi_unwrap(env, self, (void**)&r) != napi_ok || r == NULL) {
    ipc_throw_type(env, "not a shared-memory region");
    return NULL;
  }
  if (r->unmapped) {
    ipc_throw(env, IPC_ERROR, "ERR_INTERPROCESS_CLOSED", "the shared-memory region is unmapped");
    return NULL;
  }
  return r;
}

/* An aligned 32-bit word's offset, checked against the mapping. */
static bool word_offset(napi_env env, shm_region_t* r, napi_value value, size_t* out) {
  int64_t offset;
  if (!ipc_get_int(env, value, 0, (int64_t)r->size - 4, "the offset", &offset)) return false;
  if (offset % 4 != 0) {
    ipc_throw_range(env, "the offset must be a multiple of 4");
    return false;
  }
  *out = (size_t)offset;
  return true;
}

static _Atomic uint32_t* word_at(shm_region_t* r, size_t offset) { return (_Atomic uint32_t*)(void*)(r->base + offset); }

static napi_value this_and_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, shm_region_t** r) {
  size_t argc = n;
  napi_value self;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) {
    ipc_throw_napi_failure(env, "reading the arguments");
    return NULL;
  }
  if (argc < n) {
    ipc_throw(env, IPC_TYPE_ERROR, "ERR_MISSING_ARGS", "missing arguments");
    return NULL;
  }
  *r = region_of(env, self);
  return *r == NULL ? NULL : self;
}

/* load(offset) -> the word, with acquire ordering. */
static napi_value shm_load(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  shm_region_t* r;
  size_t offset;
  if (this_and_args(env, info, 1, argv, &r) == NULL || !word_offset(env, r, argv[0], &offset)) return NULL;
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, atomic_load_explicit(word_at(r, offset), memory_order_acquire), &result));
  return result;
}

/* store(offset, value): with release ordering (every write before it is visible first). */
static napi_value shm_store(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  shm_region_t* r;
  size_t offset;
  int64_t value;
  if (this_and_args(env, info, 2, argv, &r) == NULL || !word_offset(env, r, argv[0], &offset) ||
      !ipc_get_int(env, argv[1], 0, UINT32_MAX, "the value", &value))
    return NULL;
  atomic_store_explicit(word_at(r, offset), (uint32_t)value, memory_order_release);
  return NULL;
}

/*
 * publish(offset, value, waitingOffset) -> whether the peer sleeps and must be woken: stores the
 * index with release ordering, then (sequentially consistent, against the peer's sleep()) takes
 * the peer's waiting flag: true if it was set (it is cleared then; ring the doorbell).
 */
static napi_value shm_publish(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  shm_region_t* r;
  size_t offset, waiting;
  int64_t value;
  if (this_and_args(env, info, 3, argv, &r) == NULL || !word_offset(env, r, argv[0], &offset) ||
      !ipc_get_int(env, argv[1], 0, UINT32_MAX, "the value", &value) || !word_offset(env, r, argv[2], &waiting))
    return NULL;
  atomic_store_explicit(word_at(r, offset), (uint32_t)value, memory_order_release);
  atomic_thread_fence(memory_order_seq_cst);
  bool wake = atomic_load_explicit(word_at(r, waiting), memory_order_relaxed) != 0 &&
              atomic_exchange_explicit(word_at(r, waiting), 0, memory_order_acq_rel) != 0;
  return ipc_bool_value(env, wake);
}

/*
 * sleep(waitingOffset, watchOffset, seen) -> whether to sleep: sets our waiting flag, then
 * (sequentially consistent, against the peer's publish()) reads the watched index again; if it
 * moved from `seen`, clears the flag and returns false (there is something to do at once).
 */
static napi_value shm_sleep(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  shm_region_t* r;
  size_t waiting, watch;
  int64_t seen;
  if (this_and_args(env, info, 3, argv, &r) == NULL || !word_offset(env, r, argv[0], &waiting) ||
      !word_offset(env, r, argv[1], &watch) || !ipc_get_int(env, argv[2], 0, UINT32_MAX, "the index", &seen))
    return NULL;
  atomic_store_explicit(word_at(r, waiting), 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_seq_cst);
  bool sleep = atomic_load_explicit(word_at(r, watch), memory_order_acquire) == (uint32_t)seen;
  if (!sleep) atomic_store_explicit(word_at(r, waiting), 0, memory_order_relaxed);
  return ipc_bool_value(env, sleep);
}

/* A hint to the CPU that this is a spin-wait loop (and to a sibling hyperthread). */
static inline void shm_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static int64_t shm_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * spin(watchOffset, seen, ns) -> whether the watched index moved from `seen` within `ns`
 * nanoseconds (at most 1 ms): the bounded spin before sleep(), for latency (docs/shared-memory.md).
 * Only the clock ends it, so a peer that writes anything cannot make it last longer.
 */
static napi_value shm_spin(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  shm_region_t* r;
  size_t watch;
  int64_t seen, ns;
  if (this_and_args(env, info, 3, argv, &r) == NULL || !word_offset(env, r, argv[0], &watch) ||
      !ipc_get_int(env, argv[1], 0, UINT32_MAX, "the index", &seen) || !ipc_get_int(env, argv[2], 0, 1000000, "the spin", &ns))
    return NULL;
  _Atomic uint32_t* word = word_at(r, watch);
  int64_t deadline = shm_now_ns() + ns;
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(word, memory_order_acquire) != (uint32_t)seen) return ipc_bool_value(env, true);
    if ((i & 63) == 0 && shm_now_ns() >= deadline) return ipc_bool_value(env, false);
    shm_relax();
  }
}

/* unmap(): detaches the ArrayBuffer (every view reads as empty), then unmaps. Idempotent. */
static napi_value shm_unmap(napi_env env, napi_callback_info info) {
  napi_value self;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  shm_region_t* r = NULL;
  if (napi_unwrap(env, self, (void**)&r) != napi_ok || r == NULL || r->unmapped) return NULL;
  napi_value buffer;
  if (napi_get_named_property(env, self, "buffer", &buffer) == napi_ok) {
    bool is_buffer = false;
    if (napi_is_arraybuffer(env, buffer, &is_buffer) == napi_ok && is_buffer) {
      bool detached = false;
      napi_is_detached_arraybuffer(env, buffer, &detached);
      if (!detached && napi_detach_arraybuffer(env, buffer) != napi_ok) {
        ipc_throw_napi_failure(env, "detaching the region's buffer");
        return NULL;
      }
    }
  }
  /* The buffer's finalizer may have run during the detach: r is still ours (refs), not yet freed. */
  if (!r->unmapped) {
    munmap(r->base, r->size);
    r->unmapped = true;
  }
  return NULL;
}

/*
 * map(fd, size) -> a Region { buffer, size, load, store, publish, sleep, spin, unmap }: maps the
 * region's `size` bytes shared, read-write. Refuses (EINVAL) an object smaller than `size`, and on
 * Linux a memfd that can still shrink (F_SEAL_SHRINK missing): a peer that shrinks it under us
 * would make every access fault (SIGBUS).
 */
static napi_value shm_map(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!ipc_args(env, info, 2, argv)) return NULL;
  int fd;
  int64_t size;
  if (!ipc_get_fd(env, argv[0], &fd) ||
      !ipc_get_int(env, argv[1], SHM_MIN_SIZE, SHM_MAX_SIZE, "the region size", &size))
    return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ipc_throw_errno(env, errno, "fstat");
    return NULL;
  }
  if (st.st_size < size) {
    ipc_throw(env, IPC_ERROR, "ERR_INTERPROCESS_PROTOCOL", "the shared-memory object is smaller than its header says");
    return NULL;
  }
#if defined(__linux__)
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
    ipc_throw(env, IPC_ERROR, "ERR_INTERPROCESS_PROTOCOL",
              "the shared-memory object is not sealed against shrinking (F_SEAL_SHRINK): the peer could make every access fault");
    return NULL;
  }
#endif
  void* base = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    ipc_throw_errno(env, errno, "mmap");
    return NULL;
  }
  shm_region_t* r = calloc(1, sizeof *r);
  if (r == NULL) {
    munmap(base, (size_t)size);
    ipc_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  r->base = base;
  r->size = (size_t)size;
  r->refs = 1;
  napi_value self, buffer;
  if (napi_create_object(env, &self) != napi_ok || napi_wrap(env, self, r, on_region_finalize, NULL, NULL) != napi_ok) {
    munmap(base, (size_t)size);
    free(r);
    ipc_throw_napi_failure(env, "wrapping the region");
    return NULL;
  }
  /* From here the wrap owns r (one ref); the buffer takes another. */
  r->refs++;
  if (napi_create_external_arraybuffer(env, base, (size_t)size, on_buffer_finalize, r, &buffer) != napi_ok) {
    r->refs--;
    ipc_throw(env, IPC_ERROR, "ERR_INTERPROCESS_UNSUPPORTED",
              "this runtime refuses external ArrayBuffers (a V8 sandbox, as in Electron): "
              "shared memory cannot be exposed without a copy");
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"buffer", NULL, NULL, NULL, NULL, buffer, napi_enumerable, NULL},
      {"load", NULL, shm_load, NULL, NULL, NULL, napi_default_method, NULL},
      {"store", NULL, shm_store, NULL, NULL, NULL, napi_default_method, NULL},
      {"publish", NULL, shm_publish, NULL, NULL, NULL, napi_default_method, NULL},
      {"sleep", NULL, shm_sleep, NULL, NULL, NULL, napi_default_method, NULL},
      {"spin", NULL, shm_spin, NULL, NULL, NULL, napi_default_method, NULL},
      {"unmap", NULL, shm_unmap, NULL, NULL, NULL, napi_default_method, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, self, sizeof props / sizeof props[0], props));
  return self;
}

/* ring(fd): rings a doorbell. A full one (eventfd at its limit, pipe full) already rings: fine. */
static napi_value shm_ring(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
#if defined(__linux__)
  uint64_t one = 1;
  ssize_t n = write(fd, &one, sizeof one);
#else
  char one = 1;
  ssize_t n = write(fd, &one, 1);
#endif
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    ipc_throw_errno(env, errno, "write");
    return NULL;
  }
  return NULL;
}

/* drain(fd): empties a doorbell that rang (non-blocking). */
static napi_value shm_drain(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  char buf[64];
  for (int i = 0; i < 64; i++) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      ipc_throw_errno(env, errno, "read");
      return NULL;
    }
    break;
  }
  return NULL;
}

napi_value shm_init(napi_env env, napi_value exports) {
  napi_value shm;
  NAPI_CALL(env, napi_create_object(env, &shm));
  NAPI_CALL(env, ipc_set_fn(env, shm, "create", shm_create));
  NAPI_CALL(env, ipc_set_fn(env, shm, "map", shm_map));
  NAPI_CALL(env, ipc_set_fn(env, shm, "ring", shm_ring));
  NAPI_CALL(env, ipc_set_fn(env, shm, "drain", shm_drain));
  NAPI_CALL(env, napi_set_named_property(env, exports, "sharedMemory", shm));
  return exports;
}
