/*
 * Shared declarations of the interprocess native core.
 *
 * Names: each file has one prefix, its concept, on every function that JS calls or that another
 * file calls (watcher_ in watcher.c, usock_ in unix/usocket.c, msg_ in unix/message.c, np_ in
 * windows/npipe.c, ...); helpers private to a file are static and need none. ipc_ is only for the
 * shared helpers declared here (common/: errors.c, args.c, addon.c), so a name says where it lives.
 */
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

/*
 * Errors. Every error the addon throws or hands to a callback is made by ipc_error: once the JS
 * loader has registered its factory (setErrorFactory, src/native/addon.ts), an InterprocessError;
 * before that (the addon loaded on its own), a plain Error, TypeError or RangeError with the same
 * code. Making an error may run that factory (JS): call these last, with nothing cached after.
 */
typedef enum { IPC_ERROR, IPC_TYPE_ERROR, IPC_RANGE_ERROR } ipc_error_kind;
/* An error with `code` and `message`; for system errors also libuv's (negative) errno and the
 * syscall (otherwise 0 and NULL). NULL if it could not be made. */
napi_value ipc_error(napi_env env, ipc_error_kind kind, const char* code, const char* message, int uv_errno, const char* syscall);
/* Throws ipc_error(...) (or, if that fails, the Node-API failure). */
void ipc_throw(napi_env env, ipc_error_kind kind, const char* code, const char* message);
/* Throws a Node-style system error: code from libuv (e.g. "EACCES"), errno, syscall. */
void ipc_throw_errno(napi_env env, int sys_errno, const char* syscall);
/* The same error as a value (for callbacks); NULL if it could not be made. */
napi_value ipc_errno_error(napi_env env, int sys_errno, const char* syscall);
void ipc_throw_napi_failure(napi_env env, const char* what);
/* Throws a TypeError with code ERR_INVALID_ARG_TYPE. */
void ipc_throw_type(napi_env env, const char* message);
/* Throws a RangeError with code ERR_OUT_OF_RANGE. */
void ipc_throw_range(napi_env env, const char* message);
/* Throws an error with code ERR_INVALID_ARG_VALUE. */
void ipc_throw_value(napi_env env, const char* message);

/*
 * Arguments. Nothing that crosses from JS is trusted: each reader checks the type and range and
 * throws (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE) and returns false if it is wrong. None of them
 * runs JS (no getters, no valueOf).
 */
/* Reads exactly n arguments into argv (missing ones: ERR_MISSING_ARGS). */
bool ipc_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv);
/* A descriptor: an integer number in 0 .. INT32_MAX (else ERR_INVALID_ARG_TYPE). */
bool ipc_get_fd(napi_env env, napi_value value, int* fd);
/* Reads n arguments, the first a descriptor, into argv. */
bool ipc_fd_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, int* fd);
#define IPC_MAX_SAFE_INTEGER ((int64_t)9007199254740991) /* 2**53 - 1 */
/* An integer number in min .. max (no wrapping: 2**32 + 3 is out of range, not 3). */
bool ipc_get_int(napi_env env, napi_value value, int64_t min, int64_t max, const char* what, int64_t* out);
/* A span [offset, offset + length) of a Buffer, both checked against its size (TypeError, RangeError). */
bool ipc_get_span(napi_env env, napi_value buffer, napi_value offset, napi_value length, char** data, size_t* count);
/* A boolean. */
bool ipc_get_bool(napi_env env, napi_value value, const char* what, bool* out);

/* Values for JS: NULL (with the Node-API failure thrown) if they cannot be made. [a, b] is a pair
 * of numbers (a pipe's two descriptors, say). */
napi_value ipc_int_value(napi_env env, int64_t value);
napi_value ipc_bool_value(napi_env env, bool value);
napi_value ipc_int_pair(napi_env env, int64_t a, int64_t b);
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
  void* windows_io;           /* windows/io.c: the completion queue, freed by its own cleanup hook */
  napi_ref named_pipe_class;  /* windows/pipe.c: the NamedPipe constructor */
  napi_ref error_factory;     /* (code, message, errno, syscall) => InterprocessError, from JS */
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
/*
 * A new descriptor for JS, put in the registry of unclaimed ones so that it is closed if the
 * environment is torn down before JS gives it an owner. On failure it is closed, and NULL
 * returned with an exception thrown.
 */
napi_value ipc_new_fd_value(napi_env env, int fd);

/* Per-OS parts (unix/os.c, windows/os.c): each adds its functions to the module's exports. */
napi_value os_init(napi_env env, napi_value exports);
/* The blocking local-socket client (unix/sync.c, windows/sync.c): adds the `sync` export. */
napi_value sync_init(napi_env env, napi_value exports);
/* The readiness watcher (uv_poll) class, common to all OSes (watcher.c). */
napi_value watcher_init(napi_env env, napi_value exports);
/* common/slab.c: warm blocks for large received messages. */
napi_value slab_init(napi_env env, napi_value exports);

#endif
