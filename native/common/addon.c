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
#ifndef _WIN32
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
  /* A worker torn down with received descriptors nobody took: they die with it, never leak. */
  for (size_t i = 0; i < instance->held_count; i++) close(instance->held_fds[i]);
#endif
  free(instance->held_fds);
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
  if (ipc_watcher_init(env, exports) == NULL) return NULL;
  if (ipc_os_init(env, exports) == NULL) return NULL;
  return exports;
}
