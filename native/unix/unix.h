#ifndef INTERPROCESS_UNIX_H
#define INTERPROCESS_UNIX_H
#include "../common/addon.h"

#include <sys/socket.h>
#include <sys/un.h>

/* peerCredentials(fd) -> { pid, uid, gid }; pid is -1 where the OS does not tell it. */
napi_value ipc_peer_credentials(napi_env env, napi_callback_info info);
/* tryLock(fd) -> true if an exclusive flock(2) was taken, false if another holder has it. */
napi_value ipc_try_lock(napi_env env, napi_callback_info info);
/* abstractListen(address: Buffer, backlog) -> fd, and abstractConnect(address: Buffer) -> fd: Linux
 * abstract sockets with their exact address length (see abstract.c). */
napi_value ipc_abstract_listen(napi_env env, napi_callback_info info);
napi_value ipc_abstract_connect(napi_env env, napi_callback_info info);
/* fd.c: pipes, FIFOs and descriptor flags. */
napi_value ipc_pipe(napi_env env, napi_callback_info info);
napi_value ipc_pipe_size(napi_env env, napi_callback_info info);
napi_value ipc_mkfifo(napi_env env, napi_callback_info info);
napi_value ipc_open_fifo(napi_env env, napi_callback_info info);
napi_value ipc_set_cloexec(napi_env env, napi_callback_info info);
napi_value ipc_set_nonblocking(napi_env env, napi_callback_info info);
napi_value ipc_dup_cloexec(napi_env env, napi_callback_info info);
napi_value ipc_wait_fd(napi_env env, napi_callback_info info);

/* Socket types as JS names them (the OS's SOCK_* values differ between systems). */
enum { IPC_DATAGRAM = 1, IPC_SEQPACKET = 2, IPC_STREAM = 3 };
/* Our type to SOCK_*, or -1. */
int ipc_sock_type(int ours);
/* Makes fd non-blocking and close-on-exec (and SIGPIPE-free where the OS has SO_NOSIGPIPE). */
int ipc_nonblocking_cloexec(int fd);
/* Fills addr from a Buffer of sun_path bytes (leading NUL: abstract, exact length); returns its
 * length, or 0 after throwing (not a Buffer: ERR_INVALID_ARG_TYPE; too long: ENAMETOOLONG). */
socklen_t ipc_sockaddr_un(napi_env env, napi_value value, struct sockaddr_un* addr, const char* syscall);
/* The meaningful bytes of sun_path in an address of length len (abstract names exactly). */
size_t ipc_sun_path_length(const struct sockaddr_un* addr, socklen_t len);
/* Reads n arguments, the first a descriptor, into argv; false (having thrown) if they are not there. */
bool ipc_fd_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, int* fd);
/* The `unixSockets` export: lifecycle (usocket.c) and messages (message.c). */
napi_value ipc_usocket_init(napi_env env, napi_value exports);
napi_value ipc_message_init(napi_env env, napi_value sockets);
#endif
