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

/*
 * Every error the addon makes. The JS loader registers a factory that makes an InterprocessError
 * (setErrorFactory); an addon loaded on its own makes plain errors with the same fields. The
 * factory is JS, so it is called only with no exception pending, and a failure in it falls back.
 */
napi_value ipc_error(napi_env env, ipc_error_kind kind, const char* code, const char* message, int uv_errno, const char* syscall) {
  napi_value code_value, message_value, undefined, errno_value, syscall_value, error = NULL;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_get_undefined(env, &undefined) != napi_ok) {
    return NULL;
  }
  errno_value = syscall_value = undefined;
  if (uv_errno != 0 && napi_create_int32(env, uv_errno, &errno_value) != napi_ok) return NULL;
  if (syscall != NULL && napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) != napi_ok) return NULL;
  void* data = NULL;
  bool pending = true;
  napi_value factory = NULL;
  if (napi_get_instance_data(env, &data) == napi_ok && data != NULL && ((ipc_instance_t*)data)->error_factory != NULL &&
      napi_is_exception_pending(env, &pending) == napi_ok && !pending &&
      napi_get_reference_value(env, ((ipc_instance_t*)data)->error_factory, &factory) == napi_ok && factory != NULL) {
    napi_value argv[4] = {code_value, message_value, errno_value, syscall_value};
    napi_valuetype type;
    if (napi_call_function(env, undefined, factory, 4, argv, &error) == napi_ok && napi_typeof(env, error, &type) == napi_ok &&
        type == napi_object) {
      return error;
    }
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
  }
  napi_status status = kind == IPC_TYPE_ERROR    ? napi_create_type_error(env, code_value, message_value, &error)
                       : kind == IPC_RANGE_ERROR ? napi_create_range_error(env, code_value, message_value, &error)
                                                 : napi_create_error(env, code_value, message_value, &error);
  if (status != napi_ok) return NULL;
  if (uv_errno != 0) napi_set_named_property(env, error, "errno", errno_value);
  if (syscall != NULL) napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

/* Throws error, or if it could not be made, the failure to make it. */
static void throw_made(napi_env env, napi_value error) {
  if (error != NULL && napi_throw(env, error) == napi_ok) return;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_INTERPROCESS_NATIVE", "interprocess could not create an error object (out of memory?)");
}

void ipc_throw(napi_env env, ipc_error_kind kind, const char* code, const char* message) {
  throw_made(env, ipc_error(env, kind, code, message, 0, NULL));
}

void ipc_throw_napi_failure(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  char message[256];
  snprintf(message, sizeof message, "interprocess native call failed: %s (%s)", what,
           info && info->error_message ? info->error_message : "unknown Node-API error");
  ipc_throw(env, IPC_ERROR, "ERR_INTERPROCESS_NATIVE", message);
}

void ipc_throw_type(napi_env env, const char* message) {
  ipc_throw(env, IPC_TYPE_ERROR, "ERR_INVALID_ARG_TYPE", message);
}

void ipc_throw_range(napi_env env, const char* message) {
  ipc_throw(env, IPC_RANGE_ERROR, "ERR_OUT_OF_RANGE", message);
}

void ipc_throw_value(napi_env env, const char* message) {
  ipc_throw(env, IPC_TYPE_ERROR, "ERR_INVALID_ARG_VALUE", message);
}

#ifndef _WIN32
/*
 * The errno's name, as Node names it (its code), or NULL if it has none here. Written out rather
 * than asked of libuv: Bun implements Node-API but not libuv's error helpers (calling
 * uv_translate_sys_error aborts the process there), and on Unix libuv's codes are the negated errno.
 */
static const char* errno_name(int sys_errno) {
  switch (sys_errno) {
#define NAME(e) \
  case e:       \
    return #e;
    NAME(E2BIG) NAME(EACCES) NAME(EADDRINUSE) NAME(EADDRNOTAVAIL) NAME(EAFNOSUPPORT) NAME(EAGAIN)
    NAME(EALREADY) NAME(EBADF) NAME(EBUSY) NAME(ECANCELED) NAME(ECONNABORTED) NAME(ECONNREFUSED)
    NAME(ECONNRESET) NAME(EDESTADDRREQ) NAME(EEXIST) NAME(EFAULT) NAME(EFBIG) NAME(EHOSTUNREACH)
    NAME(EILSEQ) NAME(EINTR) NAME(EINVAL) NAME(EIO) NAME(EISCONN) NAME(EISDIR) NAME(ELOOP) NAME(EMFILE)
    NAME(EMLINK) NAME(EMSGSIZE) NAME(ENAMETOOLONG) NAME(ENETDOWN) NAME(ENETUNREACH) NAME(ENFILE)
    NAME(ENOBUFS) NAME(ENODEV) NAME(ENOENT) NAME(ENOMEM) NAME(ENOPROTOOPT) NAME(ENOSPC) NAME(ENOSYS)
    NAME(ENOTCONN) NAME(ENOTDIR) NAME(ENOTEMPTY) NAME(ENOTSOCK) NAME(ENOTSUP) NAME(ENOTTY) NAME(ENXIO)
    NAME(EOVERFLOW) NAME(EPERM) NAME(EPIPE) NAME(EPROTO) NAME(EPROTONOSUPPORT) NAME(EPROTOTYPE)
    NAME(ERANGE) NAME(EROFS) NAME(ESHUTDOWN) NAME(ESPIPE) NAME(ESRCH) NAME(ETIMEDOUT) NAME(ETXTBSY)
    NAME(EXDEV)
#undef NAME
    default:
      return NULL;
  }
}
#endif

napi_value ipc_errno_error(napi_env env, int sys_errno, const char* syscall) {
  char code[64], text[128], message[256];
#ifdef _WIN32
  int uv_code = uv_translate_sys_error(sys_errno);
  /* The _r forms: uv_err_name and uv_strerror allocate (and leak) a string for an errno libuv
   * has no name for. */
  uv_err_name_r(uv_code, code, sizeof code);
  bool named = uv_code != UV_UNKNOWN && strncmp(code, "Unknown", 7) != 0;
  if (named) uv_strerror_r(uv_code, text, sizeof text);
#else
  /* Callers pass an errno, or a libuv result (a negated errno on Unix): either names the same. */
  if (sys_errno < 0) sys_errno = -sys_errno;
  int uv_code = -sys_errno;
  const char* name = errno_name(sys_errno);
  bool named = name != NULL;
  if (named) {
    snprintf(code, sizeof code, "%s", name);
    /* strerror's text, lower-cased at the start as libuv's are ("no such file or directory"). */
    snprintf(text, sizeof text, "%s", strerror(sys_errno));
    if (text[0] >= 'A' && text[0] <= 'Z') text[0] = (char)(text[0] - 'A' + 'a');
  }
#endif
  if (!named) {
    /* No name: a stable code, and the number so that it can be looked up. */
    snprintf(code, sizeof code, "UNKNOWN");
    snprintf(message, sizeof message, "%s UNKNOWN (system error %d)", syscall, sys_errno);
  } else {
    snprintf(message, sizeof message, "%s %s (%s)", syscall, code, text);
  }
  return ipc_error(env, IPC_ERROR, code, message, uv_code, syscall);
}

void ipc_throw_errno(napi_env env, int sys_errno, const char* syscall) {
  throw_made(env, ipc_errno_error(env, sys_errno, syscall));
}

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

/* setErrorFactory(fn) -> whether it was set: the JS loader's (code, message, errno, syscall) =>
 * InterprocessError. Only the first call sets it. */
static napi_value set_error_factory(napi_env env, napi_callback_info info) {
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
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, set, &result));
  return result;
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
/* Reads the one argument, a descriptor. */
static bool fd_arg(napi_env env, napi_callback_info info, int* fd) {
  napi_value argv[1];
  return ipc_args(env, info, 1, argv) && ipc_get_fd(env, argv[0], fd);
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
  NAPI_CALL(env, ipc_set_fn(env, exports, "setErrorFactory", set_error_factory));
  if (ipc_watcher_init(env, exports) == NULL) return NULL;
  if (ipc_os_init(env, exports) == NULL) return NULL;
  return exports;
}
