/*
 * What the batched send (send.c) and receive (receive.c) share: the per-environment arena, the
 * readers of typed arrays and Buffers, and the `unixSockets` exports. See message.h.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* struct ucred (CRED_SPACE) */
#endif
#include "message.h"
#include "receive-mark.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static void free_arena(void* data) {
  arena_t* arena = data;
  if (arena->data != NULL) munmap(arena->data, arena->mapped);
  free(arena->control);
  free(arena->send_control);
  free(arena);
}

/* The largest datagram a sender may send here: SO_SNDBUF can reach twice net.core.wmem_max. */
static size_t largest_datagram(void) {
  size_t largest = SLOT_SIZE;
#if defined(__linux__)
  FILE* f = fopen("/proc/sys/net/core/wmem_max", "re");
  unsigned long wmem_max = 0;
  if (f != NULL) {
    if (fscanf(f, "%lu", &wmem_max) == 1 && 2 * (size_t)wmem_max > largest) largest = 2 * (size_t)wmem_max;
    fclose(f);
  }
  if (largest > ((size_t)1 << 30)) largest = (size_t)1 << 30; /* a sane bound on address space */
#endif
  return (largest + SLOT_SIZE - 1) / SLOT_SIZE * SLOT_SIZE; /* keeps the other slots page-aligned */
}

arena_t* msg_arena(napi_env env) {
  ipc_instance_t* instance = ipc_instance(env);
  if (instance == NULL) return NULL;
  if (instance->message_arena != NULL) return instance->message_arena;
  arena_t* arena = calloc(1, sizeof *arena);
  if (arena == NULL) goto no_memory;
  int flags = MAP_PRIVATE | MAP_ANON;
#ifdef MAP_NORESERVE
  flags |= MAP_NORESERVE;
#endif
  arena->first_slot = largest_datagram();
  arena->mapped = arena->first_slot + (size_t)(RECV_SLOTS - 1) * SLOT_SIZE;
  arena->data = mmap(NULL, arena->mapped, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (arena->data == MAP_FAILED) {
    arena->data = NULL;
    free_arena(arena);
    goto no_memory;
  }
  arena->control_per_slot = CMSG_SPACE(MAX_FDS * sizeof(int)) + CRED_SPACE + STAMP_SPACE;
  arena->control = malloc(arena->control_per_slot * RECV_SLOTS);
  if (arena->control == NULL) {
    free_arena(arena);
    goto no_memory;
  }
  instance->message_arena = arena;
  instance->free_message_arena = free_arena;
  return arena;
no_memory:
  ipc_throw_errno(env, ENOMEM, "mmap");
  return NULL;
}

bool msg_typed_array(napi_env env, napi_value value, napi_typedarray_type type, void** data, size_t* length,
                     const char* message) {
  napi_typedarray_type actual;
  napi_value buffer;
  size_t offset;
  bool is = false;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, value, &actual, length, data, &buffer, &offset) != napi_ok || actual != type) {
    ipc_throw_type(env, message);
    return false;
  }
  if (*length == 0) *data = NULL; /* a detached array: never used, never offset */
  return true;
}

bool msg_buffer_arg(napi_env env, napi_value value, char** data, size_t* length, const char* message) {
  bool is = false;
  if (napi_is_buffer(env, value, &is) != napi_ok || !is || napi_get_buffer_info(env, value, (void**)data, length) != napi_ok) {
    ipc_throw_type(env, message);
    return false;
  }
  if (*length == 0) *data = NULL;
  return true;
}

napi_value msg_init(napi_env env, napi_value sockets) {
  NAPI_CALL(env, ipc_set_fn(env, sockets, "send", send_messages));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "receive", receive_messages));
  NAPI_CALL(env, ipc_set_fn(env, sockets, "stampMessages", receive_stamp));
  NAPI_CALL(env, ipc_set_int(env, sockets, "RECEIVE_BATCH", RECV_SLOTS));
  NAPI_CALL(env, ipc_set_int(env, sockets, "SEND_BATCH", SEND_BATCH));
  NAPI_CALL(env, ipc_set_int(env, sockets, "META_HEADER", META_HEADER));
  NAPI_CALL(env, ipc_set_int(env, sockets, "META_STRIDE", META_STRIDE));
  NAPI_CALL(env, ipc_set_int(env, sockets, "MAX_FDS", MAX_FDS));
  napi_value marks;
  NAPI_CALL(env, napi_create_object(env, &marks));
  NAPI_CALL(env, ipc_set_int(env, marks, "USER_ON", MARK_USER_ON));
  NAPI_CALL(env, ipc_set_int(env, marks, "OFF", MARK_OFF));
  NAPI_CALL(env, ipc_set_int(env, marks, "UNKNOWN", MARK_UNKNOWN));
  NAPI_CALL(env, ipc_set_int(env, marks, "ON", MARK_ON));
  NAPI_CALL(env, ipc_set_int(env, marks, "STAMP", MARK_STAMP));
  NAPI_CALL(env, napi_set_named_property(env, sockets, "MARKS", marks));
  return sockets;
}
