/*
 * Errors: every error the addon throws or hands to a callback is made here (see addon.h), so that
 * each is an InterprocessError with a stable code once the JS loader has registered its factory.
 */
#include "addon.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

/*
 * Every error the addon makes. The JS loader registers a factory that makes an InterprocessError
 * (setErrorFactory); an addon loaded on its own makes plain errors with the same fields. The
 * factory is JS, so it is called only with no exception pending, and a failure in it falls back.
 */
napi_value ipc_error(napi_env env, ipc_error_kind kind, const char* code, const char* message, int uv_errno,
                     const char* syscall) {
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
  if (!pending) {
    napi_throw_error(env, "ERR_INTERPROCESS_NATIVE", "interprocess could not create an error object (out of memory?)");
  }
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
