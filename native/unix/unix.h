#ifndef INTERPROCESS_UNIX_H
#define INTERPROCESS_UNIX_H
#include "../common/addon.h"

/* peerCredentials(fd) -> { pid, uid, gid }; pid is -1 where the OS does not tell it. */
napi_value ipc_peer_credentials(napi_env env, napi_callback_info info);
/* tryLock(fd) -> true if an exclusive flock(2) was taken, false if another holder has it. */
napi_value ipc_try_lock(napi_env env, napi_callback_info info);
#endif
