/*
 * The namedPipe export (see npipe.h for the design): creating server instances and opening client
 * ends (each a NamedPipe, pipe.c), waiting for an instance, unnamed pipe pairs, synchronous I/O on
 * pipe descriptors, and the Win32 constants JS passes back.
 */
#include "npipe.h"

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>

static wchar_t* get_wide(napi_env env, napi_value value, const char* what) {
  size_t length = 0;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_string ||
      napi_get_value_string_utf16(env, value, NULL, 0, &length) != napi_ok) {
    char text[120];
    snprintf(text, sizeof text, "%s must be a string", what);
    ipc_throw_type(env, text);
    return NULL;
  }
  wchar_t* wide = malloc((length + 1) * sizeof *wide);
  if (wide == NULL || napi_get_value_string_utf16(env, value, (char16_t*)wide, length + 1, &length) != napi_ok) {
    free(wide);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  return wide;
}

/*
 * create(name, openMode, pipeMode, maxInstances, outBufferSize, inBufferSize, sddl | null, inheritable)
 * -> a server instance (CreateNamedPipeW; FILE_FLAG_OVERLAPPED is added here).
 */
static napi_value np_create(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t open_mode, pipe_mode, max_instances, out_size, in_size;
  bool inheritable = false;
  if (argc < 8 || napi_get_value_uint32(env, argv[1], &open_mode) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &pipe_mode) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &max_instances) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &out_size) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &in_size) != napi_ok ||
      napi_get_value_bool(env, argv[7], &inheritable) != napi_ok) {
    ipc_throw_type(env, "create(name, openMode, pipeMode, maxInstances, outBufferSize, inBufferSize, sddl, inheritable)");
    return NULL;
  }
  napi_value result = NULL;
  wchar_t* name = NULL;
  wchar_t* sddl = NULL;
  SECURITY_ATTRIBUTES attributes = {sizeof attributes, NULL, inheritable};
  napi_valuetype sddl_type = napi_undefined;
  HANDLE handle;
  if ((name = get_wide(env, argv[0], "the pipe name")) == NULL) goto done;
  napi_typeof(env, argv[6], &sddl_type);
  if (sddl_type == napi_string) {
    if ((sddl = get_wide(env, argv[6], "securityDescriptor")) == NULL) goto done;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &attributes.lpSecurityDescriptor, NULL)) {
      ipc_throw_errno(env, GetLastError(), "ConvertStringSecurityDescriptorToSecurityDescriptor");
      goto done;
    }
  }
  handle = CreateNamedPipeW(name, open_mode | FILE_FLAG_OVERLAPPED, pipe_mode, max_instances, out_size, in_size, 0,
                            &attributes);
  if (handle == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, GetLastError(), "CreateNamedPipe");
    goto done;
  }
  result = pipe_wrap(env, handle); /* owns the handle, even if it fails */
done:
  /* One way out: whatever step failed, what the earlier ones made is freed here, once. */
  if (attributes.lpSecurityDescriptor != NULL) LocalFree(attributes.lpSecurityDescriptor);
  free(sddl);
  free(name);
  return result;
}

/*
 * open(name, access, messageMode, writeThrough?, impersonable?) -> a client end (CreateFileW,
 * overlapped). Throws at once.
 */
static napi_value np_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t access;
  bool message_mode = false, write_through = false, impersonable = false;
  if (argc < 3 || napi_get_value_uint32(env, argv[1], &access) != napi_ok ||
      napi_get_value_bool(env, argv[2], &message_mode) != napi_ok ||
      (argc > 3 && napi_get_value_bool(env, argv[3], &write_through) != napi_ok) ||
      (argc > 4 && napi_get_value_bool(env, argv[4], &impersonable) != napi_ok)) {
    ipc_throw_type(env, "open(name, access, messageMode, writeThrough, impersonable)");
    return NULL;
  }
  wchar_t* name = get_wide(env, argv[0], "the pipe name");
  if (name == NULL) return NULL;
  /* SECURITY_IDENTIFICATION: a server may learn who we are, never act as us, unless the caller
   * lets it (SECURITY_IMPERSONATION: it may act as us on this machine while it impersonates). */
  DWORD flags = FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | (impersonable ? SECURITY_IMPERSONATION : SECURITY_IDENTIFICATION);
  if (write_through) flags |= FILE_FLAG_WRITE_THROUGH;
  HANDLE handle = CreateFileW(name, access, 0, NULL, OPEN_EXISTING, flags, NULL);
  DWORD err = GetLastError();
  free(name);
  if (handle == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, err, "CreateFile");
    return NULL;
  }
  if (message_mode) {
    DWORD mode = PIPE_READMODE_MESSAGE;
    if (!SetNamedPipeHandleState(handle, &mode, NULL, NULL)) {
      err = GetLastError();
      CloseHandle(handle);
      ipc_throw_errno(env, err, "SetNamedPipeHandleState");
      return NULL;
    }
  }
  return pipe_wrap(env, handle);
}

/* wait(name, timeoutMs, callback(err)): WaitNamedPipeW on a Windows pool thread, not Node's. */
static napi_value np_wait(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t timeout;
  if (argc < 3 || napi_get_value_uint32(env, argv[1], &timeout) != napi_ok || !pipe_is_callback(env, argv[2])) {
    if (argc < 3) ipc_throw_type(env, "wait(name, timeoutMs, callback)");
    return NULL;
  }
  io_t* io = io_get(env);
  if (io == NULL) return NULL;
  wchar_t* name = get_wide(env, argv[0], "the pipe name");
  if (name == NULL) return NULL;
  op_t* op = op_new(env, io, NULL, OP_WAIT, argv[2]);
  if (op == NULL) {
    free(name);
    return NULL;
  }
  op->name = name;
  op->timeout = timeout == 0 ? 1 : timeout; /* 0 would mean the pipe's default */
  io_track(io, op);
  InterlockedIncrement(&io->workers);
  if (!QueueUserWorkItem(io_wait_worker, op, WT_EXECUTELONGFUNCTION)) {
    InterlockedDecrement(&io->workers);
    op->sync_error = GetLastError();
    op->sync = true;
    io_push_done(io, op);
  }
  return NULL;
}

static volatile LONG pair_counter;

/*
 * pair(bufferSize) -> [readFd, writeFd]: an unnamed pipe as libuv makes them, a named pipe with a
 * name no one can guess, one instance, local clients only, connected at once. Both ends are
 * overlapped and descriptors of node.exe's runtime.
 */
static napi_value np_pair(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t size = 65536;
  if (argc >= 1) napi_get_value_uint32(env, argv[0], &size);
  char ascii[128];
  wchar_t name[128];
  LARGE_INTEGER now;
  QueryPerformanceCounter(&now);
  snprintf(ascii, sizeof ascii, "\\\\.\\pipe\\interprocess-unnamed-%lu-%ld-%lx%08lx", (unsigned long)GetCurrentProcessId(),
           (long)InterlockedIncrement(&pair_counter), (unsigned long)(now.QuadPart >> 32), (unsigned long)now.LowPart);
  for (size_t i = 0; i < sizeof ascii; i++) {
    name[i] = (wchar_t)ascii[i];
    if (ascii[i] == 0) break;
  }
  HANDLE reader = CreateNamedPipeW(name, PIPE_ACCESS_INBOUND | FILE_FLAG_FIRST_PIPE_INSTANCE | FILE_FLAG_OVERLAPPED,
                                   PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
                                   size, size, 0, NULL);
  if (reader == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, GetLastError(), "CreateNamedPipe");
    return NULL;
  }
  HANDLE writer = CreateFileW(name, GENERIC_WRITE | FILE_READ_ATTRIBUTES, 0, NULL, OPEN_EXISTING,
                              FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
  if (writer == INVALID_HANDLE_VALUE) {
    DWORD err = GetLastError();
    CloseHandle(reader);
    ipc_throw_errno(env, err, "CreateFile");
    return NULL;
  }
  int write_fd = uv_open_osfhandle(writer);
  int read_fd = write_fd < 0 ? -1 : uv_open_osfhandle(reader);
  if (read_fd < 0 || write_fd < 0) {
    if (write_fd >= 0) {
      uv_loop_t* loop;
      uv_fs_t request;
      napi_get_uv_event_loop(env, &loop);
      uv_fs_close(loop, &request, write_fd, NULL); /* closes writer, in node.exe's runtime */
      uv_fs_req_cleanup(&request);
    } else {
      CloseHandle(writer);
    }
    CloseHandle(reader);
    ipc_throw_errno(env, ERROR_TOO_MANY_OPEN_FILES, "_open_osfhandle");
    return NULL;
  }
  return ipc_int_pair(env, read_fd, write_fd);
}

/*
 * syncIo(fd, buffer, write, timeoutMs) -> bytes moved; 0 at the end of the stream (read); -1 when
 * the timeout (-1: none) passed first. For readSync/writeSync of pipe ends: an overlapped call of
 * its own, waited for on this thread (which is what the caller asked for).
 */
static napi_value np_sync_io(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd, timeout;
  bool write = false;
  void* data;
  size_t length;
  if (argc < 4 || !ipc_get_fd(env, argv[0], &fd)) return NULL;
  if (napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok || napi_get_value_bool(env, argv[2], &write) != napi_ok ||
      napi_get_value_int32(env, argv[3], &timeout) != napi_ok) {
    ipc_throw_type(env, "syncIo(fd, buffer, write, timeoutMs)");
    return NULL;
  }
  HANDLE handle = uv_get_osfhandle(fd);
  if (handle == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, ERROR_INVALID_HANDLE, write ? "WriteFile" : "ReadFile");
    return NULL;
  }
  OVERLAPPED ov = {0};
  HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (event == NULL) {
    ipc_throw_errno(env, GetLastError(), "CreateEvent");
    return NULL;
  }
  /* The low bit keeps this completion off libuv's port, with which the handle is associated. */
  ov.hEvent = (HANDLE)((uintptr_t)event | 1);
  DWORD want = length > MAXDWORD ? MAXDWORD : (DWORD)length, n = 0, err = 0;
  BOOL ok = write ? WriteFile(handle, data, want, NULL, &ov) : ReadFile(handle, data, want, NULL, &ov);
  if (!ok && GetLastError() == ERROR_IO_PENDING) {
    if (WaitForSingleObject(event, timeout < 0 ? INFINITE : (DWORD)timeout) == WAIT_TIMEOUT) {
      CancelIoEx(handle, &ov);
    }
    ok = TRUE;
  }
  if (ok) ok = GetOverlappedResult(handle, &ov, &n, TRUE);
  err = ok ? 0 : GetLastError();
  CloseHandle(event);
  if (err == ERROR_OPERATION_ABORTED) {
    /* Cancelled by our timeout: what moved before it, or -1 if nothing did. */
    return ipc_int_value(env, n > 0 ? (int64_t)n : -1);
  }
  if (!write && (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF)) err = 0;
  if (write && err != 0) {
    napi_value error = op_write_error(env, err, n, want);
    if (error == NULL) ipc_throw_napi_failure(env, "creating a write error");
    else napi_throw(env, error);
    return NULL;
  }
  if (err != 0 && err != ERROR_MORE_DATA) {
    ipc_throw_errno(env, err, write ? "WriteFile" : "ReadFile");
    return NULL;
  }
  return ipc_int_value(env, n);
}

/* dupFd(fd) -> a new descriptor of node.exe's runtime for a duplicate of fd's handle. */
static napi_value np_dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  HANDLE copy;
  if (!DuplicateHandle(GetCurrentProcess(), uv_get_osfhandle(fd), GetCurrentProcess(), &copy, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
    ipc_throw_errno(env, GetLastError(), "DuplicateHandle");
    return NULL;
  }
  int result_fd = uv_open_osfhandle(copy);
  if (result_fd < 0) {
    CloseHandle(copy);
    ipc_throw_errno(env, ERROR_TOO_MANY_OPEN_FILES, "_open_osfhandle");
    return NULL;
  }
  return ipc_int_value(env, result_fd);
}

/* fdType(fd) -> 'pipe', 'file', 'char' or 'unknown' (GetFileType); EBADF if fd is not open. */
static napi_value np_fd_type(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!ipc_fd_args(env, info, 1, argv, &fd)) return NULL;
  HANDLE handle = uv_get_osfhandle(fd);
  if (handle == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, ERROR_INVALID_HANDLE, "GetFileType");
    return NULL;
  }
  DWORD type = GetFileType(handle);
  const char* name = type == FILE_TYPE_PIPE   ? "pipe"
                     : type == FILE_TYPE_DISK ? "file"
                     : type == FILE_TYPE_CHAR ? "char"
                                              : "unknown";
  napi_value result;
  NAPI_CALL(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &result));
  return result;
}

/* handleCount() -> how many handles this process has open (for leak tests). */
static napi_value np_handle_count(napi_env env, napi_callback_info info) {
  (void)info;
  DWORD count = 0;
  if (!GetProcessHandleCount(GetCurrentProcess(), &count)) {
    ipc_throw_errno(env, GetLastError(), "GetProcessHandleCount");
    return NULL;
  }
  return ipc_int_value(env, count);
}

napi_value np_init(napi_env env, napi_value exports) {
  if (pipe_init(env) == NULL) return NULL;
  napi_value np;
  NAPI_CALL(env, napi_create_object(env, &np));
  NAPI_CALL(env, ipc_set_fn(env, np, "create", np_create));
  NAPI_CALL(env, ipc_set_fn(env, np, "open", np_open));
  NAPI_CALL(env, ipc_set_fn(env, np, "wait", np_wait));
  NAPI_CALL(env, ipc_set_fn(env, np, "pair", np_pair));
  NAPI_CALL(env, ipc_set_fn(env, np, "syncIo", np_sync_io));
  NAPI_CALL(env, ipc_set_fn(env, np, "dupFd", np_dup_fd));
  NAPI_CALL(env, ipc_set_fn(env, np, "fdType", np_fd_type));
  NAPI_CALL(env, ipc_set_fn(env, np, "handleCount", np_handle_count));
  NAPI_CALL(env, hnd_init(env, np));
  napi_value constants;
  NAPI_CALL(env, napi_create_object(env, &constants));
  const struct { const char* name; int64_t value; } table[] = {
      {"PIPE_ACCESS_DUPLEX", PIPE_ACCESS_DUPLEX},
      {"PIPE_ACCESS_INBOUND", PIPE_ACCESS_INBOUND},
      {"PIPE_ACCESS_OUTBOUND", PIPE_ACCESS_OUTBOUND},
      {"FILE_FLAG_FIRST_PIPE_INSTANCE", FILE_FLAG_FIRST_PIPE_INSTANCE},
      {"WRITE_DAC", WRITE_DAC},
      {"PIPE_TYPE_BYTE", PIPE_TYPE_BYTE},
      {"PIPE_TYPE_MESSAGE", PIPE_TYPE_MESSAGE},
      {"PIPE_READMODE_BYTE", PIPE_READMODE_BYTE},
      {"PIPE_READMODE_MESSAGE", PIPE_READMODE_MESSAGE},
      {"PIPE_REJECT_REMOTE_CLIENTS", PIPE_REJECT_REMOTE_CLIENTS},
      {"PIPE_UNLIMITED_INSTANCES", PIPE_UNLIMITED_INSTANCES},
      {"GENERIC_READ", GENERIC_READ},
      {"GENERIC_WRITE", GENERIC_WRITE},
      {"FILE_READ_ATTRIBUTES", FILE_READ_ATTRIBUTES},
      {"FILE_WRITE_ATTRIBUTES", FILE_WRITE_ATTRIBUTES},
      {"FILE_FLAG_WRITE_THROUGH", FILE_FLAG_WRITE_THROUGH},
      {"PIPE_SERVER_END", PIPE_SERVER_END},
      {"FILE_TYPE_PIPE", FILE_TYPE_PIPE},
      {"FILE_READ_DATA", FILE_READ_DATA},
      {"FILE_WRITE_DATA", FILE_WRITE_DATA},
      {"FILE_WRITE_THROUGH", 0x00000002},         /* FILE_MODE_INFORMATION flags (wdm.h) */
      {"FILE_SYNCHRONOUS_IO_ALERT", 0x00000010},
      {"FILE_SYNCHRONOUS_IO_NONALERT", 0x00000020},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    NAPI_CALL(env, ipc_set_int(env, constants, table[i].name, table[i].value));
  }
  NAPI_CALL(env, napi_set_named_property(env, np, "constants", constants));
  NAPI_CALL(env, napi_set_named_property(env, exports, "namedPipe", np));
  return exports;
}
