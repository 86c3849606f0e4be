/* The Unix half of the native core: what Node's own API cannot do on Unix. */
#include "../common/addon.h"
#include "unix.h"

napi_value ipc_os_init(napi_env env, napi_value exports) {
  NAPI_CALL(env, ipc_set_fn(env, exports, "peerCredentials", ipc_peer_credentials));
  NAPI_CALL(env, ipc_set_fn(env, exports, "tryLock", ipc_try_lock));
  NAPI_CALL(env, ipc_set_fn(env, exports, "abstractListen", ipc_abstract_listen));
  NAPI_CALL(env, ipc_set_fn(env, exports, "abstractConnect", ipc_abstract_connect));
  NAPI_CALL(env, ipc_set_fn(env, exports, "pipe", ipc_pipe));
  NAPI_CALL(env, ipc_set_fn(env, exports, "pipeSize", ipc_pipe_size));
  NAPI_CALL(env, ipc_set_fn(env, exports, "mkfifo", ipc_mkfifo));
  NAPI_CALL(env, ipc_set_fn(env, exports, "openFifo", ipc_open_fifo));
  NAPI_CALL(env, ipc_set_fn(env, exports, "setCloexec", ipc_set_cloexec));
  NAPI_CALL(env, ipc_set_fn(env, exports, "setNonblocking", ipc_set_nonblocking));
  NAPI_CALL(env, ipc_set_fn(env, exports, "dupCloexec", ipc_dup_cloexec));
  NAPI_CALL(env, ipc_set_fn(env, exports, "waitFd", ipc_wait_fd));
  if (ipc_usocket_init(env, exports) == NULL) return NULL;
  return exports;
}
