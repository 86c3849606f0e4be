/* Shared declarations of the interprocess native core. */
#ifndef INTERPROCESS_ADDON_H
#define INTERPROCESS_ADDON_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/* Evaluates a Node-API call; on failure throws (if nothing is pending) and returns NULL. */
#define NAPI_CALL(env, call)                                   \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      ipc_throw_napi_failure((env), #call);                    \
      return NULL;                                             \
    }                                                          \
  } while (0)

/* Throws a Node-style system error: code from libuv (e.g. "EACCES"), errno, syscall. */
void ipc_throw_errno(napi_env env, int sys_errno, const char* syscall);
/* The same error as a value (for callbacks); NULL if it could not be made. */
napi_value ipc_errno_error(napi_env env, int sys_errno, const char* syscall);
void ipc_throw_napi_failure(napi_env env, const char* what);
/* Throws a TypeError with code ERR_INVALID_ARG_TYPE. */
void ipc_throw_type(napi_env env, const char* message);

/* Reads argument i as a non-negative int32 descriptor; throws and returns false if it is not. */
bool ipc_get_fd(napi_env env, napi_value value, int* fd);

napi_status ipc_set_int(napi_env env, napi_value obj, const char* key, int64_t value);
napi_status ipc_set_fn(napi_env env, napi_value obj, const char* key, napi_callback fn);

/*
 * Per-environment state (main thread, each worker), freed with the environment. Each part that
 * needs some keeps it here and says how to free it; nothing in the addon is global.
 */
typedef struct {
  void* message_arena; /* unix/message.c: receive buffers reused by every socket of the environment */
  void (*free_message_arena)(void* arena);
  /* Descriptors received and handed to JS but not yet claimed there: closed with the environment. */
  int* held_fds;
  size_t held_count, held_capacity;
  void* windows_io;           /* windows/npipe.c: the completion queue, freed by its own cleanup hook */
  napi_ref named_pipe_class;  /* windows/npipe.c: the NamedPipe constructor */
} ipc_instance_t;

/* This environment's state, created with the module; NULL (with an exception thrown) on failure. */
ipc_instance_t* ipc_instance(napi_env env);

/* Per-OS parts: each adds its functions to the module's exports. */
napi_value ipc_os_init(napi_env env, napi_value exports);
/* The readiness watcher (uv_poll) class, common to all OSes. */
napi_value ipc_watcher_init(napi_env env, napi_value exports);

#endif
