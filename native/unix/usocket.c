/*
 * Unix domain sockets of every type (datagram, seqpacket, stream) that Node does not drive: their
 * lifecycle. Every socket is non-blocking and close-on-exec from birth; JS watches it with the
 * Watcher and calls send.c and receive.c to move data when it is ready. Nothing here blocks: a Unix connect
 * completes or fails at once (EINPROGRESS, where an OS reports it, is left to JS to wait out).
 *
 * Types cross the boundary as our own numbers (1 datagram, 2 seqpacket, 3 stream), addresses as
 * the raw bytes of sun_path: a leading NUL is a Linux abstract name, taken with its exact length.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* accept4, SOCK_NONBLOCK */
#endif
#include "unix.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

int usock_sock_type(int ours) {
  switch (ours) {
    case USOCK_DATAGRAM: return SOCK_DGRAM;
    case USOCK_SEQPACKET: return SOCK_SEQPACKET;
    case USOCK_STREAM: return SOCK_STREAM;
    default: return -1;
  }
}

static int our_type(int sock_type) {
  switch (sock_type) {
    case SOCK_DGRAM: return USOCK_DATAGRAM;
    case SOCK_SEQPACKET: return USOCK_SEQPACKET;
    case SOCK_STREAM: return USOCK_STREAM;
    default: return 0;
  }
}

int usock_nonblocking_cloexec(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -1;
#ifdef SO_NOSIGPIPE
  int one = 1; /* no MSG_NOSIGNAL here: a send to a closed peer must not kill the process */
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return 0;
}

int usock_new_socket(int type) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  return socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  int fd = socket(AF_UNIX, type, 0);
  if (fd >= 0 && usock_nonblocking_cloexec(fd) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
#endif
}

socklen_t usock_sockaddr_un(napi_env env, napi_value value, struct sockaddr_un* addr, const char* syscall) {
  char* data;
  size_t length;
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, (void**)&data, &length) != napi_ok) {
    ipc_throw_type(env, "a socket address must be a Buffer of sun_path bytes");
    return 0;
  }
  /* An abstract name is exact; a path gets its terminating NUL if there is room: one that fills
   * sun_path has none, as the kernel allows (a sender bound there is replied to). */
  bool abstract = length > 0 && data[0] == '\0';
  if (length == 0 || length > sizeof addr->sun_path) {
    ipc_throw_errno(env, length == 0 ? EINVAL : ENAMETOOLONG, syscall);
    return 0;
  }
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, data, length);
  bool nul = !abstract && length < sizeof addr->sun_path;
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length + (nul ? 1 : 0));
}

static napi_value fail(napi_env env, const char* syscall) {
  ipc_throw_errno(env, errno, syscall);
  return NULL;
}

/* Reads the one argument, a socket type; its SOCK_* value, or -1 after throwing. */
static int type_arg(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t type;
  if (!ipc_args(env, info, 1, argv) || !ipc_get_int(env, argv[0], USOCK_DATAGRAM, USOCK_STREAM, "the socket type", &type)) {
    return -1;
  }
  return usock_sock_type((int)type);
}

/* open(type) -> fd (in the registry of unclaimed descriptors) */
static napi_value usock_open(napi_env env, napi_callback_info info) {
  int type = type_arg(env, info);
  if (type < 0) return NULL;
  int fd = usock_new_socket(type);
  return fd < 0 ? fail(env, "socket") : ipc_new_fd_value(env, fd);
}

/* pair(type) -> [fd, fd] (in the registry of unclaimed descriptors) */
static napi_value usock_pair(napi_env env, napi_callback_info info) {
  int type = type_arg(env, info);
  if (type < 0) return NULL;
  int fds[2];
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return fail(env, "socketpair");
#else
  if (socketpair(AF_UNIX, type, 0, fds) != 0) return fail(env, "socketpair");
  if (usock_nonblocking_cloexec(fds[0]) != 0 || usock_nonblocking_cloexec(fds[1]) != 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    ipc_throw_errno(env, err, "fcntl");
    return NULL;
  }
#endif
  if (!ipc_hold_fds(env, fds, 2)) {
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  napi_value result = ipc_int_pair(env, fds[0], fds[1]);
  if (result == NULL) { /* JS never saw them */
    ipc_close_held(env, fds[0]);
    ipc_close_held(env, fds[1]);
  }
  return result;
}

/* bind(fd, address: Buffer | null): null binds to an address the kernel picks (Linux autobind). */
static napi_value usock_bind(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  if (!ipc_fd_args(env, info, 2, argv, &fd)) return NULL;
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[1], &type));
  struct sockaddr_un addr;
  socklen_t len;
  if (type == napi_null) {
#if defined(__linux__)
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    len = sizeof(sa_family_t); /* autobind: the kernel picks a unique abstract name */
#else
    ipc_throw_errno(env, EOPNOTSUPP, "bind");
    return NULL;
#endif
  } else if ((len = usock_sockaddr_un(env, argv[1], &addr, "bind")) == 0) {
    return NULL;
  }
  if (bind(fd, (struct sockaddr*)&addr, len) != 0) return fail(env, "bind");
  return NULL;
}

/* connect(fd, address) -> true when connected, false when the OS is still connecting (EINPROGRESS). */
static napi_value usock_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  if (!ipc_fd_args(env, info, 2, argv, &fd)) return NULL;
  struct sockaddr_un addr;
  socklen_t len = usock_sockaddr_un(env, argv[1], &addr, "connect");
  if (len == 0) return NULL;
  int r;
  do r = connect(fd, (struct sockaddr*)&addr, len);
  while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EINPROGRESS) return fail(env, "connect");
  return ipc_bool_value(env, r == 0);
}

/* takeError(fd): throws the socket's pending error (SO_ERROR), if any: the end of a connect in progress. */
static napi_value usock_take_error(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return fail(env, "getsockopt");
  if (err != 0) ipc_throw_errno(env, err, "connect");
  return NULL;
}

/* Reads (fd, n): a descriptor and an integer in min .. max. */
static bool read_fd_and_int(napi_env env, napi_callback_info info, int* fd, int64_t min, int64_t max, const char* what,
                            int64_t* n) {
  napi_value argv[2];
  return ipc_fd_args(env, info, 2, argv, fd) && ipc_get_int(env, argv[1], min, max, what, n);
}

/* listen(fd, backlog) */
static napi_value usock_listen(napi_env env, napi_callback_info info) {
  int fd;
  int64_t backlog;
  if (!read_fd_and_int(env, info, &fd, 0, IPC_MAX_SAFE_INTEGER, "the backlog", &backlog)) return NULL;
  if (listen(fd, backlog > INT32_MAX ? INT32_MAX : (int)backlog) != 0) return fail(env, "listen"); /* the kernel caps it anyway */
  return NULL;
}

/*
 * accept(fd, max) -> [fd, ...]: every connection waiting, up to max, each non-blocking and
 * close-on-exec and in the registry of unclaimed descriptors; [] when none waits. Connections
 * that died before we took them are skipped.
 */
#define ACCEPT_MAX 256

static napi_value usock_accept(napi_env env, napi_callback_info info) {
  int fd;
  int64_t max;
  if (!read_fd_and_int(env, info, &fd, 1, INT32_MAX, "the most connections to accept", &max)) return NULL;
  if (max > ACCEPT_MAX) max = ACCEPT_MAX;
  int conns[ACCEPT_MAX];
  int count = 0;
  while (count < max) {
#if defined(__linux__)
    int conn = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int conn = accept(fd, NULL, NULL);
    if (conn >= 0 && usock_nonblocking_cloexec(conn) != 0) {
      close(conn);
      continue;
    }
#endif
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (count > 0) break; /* deliver what we have; the error comes back on the next call */
      return fail(env, "accept");
    }
    conns[count++] = conn;
  }
  if (!ipc_hold_fds(env, conns, (size_t)count)) {
    for (int i = 0; i < count; i++) close(conns[i]);
    return NULL;
  }
  napi_value result, value;
  bool ok = napi_create_array_with_length(env, (size_t)count, &result) == napi_ok;
  for (int i = 0; ok && i < count; i++) {
    ok = napi_create_int32(env, conns[i], &value) == napi_ok && napi_set_element(env, result, (uint32_t)i, value) == napi_ok;
  }
  if (!ok) {
    for (int i = 0; i < count; i++) ipc_close_held(env, conns[i]);
    ipc_throw_napi_failure(env, "returning accepted sockets");
    return NULL;
  }
  return result;
}

/* shutdown(fd): no more sending (the peer reads end-of-stream); receiving goes on. */
static napi_value usock_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  if (shutdown(fd, SHUT_WR) != 0 && errno != ENOTCONN) return fail(env, "shutdown");
  return NULL;
}

/* address(fd, peer: boolean) -> Buffer of sun_path bytes (empty when unbound or unnamed). */
static napi_value usock_address(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  if (!ipc_fd_args(env, info, 2, argv, &fd)) return NULL;
  bool peer;
  if (!ipc_get_bool(env, argv[1], "peer", &peer)) return NULL;
  struct sockaddr_un addr;
  socklen_t len = sizeof addr;
  memset(&addr, 0, sizeof addr);
  int r = peer ? getpeername(fd, (struct sockaddr*)&addr, &len) : getsockname(fd, (struct sockaddr*)&addr, &len);
  if (r != 0) return fail(env, peer ? "getpeername" : "getsockname");
  size_t path_len = usock_sun_path_length(&addr, len);
  napi_value result;
  NAPI_CALL(env, napi_create_buffer_copy(env, path_len, addr.sun_path, NULL, &result));
  return result;
}

size_t usock_sun_path_length(const struct sockaddr_un* addr, socklen_t len) {
  size_t offset = offsetof(struct sockaddr_un, sun_path);
  if (len <= offset) return 0;
  size_t n = len - offset;
  if (n > sizeof addr->sun_path) n = sizeof addr->sun_path;
  if (addr->sun_path[0] == '\0') return n; /* abstract: exact, NULs and all */
  return strnlen(addr->sun_path, n);
}

/* setPassCredentials(fd, on): Linux SO_PASSCRED, the sender's credentials with every message. */
static napi_value usock_pass_credentials(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  if (!ipc_fd_args(env, info, 2, argv, &fd)) return NULL;
  bool on;
  if (!ipc_get_bool(env, argv[1], "on", &on)) return NULL;
#if defined(SO_PASSCRED)
  int value = on ? 1 : 0;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &value, sizeof value) != 0) return fail(env, "setsockopt");
#else
  (void)on;
  ipc_throw_errno(env, EOPNOTSUPP, "setsockopt");
#endif
  return NULL;
}

/* adopt(fd): makes a descriptor we were handed (stdio, a received one) non-blocking and close-on-exec. */
static napi_value usock_adopt(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  if (usock_nonblocking_cloexec(fd) != 0) return fail(env, "fcntl");
  return NULL;
}

static const char* kind_of(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFSOCK: return "socket";
    case S_IFIFO: return "fifo";
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFCHR: return "character-device";
    case S_IFBLK: return "block-device";
    default: return "unknown";
  }
}

/*
 * describe(fd) -> { kind, socketType, listening, unix }: what a received descriptor is, so JS
 * can turn it into the right object. socketType is 0 for non-sockets and unknown types.
 */
static napi_value usock_describe(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(env, "fstat");
  int socket_type = 0, listening = 0;
  bool unix_domain = false;
  if (S_ISSOCK(st.st_mode)) {
    int value = 0;
    socklen_t len = sizeof value;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) == 0) socket_type = our_type(value);
#ifdef SO_ACCEPTCONN
    len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) listening = 0;
#endif
    struct sockaddr_storage addr;
    len = sizeof addr;
    if (getsockname(fd, (struct sockaddr*)&addr, &len) == 0) unix_domain = addr.ss_family == AF_UNIX;
  }
  napi_value result, kind, flag;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_string_utf8(env, kind_of(st.st_mode), NAPI_AUTO_LENGTH, &kind));
  NAPI_CALL(env, napi_set_named_property(env, result, "kind", kind));
  NAPI_CALL(env, ipc_set_int(env, result, "socketType", socket_type));
  NAPI_CALL(env, napi_get_boolean(env, listening != 0, &flag));
  NAPI_CALL(env, napi_set_named_property(env, result, "listening", flag));
  NAPI_CALL(env, napi_get_boolean(env, unix_domain, &flag));
  NAPI_CALL(env, napi_set_named_property(env, result, "unix", flag));
  return result;
}

napi_value usock_init(napi_env env, napi_value exports) {
  napi_value sockets;
  NAPI_CALL(env, napi_create_object(env, &sockets));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "open", usock_open));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "pair", usock_pair));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "bind", usock_bind));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "connect", usock_connect));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "takeError", usock_take_error));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "listen", usock_listen));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "accept", usock_accept));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "shutdown", usock_shutdown));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "address", usock_address));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "setPassCredentials", usock_pass_credentials));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "describe", usock_describe));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "adopt", usock_adopt));
  if (msg_init(env, sockets) == NULL) return NULL;
  NAPI_CALL(env, napi_set_named_property(env, exports, "unixSockets", sockets));
  return exports;
}
