/*
 * Module entry point, per-environment state and the registry of unclaimed descriptors. The module
 * is context-aware (NAPI_MODULE_INIT): every Node environment (main thread, each worker) gets its
 * own exports and its own state, and nothing here is global, so it loads in worker threads and
 * tears down with them. The shared helpers are in errors.c and args.c.
 */
#include "addon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

/* setErrorFactory(fn) -> whether it was set: the JS loader's (code, message, errno, syscall) =>
 * InterprocessError. Only the first call sets it. */
static napi_value ipc_set_error_factory_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ipc_args(env, info, 1, argv)) return NULL;
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_function) {
    ipc_throw_type(env, "the error factory must be a function");
    return NULL;
  }
  ipc_instance_t* instance = ipc_instance(env);
  if (instance == NULL) return NULL;
  /* The first stays (another copy of the package in this environment gets the same exports). */
  bool set = instance->error_factory == NULL;
  if (set) NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &instance->error_factory));
  return ipc_bool_value(env, set);
}

static void free_instance(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  ipc_instance_t* instance = data;
  if (instance->message_arena != NULL && instance->free_message_arena != NULL) {
    instance->free_message_arena(instance->message_arena);
  }
#ifndef _WIN32
  /* An environment torn down with descriptors nobody claimed: they die with it, never leak. */
  for (size_t word = 0; word < instance->held_words && instance->held_count > 0; word++) {
    for (uint64_t bits = instance->held[word]; bits != 0; bits &= bits - 1) {
      close((int)(word * 64 + (size_t)__builtin_ctzll(bits)));
      instance->held_count--;
    }
  }
#endif
  free(instance->held);
  free(instance);
}

ipc_instance_t* ipc_instance(napi_env env) {
  void* data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok || data == NULL) {
    ipc_throw_napi_failure(env, "reading the environment's state");
    return NULL;
  }
  return data;
}

bool ipc_hold_fds(napi_env env, const int* fds, size_t count) {
  if (count == 0) return true;
  ipc_instance_t* instance = ipc_instance(env);
  if (instance == NULL) return false;
  int highest = 0;
  for (size_t i = 0; i < count; i++) {
    if (fds[i] > highest) highest = fds[i];
  }
  size_t words = (size_t)highest / 64 + 1;
  if (words > instance->held_words) {
    size_t grown_words = words * 2;
    uint64_t* grown = realloc(instance->held, grown_words * sizeof *grown);
    if (grown == NULL) {
      ipc_throw_errno(env, ENOMEM, "malloc");
      return false;
    }
    memset(grown + instance->held_words, 0, (grown_words - instance->held_words) * sizeof *grown);
    instance->held = grown;
    instance->held_words = grown_words;
  }
  for (size_t i = 0; i < count; i++) {
    if (fds[i] < 0) continue;
    uint64_t bit = (uint64_t)1 << (fds[i] % 64);
    uint64_t* word = &instance->held[fds[i] / 64];
    if ((*word & bit) == 0) instance->held_count++;
    *word |= bit;
  }
  return true;
}

static bool release_from(ipc_instance_t* instance, int fd) {
  if (fd < 0 || (size_t)fd / 64 >= instance->held_words) return false;
  uint64_t bit = (uint64_t)1 << (fd % 64);
  uint64_t* word = &instance->held[fd / 64];
  if ((*word & bit) == 0) return false;
  *word &= ~bit;
  instance->held_count--;
  return true;
}

bool ipc_release_fd(napi_env env, int fd) {
  void* data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok || data == NULL) return false;
  return release_from(data, fd);
}

void ipc_close_held(napi_env env, int fd) {
  ipc_release_fd(env, fd);
#ifdef _WIN32
  _close(fd);
#else
  close(fd);
#endif
}

napi_value ipc_new_fd_value(napi_env env, int fd) {
  napi_value result;
  if (!ipc_hold_fds(env, &fd, 1)) {
    ipc_close_held(env, fd); /* not held: this only closes it */
    return NULL;
  }
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    ipc_close_held(env, fd);
    ipc_throw_napi_failure(env, "returning a descriptor");
    return NULL;
  }
  return result;
}

#ifndef _WIN32
/* releaseFd(fd) -> whether the registry held it: an owner (a Node handle, the user) takes it. */
static napi_value ipc_release_fd_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  return ipc_bool_value(env, ipc_release_fd(env, fd));
}

/* holdFd(fd): back into the registry (an owner that was to take it failed to). */
static napi_value ipc_hold_fd_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd) || !ipc_hold_fds(env, &fd, 1)) return NULL;
  return NULL;
}

/* closeFd(fd): out of the registry and closed, in one step (EBADF if it was not open). */
static napi_value ipc_close_fd_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  ipc_release_fd(env, fd);
  /* EINTR: Linux has closed the descriptor all the same; retrying could close a number another
   * thread has just been given. */
  if (close(fd) != 0 && errno != EINTR) ipc_throw_errno(env, errno, "close");
  return NULL;
}
#endif

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  ipc_instance_t* instance = calloc(1, sizeof *instance);
  if (instance == NULL || napi_set_instance_data(env, instance, free_instance, NULL) != napi_ok) {
    free(instance);
    ipc_throw_napi_failure(env, "creating the environment's state");
    return NULL;
  }
  NAPI_CALL(env, ipc_set_int(env, exports, "napiVersion", NAPI_VERSION));
#ifndef _WIN32
  NAPI_CALL(env, ipc_set_fn(env, exports, "releaseFd", ipc_release_fd_js));
  NAPI_CALL(env, ipc_set_fn(env, exports, "holdFd", ipc_hold_fd_js));
  NAPI_CALL(env, ipc_set_fn(env, exports, "closeFd", ipc_close_fd_js));
#endif
  NAPI_CALL(env, ipc_set_fn(env, exports, "setErrorFactory", ipc_set_error_factory_js));
  if (watcher_init(env, exports) == NULL) return NULL;
  if (slab_init(env, exports) == NULL) return NULL;
  if (os_init(env, exports) == NULL) return NULL;
  if (sync_init(env, exports) == NULL) return NULL;
  return exports;
}
