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
/* Fills addr with "\0name" and returns its exact length, or 0 if the name does not fit. */
static socklen_t abstract_address(napi_env env, napi_value value, struct sockaddr_un* addr) {
  char* data;
  size_t length;
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, (void**)&data, &length) != napi_ok) {
    ipc_throw_type(env, "the abstract name must be a Buffer");
    return 0;
  }
  if (length == 0 || length + 1 > sizeof addr->sun_path) {
    ipc_throw_errno(env, ENAMETOOLONG, "bind");
    return 0;
  }
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path + 1, data, length);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + length);
}

static int new_socket(void) {
  return socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

napi_value ipc_abstract_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct sockaddr_un addr;
  socklen_t len = argc >= 1 ? abstract_address(env, argv[0], &addr) : 0;
  if (len == 0) return NULL;
  int32_t backlog = 511;
  if (argc >= 2) napi_get_value_int32(env, argv[1], &backlog);
  int fd = new_socket();
  if (fd < 0) {
    ipc_throw_errno(env, errno, "socket");
    return NULL;
  }
  if (bind(fd, (struct sockaddr*)&addr, len) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    ipc_throw_errno(env, err, err == EADDRINUSE ? "bind" : "listen");
    return NULL;
  }
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}

napi_value ipc_abstract_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct sockaddr_un addr;
  socklen_t len = argc >= 1 ? abstract_address(env, argv[0], &addr) : 0;
  if (len == 0) return NULL;
  int fd = new_socket();
  if (fd < 0) {
    ipc_throw_errno(env, errno, "socket");
    return NULL;
  }
  int r;
  do r = connect(fd, (struct sockaddr*)&addr, len);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    int err = errno;
    close(fd);
    ipc_throw_errno(env, err, "connect");
    return NULL;
  }
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}
#else
static napi_value no_abstract(napi_env env) {
  ipc_throw_errno(env, EAFNOSUPPORT, "bind");
  return NULL;
}
napi_value ipc_abstract_listen(napi_env env, napi_callback_info info) { return no_abstract(env); }
napi_value ipc_abstract_connect(napi_env env, napi_callback_info info) { return no_abstract(env); }
#endif
