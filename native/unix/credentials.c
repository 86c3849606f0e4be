/*
 * Peer credentials of a connected Unix domain socket, taken by the kernel when the connection was
 * made (so they name the peer that connected, not whoever holds the descriptor now). Each OS has
 * its own call; all give uid and gid, most give the pid. The supplementary groups are a call of
 * their own (peerGroups), made only when asked for: on Linux it is one more getsockopt.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* struct ucred */
#endif
#include "unix.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * The most supplementary groups a process can have: Linux's NGROUPS_MAX (65536). A peer's list
 * is never longer, so a kernel answer past it is refused rather than allocated.
 */
#define MOST_GROUPS 65536
/* Groups read into the stack buffer first: enough for nearly every process. */
#define STACK_GROUPS 64

/* Makes a JS array of the count numbers in groups; NULL if Node-API failed (thrown). */
static napi_value groups_array(napi_env env, const gid_t* groups, size_t count) {
  napi_value array;
  NAPI_CALL(env, napi_create_array_with_length(env, count, &array));
  for (size_t i = 0; i < count; i++) {
    napi_value id;
    NAPI_CALL(env, napi_create_int64(env, (int64_t)groups[i], &id));
    NAPI_CALL(env, napi_set_element(env, array, (uint32_t)i, id));
  }
  return array;
}

#if defined(__linux__) && defined(SO_PEERGROUPS)
/*
 * SO_PEERGROUPS (Linux 4.13): the kernel fails with ERANGE when the buffer is short and sets the
 * length it needs, so a second call with that much room succeeds (the list is fixed when the
 * connection is made). The length asked for is bounded by MOST_GROUPS.
 */
static napi_value read_groups(napi_env env, int fd) {
  gid_t stack[STACK_GROUPS];
  gid_t* groups = stack;
  socklen_t len = sizeof stack;
  int err = 0;
  for (int attempt = 0;; attempt++) {
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) break;
    err = errno;
    if (err != ERANGE) break;
    if (attempt == 2 || len > MOST_GROUPS * sizeof(gid_t)) {
      err = EOVERFLOW; /* more than any process can have, or a list that keeps growing: never */
      break;
    }
    if (groups != stack) free(groups);
    groups = malloc(len);
    if (groups == NULL) {
      err = ENOMEM;
      break;
    }
    err = 0;
  }
  napi_value result = NULL;
  if (err == 0) result = groups_array(env, groups, len / sizeof(gid_t));
  else ipc_throw_errno(env, err, "getsockopt");
  if (groups != stack) free(groups);
  return result;
}
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__DragonFly__)
/*
 * struct xucred: cr_groups[0] is the effective gid, the rest (up to XU_NGROUPS - 1, 15) the
 * supplementary groups; a longer list is cut there by the kernel.
 */
static napi_value read_groups(napi_env env, int fd) {
  struct xucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &cred, &len) != 0) {
    ipc_throw_errno(env, errno, "getsockopt");
    return NULL;
  }
  if (cred.cr_version != XUCRED_VERSION) {
    ipc_throw_errno(env, EPROTO, "getsockopt");
    return NULL;
  }
  size_t count = cred.cr_ngroups > 1 ? (size_t)cred.cr_ngroups - 1 : 0;
  size_t most = sizeof cred.cr_groups / sizeof cred.cr_groups[0];
  if (count > most - 1) count = most - 1;
  return groups_array(env, cred.cr_groups + 1, count);
}
#else
/* No call tells a peer's groups here (OpenBSD, NetBSD, illumos, Linux before 4.13's headers). */
static napi_value read_groups(napi_env env, int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    ipc_throw_errno(env, errno, "getsockopt"); /* not a socket, or closed: the same errors */
    return NULL;
  }
  napi_value none;
  NAPI_CALL(env, napi_get_null(env, &none));
  return none;
}
#endif

napi_value credentials_groups(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  return read_groups(env, fd);
}
