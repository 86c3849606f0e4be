/*
 * Peer credentials of a connected Unix domain socket, taken by the kernel when the connection was
 * made (so they name the peer that connected, not whoever holds the descriptor now). Each OS has
 * its own call; all give uid and gid, most give the pid.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* struct ucred */
#endif
#include "unix.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__DragonFly__)
#include <sys/param.h> /* __FreeBSD_version */
#include <sys/ucred.h>
#endif

static int read_credentials(int fd, int64_t* pid, int64_t* uid, int64_t* gid) {
#if defined(__linux__)
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return errno;
  *pid = cred.pid > 0 ? cred.pid : -1;
  *uid = cred.uid;
  *gid = cred.gid;
  return 0;
#elif defined(__OpenBSD__)
  struct sockpeercred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return errno;
  *pid = cred.pid;
  *uid = cred.uid;
  *gid = cred.gid;
  return 0;
#elif defined(__NetBSD__)
  struct unpcbid cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, 0, LOCAL_PEEREID, &cred, &len) != 0) return errno;
  *pid = cred.unp_pid;
  *uid = cred.unp_euid;
  *gid = cred.unp_egid;
  return 0;
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__DragonFly__)
  struct xucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &cred, &len) != 0) return errno;
  if (cred.cr_version != XUCRED_VERSION) return EPROTO;
  *uid = cred.cr_uid;
  *gid = cred.cr_ngroups > 0 ? cred.cr_groups[0] : -1;
  *pid = -1;
#if defined(__APPLE__)
  pid_t peer_pid;
  len = sizeof peer_pid;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &peer_pid, &len) == 0) *pid = peer_pid;
#elif defined(__FreeBSD__) && __FreeBSD_version >= 1300000
  *pid = cred.cr_pid; /* FreeBSD 13 added the pid to struct xucred */
#endif
  return 0;
#else
  uid_t u;
  gid_t g;
  if (getpeereid(fd, &u, &g) != 0) return errno;
  *pid = -1;
  *uid = u;
  *gid = g;
  return 0;
#endif
}

napi_value credentials_peer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  int64_t pid = -1, uid = -1, gid = -1;
  int err = read_credentials(fd, &pid, &uid, &gid);
  if (err != 0) {
    ipc_throw_errno(env, err, "getsockopt");
    return NULL;
  }
  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, ipc_set_int(env, result, "pid", pid));
  NAPI_CALL(env, ipc_set_int(env, result, "uid", uid));
  NAPI_CALL(env, ipc_set_int(env, result, "gid", gid));
  return result;
}
