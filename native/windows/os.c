/*
 * The Windows half of the native core: named pipes of our own (npipe.h), and the Unix-only calls,
 * which say so with ENOTSUP rather than pretend.
 */
#include "npipe.h"

static napi_value not_supported(napi_env env, napi_callback_info info) {
  (void)info;
  ipc_throw_errno(env, ERROR_NOT_SUPPORTED, "interprocess");
  return NULL;
}

napi_value os_init(napi_env env, napi_value exports) {
  NAPI_CALL(env, ipc_set_fn(env, exports, "peerCredentials", not_supported));
  NAPI_CALL(env, ipc_set_fn(env, exports, "peerGroups", not_supported));
  NAPI_CALL(env, ipc_set_fn(env, exports, "tryLock", not_supported));
  return np_init(env, exports);
}
