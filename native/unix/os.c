/* The Unix half of the native core: what Node's own API cannot do on Unix. */
#include "../common/addon.h"
#include "unix.h"

napi_value ipc_os_init(napi_env env, napi_value exports) {
  NAPI_CALL(env, ipc_set_fn(env, exports, "peerCredentials", ipc_peer_credentials));
  NAPI_CALL(env, ipc_set_fn(env, exports, "tryLock", ipc_try_lock));
  NAPI_CALL(env, ipc_set_fn(env, exports, "abstractListen", ipc_abstract_listen));
  NAPI_CALL(env, ipc_set_fn(env, exports, "abstractConnect", ipc_abstract_connect));
  if (ipc_usocket_init(env, exports) == NULL) return NULL;
  return exports;
}
