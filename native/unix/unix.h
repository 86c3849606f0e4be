/* Declarations shared by the Unix half of the native core (prefixes: see common/addon.h). */
#ifndef INTERPROCESS_UNIX_H
#define INTERPROCESS_UNIX_H
#include "../common/addon.h"

#include <sys/socket.h>
#include <sys/un.h>

/* credentials.c: peerCredentials(fd) -> { pid, uid, gid }; pid is -1 where the OS does not tell it.
 * peerGroups(fd) -> the supplementary group ids, or null where the OS does not tell them. */
napi_value credentials_peer(napi_env env, napi_callback_info info);
napi_value credentials_groups(napi_env env, napi_callback_info info);
/* lock.c: tryLock(fd) -> true if an exclusive flock(2) was taken, false if another holder has it. */
napi_value lock_try(napi_env env, napi_callback_info info);
/* abstract.c: abstractListen(address: Buffer, backlog) -> fd, and abstractConnect(address: Buffer)
 * -> fd: Linux abstract sockets with their exact address length. */
napi_value abstract_listen(napi_env env, napi_callback_info info);
napi_value abstract_connect(napi_env env, napi_callback_info info);
/* fd.c: pipes, FIFOs and descriptor flags. */
napi_value fd_pipe(napi_env env, napi_callback_info info);
napi_value fd_pipe_size(napi_env env, napi_callback_info info);
napi_value fd_mkfifo(napi_env env, napi_callback_info info);
napi_value fd_open_fifo(napi_env env, napi_callback_info info);
napi_value fd_set_cloexec(napi_env env, napi_callback_info info);
napi_value fd_set_nonblocking(napi_env env, napi_callback_info info);
napi_value fd_dup_cloexec(napi_env env, napi_callback_info info);
napi_value fd_wait(napi_env env, napi_callback_info info);

/* usocket.c: socket types as JS names them (the OS's SOCK_* values differ between systems). */
enum { USOCK_DATAGRAM = 1, USOCK_SEQPACKET = 2, USOCK_STREAM = 3 };
/* Our type to SOCK_*, or -1. */
int usock_sock_type(int ours);
/* Makes fd non-blocking and close-on-exec (and SIGPIPE-free where the OS has SO_NOSIGPIPE). */
int usock_nonblocking_cloexec(int fd);
/* socket(AF_UNIX, type) made non-blocking and close-on-exec at once: fd, or -1 with errno set. */
int usock_new_socket(int type);
/* Fills addr from a Buffer of sun_path bytes (leading NUL: abstract, exact length); returns its
 * length, or 0 after throwing (not a Buffer: ERR_INVALID_ARG_TYPE; too long: ENAMETOOLONG). */
socklen_t usock_sockaddr_un(napi_env env, napi_value value, struct sockaddr_un* addr, const char* syscall);
/* The meaningful bytes of sun_path in an address of length len (abstract names exactly). */
size_t usock_sun_path_length(const struct sockaddr_un* addr, socklen_t len);
/* The `unixSockets` export: lifecycle (usocket.c), then messages (message.c: send.c, receive.c). */
napi_value usock_init(napi_env env, napi_value exports);
napi_value msg_init(napi_env env, napi_value sockets);
/* shm.c: the `sharedMemory` export (regions, their atomic indices, doorbells). */
napi_value shm_init(napi_env env, napi_value exports);
#endif
