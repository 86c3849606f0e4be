/*
 * The NamedPipe class: one end of a named pipe (a server instance or a client), the handle owned
 * by the object. Its methods start operations (operation.c) and call back when they complete;
 * close() lets writes in flight finish before the handle closes (see npipe.h).
 */
#include "npipe.h"

#include <sddl.h>
#include <stdlib.h>

void pipe_close_handle(pipe_t* p) {
  if (p->handle != INVALID_HANDLE_VALUE) CloseHandle(p->handle);
  p->handle = INVALID_HANDLE_VALUE;
}

static void pipe_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  pipe_t* p = data;
  if (p->io != NULL) {
    if (p->prev) p->prev->next = p->next;
    else p->io->pipes = p->next;
    if (p->next) p->next->prev = p->prev;
  }
  pipe_close_handle(p);
  free(p);
}

/* The NamedPipe class of this environment (made by pipe_init). */
static napi_ref pipe_class(napi_env env) {
  ipc_instance_t* instance = ipc_instance(env);
  return instance == NULL ? NULL : instance->named_pipe_class;
}

napi_value pipe_wrap(napi_env env, HANDLE handle) {
  io_t* io = io_get(env);
  napi_value ctor, object;
  napi_ref ref = pipe_class(env);
  pipe_t* p = calloc(1, sizeof *p);
  if (io == NULL || p == NULL || napi_get_reference_value(env, ref, &ctor) != napi_ok ||
      napi_new_instance(env, ctor, 0, NULL, &object) != napi_ok) {
    free(p);
    CloseHandle(handle);
    if (io != NULL) ipc_throw_napi_failure(env, "creating a NamedPipe");
    return NULL;
  }
  p->handle = handle;
  p->io = io;
  p->env = env;
  p->keep_alive = true;
  if (napi_wrap(env, object, p, pipe_finalize, NULL, &p->self) != napi_ok) {
    free(p);
    CloseHandle(handle);
    ipc_throw_napi_failure(env, "creating a NamedPipe");
    return NULL;
  }
  napi_reference_unref(env, p->self, NULL); /* weak until an operation is in flight */
  p->next = io->pipes;
  if (io->pipes) io->pipes->prev = p;
  io->pipes = p;
  return object;
}

static pipe_t* this_pipe(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) {
    ipc_throw_napi_failure(env, "reading arguments");
    return NULL;
  }
  pipe_t* p = NULL;
  if (napi_unwrap(env, self, (void**)&p) != napi_ok || p == NULL) {
    ipc_throw_type(env, "not a NamedPipe");
    return NULL;
  }
  if (p->handle == INVALID_HANDLE_VALUE || p->closing || p->io == NULL) {
    napi_throw_error(env, "ERR_INTERPROCESS_CLOSED", "this named pipe is closed");
    return NULL;
  }
  return p;
}

bool pipe_is_callback(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) == napi_ok && type == napi_function) return true;
  ipc_throw_type(env, "a callback function is required");
  return false;
}

/* pipe.connect(callback(err)): a server instance waits for its client. */
static napi_value pipe_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  pipe_t* p = this_pipe(env, info, &argc, argv);
  if (p == NULL || argc < 1 || !pipe_is_callback(env, argv[0])) return NULL;
  op_t* op = op_new(env, p->io, p, OP_CONNECT, argv[0]);
  if (op == NULL) return NULL;
  io_track(p->io, op);
  op_start_connect(op);
  return NULL;
}

/*
 * pipe.read(maxMessageSize, callback(err, message | null)) -> the message if one was waiting whole
 * (then no callback), else undefined and the callback gives it; null at the end of the stream.
 */
static napi_value pipe_read(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  pipe_t* p = this_pipe(env, info, &argc, argv);
  uint32_t quota = 0;
  if (p == NULL) return NULL;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &quota) != napi_ok || quota == 0) {
    ipc_throw_type(env, "read(maxMessageSize, callback): maxMessageSize must be a positive integer");
    return NULL;
  }
  if (!pipe_is_callback(env, argv[1])) return NULL;
  op_t* op = op_new(env, p->io, p, OP_READ, argv[1]);
  if (op == NULL) return NULL;
  /* No PeekNamedPipe first (a system call, on every message): a larger message grows the buffer
   * from what ERROR_MORE_DATA says is left. */
  op->quota = quota;
  op->size = quota < 65536 ? quota : 65536;
  op->data = malloc(op->size > 0 ? op->size : 1);
  if (op->data == NULL) {
    napi_delete_reference(env, op->callback);
    op_free(op);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  /* A whole message waiting is returned at once, with no callback: no wakeup of the loop per
   * message while they queue up. Anything else (pending, longer, the end, an error) calls back. */
  DWORD n = 0;
  BOOL ok = ReadFile(p->handle, op->data, op->size, NULL, &op->ov);
  DWORD err = ok ? 0 : GetLastError();
  if (ok && GetOverlappedResult(p->handle, &op->ov, &n, FALSE)) {
    op->filled = n;
    napi_value message = op_message_value(env, op);
    napi_delete_reference(env, op->callback);
    op_free(op);
    return message;
  }
  io_track(p->io, op);
  SetLastError(err);
  op_submit(op, ok);
  return NULL;
}

/*
 * pipe.write(buffer, callback(err)) -> true if Windows took the whole buffer at once (then the
 * callback is never called), false if the callback will tell. One WriteFile: one message.
 */
static napi_value pipe_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  pipe_t* p = this_pipe(env, info, &argc, argv);
  if (p == NULL) return NULL;
  void* data;
  size_t length;
  bool is_buffer = false;
  if (argc < 2 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok || !pipe_is_callback(env, argv[1])) {
    if (!is_buffer) ipc_throw_type(env, "write(buffer, callback): the data must be a Buffer");
    return NULL;
  }
  if (length > MAXDWORD) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a named-pipe write is at most 4 GiB - 1 bytes");
    return NULL;
  }
  op_t* op = op_new(env, p->io, p, OP_WRITE, argv[1]);
  if (op == NULL) return NULL;
  if (napi_create_reference(env, argv[0], 1, &op->keep) != napi_ok) {
    napi_delete_reference(env, op->callback);
    op_free(op);
    ipc_throw_napi_failure(env, "keeping a Buffer");
    return NULL;
  }
  op->data = data;
  op->size = (DWORD)length;
  DWORD n = 0;
  BOOL ok = WriteFile(p->handle, data, (DWORD)length, NULL, &op->ov);
  DWORD err = ok ? 0 : GetLastError();
  if (ok && GetOverlappedResult(p->handle, &op->ov, &n, FALSE) && n == length) {
    /* Taken whole at once (the usual case): say so, and no callback; JS resolves on its own. */
    napi_delete_reference(env, op->keep);
    napi_delete_reference(env, op->callback);
    op_free(op);
    return ipc_bool_value(env, true);
  }
  io_track(p->io, op);
  SetLastError(err);
  op_submit(op, ok); /* pending, failed, or short: the callback tells */
  return ipc_bool_value(env, false);
}

/* pipe.peek() -> [bytes available, bytes left in the next message (0 in byte mode)] */
static napi_value pipe_peek(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  pipe_t* p = this_pipe(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  DWORD available = 0, left = 0;
  if (!PeekNamedPipe(p->handle, NULL, 0, NULL, &available, &left)) {
    ipc_throw_errno(env, GetLastError(), "PeekNamedPipe");
    return NULL;
  }
  return ipc_int_pair(env, available, left);
}

/* pipe.info() -> { clientProcessId, serverProcessId, clientSessionId, serverSessionId } (-1: unknown) */
static napi_value pipe_info(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  pipe_t* p = this_pipe(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  ULONG id;
  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, ipc_set_int(env, result, "clientProcessId", GetNamedPipeClientProcessId(p->handle, &id) ? (int64_t)id : -1));
  NAPI_CALL(env, ipc_set_int(env, result, "serverProcessId", GetNamedPipeServerProcessId(p->handle, &id) ? (int64_t)id : -1));
  NAPI_CALL(env, ipc_set_int(env, result, "clientSessionId", GetNamedPipeClientSessionId(p->handle, &id) ? (int64_t)id : -1));
  NAPI_CALL(env, ipc_set_int(env, result, "serverSessionId", GetNamedPipeServerSessionId(p->handle, &id) ? (int64_t)id : -1));
  DWORD flags = 0, out_size = 0, in_size = 0, max_instances = 0;
  if (GetNamedPipeInfo(p->handle, &flags, &out_size, &in_size, &max_instances)) {
    NAPI_CALL(env, ipc_set_int(env, result, "flags", flags));
    NAPI_CALL(env, ipc_set_int(env, result, "outBufferSize", out_size));
    NAPI_CALL(env, ipc_set_int(env, result, "inBufferSize", in_size));
    NAPI_CALL(env, ipc_set_int(env, result, "maxInstances", max_instances));
  }
  return result;
}

/* pipe.securityDescriptor() -> the DACL as SDDL (what the OS holds for this pipe) */
static napi_value pipe_security(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  pipe_t* p = this_pipe(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  DWORD needed = 0;
  GetKernelObjectSecurity(p->handle, DACL_SECURITY_INFORMATION, NULL, 0, &needed);
  PSECURITY_DESCRIPTOR sd = needed > 0 ? malloc(needed) : NULL;
  LPWSTR text = NULL;
  if (sd == NULL || !GetKernelObjectSecurity(p->handle, DACL_SECURITY_INFORMATION, sd, needed, &needed) ||
      !ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, NULL)) {
    DWORD err = GetLastError();
    free(sd);
    ipc_throw_errno(env, err != 0 ? err : ERROR_NOT_ENOUGH_MEMORY, "GetKernelObjectSecurity");
    return NULL;
  }
  napi_value result;
  napi_status status = napi_create_string_utf16(env, (const char16_t*)text, NAPI_AUTO_LENGTH, &result);
  LocalFree(text);
  free(sd);
  NAPI_CALL(env, status);
  return result;
}

/*
 * pipe.toFd() -> a C runtime descriptor of node.exe's own runtime (uv_open_osfhandle), for
 * net.Socket({ fd }). The descriptor owns the handle from then on; this object is closed.
 */
static napi_value pipe_to_fd(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  pipe_t* p = this_pipe(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  if (p->ops > 0) {
    napi_throw_error(env, "ERR_INTERPROCESS_BUSY", "a named pipe with operations in flight cannot become a descriptor");
    return NULL;
  }
  int fd = uv_open_osfhandle(p->handle);
  if (fd < 0) {
    ipc_throw_errno(env, ERROR_TOO_MANY_OPEN_FILES, "_open_osfhandle");
    return NULL;
  }
  p->handle = INVALID_HANDLE_VALUE;
  return ipc_int_value(env, fd);
}

/* pipe.handle() -> the handle's value (see handle.c), while this object owns it. */
static napi_value pipe_handle(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  pipe_t* p = this_pipe(env, info, &argc, NULL);
  if (p == NULL) return NULL;
  return ipc_int_value(env, (int64_t)((uintptr_t)p->handle & 0xffffffffu));
}

/* The pipe of a call that may come after close (close, ref: they do nothing then), and its optional flag. */
static pipe_t* pipe_and_flag(napi_env env, napi_callback_info info, bool* flag) {
  size_t argc = 1;
  napi_value argv[1], self;
  pipe_t* p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok ||
      napi_unwrap(env, self, (void**)&p) != napi_ok) {
    return NULL;
  }
  if (argc >= 1) napi_get_value_bool(env, argv[0], flag);
  return p;
}

/*
 * pipe.close(destroy): cancels reads and accepts; writes in flight finish first, unless destroy,
 * then the handle closes. The callbacks of cancelled operations get ERROR_OPERATION_ABORTED.
 */
static napi_value pipe_close(napi_env env, napi_callback_info info) {
  bool destroy = false;
  pipe_t* p = pipe_and_flag(env, info, &destroy);
  if (p == NULL || p->closing || p->handle == INVALID_HANDLE_VALUE) return NULL;
  p->closing = true;
  if (p->ops == 0) {
    pipe_close_handle(p);
    return NULL;
  }
  if (p->io == NULL) return NULL;
  for (op_t* op = p->io->in_flight; op != NULL; op = op->next) {
    if (op->pipe == p && (destroy || op->kind != OP_WRITE)) CancelIoEx(p->handle, &op->ov);
  }
  return NULL;
}

/* pipe.ref(keepAlive): whether operations in flight keep the process alive (default true). */
static napi_value pipe_ref(napi_env env, napi_callback_info info) {
  bool keep = true;
  pipe_t* p = pipe_and_flag(env, info, &keep);
  if (p == NULL || p->io == NULL || keep == p->keep_alive) return NULL;
  int count = 0;
  for (op_t* op = p->io->in_flight; op != NULL; op = op->next) count += op->pipe == p;
  p->keep_alive = keep;
  int before = p->io->active;
  p->io->active += keep ? count : -count;
  if (before == 0 && p->io->active > 0) uv_ref((uv_handle_t*)&p->io->async);
  if (before > 0 && p->io->active == 0) uv_unref((uv_handle_t*)&p->io->async);
  return NULL;
}

static napi_value pipe_constructor(napi_env env, napi_callback_info info) {
  napi_value self;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  return self;
}

napi_value pipe_init(napi_env env) {
  napi_property_descriptor methods[] = {
      {"connect", NULL, pipe_connect, NULL, NULL, NULL, napi_default, NULL},
      {"read", NULL, pipe_read, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, pipe_write, NULL, NULL, NULL, napi_default, NULL},
      {"peek", NULL, pipe_peek, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, pipe_info, NULL, NULL, NULL, napi_default, NULL},
      {"securityDescriptor", NULL, pipe_security, NULL, NULL, NULL, napi_default, NULL},
      {"toFd", NULL, pipe_to_fd, NULL, NULL, NULL, napi_default, NULL},
      {"handle", NULL, pipe_handle, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, pipe_close, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, pipe_ref, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  NAPI_CALL(env, napi_define_class(env, "NamedPipe", NAPI_AUTO_LENGTH, pipe_constructor, NULL,
                                   sizeof methods / sizeof methods[0], methods, &cls));
  /* Kept per environment: pipe_wrap makes the objects JS gets (the class is not exported). */
  ipc_instance_t* instance = ipc_instance(env);
  if (instance == NULL) return NULL;
  NAPI_CALL(env, napi_create_reference(env, cls, 1, &instance->named_pipe_class));
  return cls;
}
