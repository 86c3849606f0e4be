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
  /*
   * The registry of unclaimed descriptors: every descriptor the addon creates or receives (socket,
   * accept, socketpair, pipe, FIFO open, SCM_RIGHTS) is in it from the syscall on, until an owner
   * claims it (an owning Watcher, a Node handle, the user) or JS closes it through closeFd. Those
   * still in it when the environment is torn down (a worker terminated between the syscall and the
   * wrap, say) are closed then. A bitset indexed by descriptor number.
   */
  uint64_t* held;
  size_t held_words, held_count;
  void* windows_io;           /* windows/npipe.c: the completion queue, freed by its own cleanup hook */
  napi_ref named_pipe_class;  /* windows/npipe.c: the NamedPipe constructor */
} ipc_instance_t;

/* This environment's state, created with the module; NULL (with an exception thrown) on failure. */
ipc_instance_t* ipc_instance(napi_env env);

/*
 * Puts new descriptors into the environment's registry of unclaimed ones (see ipc_instance_t).
 * false (with ENOMEM thrown, or the Node-API failure) if it cannot: the caller then still owns
 * them and must close them.
 */
bool ipc_hold_fds(napi_env env, const int* fds, size_t count);
/* An owner claims fd: the registry no longer closes it. Returns whether the registry held it. */
bool ipc_release_fd(napi_env env, int fd);
/* Releases and closes fd (a failure path before JS ever saw it). */
void ipc_close_held(napi_env env, int fd);

/* Per-OS parts: each adds its functions to the module's exports. */
napi_value ipc_os_init(napi_env env, napi_value exports);
/* The readiness watcher (uv_poll) class, common to all OSes. */
napi_value ipc_watcher_init(napi_env env, napi_value exports);

#endif
