/*
 * The batched receive of Unix domain sockets (see message.h).
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
 *   receive-mark.h's (exported as MARKS). SO_PASSCRED cannot stay on for a socket without an
 *   address (a connecting one, a socket pair's): its next send would autobind it to an abstract
 *   name. So the sockets we make or accept get SO_TIMESTAMP instead, once (receive_stamp): the
 *   kernel gives every real message a timestamp cmsg and the end none, with no syscall per read
 *   (turning SO_PASSCRED on and off around each read cost two) and no side effect (Unix sockets
 *   do not turn on the network stack's timestamps). Only a socket whose state is unknown (an
 *   adopted descriptor) or that could not be stamped still toggles SO_PASSCRED around its reads.
 *
 * receive_stamp(fd): turns SO_TIMESTAMP on (Linux), for MARK_STAMP reads; throws where it cannot.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* recvmmsg, struct ucred, MSG_CMSG_CLOEXEC */
#endif
#include "message.h"
#include "receive-mark.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

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
  if (type == USOCK_STREAM) {
    /* A stream has no empty messages: a zero-length read is the end, even with a cmsg (with
     * SO_PASSCRED on, Linux gives one at the end too). */
    for (int i = 0; i < n; i++) {
      if (arena->lengths[i] == 0) {
        *eof = true;
        return i;
      }
    }
    return n;
  }
  int first_empty = -1;
  for (int i = n - 1; i >= 0 && arena->lengths[i] == 0 && arena->msgs[i].msg_controllen == 0; i--) first_empty = i;
  if (first_empty < 0) return n;
  /* Seqpacket. Marked: the reads from first_empty on carried no cmsg, so they are the end. */
#if defined(POLLRDHUP)
  struct pollfd p = {.fd = fd, .events = POLLRDHUP, .revents = 0};
  if (!marked && poll(&p, 1, 0) >= 0 && (p.revents & (POLLRDHUP | POLLHUP)) == 0) return n; /* empty messages */
#else
  (void)fd;
  (void)marked;
#endif
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
      !msg_typed_array(env, argv[2], napi_int32_array, (void**)&a->meta, &meta_length, arrays) ||
      !msg_typed_array(env, argv[3], napi_int32_array, (void**)&a->fds, &a->fds_length, arrays) ||
      !ipc_get_int(env, argv[4], 0, MAX_FDS, "maxFds", &max_fds) ||
      !msg_buffer_arg(env, argv[5], &a->pool, &a->pool_length, "receive needs a pool Buffer") ||
      !ipc_get_int(env, argv[6], 0, (int64_t)a->pool_length, "the pool offset", &pool_offset) ||
      !ipc_get_int(env, argv[7], MARK_USER_ON, MARK_STAMP, "mark", &mark)) {
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

napi_value receive_messages(napi_env env, napi_callback_info info) {
  receive_args_t args;
  if (!receive_args(env, info, &args)) return NULL;
  /* Named as the marking below has always named them. */
  int fd = args.fd;
  int64_t type = args.type, mark = args.mark;
  size_t vlen = args.vlen;
  arena_t* arena = msg_arena(env);
  if (arena == NULL) return NULL;
  out_t out = {.meta = args.meta, .fds = arena->fds, .fds_capacity = RECV_SLOTS * MAX_FDS, .max_fds = args.max_fds};
  if (out.fds_capacity > args.fds_length) out.fds_capacity = args.fds_length;
  out.control_length = (args.max_fds > 0 ? CMSG_SPACE(args.max_fds * sizeof(int)) : 0) + CRED_SPACE + STAMP_SPACE;
  args.meta[0] = 0;
  args.meta[1] = 0;

  bool marked = false, toggled = false;
#if defined(__linux__) && defined(SO_PASSCRED)
  if (type == USOCK_SEQPACKET) {
    int on = 0;
    socklen_t on_length = sizeof on;
    if (mark == MARK_STAMP) {
      marked = true; /* SO_TIMESTAMP is on: real messages carry a timestamp (credentials: if SO_PASSCRED is) */
    } else if (mark == MARK_USER_ON || mark == MARK_ON) {
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

napi_value receive_stamp(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
#if defined(__linux__) && defined(SO_TIMESTAMP)
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &on, sizeof on) != 0) ipc_throw_errno(env, errno, "setsockopt");
#else
  ipc_throw_errno(env, EOPNOTSUPP, "setsockopt");
#endif
  return NULL;
}
