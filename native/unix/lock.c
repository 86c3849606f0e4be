/*
 * Advisory whole-file locks (flock) that the kernel drops when the holder dies, however it dies:
 * the basis of the listener's lock file, which tells a live server from a stale socket file.
 */
#include "unix.h"

#include <errno.h>
#include <sys/file.h>

napi_value lock_try(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EWOULDBLOCK) {
    ipc_throw_errno(env, errno, "flock");
    return NULL;
  }
  return ipc_bool_value(env, r == 0);
}
