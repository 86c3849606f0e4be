/*
 * Arguments from JS and values back to it. Nothing that crosses from JS is trusted (see addon.h);
 * the readers never run JS, so what they checked stays true until the caller runs some.
 */
#include "addon.h"

#include <stdio.h>

bool ipc_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    ipc_throw_napi_failure(env, "reading arguments");
    return false;
  }
  if (argc < n) {
    char message[96];
    snprintf(message, sizeof message, "%u argument%s required, %u given", (unsigned)n, n == 1 ? " is" : "s are", (unsigned)argc);
    ipc_throw(env, IPC_TYPE_ERROR, "ERR_MISSING_ARGS", message);
    return false;
  }
  return true;
}

bool ipc_get_int(napi_env env, napi_value value, int64_t min, int64_t max, const char* what, int64_t* out) {
  napi_valuetype type;
  double number;
  char message[160];
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number || napi_get_value_double(env, value, &number) != napi_ok) {
    snprintf(message, sizeof message, "%s must be a number", what);
    ipc_throw_type(env, message);
    return false;
  }
  /* Compared as doubles first: NaN fails both, and no cast of an out-of-range double happens. */
  if (!(number >= (double)min && number <= (double)max) || number != (double)(int64_t)number) {
    snprintf(message, sizeof message, "%s must be an integer from %.0f to %.0f; got %g", what, (double)min, (double)max, number);
    ipc_throw_range(env, message);
    return false;
  }
  *out = (int64_t)number;
  return true;
}

bool ipc_get_span(napi_env env, napi_value buffer, napi_value offset, napi_value length, char** data, size_t* count) {
  void* base;
  size_t size;
  bool is_buffer = false;
  int64_t at, n;
  if (napi_is_buffer(env, buffer, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, buffer, &base, &size) != napi_ok) {
    ipc_throw_type(env, "the data must be a Buffer");
    return false;
  }
  if (!ipc_get_int(env, offset, 0, (int64_t)size, "the offset", &at) ||
      !ipc_get_int(env, length, 0, (int64_t)size - at, "the length", &n))
    return false;
  *data = (char*)base + at;
  *count = (size_t)n;
  return true;
}

bool ipc_get_fd(napi_env env, napi_value value, int* fd) {
  /* Anything but a non-negative int32 is not a descriptor: ERR_INVALID_ARG_TYPE, as it always was
   * (no wrapping either: 2**32 + 3 is not descriptor 3). */
  napi_valuetype type;
  double number;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number || napi_get_value_double(env, value, &number) != napi_ok ||
      !(number >= 0 && number <= (double)INT32_MAX) || number != (double)(int32_t)number) {
    ipc_throw_type(env, "a file descriptor (an integer from 0 to 2147483647) is required");
    return false;
  }
  *fd = (int)number;
  return true;
}

bool ipc_get_bool(napi_env env, napi_value value, const char* what, bool* out) {
  if (napi_get_value_bool(env, value, out) != napi_ok) {
    char message[160];
    snprintf(message, sizeof message, "%s must be a boolean", what);
    ipc_throw_type(env, message);
    return false;
  }
  return true;
}

bool ipc_fd_args(napi_env env, napi_callback_info info, size_t n, napi_value* argv, int* fd) {
  return ipc_args(env, info, n, argv) && ipc_get_fd(env, argv[0], fd);
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

napi_value ipc_int_value(napi_env env, int64_t value) {
  napi_value result;
  NAPI_CALL(env, napi_create_int64(env, value, &result));
  return result;
}

napi_value ipc_bool_value(napi_env env, bool value) {
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, value, &result));
  return result;
}

napi_value ipc_int_pair(napi_env env, int64_t a, int64_t b) {
  napi_value result, first, second;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CALL(env, napi_create_int64(env, a, &first));
  NAPI_CALL(env, napi_create_int64(env, b, &second));
  NAPI_CALL(env, napi_set_element(env, result, 0, first));
  NAPI_CALL(env, napi_set_element(env, result, 1, second));
  return result;
}
