/*
 * The blocking local-socket client (src/sync/): connect, read and write that wait on the calling
 * thread, and only there. The socket is non-blocking; each call tries the syscall and, when it
 * would block, waits in poll(2) for what is left of its deadline (recomputed after EINTR, so a
 * signal neither cuts the wait short nor stretches it). Nothing goes to libuv's thread pool: a
 * worker thread that calls these blocks itself and no one else.
 *
 * The descriptor is in the environment's registry of unclaimed descriptors from socket() on, and
 * stays there while JS uses it (a SyncLocalSocket has no Watcher or Node handle to own it); JS
 * closes it with closeFd, and a worker torn down with one open closes it with the registry.
 *
 * Timeouts are milliseconds, -1 for none. A call that runs out of time returns -1 (connect, read)
 * or the bytes it wrote (write), and JS makes the ETIMEDOUT that says which call waited how long.
 */
#include "unix.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE, set by usock_nonblocking_cloexec */
#endif

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The deadline of a timeout in ms (-1: none, kept as -1). */
static int64_t deadline_of(int64_t timeout_ms) {
  return timeout_ms < 0 ? -1 : now_ns() + timeout_ms * 1000000;
}

/* What poll may wait of the deadline, rounded up to whole ms (-1: no limit; 0: it has passed). */
static int left_ms(int64_t deadline) {
  if (deadline < 0) return -1;
  int64_t left = deadline - now_ns();
  if (left <= 0) return 0;
  int64_t ms = (left + 999999) / 1000000;
  return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 out of time, -1 with errno set. */
static int wait_until(int fd, short events, int64_t deadline) {
  for (;;) {
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    int r = poll(&p, 1, left_ms(deadline));
    if (r > 0 && (p.revents & POLLNVAL) != 0) {
      errno = EBADF;
      return -1;
    }
    if (r >= 0) return r;
    if (errno != EINTR) return -1;
  }
}

/* A timeout in ms: -1 (none) to INT32_MAX. */
static bool timeout_arg(napi_env env, napi_value value, int64_t* timeout) {
  return ipc_get_int(env, value, -1, INT32_MAX, "the timeout", timeout);
}

/*
 * connect(address: Buffer, timeoutMs) -> fd, or -1 when the timeout passed first. One attempt:
 * ENOENT, ECONNREFUSED and EAGAIN (a full backlog on Linux) are thrown for JS to retry with `wait`.
 */
static napi_value sync_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct sockaddr_un addr;
  int64_t timeout;
  if (!ipc_args(env, info, 2, argv)) return NULL;
  socklen_t length = usock_sockaddr_un(env, argv[0], &addr, "connect");
  if (length == 0 || !timeout_arg(env, argv[1], &timeout)) return NULL;
  int64_t deadline = deadline_of(timeout);
  int fd = usock_new_socket(SOCK_STREAM);
  if (fd < 0) {
    ipc_throw_errno(env, errno, "socket");
    return NULL;
  }
  if (!ipc_hold_fds(env, &fd, 1)) {
    close(fd);
    return NULL;
  }
  int r;
  do r = connect(fd, (struct sockaddr*)&addr, length);
  while (r != 0 && errno == EINTR);
  int err = r == 0 ? 0 : errno;
  if (err == EINPROGRESS) {
    /* The BSDs may finish a local connect later: wait for it, then read its outcome. */
    int ready = wait_until(fd, POLLOUT, deadline);
    socklen_t size = sizeof err;
    if (ready < 0) err = errno;
    else if (ready == 0) err = ETIMEDOUT;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &size) != 0) err = errno;
  }
  if (err == ETIMEDOUT) {
    ipc_close_held(env, fd);
    return ipc_int_value(env, -1);
  }
  if (err != 0) {
    ipc_close_held(env, fd);
    ipc_throw_errno(env, err, "connect");
    return NULL;
  }
  napi_value result = ipc_int_value(env, fd);
  if (result == NULL) ipc_close_held(env, fd);
  return result;
}

/*
 * The arguments of read and write, (fd, buffer, offset, length, timeoutMs): the descriptor, the
 * Buffer span [offset, offset + length) checked against the Buffer's length, and the deadline.
 */
static bool call_args(napi_env env, napi_callback_info info, int* fd, char** data, size_t* length, int64_t* deadline) {
  napi_value argv[5];
  int64_t timeout;
  if (!ipc_fd_args(env, info, 5, argv, fd) || !ipc_get_span(env, argv[1], argv[2], argv[3], data, length) ||
      !timeout_arg(env, argv[4], &timeout))
    return false;
  *deadline = deadline_of(timeout);
  return true;
}

/*
 * read(fd, buffer, offset, length, timeoutMs) -> bytes read (at least 1), 0 at the end of the
 * stream, -1 when the timeout passed with nothing to read.
 */
static napi_value sync_read(napi_env env, napi_callback_info info) {
  int fd;
  char* data;
  size_t length;
  int64_t deadline;
  if (!call_args(env, info, &fd, &data, &length, &deadline)) return NULL;
  for (;;) {
    ssize_t n = recv(fd, data, length, 0);
    if (n >= 0) return ipc_int_value(env, n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) break;
    int ready = wait_until(fd, POLLIN, deadline);
    if (ready == 0) return ipc_int_value(env, -1);
    if (ready < 0) break;
  }
  ipc_throw_errno(env, errno, "recv");
  return NULL;
}

/*
 * write(fd, buffer, offset, length, timeoutMs) -> bytes written: all of them, or fewer when the
 * timeout passed first. A failure (EPIPE, ECONNRESET) is thrown with `bytesWritten`: what did go.
 */
static napi_value sync_write(napi_env env, napi_callback_info info) {
  int fd;
  char* data;
  size_t length;
  int64_t deadline;
  if (!call_args(env, info, &fd, &data, &length, &deadline)) return NULL;
  size_t done = 0;
  int err = 0;
  while (done < length) {
    ssize_t n = send(fd, data + done, length - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += (size_t)n;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      err = errno;
      break;
    }
    int ready = wait_until(fd, POLLOUT, deadline);
    if (ready == 0) break;
    if (ready < 0) {
      err = errno;
      break;
    }
  }
  if (err == 0) return ipc_int_value(env, (int64_t)done);
  napi_value error = ipc_errno_error(env, err, "send");
  if (error != NULL) {
    napi_value written = ipc_int_value(env, (int64_t)done);
    if (written != NULL) napi_set_named_property(env, error, "bytesWritten", written);
    napi_throw(env, error);
  }
  return NULL;
}

napi_value sync_init(napi_env env, napi_value exports) {
  napi_value sync;
  NAPI_CALL(env, napi_create_object(env, &sync));
  NAPI_CALL(env, ipc_set_fn(env, sync, "connect", sync_connect));
  NAPI_CALL(env, ipc_set_fn(env, sync, "read", sync_read));
  NAPI_CALL(env, ipc_set_fn(env, sync, "write", sync_write));
  NAPI_CALL(env, napi_set_named_property(env, exports, "sync", sync));
  return exports;
}
