/*
 * Moving messages on Unix domain sockets in batches: one call from JS sends or receives many
 * messages (sendmmsg/recvmmsg on Linux, a loop until EAGAIN elsewhere), with descriptors
 * (SCM_RIGHTS) and, on Linux, the sender's credentials (SCM_CREDENTIALS). JS owns the queues;
 * these files only do the syscalls when the Watcher says the socket is ready. send.c sends,
 * receive.c receives; message.c holds what both use: the per-environment arena, the readers of
 * typed arrays and Buffers, and the `unixSockets` exports (msg_init).
 *
 * Nothing from JS is trusted: each argument's type, range and length is checked before use. Only
 * napi_get_element can run JS (a getter, a Proxy), and that JS may detach, shrink or fill any
 * typed array, or call send or receive again (which reuse the arena). So send fetches every
 * element first, and only then takes memory pointers and lengths, and touches the arena; receive
 * runs no JS at all. Nothing is read twice from JS memory (a SharedArrayBuffer can change under
 * us): what is checked is copied first.
 */
#ifndef INTERPROCESS_MESSAGE_H
#define INTERPROCESS_MESSAGE_H
#include "unix.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#define RECV_SLOTS 64
#define SEND_BATCH 64
/* More than the largest datagram a Linux sender can send with default limits (212,960 bytes). */
#define SLOT_SIZE (256 * 1024)
/* Beyond this, a slot's pages are given back after use (big messages are rare, pages are not free). */
#define SLOT_KEEP (64 * 1024)
#define META_HEADER 2
#define META_STRIDE 8
#define MAX_FDS 253 /* SCM_MAX_FD on Linux */

enum { FLAG_TRUNCATED = 1, FLAG_CTRUNC = 2, FLAG_CREDENTIALS = 4, FLAG_FD_LIMIT = 8 };

#if defined(__linux__)
#define RECV_FLAGS (MSG_DONTWAIT | MSG_CMSG_CLOEXEC)
#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)
#define CRED_SPACE CMSG_SPACE(sizeof(struct ucred))
/* SO_TIMESTAMP's cmsg (receive.c: MARK_STAMP): a struct timeval, 16 bytes at most. */
#define STAMP_SPACE CMSG_SPACE(2 * sizeof(int64_t))
#else
#define RECV_FLAGS MSG_DONTWAIT
#define SEND_FLAGS MSG_DONTWAIT
#define CRED_SPACE 0
#define STAMP_SPACE 0
#endif

typedef struct {
  char* data; /* slot 0 (first_slot bytes), then RECV_SLOTS - 1 slots of SLOT_SIZE: mapped lazily */
  size_t first_slot, mapped;
  char* control;
  size_t control_per_slot;
  struct sockaddr_un names[RECV_SLOTS];
  struct iovec iov[RECV_SLOTS];
  struct msghdr msgs[RECV_SLOTS];
  size_t lengths[RECV_SLOTS];
  struct sockaddr_un send_names[SEND_BATCH];
  struct iovec send_iov[SEND_BATCH];
  struct msghdr send_msgs[SEND_BATCH];
  char* send_control;
  size_t send_control_size;
  int fds[RECV_SLOTS * MAX_FDS]; /* the descriptors of one received batch */
} arena_t;

/* The environment's arena, made on first use; NULL (having thrown ENOMEM) if it cannot be. */
arena_t* msg_arena(napi_env env);
/* The memory of a typed array of `type`; false (having thrown `message`) if value is not one. */
bool msg_typed_array(napi_env env, napi_value value, napi_typedarray_type type, void** data, size_t* length,
                     const char* message);
/* The memory of a Buffer (any Uint8Array); false (having thrown `message`) if value is not one. */
bool msg_buffer_arg(napi_env env, napi_value value, char** data, size_t* length, const char* message);

/* send.c: unixSockets.send (see there). */
napi_value send_messages(napi_env env, napi_callback_info info);
/* receive.c: unixSockets.receive (see there). */
napi_value receive_messages(napi_env env, napi_callback_info info);
napi_value receive_stamp(napi_env env, napi_callback_info info);
#endif
