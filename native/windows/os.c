/*
 * The Windows half of the native core. Local sockets on Windows are named pipes driven by Node's
 * own libuv pipes; Node does not hand out their HANDLE, so peer process ids and the full
 * named-pipe options need pipes of our own (the Windows issue). Until then the functions below
 * say so with ENOTSUP rather than pretend.
 */
#include "../common/addon.h"

#include <windows.h>

napi_value ipc_named_pipe_init(napi_env env, napi_value exports);

static napi_value not_supported(napi_env env, napi_callback_info info) {
  (void)info;
  ipc_throw_errno(env, ERROR_NOT_SUPPORTED, "interprocess");
  return NULL;
}

napi_value ipc_os_init(napi_env env, napi_value exports) {
  NAPI_CALL(env, ipc_set_fn(env, exports, "peerCredentials", not_supported));
  NAPI_CALL(env, ipc_set_fn(env, exports, "tryLock", not_supported));
  return ipc_named_pipe_init(env, exports);
}
