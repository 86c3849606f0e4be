/*
 * The blocking local-socket client on Windows (src/sync/): a byte-type named pipe client opened
 * with CreateFileW, waited for with WaitNamedPipeW while every instance is busy, and read and
 * written with overlapped calls waited for on the calling thread (WaitForSingleObject with what is
 * left of the call's timeout). A call that runs out of time is cancelled (CancelIoEx) and its
 * outcome still collected (GetOverlappedResult): bytes that arrived in the meantime are returned,
 * never dropped. Nothing goes to libuv's thread pool or to the io.c completion queue: the handle
 * is on no completion port, and each client has its own event.
 *
 * The handle belongs to a JS external: close() closes it, and the external's finalizer closes it
 * if JS never did (a worker torn down with one open, or a client dropped without close()).
 *
 * Timeouts are milliseconds, -1 for none. A call that runs out of time returns -1 (connect, read)
 * or the bytes it wrote (write), and JS makes the ETIMEDOUT that says which call waited how long.
 */
#include "npipe.h"

#include <stdlib.h>

/* The most one WriteFile of write() asks for (see sync_write). */
#define WRITE_PART 65536

typedef struct {
  HANDLE handle; /* INVALID_HANDLE_VALUE once closed */
  HANDLE event;  /* manual-reset, for this client's overlapped calls */
} client_t;

static void close_client(client_t* client) {
  if (client->handle != INVALID_HANDLE_VALUE) CloseHandle(client->handle);
  if (client->event != NULL) CloseHandle(client->event);
  client->handle = INVALID_HANDLE_VALUE;
  client->event = NULL;
}

static void finalize_client(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  close_client(data);
  free(data);
}

static ULONGLONG deadline_of(int64_t timeout) {
  return timeout < 0 ? 0 : GetTickCount64() + (ULONGLONG)timeout;
}

/* What is left of a deadline, for a wait (INFINITE: no deadline; 0: it has passed). */
static DWORD left_ms(ULONGLONG deadline, bool has_deadline) {
  if (!has_deadline) return INFINITE;
  ULONGLONG now = GetTickCount64();
  if (now >= deadline) return 0;
  ULONGLONG left = deadline - now;
  return left >= INFINITE ? INFINITE - 1 : (DWORD)left;
}

static wchar_t* wide_name(napi_env env, napi_value value) {
  size_t length = 0;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_string ||
      napi_get_value_string_utf16(env, value, NULL, 0, &length) != napi_ok) {
    ipc_throw_type(env, "the pipe name must be a string");
    return NULL;
  }
  wchar_t* wide = malloc((length + 1) * sizeof *wide);
  if (wide == NULL || napi_get_value_string_utf16(env, value, (char16_t*)wide, length + 1, &length) != napi_ok) {
    free(wide);
    ipc_throw_errno(env, ERROR_NOT_ENOUGH_MEMORY, "malloc");
    return NULL;
  }
  return wide;
}

/*
 * connect(name, timeoutMs, busyMs) -> a client (external), or -1 when the timeout passed first.
 * While every instance is busy it waits (WaitNamedPipeW) up to busyMs (-1: the whole timeout),
 * then fails with ERROR_PIPE_BUSY; a missing pipe is thrown at once, for JS to retry with `wait`.
 */
static napi_value sync_connect(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t timeout, busy;
  if (!ipc_args(env, info, 3, argv) || !ipc_get_int(env, argv[1], -1, INT32_MAX, "the timeout", &timeout) ||
      !ipc_get_int(env, argv[2], -1, INT32_MAX, "the busy limit", &busy)) {
    return NULL;
  }
  wchar_t* name = wide_name(env, argv[0]);
  if (name == NULL) return NULL;
  ULONGLONG deadline = deadline_of(timeout);
  ULONGLONG busy_deadline = deadline_of(busy);
  HANDLE handle = INVALID_HANDLE_VALUE;
  DWORD err = 0;
  for (;;) {
    /* SECURITY_IDENTIFICATION: a server may learn who we are, never act as us. */
    handle = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (handle != INVALID_HANDLE_VALUE) break;
    err = GetLastError();
    if (err != ERROR_PIPE_BUSY) break;
    DWORD left = left_ms(deadline, timeout >= 0);
    DWORD busy_left = left_ms(busy_deadline, busy >= 0);
    if (busy_left < left) left = busy_left;
    if (left == 0) break;
    /* WaitNamedPipeW's 0 means the pipe's default: wait at least 1 ms. */
    if (!WaitNamedPipeW(name, left == INFINITE ? NMPWAIT_WAIT_FOREVER : left)) {
      DWORD wait_err = GetLastError();
      if (wait_err != ERROR_SEM_TIMEOUT && wait_err != ERROR_PIPE_BUSY) {
        err = wait_err;
        break;
      }
    }
  }
  free(name);
  if (handle == INVALID_HANDLE_VALUE) {
    if (err == ERROR_PIPE_BUSY && timeout >= 0 && left_ms(deadline, true) == 0) return ipc_int_value(env, -1);
    ipc_throw_errno(env, err, "CreateFile");
    return NULL;
  }
  client_t* client = malloc(sizeof *client);
  HANDLE event = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (client == NULL || event == NULL) {
    err = client == NULL ? ERROR_NOT_ENOUGH_MEMORY : GetLastError();
    if (event != NULL) CloseHandle(event);
    free(client);
    CloseHandle(handle);
    ipc_throw_errno(env, err, "CreateEvent");
    return NULL;
  }
  client->handle = handle;
  client->event = event;
  napi_value result;
  if (napi_create_external(env, client, finalize_client, NULL, &result) != napi_ok) {
    finalize_client(env, client, NULL);
    ipc_throw_napi_failure(env, "wrapping a pipe client");
    return NULL;
  }
  return result;
}

/* The client of argv[0], NULL (with EBADF thrown) if it is closed or not one. */
static client_t* client_arg(napi_env env, napi_value value) {
  void* data = NULL;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, value, &data) != napi_ok) {
    ipc_throw_type(env, "not a pipe client");
    return NULL;
  }
  client_t* client = data;
  if (client->handle == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, ERROR_INVALID_HANDLE, "ReadFile");
    return NULL;
  }
  return client;
}

static bool span_args(napi_env env, napi_value* argv, char** data, DWORD* length, int64_t* timeout) {
  size_t count;
  if (!ipc_get_span(env, argv[1], argv[2], argv[3], data, &count) ||
      !ipc_get_int(env, argv[4], -1, INT32_MAX, "the timeout", timeout))
    return false;
  *length = count > MAXDWORD ? MAXDWORD : (DWORD)count;
  return true;
}

/* One overlapped read or write, waited for until the deadline: the bytes moved, with *err set
 * (ERROR_OPERATION_ABORTED: the deadline passed and the call was cancelled). */
static DWORD transfer(client_t* client, bool write, char* data, DWORD length, DWORD wait, DWORD* err) {
  OVERLAPPED ov = {0};
  ResetEvent(client->event);
  ov.hEvent = client->event;
  DWORD n = 0;
  BOOL ok = write ? WriteFile(client->handle, data, length, NULL, &ov) : ReadFile(client->handle, data, length, NULL, &ov);
  if (!ok && GetLastError() == ERROR_IO_PENDING) {
    if (WaitForSingleObject(client->event, wait) == WAIT_TIMEOUT) CancelIoEx(client->handle, &ov);
    ok = TRUE;
  }
  /* Always collected, also after a cancel: what completed meanwhile is counted, never lost. */
  if (ok) ok = GetOverlappedResult(client->handle, &ov, &n, TRUE);
  *err = ok ? 0 : GetLastError();
  return n;
}

/* read(client, buffer, offset, length, timeoutMs) -> bytes read, 0 at the end, -1 out of time. */
static napi_value sync_read(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char* data;
  DWORD length, err;
  int64_t timeout;
  if (!ipc_args(env, info, 5, argv)) return NULL;
  client_t* client = client_arg(env, argv[0]);
  if (client == NULL || !span_args(env, argv, &data, &length, &timeout)) return NULL;
  ULONGLONG deadline = deadline_of(timeout);
  if (length == 0) return ipc_int_value(env, 0);
  for (;;) {
    DWORD n = transfer(client, false, data, length, left_ms(deadline, timeout >= 0), &err);
    if (n > 0) return ipc_int_value(env, n);
    if (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF || err == ERROR_PIPE_NOT_CONNECTED) return ipc_int_value(env, 0);
    if (err == ERROR_OPERATION_ABORTED) return ipc_int_value(env, -1);
    if (err != 0 && err != ERROR_MORE_DATA) break;
    /* A zero-byte message (a peer's empty write) is not the end: read on. */
  }
  ipc_throw_errno(env, err, "ReadFile");
  return NULL;
}

/* write(client, buffer, offset, length, timeoutMs) -> bytes written: all, or fewer out of time.
 * A failure is thrown with `bytesWritten` (EPIPE when the server is gone). */
static napi_value sync_write(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char* data;
  DWORD length, err = 0;
  int64_t timeout;
  if (!ipc_args(env, info, 5, argv)) return NULL;
  client_t* client = client_arg(env, argv[0]);
  if (client == NULL || !span_args(env, argv, &data, &length, &timeout)) return NULL;
  ULONGLONG deadline = deadline_of(timeout);
  DWORD done = 0;
  while (done < length) {
    /* In parts: a write waits until the pipe's buffer takes all of it, so a large one that times
     * out would have sent nothing; parts say how far it got. */
    DWORD part = length - done > WRITE_PART ? WRITE_PART : length - done;
    done += transfer(client, true, data + done, part, left_ms(deadline, timeout >= 0), &err);
    if (err != 0) break;
  }
  if (err == 0 || err == ERROR_OPERATION_ABORTED) return ipc_int_value(env, done);
  napi_value error = op_write_error(env, err, done, length);
  if (error == NULL) {
    ipc_throw_napi_failure(env, "creating a write error");
    return NULL;
  }
  napi_value written = ipc_int_value(env, done);
  if (written != NULL) napi_set_named_property(env, error, "bytesWritten", written);
  napi_throw(env, error);
  return NULL;
}

/* close(client): closes the handle (a second call does nothing). */
static napi_value sync_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void* data = NULL;
  if (!ipc_args(env, info, 1, argv)) return NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    ipc_throw_type(env, "not a pipe client");
    return NULL;
  }
  close_client(data);
  return NULL;
}

/* serverProcessId(client) -> the server's process id (-1 if Windows does not say). */
static napi_value sync_server_pid(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ipc_args(env, info, 1, argv)) return NULL;
  client_t* client = client_arg(env, argv[0]);
  if (client == NULL) return NULL;
  ULONG pid = 0;
  return ipc_int_value(env, GetNamedPipeServerProcessId(client->handle, &pid) ? (int64_t)pid : -1);
}

napi_value sync_init(napi_env env, napi_value exports) {
  napi_value sync;
  NAPI_CALL(env, napi_create_object(env, &sync));
  NAPI_CALL(env, ipc_set_fn(env, sync, "connect", sync_connect));
  NAPI_CALL(env, ipc_set_fn(env, sync, "read", sync_read));
  NAPI_CALL(env, ipc_set_fn(env, sync, "write", sync_write));
  NAPI_CALL(env, ipc_set_fn(env, sync, "close", sync_close));
  NAPI_CALL(env, ipc_set_fn(env, sync, "serverProcessId", sync_server_pid));
  NAPI_CALL(env, napi_set_named_property(env, exports, "sync", sync));
  return exports;
}
