/*
 * The batched send of Unix domain sockets (see message.h).
 *
 * send(fd, type, datas, head, count, addresses, fdLists, progress, packed, spans, credLists)
 *   -> messages sent.
 *   Sends datas[head .. head+count) (Uint8Arrays, straight from JS memory: no copy), each to
 *   addresses[i] (a Buffer of sun_path bytes) if given, with the descriptors in fdLists[i] (an
 *   Int32Array) if given, and (Linux) the credentials in credLists[i] (an Int32Array of pid, uid,
 *   gid: SCM_CREDENTIALS, which the kernel checks) if given; elsewhere credentials are EOPNOTSUPP.
 *   Returns how many went; 0 when the socket would block. An error on the first message throws;
 *   an error after some were sent ends the batch, and the next call throws it (sendmmsg's own
 *   rule). Stream sockets may take part of a message: progress[0] is then the
 *   bytes of datas[head + result] already sent (its descriptors went with the first byte).
 *   packed and spans (optional): JS has copied the small messages of the batch into the Buffer
 *   `packed`; spans (Int32Array) holds for message i its offset there and length, or offset -1 for
 *   one to take from datas. Fetching each Uint8Array through N-API costs more than such a copy.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* sendmmsg */
#endif
#include "message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* True if value is null or undefined. */
static bool is_nullish(napi_env env, napi_value value) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && (type == napi_undefined || type == napi_null);
}

static bool is_object(napi_env env, napi_value value) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && type == napi_object;
}

/* array[index] (may run JS); false if that threw. */
static bool element(napi_env env, napi_value array, uint32_t index, napi_value* value) {
  if (napi_get_element(env, array, index, value) == napi_ok) return true;
  ipc_throw_napi_failure(env, "reading an array element"); /* unless a getter threw: that stays */
  return false;
}

/* An element of an optional array: *value is NULL when the array or the element is null/undefined. */
static bool optional_element(napi_env env, napi_value array, uint32_t index, napi_value* value) {
  *value = NULL;
  if (array == NULL) return true;
  if (!element(env, array, index, value)) return false;
  if (is_nullish(env, *value)) *value = NULL;
  return true;
}

/* Sends msgs[0..count); returns how many went, 0 if it would block, -1 (errno set) on an error at the first. */
static int send_some(int fd, int type, arena_t* arena, int count, int32_t* progress) {
#if defined(__linux__)
  if (type != USOCK_STREAM) {
    struct mmsghdr msgs[SEND_BATCH];
    for (int i = 0; i < count; i++) {
      msgs[i].msg_hdr = arena->send_msgs[i];
      msgs[i].msg_len = 0;
    }
    int r;
    do r = sendmmsg(fd, msgs, (unsigned)count, SEND_FLAGS);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return r;
  }
#endif
  for (int i = 0; i < count; i++) {
    ssize_t r;
    do r = sendmsg(fd, &arena->send_msgs[i], SEND_FLAGS);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return i;
      return i > 0 ? i : -1;
    }
    size_t length = arena->send_iov[i].iov_len;
    if (type == USOCK_STREAM && (size_t)r < length) {
      *progress = (int32_t)r; /* a stream took part of it: JS resends the rest */
      return i;
    }
  }
  return count;
}

/* send's arguments, checked; no element of its arrays has been read yet. */
typedef struct {
  int fd, type;
  uint32_t head;
  int count;                   /* at most SEND_BATCH */
  napi_value datas;            /* the messages */
  napi_value addresses;        /* NULL when not given */
  napi_value fd_lists;         /* NULL when not given */
  napi_value cred_lists;       /* NULL when not given */
  napi_value progress_value;   /* progress, fetched again after getters may have run */
  int32_t* progress;           /* valid only until JS runs */
  napi_value packed;           /* NULL when not given */
  int32_t spans[2 * SEND_BATCH]; /* copied: they decide which elements are read, and a getter could change them */
} send_args_t;

/* The elements of a batch, fetched (getters may run) before any JS memory is taken. */
typedef struct {
  napi_value datas[SEND_BATCH], names[SEND_BATCH], lists[SEND_BATCH], creds[SEND_BATCH]; /* NULL: none */
} send_elements_t;

#define PROGRESS_TYPE "progress must be an Int32Array of one number at least"
#define PACKED_TYPE "packed must be a Buffer, or undefined"

/* progress[0]'s memory; NULL (having thrown) if value is not an Int32Array of one number at least. */
static int32_t* progress_arg(napi_env env, napi_value value) {
  int32_t* progress;
  size_t length;
  if (!msg_typed_array(env, value, napi_int32_array, (void**)&progress, &length, PROGRESS_TYPE)) return NULL;
  if (length < 1) {
    ipc_throw_type(env, PROGRESS_TYPE); /* also: detached by a getter */
    return NULL;
  }
  return progress;
}

/* An optional array: *array is NULL when value is null or undefined; false (having thrown) if it is not an object. */
static bool optional_array(napi_env env, napi_value value, const char* message, napi_value* array) {
  *array = NULL;
  if (is_nullish(env, value)) return true;
  if (!is_object(env, value)) {
    ipc_throw_type(env, message);
    return false;
  }
  *array = value;
  return true;
}

/* Reads send's arguments (no JS runs here); false if one is wrong (having thrown). */
static bool send_args(napi_env env, napi_callback_info info, send_args_t* a) {
  napi_value argv[11];
  int64_t type, head, count;
  if (!ipc_fd_args(env, info, 11, argv, &a->fd) ||
      !ipc_get_int(env, argv[1], USOCK_DATAGRAM, USOCK_STREAM, "the socket type", &type) ||
      !ipc_get_int(env, argv[3], 0, INT32_MAX, "head", &head) || !ipc_get_int(env, argv[4], 0, INT32_MAX, "count", &count)) {
    return false;
  }
  if (!is_object(env, argv[2])) {
    ipc_throw_type(env, "the messages must be an array");
    return false;
  }
  if (!optional_array(env, argv[5], "the addresses must be an array, or null", &a->addresses) ||
      !optional_array(env, argv[6], "the descriptor lists must be an array, or null", &a->fd_lists) ||
      !optional_array(env, argv[10], "the credential lists must be an array, or null", &a->cred_lists) ||
      (a->progress = progress_arg(env, argv[7])) == NULL) {
    return false;
  }
  a->type = (int)type;
  a->head = (uint32_t)head;
  a->count = count > SEND_BATCH ? SEND_BATCH : (int)count;
  a->datas = argv[2];
  a->progress_value = argv[7];
  a->packed = is_nullish(env, argv[8]) ? NULL : argv[8];
  for (int i = 0; i < 2 * a->count; i++) a->spans[i] = -1;
  if (a->packed != NULL) {
    char* packed;
    size_t packed_length, spans_length;
    int32_t* given;
    if (!msg_buffer_arg(env, a->packed, &packed, &packed_length, PACKED_TYPE) ||
        !msg_typed_array(env, argv[9], napi_int32_array, (void**)&given, &spans_length, "spans must be an Int32Array")) {
      return false;
    }
    if (spans_length < (size_t)a->count * 2) {
      ipc_throw_range(env, "spans must hold an offset and a length per message");
      return false;
    }
    if (a->count > 0) memcpy(a->spans, given, (size_t)a->count * 2 * sizeof(int32_t));
  }
  return true;
}

/* Fetches every element of the batch (getters may run here): nothing is taken from JS memory yet. */
static bool fetch_elements(napi_env env, const send_args_t* a, send_elements_t* e) {
  for (int i = 0; i < a->count; i++) {
    uint32_t index = a->head + (uint32_t)i; /* head <= INT32_MAX: no wrap */
    e->datas[i] = NULL;
    if (a->spans[2 * i] < 0 && !element(env, a->datas, index, &e->datas[i])) return false;
    if (!optional_element(env, a->addresses, index, &e->names[i]) || !optional_element(env, a->fd_lists, index, &e->lists[i]) ||
        !optional_element(env, a->cred_lists, index, &e->creds[i])) {
      return false;
    }
  }
  return true;
}

/*
 * The descriptor lists of the batch (fd_data[i], fd_counts[i]: none when NULL, 0) and the control
 * space they need in all; false (having thrown) if one is not an Int32Array or is over the
 * kernel's limit.
 */
static bool take_fd_lists(napi_env env, const send_elements_t* e, int count, int32_t** fd_data, size_t* fd_counts,
                          size_t* control_total) {
  *control_total = 0;
  for (int i = 0; i < count; i++) {
    fd_data[i] = NULL;
    fd_counts[i] = 0;
    if (e->lists[i] == NULL) continue;
    if (!msg_typed_array(env, e->lists[i], napi_int32_array, (void**)&fd_data[i], &fd_counts[i],
                         "descriptors must be given as an Int32Array")) {
      return false;
    }
    if (fd_counts[i] > MAX_FDS) {
      ipc_throw_errno(env, EINVAL, "sendmsg"); /* the kernel's own limit (SCM_MAX_FD) */
      return false;
    }
    if (fd_counts[i] > 0) *control_total += CMSG_SPACE(fd_counts[i] * sizeof(int));
  }
  return true;
}

#define CREDS_TYPE "credentials must be given as an Int32Array of pid, uid and gid"

/*
 * The credentials of the batch, copied (creds[i]: pid, uid, gid; has_creds[i] false when none),
 * and the control space they add to *control_total; false (having thrown) if one is not an
 * Int32Array of three, or the OS cannot send credentials (EOPNOTSUPP: Linux only).
 */
static bool take_credentials(napi_env env, const send_elements_t* e, int count, int32_t (*creds)[3], bool* has_creds,
                             size_t* control_total) {
  for (int i = 0; i < count; i++) {
    has_creds[i] = false;
    if (e->creds[i] == NULL) continue;
    int32_t* given;
    size_t length;
    if (!msg_typed_array(env, e->creds[i], napi_int32_array, (void**)&given, &length, CREDS_TYPE)) return false;
    if (length != 3) {
      ipc_throw_type(env, CREDS_TYPE);
      return false;
    }
#if defined(__linux__)
    memcpy(creds[i], given, sizeof creds[i]);
    has_creds[i] = true;
    *control_total += CRED_SPACE;
#else
    (void)creds;
    (void)control_total;
    ipc_throw_errno(env, EOPNOTSUPP, "sendmsg"); /* SCM_CREDENTIALS is Linux's */
    return false;
#endif
  }
  return true;
}

/*
 * Puts the control messages of one message at control: count descriptors as SCM_RIGHTS, then
 * (Linux, if cred) SCM_CREDENTIALS; returns the space they took (0: none).
 */
static size_t add_control(struct msghdr* msg, char* control, const int32_t* fds, size_t count, const int32_t* cred) {
  size_t space = (count > 0 ? CMSG_SPACE(count * sizeof(int)) : 0) + (cred != NULL ? CRED_SPACE : 0);
  if (space == 0) return 0;
  memset(control, 0, space);
  msg->msg_control = control;
  msg->msg_controllen = space;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(msg);
  if (count > 0) {
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(count * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, count * sizeof(int));
    cmsg = CMSG_NXTHDR(msg, cmsg);
  }
#if defined(__linux__)
  if (cred != NULL) {
    struct ucred ucred = {.pid = cred[0], .uid = (uid_t)cred[1], .gid = (gid_t)cred[2]};
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_CREDENTIALS;
    cmsg->cmsg_len = CMSG_LEN(sizeof ucred);
    memcpy(CMSG_DATA(cmsg), &ucred, sizeof ucred);
  }
#endif
  return space;
}

/*
 * Builds the batch's message headers in the arena, pointing straight at JS memory, and returns the
 * arena; NULL (having thrown) if an element is wrong. It runs no JS, so the memory it takes (and
 * *progress) stays valid until the batch is sent.
 */
static arena_t* build_headers(napi_env env, const send_args_t* a, const send_elements_t* e, int32_t** progress) {
  if ((*progress = progress_arg(env, a->progress_value)) == NULL) return NULL; /* a getter may have detached it */
  char* packed = NULL;
  size_t packed_length = 0;
  if (a->packed != NULL && !msg_buffer_arg(env, a->packed, &packed, &packed_length, PACKED_TYPE)) return NULL;
  int32_t* fd_data[SEND_BATCH];
  size_t fd_counts[SEND_BATCH], control_total;
  int32_t creds[SEND_BATCH][3];
  bool has_creds[SEND_BATCH];
  if (!take_fd_lists(env, e, a->count, fd_data, fd_counts, &control_total) ||
      !take_credentials(env, e, a->count, creds, has_creds, &control_total)) {
    return NULL;
  }
  arena_t* arena = msg_arena(env);
  if (arena == NULL) return NULL;
  if (control_total > arena->send_control_size) {
    char* grown = realloc(arena->send_control, control_total);
    if (grown == NULL) {
      ipc_throw_errno(env, ENOMEM, "sendmsg");
      return NULL;
    }
    arena->send_control = grown;
    arena->send_control_size = control_total;
  }
  char* control = arena->send_control;
  for (int i = 0; i < a->count; i++) {
    struct msghdr* msg = &arena->send_msgs[i];
    struct iovec* iov = &arena->send_iov[i];
    memset(msg, 0, sizeof *msg);
    if (a->spans[2 * i] >= 0) {
      size_t offset = (size_t)a->spans[2 * i], length = (size_t)a->spans[2 * i + 1];
      if (a->spans[2 * i + 1] < 0 || offset > packed_length || length > packed_length - offset) {
        ipc_throw_range(env, "a span lies outside the packed buffer");
        return NULL;
      }
      iov->iov_base = length > 0 ? packed + offset : NULL;
      iov->iov_len = length;
    } else if (!msg_typed_array(env, e->datas[i], napi_uint8_array, &iov->iov_base, &iov->iov_len,
                                "each message must be a Uint8Array")) {
      return NULL;
    }
    msg->msg_iov = iov;
    msg->msg_iovlen = 1;
    if (e->names[i] != NULL) {
      socklen_t len = usock_sockaddr_un(env, e->names[i], &arena->send_names[i], "sendmsg");
      if (len == 0) return NULL;
      msg->msg_name = &arena->send_names[i];
      msg->msg_namelen = len;
    }
    control += add_control(msg, control, fd_data[i], fd_counts[i], has_creds[i] ? creds[i] : NULL);
  }
  return arena;
}

napi_value send_messages(napi_env env, napi_callback_info info) {
  send_args_t args;
  if (!send_args(env, info, &args)) return NULL;
  if (args.count == 0) {
    *args.progress = 0;
    return ipc_int_value(env, 0);
  }
  send_elements_t elements;
  if (!fetch_elements(env, &args, &elements)) return NULL;
  /* From here no JS runs until the result (or an error) is made. */
  int32_t* progress;
  arena_t* arena = build_headers(env, &args, &elements, &progress);
  if (arena == NULL) return NULL;
  *progress = 0;
  int sent = send_some(args.fd, args.type, arena, args.count, progress);
  if (sent < 0) {
    ipc_throw_errno(env, errno, "sendmsg");
    return NULL;
  }
  return ipc_int_value(env, sent);
}
