/*
 * Linux abstract socket names with their exact length. libuv before 1.48 (Node 20) binds and
 * connects abstract names padded with NULs to the whole of sun_path, which makes a different
 * name from the one every other program uses (socat, Python, Rust, C): they could not talk to
 * us. These two calls create the socket with the exact address and hand its descriptor to Node.
 * Neither blocks: a Unix stream connect completes or fails at once.
 */
#include "unix.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(__linux__)
/* Reads (address[, backlog]), the address a Buffer "\0name", and opens a non-blocking socket
 * for that exact address; -1 if it threw. `syscall` names the call an address error belongs to. */
static int open_for(napi_env env, napi_callback_info info, struct sockaddr_un* addr, socklen_t* len, int* backlog,
                    const char* syscall) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    ipc_throw_napi_failure(env, "reading arguments");
    return -1;
  }
  if (argc < 1) {
    ipc_throw(env, IPC_TYPE_ERROR, "ERR_MISSING_ARGS", "an abstract socket address (a Buffer) is required");
    return -1;
  }
  *len = usock_sockaddr_un(env, argv[0], addr, syscall);
  if (*len == 0) return -1;
  if (addr->sun_path[0] != '\0') {
    ipc_throw_value(env, "an abstract socket address starts with a NUL byte");
    return -1;
  }
  if (backlog != NULL && argc >= 2) {
    napi_valuetype type;
    int64_t value;
    if (napi_typeof(env, argv[1], &type) != napi_ok) type = napi_number;
    if (type != napi_undefined) {
      if (!ipc_get_int(env, argv[1], 0, IPC_MAX_SAFE_INTEGER, "the backlog", &value)) return -1;
      *backlog = value > INT32_MAX ? INT32_MAX : (int)value; /* the kernel caps it anyway */
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ipc_throw_errno(env, errno, "socket");
  return fd;
}

/* Closes fd after a failed syscall and throws its error. */
static napi_value fail(napi_env env, int fd, const char* syscall) {
  int err = errno;
  close(fd);
  ipc_throw_errno(env, err, syscall);
  return NULL;
}

napi_value abstract_listen(napi_env env, napi_callback_info info) {
  struct sockaddr_un addr;
  socklen_t len;
  int backlog = 511;
  int fd = open_for(env, info, &addr, &len, &backlog, "bind");
  if (fd < 0) return NULL;
  if (bind(fd, (struct sockaddr*)&addr, len) != 0) return fail(env, fd, "bind");
  if (listen(fd, backlog) != 0) return fail(env, fd, "listen");
  return ipc_new_fd_value(env, fd); /* until Node's handle takes it */
}

napi_value abstract_connect(napi_env env, napi_callback_info info) {
  struct sockaddr_un addr;
  socklen_t len;
  int fd = open_for(env, info, &addr, &len, NULL, "connect");
  if (fd < 0) return NULL;
  int r;
  do r = connect(fd, (struct sockaddr*)&addr, len);
  while (r != 0 && errno == EINTR);
  if (r != 0) return fail(env, fd, "connect");
  return ipc_new_fd_value(env, fd); /* until Node's handle takes it */
}
#else
static napi_value no_abstract(napi_env env) {
  ipc_throw_errno(env, EAFNOSUPPORT, "bind");
  return NULL;
}
napi_value abstract_listen(napi_env env, napi_callback_info info) {
  (void)info;
  return no_abstract(env);
}
napi_value abstract_connect(napi_env env, napi_callback_info info) {
  (void)info;
  return no_abstract(env);
}
#endif
