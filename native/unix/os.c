/* The Unix half of the native core: what Node's own API cannot do on Unix. */
#include "../common/addon.h"
#include "unix.h"

napi_value os_init(napi_env env, napi_value exports) {
  NAPI_CALL(env, ipc_set_fn(env, exports, "peerCredentials", credentials_peer));
  NAPI_CALL(env, ipc_set_fn(env, exports, "peerGroups", credentials_groups));
  NAPI_CALL(env, ipc_set_fn(env, exports, "tryLock", lock_try));
  NAPI_CALL(env, ipc_set_fn(env, exports, "abstractListen", abstract_listen));
  NAPI_CALL(env, ipc_set_fn(env, exports, "abstractConnect", abstract_connect));
  NAPI_CALL(env, ipc_set_fn(env, exports, "pipe", fd_pipe));
  NAPI_CALL(env, ipc_set_fn(env, exports, "pipeSize", fd_pipe_size));
  NAPI_CALL(env, ipc_set_fn(env, exports, "mkfifo", fd_mkfifo));
  NAPI_CALL(env, ipc_set_fn(env, exports, "openFifo", fd_open_fifo));
  NAPI_CALL(env, ipc_set_fn(env, exports, "setCloexec", fd_set_cloexec));
  NAPI_CALL(env, ipc_set_fn(env, exports, "setNonblocking", fd_set_nonblocking));
  NAPI_CALL(env, ipc_set_fn(env, exports, "dupCloexec", fd_dup_cloexec));
  NAPI_CALL(env, ipc_set_fn(env, exports, "waitFd", fd_wait));
  if (usock_init(env, exports) == NULL) return NULL;
  if (shm_init(env, exports) == NULL) return NULL;
  return exports;
}
