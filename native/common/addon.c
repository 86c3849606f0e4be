/*
 * Module entry point and shared helpers. The module is context-aware (NAPI_MODULE_INIT): every
 * Node environment (main thread, each worker) gets its own exports and its own state, and nothing
 * here is global, so it loads in worker threads and tears down with them.
 */
#include "addon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#ifdef _WIN32
#include <io.h>
#else
#include <unistd.h>
#endif

void ipc_throw_napi_failure(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  char message[256];
  snprintf(message, sizeof message, "interprocess native call failed: %s (%s)", what,
           info && info->error_message ? info->error_message : "unknown Node-API error");
  napi_throw_error(env, "ERR_INTERPROCESS_NATIVE", message);
}

void ipc_throw_type(napi_env env, const char* message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
}

napi_value ipc_errno_error(napi_env env, int sys_errno, const char* syscall) {
  int uv_code = uv_translate_sys_error(sys_errno);
  const char* code = uv_err_name(uv_code);
  char message[256];
  if (uv_code == UV_UNKNOWN) {
    /* Say which system error it was, so it can be looked up (libuv has no name for it). */
    snprintf(message, sizeof message, "%s %s (system error %d)", syscall, code, sys_errno);
  } else {
    snprintf(message, sizeof message, "%s %s (%s)", syscall, code, uv_strerror(uv_code));
  }
  napi_value msg, code_value, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_error(env, code_value, msg, &error) != napi_ok ||
      napi_create_int32(env, uv_code, &errno_value) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) != napi_ok) {
    return NULL;
  }
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

void ipc_throw_errno(napi_env env, int sys_errno, const char* syscall) {
  napi_value error = ipc_errno_error(env, sys_errno, syscall);
  if (error == NULL) ipc_throw_napi_failure(env, "creating a system error");
  else napi_throw(env, error);
}

bool ipc_get_fd(napi_env env, napi_value value, int* fd) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, value, fd) != napi_ok || *fd < 0) {
    ipc_throw_type(env, "a file descriptor (a non-negative integer) is required");
    return false;
  }
  return true;
}

napi_status ipc_set_int(napi_env env, napi_value obj, const char* key, int64_t value) {
  napi_value v;
  napi_status status = napi_create_int64(env, value, &v);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, obj, key, v);
}

napi_status ipc_set_fn(napi_env env, napi_value obj, const char* key, napi_callback fn) {
  napi_value v;
  napi_status status = napi_create_function(env, key, NAPI_AUTO_LENGTH, fn, NULL, &v);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, obj, key, v);
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

#ifndef _WIN32
/* Reads the one argument, a descriptor. */
static bool fd_arg(napi_env env, napi_callback_info info, int* fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    ipc_throw_napi_failure(env, "reading arguments");
    return false;
  }
  if (argc < 1) {
    ipc_throw_type(env, "a file descriptor (a non-negative integer) is required");
    return false;
  }
  return ipc_get_fd(env, argv[0], fd);
}

/* releaseFd(fd) -> whether the registry held it: an owner (a Node handle, the user) takes it. */
static napi_value js_release_fd(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_arg(env, info, &fd)) return NULL;
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, ipc_release_fd(env, fd), &result));
  return result;
}

/* holdFd(fd): back into the registry (an owner that was to take it failed to). */
static napi_value js_hold_fd(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_arg(env, info, &fd) || !ipc_hold_fds(env, &fd, 1)) return NULL;
  return NULL;
}

/* closeFd(fd): out of the registry and closed, in one step (EBADF if it was not open). */
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_arg(env, info, &fd)) return NULL;
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
  napi_value abi;
  NAPI_CALL(env, napi_create_int32(env, NAPI_VERSION, &abi));
  NAPI_CALL(env, napi_set_named_property(env, exports, "napiVersion", abi));
#ifndef _WIN32
  NAPI_CALL(env, ipc_set_fn(env, exports, "releaseFd", js_release_fd));
  NAPI_CALL(env, ipc_set_fn(env, exports, "holdFd", js_hold_fd));
  NAPI_CALL(env, ipc_set_fn(env, exports, "closeFd", js_close_fd));
#endif
  if (ipc_watcher_init(env, exports) == NULL) return NULL;
  if (ipc_os_init(env, exports) == NULL) return NULL;
  return exports;
}
