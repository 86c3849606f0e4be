/*
 * Moving messages on Unix domain sockets in batches: one call from JS sends or receives many
 * messages (sendmmsg/recvmmsg on Linux, a loop until EAGAIN elsewhere), with descriptors
 * (SCM_RIGHTS) and, on Linux, the sender's credentials (SCM_CREDENTIALS). JS owns the queues; this
 * file only does the syscalls when the Watcher says the socket is ready.
 *
 * send(fd, type, datas, head, count, addresses, fdLists, progress, packed, spans) -> messages sent
 *   Sends datas[head .. head+count) (Uint8Arrays, straight from JS memory: no copy), each to
 *   addresses[i] (a Buffer of sun_path bytes) if given, with the descriptors in fdLists[i] (an
 *   Int32Array) if given. Returns how many went; 0 when the socket would block. An error on the
 *   first message throws; an error after some were sent ends the batch, and the next call throws
 *   it (sendmmsg's own rule). Stream sockets may take part of a message: progress[0] is then the
 *   bytes of datas[head + result] already sent (its descriptors went with the first byte).
 *   packed and spans (optional): JS has copied the small messages of the batch into the Buffer
 *   `packed`; spans (Int32Array) holds for message i its offset there and length, or offset -1 for
 *   one to take from datas. Fetching each Uint8Array through N-API costs more than such a copy.
 *
 * receive(fd, type, meta, fds, maxFds, pool, poolOffset, mark) -> Buffer | undefined
 *   Receives what is waiting (up to RECV_SLOTS messages) into a per-environment arena and copies
 *   each message's data, followed by its sender's address, into `pool` from poolOffset on (a JS
 *   slab reused across batches, as Node pools small Buffers) and returns `pool`; if they do not fit
 *   there, into one new Buffer from offset 0, which it returns. undefined when nothing waits. meta
 *   (Int32Array): [count, eof, then per message META_STRIDE ints: data length, real length, address
 *   length, descriptor count, flags, pid, uid, gid]. Received descriptors go to `fds` in order,
 *   close-on-exec. maxFds is exact: a message with more descriptors than that (the kernel may
 *   deliver a few more, into the rounding of the control buffer and the credentials' room), or
 *   whose list the kernel cut (MSG_CTRUNC), has all that did arrive closed here and is flagged
 *   FLAG_CTRUNC, never leaked; if the kernel cut it because this process could not take another
 *   descriptor (EMFILE), FLAG_FD_LIMIT as well. Nothing is ever truncated silently: the first slot
 *   holds the largest datagram this kernel lets any sender send (twice net.core.wmem_max, the most
 *   SO_SNDBUF can be), so the message at the head of the queue always arrives whole, with no extra
 *   syscall to peek its size; the other slots hold 256 KiB (more than a default Linux sender can
 *   send), and one larger message behind others is flagged truncated with its real length rather
 *   than cut silently. The arena is virtual memory: only the pages messages touch are resident, and
 *   those beyond 64 KiB are given back after a big message. Received descriptors are in the
 *   environment's registry (common/addon.c) until JS claims them (releaseFd, closeFd, an owning
 *   Watcher): a worker torn down with some unclaimed closes them.
 *   mark (Linux seqpacket sockets): after its peer closes, a seqpacket socket reads 0 bytes for
 *   the end, as for an empty message. With SO_PASSCRED on, the kernel gives every real message a
 *   credentials cmsg and the end none, so they are told apart exactly. The values are
 *   receive-mark.h's (exported as MARKS).
 */
#if defined(__linux__)
#define _GNU_SOURCE /* sendmmsg, recvmmsg, struct ucred, MSG_CMSG_CLOEXEC */
#endif
#include "unix.h"
#include "receive-mark.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define RECV_SLOTS 64
#define SEND_BATCH 64
/* More than the largest datagram a Linux sender can send with default limits (212,960 bytes). */
#define SLOT_SIZE (256 * 1024)
/* Beyond this, a slot's pages are given back after use (big messages are rare, pages are not free). */
#define SLOT_KEEP (64 * 1024)
#define META_HEADER 2
#define META_STRIDE 8
#define MAX_FDS 253 /* SCM_MAX_FD on Linux */

enum { FLAG_TRUNCATED = 1, FLAG_CTRUNC = 2, FLAG_CREDENTIALS = 4, FLAG_FD_LIMIT = 8 };

#if defined(__linux__)
#define RECV_FLAGS (MSG_DONTWAIT | MSG_CMSG_CLOEXEC)
#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)
#define CRED_SPACE CMSG_SPACE(sizeof(struct ucred))
#else
#define RECV_FLAGS MSG_DONTWAIT
#define SEND_FLAGS MSG_DONTWAIT
#define CRED_SPACE 0
#endif

typedef struct {
  char* data; /* slot 0 (first_slot bytes), then RECV_SLOTS - 1 slots of SLOT_SIZE: mapped lazily */
  size_t first_slot, mapped;
  char* control;
  size_t control_per_slot;
  struct sockaddr_un names[RECV_SLOTS];
  struct iovec iov[RECV_SLOTS];
  struct msghdr msgs[RECV_SLOTS];
  size_t lengths[RECV_SLOTS];
  struct sockaddr_un send_names[SEND_BATCH];
  struct iovec send_iov[SEND_BATCH];
  struct msghdr send_msgs[SEND_BATCH];
  char* send_control;
  size_t send_control_size;
  int fds[RECV_SLOTS * MAX_FDS]; /* the descriptors of one received batch */
} arena_t;

static void free_arena(void* data) {
  arena_t* arena = data;
  if (arena->data != NULL) munmap(arena->data, arena->mapped);
  free(arena->control);
  free(arena->send_control);
  free(arena);
}

/* The largest datagram a sender may send here: SO_SNDBUF can reach twice net.core.wmem_max. */
static size_t largest_datagram(void) {
  size_t largest = SLOT_SIZE;
#if defined(__linux__)
  FILE* f = fopen("/proc/sys/net/core/wmem_max", "re");
  unsigned long wmem_max = 0;
  if (f != NULL) {
    if (fscanf(f, "%lu", &wmem_max) == 1 && 2 * (size_t)wmem_max > largest) largest = 2 * (size_t)wmem_max;
    fclose(f);
  }
  if (largest > ((size_t)1 << 30)) largest = (size_t)1 << 30; /* a sane bound on address space */
#endif
  return (largest + SLOT_SIZE - 1) / SLOT_SIZE * SLOT_SIZE; /* keeps the other slots page-aligned */
}

static arena_t* get_arena(napi_env env) {
  ipc_instance_t* instance = ipc_instance(env);
  if (instance == NULL) return NULL;
  if (instance->message_arena != NULL) return instance->message_arena;
  arena_t* arena = calloc(1, sizeof *arena);
  if (arena == NULL) goto no_memory;
  int flags = MAP_PRIVATE | MAP_ANON;
#ifdef MAP_NORESERVE
  flags |= MAP_NORESERVE;
#endif
  arena->first_slot = largest_datagram();
  arena->mapped = arena->first_slot + (size_t)(RECV_SLOTS - 1) * SLOT_SIZE;
  arena->data = mmap(NULL, arena->mapped, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (arena->data == MAP_FAILED) {
    arena->data = NULL;
    free_arena(arena);
    goto no_memory;
  }
  arena->control_per_slot = CMSG_SPACE(MAX_FDS * sizeof(int)) + CRED_SPACE;
  arena->control = malloc(arena->control_per_slot * RECV_SLOTS);
  if (arena->control == NULL) {
    free_arena(arena);
    goto no_memory;
  }
  instance->message_arena = arena;
  instance->free_message_arena = free_arena;
  return arena;
no_memory:
  ipc_throw_errno(env, ENOMEM, "mmap");
  return NULL;
}

/* ---- arguments ---- */

/*
 * Nothing from JS is trusted: each argument's type, range and length is checked before use. Only
 * napi_get_element can run JS (a getter, a Proxy), and that JS may detach, shrink or fill any
 * typed array, or call send or receive again (which reuse the arena). So send fetches every
 * element first, and only then takes memory pointers and lengths, and touches the arena; receive
 * runs no JS at all. Nothing is read twice from JS memory (a SharedArrayBuffer can change under
 * us): what is checked is copied first.
 */

/* True if value is null or undefined. */
static bool is_nullish(napi_env env, napi_value value) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && (type == napi_undefined || type == napi_null);
}

static bool is_object(napi_env env, napi_value value) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && type == napi_object;
}

/* The memory of a typed array of `type`; false (having thrown `message`) if value is not one. */
static bool typed_array(napi_env env, napi_value value, napi_typedarray_type type, void** data, size_t* length,
                        const char* message) {
  napi_typedarray_type actual;
  napi_value buffer;
  size_t offset;
  bool is = false;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, value, &actual, length, data, &buffer, &offset) != napi_ok || actual != type) {
    ipc_throw_type(env, message);
    return false;
  }
  if (*length == 0) *data = NULL; /* a detached array: never used, never offset */
  return true;
}

/* The memory of a Buffer (any Uint8Array); false (having thrown `message`) if value is not one. */
static bool buffer_arg(napi_env env, napi_value value, char** data, size_t* length, const char* message) {
  bool is = false;
  if (napi_is_buffer(env, value, &is) != napi_ok || !is || napi_get_buffer_info(env, value, (void**)data, length) != napi_ok) {
    ipc_throw_type(env, message);
    return false;
  }
  if (*length == 0) *data = NULL;
  return true;
}

/* array[index] (may run JS); false if that threw. */
static bool element(napi_env env, napi_value array, uint32_t index, napi_value* value) {
  if (napi_get_element(env, array, index, value) == napi_ok) return true;
  ipc_throw_napi_failure(env, "reading an array element"); /* unless a getter threw: that stays */
  return false;
}

/* An element of an optional array: *value is NULL when the array or the element is null/undefined. */
static bool optional_element(napi_env env, napi_value array, uint32_t index, napi_value* value) {
  *value = NULL;
  if (array == NULL) return true;
  if (!element(env, array, index, value)) return false;
  if (is_nullish(env, *value)) *value = NULL;
  return true;
}

/* ---- sending ---- */

/* Sends msgs[0..count); returns how many went, 0 if it would block, -1 (errno set) on an error at the first. */
static int send_some(int fd, int type, arena_t* arena, int count, int32_t* progress) {
#if defined(__linux__)
  if (type != USOCK_STREAM) {
    struct mmsghdr msgs[SEND_BATCH];
    for (int i = 0; i < count; i++) {
      msgs[i].msg_hdr = arena->send_msgs[i];
      msgs[i].msg_len = 0;
    }
    int r;
    do r = sendmmsg(fd, msgs, (unsigned)count, SEND_FLAGS);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return r;
  }
#endif
  for (int i = 0; i < count; i++) {
    ssize_t r;
    do r = sendmsg(fd, &arena->send_msgs[i], SEND_FLAGS);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return i;
      return i > 0 ? i : -1;
    }
    size_t length = arena->send_iov[i].iov_len;
    if (type == USOCK_STREAM && (size_t)r < length) {
      *progress = (int32_t)r; /* a stream took part of it: JS resends the rest */
      return i;
    }
  }
  return count;
}

/* send's arguments, checked; no element of its arrays has been read yet. */
typedef struct {
  int fd, type;
  uint32_t head;
  int count;                   /* at most SEND_BATCH */
  napi_value datas;            /* the messages */
  napi_value addresses;        /* NULL when not given */
  napi_value fd_lists;         /* NULL when not given */
  napi_value progress_value;   /* progress, fetched again after getters may have run */
  int32_t* progress;           /* valid only until JS runs */
  napi_value packed;           /* NULL when not given */
  int32_t spans[2 * SEND_BATCH]; /* copied: they decide which elements are read, and a getter could change them */
} send_args_t;

/* The elements of a batch, fetched (getters may run) before any JS memory is taken. */
typedef struct {
  napi_value datas[SEND_BATCH], names[SEND_BATCH], lists[SEND_BATCH]; /* NULL: none */
} send_elements_t;

#define PROGRESS_TYPE "progress must be an Int32Array of one number at least"
#define PACKED_TYPE "packed must be a Buffer, or undefined"

/* progress[0]'s memory; NULL (having thrown) if value is not an Int32Array of one number at least. */
static int32_t* progress_arg(napi_env env, napi_value value) {
  int32_t* progress;
  size_t length;
  if (!typed_array(env, value, napi_int32_array, (void**)&progress, &length, PROGRESS_TYPE)) return NULL;
  if (length < 1) {
    ipc_throw_type(env, PROGRESS_TYPE); /* also: detached by a getter */
    return NULL;
  }
  return progress;
}

/* An optional array: *array is NULL when value is null or undefined; false (having thrown) if it is not an object. */
static bool optional_array(napi_env env, napi_value value, const char* message, napi_value* array) {
  *array = NULL;
  if (is_nullish(env, value)) return true;
  if (!is_object(env, value)) {
    ipc_throw_type(env, message);
    return false;
  }
  *array = value;
  return true;
}

/* Reads send's arguments (no JS runs here); false if one is wrong (having thrown). */
static bool send_args(napi_env env, napi_callback_info info, send_args_t* a) {
  napi_value argv[10];
  int64_t type, head, count;
  if (!ipc_fd_args(env, info, 10, argv, &a->fd) ||
      !ipc_get_int(env, argv[1], USOCK_DATAGRAM, USOCK_STREAM, "the socket type", &type) ||
      !ipc_get_int(env, argv[3], 0, INT32_MAX, "head", &head) || !ipc_get_int(env, argv[4], 0, INT32_MAX, "count", &count)) {
    return false;
  }
  if (!is_object(env, argv[2])) {
    ipc_throw_type(env, "the messages must be an array");
    return false;
  }
  if (!optional_array(env, argv[5], "the addresses must be an array, or null", &a->addresses) ||
      !optional_array(env, argv[6], "the descriptor lists must be an array, or null", &a->fd_lists) ||
      (a->progress = progress_arg(env, argv[7])) == NULL) {
    return false;
  }
  a->type = (int)type;
  a->head = (uint32_t)head;
  a->count = count > SEND_BATCH ? SEND_BATCH : (int)count;
  a->datas = argv[2];
  a->progress_value = argv[7];
  a->packed = is_nullish(env, argv[8]) ? NULL : argv[8];
  for (int i = 0; i < 2 * a->count; i++) a->spans[i] = -1;
  if (a->packed != NULL) {
    char* packed;
    size_t packed_length, spans_length;
    int32_t* given;
    if (!buffer_arg(env, a->packed, &packed, &packed_length, PACKED_TYPE) ||
        !typed_array(env, argv[9], napi_int32_array, (void**)&given, &spans_length, "spans must be an Int32Array")) {
      return false;
    }
    if (spans_length < (size_t)a->count * 2) {
      ipc_throw_range(env, "spans must hold an offset and a length per message");
      return false;
    }
    if (a->count > 0) memcpy(a->spans, given, (size_t)a->count * 2 * sizeof(int32_t));
  }
  return true;
}

/* Fetches every element of the batch (getters may run here): nothing is taken from JS memory yet. */
static bool fetch_elements(napi_env env, const send_args_t* a, send_elements_t* e) {
  for (int i = 0; i < a->count; i++) {
    uint32_t index = a->head + (uint32_t)i; /* head <= INT32_MAX: no wrap */
    e->datas[i] = NULL;
    if (a->spans[2 * i] < 0 && !element(env, a->datas, index, &e->datas[i])) return false;
    if (!optional_element(env, a->addresses, index, &e->names[i]) || !optional_element(env, a->fd_lists, index, &e->lists[i])) {
      return false;
    }
  }
  return true;
}

/*
 * The descriptor lists of the batch (fd_data[i], fd_counts[i]: none when NULL, 0) and the control
 * space they need in all; false (having thrown) if one is not an Int32Array or is over the
 * kernel's limit.
 */
static bool take_fd_lists(napi_env env, const send_elements_t* e, int count, int32_t** fd_data, size_t* fd_counts,
                          size_t* control_total) {
  *control_total = 0;
  for (int i = 0; i < count; i++) {
    fd_data[i] = NULL;
    fd_counts[i] = 0;
    if (e->lists[i] == NULL) continue;
    if (!typed_array(env, e->lists[i], napi_int32_array, (void**)&fd_data[i], &fd_counts[i],
                     "descriptors must be given as an Int32Array")) {
      return false;
    }
    if (fd_counts[i] > MAX_FDS) {
      ipc_throw_errno(env, EINVAL, "sendmsg"); /* the kernel's own limit (SCM_MAX_FD) */
      return false;
    }
    if (fd_counts[i] > 0) *control_total += CMSG_SPACE(fd_counts[i] * sizeof(int));
  }
  return true;
}

/* Puts count descriptors into msg as one SCM_RIGHTS cmsg at control; returns the space it took. */
static size_t add_rights(struct msghdr* msg, char* control, const int32_t* fds, size_t count) {
  size_t space = CMSG_SPACE(count * sizeof(int));
  memset(control, 0, space);
  msg->msg_control = control;
  msg->msg_controllen = space;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(count * sizeof(int));
  memcpy(CMSG_DATA(cmsg), fds, count * sizeof(int));
  return space;
}

/*
 * Builds the batch's message headers in the arena, pointing straight at JS memory, and returns the
 * arena; NULL (having thrown) if an element is wrong. It runs no JS, so the memory it takes (and
 * *progress) stays valid until the batch is sent.
 */
static arena_t* build_headers(napi_env env, const send_args_t* a, const send_elements_t* e, int32_t** progress) {
  if ((*progress = progress_arg(env, a->progress_value)) == NULL) return NULL; /* a getter may have detached it */
  char* packed = NULL;
  size_t packed_length = 0;
  if (a->packed != NULL && !buffer_arg(env, a->packed, &packed, &packed_length, PACKED_TYPE)) return NULL;
  int32_t* fd_data[SEND_BATCH];
  size_t fd_counts[SEND_BATCH], control_total;
  if (!take_fd_lists(env, e, a->count, fd_data, fd_counts, &control_total)) return NULL;
  arena_t* arena = get_arena(env);
  if (arena == NULL) return NULL;
  if (control_total > arena->send_control_size) {
    char* grown = realloc(arena->send_control, control_total);
    if (grown == NULL) {
      ipc_throw_errno(env, ENOMEM, "sendmsg");
      return NULL;
    }
    arena->send_control = grown;
    arena->send_control_size = control_total;
  }
  char* control = arena->send_control;
  for (int i = 0; i < a->count; i++) {
    struct msghdr* msg = &arena->send_msgs[i];
    struct iovec* iov = &arena->send_iov[i];
    memset(msg, 0, sizeof *msg);
    if (a->spans[2 * i] >= 0) {
      size_t offset = (size_t)a->spans[2 * i], length = (size_t)a->spans[2 * i + 1];
      if (a->spans[2 * i + 1] < 0 || offset > packed_length || length > packed_length - offset) {
        ipc_throw_range(env, "a span lies outside the packed buffer");
        return NULL;
      }
      iov->iov_base = length > 0 ? packed + offset : NULL;
      iov->iov_len = length;
    } else if (!typed_array(env, e->datas[i], napi_uint8_array, &iov->iov_base, &iov->iov_len,
                            "each message must be a Uint8Array")) {
      return NULL;
    }
    msg->msg_iov = iov;
    msg->msg_iovlen = 1;
    if (e->names[i] != NULL) {
      socklen_t len = usock_sockaddr_un(env, e->names[i], &arena->send_names[i], "sendmsg");
      if (len == 0) return NULL;
      msg->msg_name = &arena->send_names[i];
      msg->msg_namelen = len;
    }
    if (fd_counts[i] > 0) control += add_rights(msg, control, fd_data[i], fd_counts[i]);
  }
  return arena;
}

static napi_value msg_send(napi_env env, napi_callback_info info) {
  send_args_t args;
  if (!send_args(env, info, &args)) return NULL;
  if (args.count == 0) {
    *args.progress = 0;
    return ipc_int_value(env, 0);
  }
  send_elements_t elements;
  if (!fetch_elements(env, &args, &elements)) return NULL;
  /* From here no JS runs until the result (or an error) is made. */
  int32_t* progress;
  arena_t* arena = build_headers(env, &args, &elements, &progress);
  if (arena == NULL) return NULL;
  *progress = 0;
  int sent = send_some(args.fd, args.type, arena, args.count, progress);
  if (sent < 0) {
    ipc_throw_errno(env, errno, "sendmsg");
    return NULL;
  }
  return ipc_int_value(env, sent);
}

/* ---- receiving ---- */

typedef struct {
  int32_t* meta; /* JS memory: only written */
  int* fds;      /* the arena's: received descriptors stay in C memory until the batch is done */
  size_t fds_capacity;
  size_t fds_used;
  size_t max_fds;        /* per message: more is cut, however many the kernel delivered */
  size_t control_length; /* the control buffer of each slot */
  bool hide_credentials; /* SO_PASSCRED was on only to mark real messages */
} out_t;

static void close_fds(const int* fds, size_t count) {
  for (size_t i = 0; i < count; i++) close(fds[i]);
}

/* How many descriptors the kernel had room for in a SCM_RIGHTS cmsg at byte `at` of the control
 * buffer (as Linux counts it: what is left after the header). */
static size_t rights_room(size_t control_length, size_t at) {
  if (control_length < at + sizeof(struct cmsghdr)) return 0;
  return (control_length - at - sizeof(struct cmsghdr)) / sizeof(int);
}

/*
 * Records message i's metadata (its data length is `length`, its real length `real`): takes its
 * descriptors and credentials out of the control data. Returns its address length.
 *
 * Descriptors: the control buffer is rounded up (CMSG_SPACE) and has room for credentials, so the
 * kernel may deliver more than maxFds; a message with more than maxFds (or whose list the kernel
 * cut, MSG_CTRUNC) has all that did arrive closed and is flagged FLAG_CTRUNC. The kernel also sets
 * MSG_CTRUNC when it could not install a descriptor (the process is at RLIMIT_NOFILE, EMFILE):
 * then it stopped short of the room it had, and the message is flagged FLAG_FD_LIMIT too.
 */
static size_t finish(out_t* out, int i, struct msghdr* msg, size_t length, size_t real) {
  int32_t* m = out->meta + META_HEADER + (size_t)i * META_STRIDE;
  int32_t flags = real > length ? FLAG_TRUNCATED : 0;
  size_t fd_count = 0;
  bool kernel_cut = (msg->msg_flags & MSG_CTRUNC) != 0, cut = kernel_cut, limit = false, saw_rights = false;
  int32_t pid = -1, uid = -1, gid = -1;
  size_t used = msg->msg_controllen < out->control_length ? msg->msg_controllen : out->control_length;
  if (used > 0 && msg->msg_control != NULL) {
    for (struct cmsghdr* c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_len < CMSG_LEN(0)) continue;
      size_t at = (size_t)((char*)c - (char*)msg->msg_control);
      size_t bytes = c->cmsg_len - CMSG_LEN(0);
      if (at + CMSG_LEN(0) > used) break;
      if (bytes > used - at - CMSG_LEN(0)) bytes = used - at - CMSG_LEN(0); /* never past what was written */
      if (c->cmsg_type == SCM_RIGHTS) {
        saw_rights = true;
        size_t n = bytes / sizeof(int);
        const unsigned char* data = CMSG_DATA(c);
        if (kernel_cut && n < rights_room(out->control_length, at)) limit = true; /* stopped short: EMFILE */
        if (cut || limit || fd_count + n > out->max_fds || out->fds_used + fd_count + n > out->fds_capacity) cut = true;
        for (size_t k = 0; k < n; k++) {
          int received;
          memcpy(&received, data + k * sizeof(int), sizeof(int));
#if !defined(MSG_CMSG_CLOEXEC) || !defined(__linux__)
          fcntl(received, F_SETFD, FD_CLOEXEC);
#endif
          if (cut) close(received); /* never leak what did arrive of a refused list */
          else out->fds[out->fds_used + fd_count++] = received;
        }
      }
#if defined(__linux__)
      else if (c->cmsg_type == SCM_CREDENTIALS && bytes >= sizeof(struct ucred)) {
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        if (!out->hide_credentials) {
          pid = cred.pid;
          uid = (int32_t)cred.uid;
          gid = (int32_t)cred.gid;
          flags |= FLAG_CREDENTIALS;
        }
      }
#endif
    }
  }
  /* Cut with no descriptor at all: the kernel had room for one, so installing the first failed. */
  if (kernel_cut && !saw_rights && out->max_fds > 0 && rights_room(out->control_length, used) > 0) limit = true;
  if (cut || limit) {
    close_fds(out->fds + out->fds_used, fd_count); /* those already taken for this message */
    fd_count = 0;
    flags |= FLAG_CTRUNC | (limit ? FLAG_FD_LIMIT : 0);
  }
  out->fds_used += fd_count;
  size_t address_length = usock_sun_path_length(msg->msg_name, msg->msg_namelen);
  m[0] = (int32_t)length;
  m[1] = (int32_t)(real > INT32_MAX ? INT32_MAX : real);
  m[2] = (int32_t)address_length;
  m[3] = (int32_t)fd_count;
  m[4] = flags;
  m[5] = pid;
  m[6] = uid;
  m[7] = gid;
  return address_length;
}

static void prepare(struct msghdr* msg, struct iovec* iov, struct sockaddr_un* name, char* control, size_t control_length) {
  memset(msg, 0, sizeof *msg);
  msg->msg_iov = iov;
  msg->msg_iovlen = 1;
  msg->msg_name = name;
  msg->msg_namelen = sizeof *name;
  msg->msg_control = control_length > 0 ? control : NULL;
  msg->msg_controllen = control_length;
}

/* Receives into the slots; returns how many messages, 0 if none waits, -1 (errno set) on error. */
static int receive_some(int fd, int type, arena_t* arena, int vlen, size_t control_length) {
  for (int i = 0; i < vlen; i++) {
    arena->iov[i].iov_base = i == 0 ? arena->data : arena->data + arena->first_slot + (size_t)(i - 1) * SLOT_SIZE;
    arena->iov[i].iov_len = i == 0 ? arena->first_slot : SLOT_SIZE;
    char* control = arena->control + (size_t)i * arena->control_per_slot;
    prepare(&arena->msgs[i], &arena->iov[i], &arena->names[i], control, control_length);
  }
  int flags = RECV_FLAGS;
#if defined(__linux__)
  if (type != USOCK_STREAM) flags |= MSG_TRUNC; /* report the real length of a datagram */
  struct mmsghdr msgs[RECV_SLOTS];
  for (int i = 0; i < vlen; i++) {
    msgs[i].msg_hdr = arena->msgs[i];
    msgs[i].msg_len = 0;
  }
  int r;
  do r = recvmmsg(fd, msgs, (unsigned)vlen, flags, NULL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  for (int i = 0; i < r; i++) {
    arena->msgs[i] = msgs[i].msg_hdr;
    arena->lengths[i] = msgs[i].msg_len;
  }
  return r;
#else
  (void)type;
  for (int i = 0; i < vlen; i++) {
    ssize_t r;
    do r = recvmsg(fd, &arena->msgs[i], flags);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return i;
      return i > 0 ? i : -1;
    }
    arena->lengths[i] = (size_t)r;
    if (r == 0 && type == USOCK_STREAM) return i + 1; /* end of stream */
  }
  return vlen;
#endif
}

/*
 * Where the messages end for stream and seqpacket sockets: a zero-length read is the end of the
 * stream. A seqpacket socket can also carry empty messages. If `marked` (SO_PASSCRED was on for
 * the read: every real message came with a cmsg), an empty read with no cmsg is the end, exactly.
 * Otherwise, while the peer has not hung up (POLLRDHUP), an empty read is a message (one sent just
 * before the peer closed then reads as the end). Returns the number of real messages; sets *eof.
 */
static int find_end(int fd, int type, arena_t* arena, int n, bool marked, bool* eof) {
  *eof = false;
  if (type == USOCK_DATAGRAM) return n;
  int first_empty = -1;
  for (int i = n - 1; i >= 0 && arena->lengths[i] == 0 && arena->msgs[i].msg_controllen == 0; i--) first_empty = i;
  if (first_empty < 0) return n;
  if (type == USOCK_SEQPACKET) {
    /* Marked: the reads from first_empty on carried no cmsg, so they are the end. */
#if defined(POLLRDHUP)
    struct pollfd p = {.fd = fd, .events = POLLRDHUP, .revents = 0};
    if (!marked && poll(&p, 1, 0) >= 0 && (p.revents & (POLLRDHUP | POLLHUP)) == 0) return n; /* empty messages */
#else
    (void)fd;
    (void)marked;
#endif
  } else {
    for (int i = 0; i < n; i++) {
      if (arena->lengths[i] == 0) {
        first_empty = i;
        break;
      }
    }
  }
  *eof = true;
  return first_empty;
}

/* receive's arguments, checked. receive runs no JS, so the memory taken here stays valid. */
typedef struct {
  int fd, type, mark;
  int32_t* meta;
  int32_t* fds; /* JS memory: only written, once the batch is done */
  size_t fds_length;
  size_t max_fds;
  napi_value pool_value;
  char* pool;
  size_t pool_length, pool_offset;
  size_t vlen; /* the most messages this call may take: what meta and fds have room for */
} receive_args_t;

/* Reads receive's arguments; false if one is wrong (having thrown). */
static bool receive_args(napi_env env, napi_callback_info info, receive_args_t* a) {
  napi_value argv[8];
  int64_t type, max_fds, pool_offset, mark;
  size_t meta_length;
  const char* arrays = "receive needs Int32Arrays for its metadata and descriptors";
  if (!ipc_fd_args(env, info, 8, argv, &a->fd) ||
      !ipc_get_int(env, argv[1], USOCK_DATAGRAM, USOCK_STREAM, "the socket type", &type) ||
      !typed_array(env, argv[2], napi_int32_array, (void**)&a->meta, &meta_length, arrays) ||
      !typed_array(env, argv[3], napi_int32_array, (void**)&a->fds, &a->fds_length, arrays) ||
      !ipc_get_int(env, argv[4], 0, MAX_FDS, "maxFds", &max_fds) ||
      !buffer_arg(env, argv[5], &a->pool, &a->pool_length, "receive needs a pool Buffer") ||
      !ipc_get_int(env, argv[6], 0, (int64_t)a->pool_length, "the pool offset", &pool_offset) ||
      !ipc_get_int(env, argv[7], MARK_USER_ON, MARK_ON, "mark", &mark)) {
    return false;
  }
  a->type = (int)type;
  a->max_fds = (size_t)max_fds;
  a->pool_value = argv[5];
  a->pool_offset = (size_t)pool_offset;
  a->mark = (int)mark;
  /* As many messages as meta has room for (and fds, maxFds each); at least one. */
  size_t vlen = type == USOCK_STREAM ? 1 : RECV_SLOTS;
  size_t meta_room = meta_length < META_HEADER ? 0 : (meta_length - META_HEADER) / META_STRIDE;
  if (vlen > meta_room) vlen = meta_room;
  if (max_fds > 0 && vlen > a->fds_length / (size_t)max_fds) vlen = a->fds_length / (size_t)max_fds;
  if (vlen < 1) {
    ipc_throw_range(env, "receive's metadata or descriptor array is too small for one message");
    return false;
  }
  a->vlen = vlen;
  return true;
}

/*
 * Records the metadata of the n messages received and copies each one's data, then its sender's
 * address, into the pool from poolOffset on, or into one new Buffer if they do not fit there.
 * Returns that Buffer (or the pool); NULL (having thrown, the descriptors closed) on failure.
 */
static napi_value copy_out(napi_env env, arena_t* arena, out_t* out, int n, const receive_args_t* a) {
  size_t total = 0;
  size_t address_lengths[RECV_SLOTS];
  for (int i = 0; i < n; i++) {
    size_t real = arena->lengths[i];
    size_t length = real < arena->iov[i].iov_len ? real : arena->iov[i].iov_len;
    arena->lengths[i] = length;
    address_lengths[i] = finish(out, i, &arena->msgs[i], length, real);
    total += length + address_lengths[i];
  }
  char* data;
  napi_value result;
  if (total <= a->pool_length - a->pool_offset) {
    data = total == 0 ? NULL : a->pool + a->pool_offset;
    result = a->pool_value;
  } else if (napi_create_buffer(env, total, (void**)&data, &result) != napi_ok) {
    close_fds(out->fds, out->fds_used);
    ipc_throw_napi_failure(env, "creating the received messages' buffer");
    return NULL;
  }
  size_t at = 0; /* data is NULL when total is 0 */
  for (int i = 0; i < n; i++) {
    if (arena->lengths[i] > 0) memcpy(data + at, arena->iov[i].iov_base, arena->lengths[i]);
    at += arena->lengths[i];
    if (address_lengths[i] > 0) memcpy(data + at, arena->names[i].sun_path, address_lengths[i]);
    at += address_lengths[i];
#if defined(MADV_DONTNEED)
    if (arena->lengths[i] > SLOT_KEEP) {
      madvise((char*)arena->iov[i].iov_base + SLOT_KEEP, arena->iov[i].iov_len - SLOT_KEEP, MADV_DONTNEED);
    }
#endif
  }
  return result;
}

static napi_value msg_receive(napi_env env, napi_callback_info info) {
  receive_args_t args;
  if (!receive_args(env, info, &args)) return NULL;
  /* Named as the marking below has always named them. */
  int fd = args.fd;
  int64_t type = args.type, mark = args.mark;
  size_t vlen = args.vlen;
  arena_t* arena = get_arena(env);
  if (arena == NULL) return NULL;
  out_t out = {.meta = args.meta, .fds = arena->fds, .fds_capacity = RECV_SLOTS * MAX_FDS, .max_fds = args.max_fds};
  if (out.fds_capacity > args.fds_length) out.fds_capacity = args.fds_length;
  out.control_length = (args.max_fds > 0 ? CMSG_SPACE(args.max_fds * sizeof(int)) : 0) + CRED_SPACE;
  args.meta[0] = 0;
  args.meta[1] = 0;

  bool marked = false, toggled = false;
#if defined(__linux__) && defined(SO_PASSCRED)
  if (type == USOCK_SEQPACKET) {
    int on = 0;
    socklen_t on_length = sizeof on;
    if (mark == MARK_USER_ON || mark == MARK_ON) {
      marked = true; /* SO_PASSCRED is on: real messages carry credentials already */
      out.hide_credentials = mark == MARK_ON;
    } else if (mark == MARK_UNKNOWN && getsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, &on_length) == 0 && on) {
      marked = true;
    } else {
      on = 1;
      toggled = marked = setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0;
      out.hide_credentials = toggled;
    }
  }
#else
  (void)mark;
  (void)toggled;
#endif
  int n = receive_some(fd, (int)type, arena, (int)vlen, out.control_length);
#if defined(__linux__) && defined(SO_PASSCRED)
  if (toggled) {
    int saved = errno, off = 0;
    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &off, sizeof off);
    errno = saved;
  }
#endif
  if (n < 0) {
    ipc_throw_errno(env, errno, "recvmsg");
    return NULL;
  }
  bool eof = false;
  n = find_end(fd, (int)type, arena, n, marked, &eof);
  if (n == 0 && !eof) return NULL;
  napi_value result = copy_out(env, arena, &out, n, &args);
  if (result == NULL) return NULL;
  if (!ipc_hold_fds(env, out.fds, out.fds_used)) {
    close_fds(out.fds, out.fds_used);
    return NULL;
  }
  if (out.fds_used > 0) memcpy(args.fds, out.fds, out.fds_used * sizeof(int));
  args.meta[0] = n;
  args.meta[1] = eof ? 1 : 0;
  return result;
}

napi_value msg_init(napi_env env, napi_value sockets) {
  NAPI_CALL(env, ipc_set_fn(env, sockets, "send", msg_send));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "receive", msg_receive));
  NAPI_CALL(env, ipc_set_int(env, sockets, "RECEIVE_BATCH", RECV_SLOTS));
  NAPI_CALL(env, ipc_set_int(env, sockets, "SEND_BATCH", SEND_BATCH));
  NAPI_CALL(env, ipc_set_int(env, sockets, "META_HEADER", META_HEADER));
  NAPI_CALL(env, ipc_set_int(env, sockets, "META_STRIDE", META_STRIDE));
  NAPI_CALL(env, ipc_set_int(env, sockets, "MAX_FDS", MAX_FDS));
  napi_value marks;
  NAPI_CALL(env, napi_create_object(env, &marks));
  NAPI_CALL(env, ipc_set_int(env, marks, "USER_ON", MARK_USER_ON));
  NAPI_CALL(env, ipc_set_int(env, marks, "OFF", MARK_OFF));
  NAPI_CALL(env, ipc_set_int(env, marks, "UNKNOWN", MARK_UNKNOWN));
  NAPI_CALL(env, ipc_set_int(env, marks, "ON", MARK_ON));
  NAPI_CALL(env, napi_set_named_property(env, sockets, "MARKS", marks));
  return sockets;
}
