#ifndef INTERPROCESS_UNIX_H
#define INTERPROCESS_UNIX_H
#include "../common/addon.h"

/* peerCredentials(fd) -> { pid, uid, gid }; pid is -1 where the OS does not tell it. */
napi_value ipc_peer_credentials(napi_env env, napi_callback_info info);
/* tryLock(fd) -> true if an exclusive flock(2) was taken, false if another holder has it. */
napi_value ipc_try_lock(napi_env env, napi_callback_info info);
/* abstractListen(name: Buffer, backlog) -> fd, and abstractConnect(name: Buffer) -> fd: Linux
 * abstract sockets with their exact address length (see abstract.c). */
napi_value ipc_abstract_listen(napi_env env, napi_callback_info info);
napi_value ipc_abstract_connect(napi_env env, napi_callback_info info);
/* fd.c: pipes, FIFOs and descriptor flags. */
napi_value ipc_pipe(napi_env env, napi_callback_info info);
napi_value ipc_pipe_size(napi_env env, napi_callback_info info);
napi_value ipc_mkfifo(napi_env env, napi_callback_info info);
napi_value ipc_set_cloexec(napi_env env, napi_callback_info info);
napi_value ipc_set_nonblocking(napi_env env, napi_callback_info info);
napi_value ipc_dup_cloexec(napi_env env, napi_callback_info info);
napi_value ipc_wait_fd(napi_env env, napi_callback_info info);
#endif
