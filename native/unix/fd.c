/*
 * Descriptor-level calls Node lacks: pipe pairs (pipe2 with close-on-exec and non-blocking), pipe
 * buffer sizes, mkfifo, FIFO opens whose descriptor Node does not track, close-on-exec and
 * blocking flags, a close-on-exec dup, and a blocking poll for the synchronous readSync/writeSync
 * (which must wait without ever switching the descriptor to blocking mode under libuv's feet).
 */
#if defined(__linux__)
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ */
#endif
#include "unix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int set_flag(int fd, int get, int set, int flag, bool on) {
  int flags = fcntl(fd, get);
  if (flags < 0) return errno;
  int wanted = on ? (flags | flag) : (flags & ~flag);
  if (wanted != flags && fcntl(fd, set, wanted) != 0) return errno;
  return 0;
}

/* pipe() -> [readFd, writeFd], both close-on-exec and non-blocking, in the registry of unclaimed
 * descriptors (addon.h) until JS gives them an owner. */
napi_value fd_pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || defined(__DragonFly__)
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    ipc_throw_errno(env, errno, "pipe2");
    return NULL;
  }
#else /* macOS: no pipe2; nothing else in this process forks between these calls from JS */
  if (pipe(fds) != 0) {
    ipc_throw_errno(env, errno, "pipe");
    return NULL;
  }
  for (int i = 0; i < 2; i++) {
    int err = set_flag(fds[i], F_GETFD, F_SETFD, FD_CLOEXEC, true);
    if (err == 0) err = set_flag(fds[i], F_GETFL, F_SETFL, O_NONBLOCK, true);
    if (err != 0) {
      close(fds[0]);
      close(fds[1]);
      ipc_throw_errno(env, err, "fcntl");
      return NULL;
    }
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

/* pipeSize(fd[, size]) -> the pipe's buffer size after setting it (Linux), or -1 where the OS has
 * no such control. */
napi_value fd_pipe_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd;
  if (argc < 1) {
    ipc_throw(env, IPC_TYPE_ERROR, "ERR_MISSING_ARGS", "pipeSize(fd[, size]) needs a descriptor");
    return NULL;
  }
  if (!ipc_get_fd(env, argv[0], &fd)) return NULL;
  napi_valuetype type = napi_undefined;
  if (argc >= 2) NAPI_CALL(env, napi_typeof(env, argv[1], &type));
  int64_t size = 0;
  if (type != napi_undefined && !ipc_get_int(env, argv[1], 0, INT32_MAX, "the pipe size", &size)) return NULL;
#if defined(__linux__)
  if (type != napi_undefined) {
    if (fcntl(fd, F_SETPIPE_SZ, (int)size) < 0) {
      ipc_throw_errno(env, errno, "fcntl(F_SETPIPE_SZ)");
      return NULL;
    }
  }
  int now = fcntl(fd, F_GETPIPE_SZ);
  if (now < 0) {
    ipc_throw_errno(env, errno, "fcntl(F_GETPIPE_SZ)");
    return NULL;
  }
  return ipc_int_value(env, now);
#else
  (void)size;
  return ipc_int_value(env, -1);
#endif
}

/* mkfifo(path, mode): a path that does not fit (PATH_MAX with its NUL) is ENAMETOOLONG, whole:
 * never cut (napi_get_value_string_utf8 stops at a character boundary, so it cannot be trusted to
 * say whether it cut). A NUL inside is refused, as Node's fs refuses it. */
napi_value fd_mkfifo(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!ipc_args(env, info, 2, argv)) return NULL;
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_string) {
    ipc_throw_type(env, "the FIFO's path must be a string");
    return NULL;
  }
  int64_t mode;
  if (!ipc_get_int(env, argv[1], 0, 07777, "the mode", &mode)) return NULL;
  size_t length, copied;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], NULL, 0, &length)); /* its whole UTF-8 length */
  char path[PATH_MAX];
  if (length >= sizeof path) {
    ipc_throw_errno(env, ENAMETOOLONG, "mkfifo");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &copied));
  if (copied != length) {
    ipc_throw_errno(env, ENAMETOOLONG, "mkfifo");
    return NULL;
  }
  if (memchr(path, '\0', length) != NULL) {
    ipc_throw_value(env, "the FIFO's path must not contain NUL bytes");
    return NULL;
  }
  if (mkfifo(path, (mode_t)mode) != 0) {
    ipc_throw_errno(env, errno, "mkfifo");
    return NULL;
  }
  return NULL;
}

/*
 * openFifo(path, forWriting) -> fd: opens path non-blocking and close-on-exec (for reading at
 * once; for writing only while a reader has it open, ENXIO otherwise), in the registry of
 * unclaimed descriptors. Node's fs.openSync would do the same open, but in a worker thread Node
 * records such a descriptor and closes it again when the worker exits, even after the stream it
 * was given to has closed it and the number belongs to someone else. JS checks it is a FIFO.
 */
napi_value fd_open_fifo(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!ipc_args(env, info, 2, argv)) return NULL;
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_string) {
    ipc_throw_type(env, "the path must be a string");
    return NULL;
  }
  bool writing = false;
  if (!ipc_get_bool(env, argv[1], "forWriting", &writing)) return NULL;
  size_t length;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], NULL, 0, &length));
  char* path = malloc(length + 1);
  if (path == NULL) {
    ipc_throw_errno(env, ENOMEM, "open");
    return NULL;
  }
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, length + 1, &copied) != napi_ok) {
    free(path);
    ipc_throw_napi_failure(env, "reading the path");
    return NULL;
  }
  if (copied != length || strlen(path) != length) { /* a NUL inside: it would open a shorter path */
    free(path);
    ipc_throw_value(env, "the FIFO's path must not contain NUL bytes");
    return NULL;
  }
  int fd;
  do fd = open(path, (writing ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  int err = errno;
  free(path);
  if (fd < 0) {
    ipc_throw_errno(env, err, "open");
    return NULL;
  }
  return ipc_new_fd_value(env, fd);
}

/* setCloexec(fd, on) and setNonblocking(fd, on) */
static napi_value flag_call(napi_env env, napi_callback_info info, int get, int set, int flag) {
  napi_value argv[2];
  int fd;
  bool on;
  if (!ipc_fd_args(env, info, 2, argv, &fd) || !ipc_get_bool(env, argv[1], "on", &on)) return NULL;
  int err = set_flag(fd, get, set, flag, on);
  if (err != 0) ipc_throw_errno(env, err, "fcntl");
  return NULL;
}

napi_value fd_set_cloexec(napi_env env, napi_callback_info info) {
  return flag_call(env, info, F_GETFD, F_SETFD, FD_CLOEXEC);
}

napi_value fd_set_nonblocking(napi_env env, napi_callback_info info) {
  return flag_call(env, info, F_GETFL, F_SETFL, O_NONBLOCK);
}

/* dupCloexec(fd) -> a new descriptor for the same open file, close-on-exec, in the registry of
 * unclaimed descriptors until JS hands it over. */
napi_value fd_dup_cloexec(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    ipc_throw_errno(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
    return NULL;
  }
  return ipc_new_fd_value(env, copy);
}

/* waitFd(fd, writable, timeoutMs) -> true when ready, false on timeout (-1: none). Blocks this
 * thread: it exists only for the synchronous calls, which are documented to block. A descriptor
 * that is not open is EBADF (poll says POLLNVAL, which is not readiness). */
napi_value fd_wait(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int fd;
  bool writable;
  int64_t timeout;
  if (!ipc_fd_args(env, info, 3, argv, &fd) || !ipc_get_bool(env, argv[1], "writable", &writable) ||
      !ipc_get_int(env, argv[2], -1, INT32_MAX, "the timeout", &timeout)) {
    return NULL;
  }
  struct pollfd p = {.fd = fd, .events = writable ? POLLOUT : POLLIN, .revents = 0};
  int r;
  do r = poll(&p, 1, (int)timeout);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    ipc_throw_errno(env, errno, "poll");
    return NULL;
  }
  if (r > 0 && (p.revents & POLLNVAL) != 0) {
    ipc_throw_errno(env, EBADF, "poll");
    return NULL;
  }
  return ipc_bool_value(env, r > 0);
}
