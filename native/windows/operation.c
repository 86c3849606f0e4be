/*
 * One overlapped operation on a named pipe (the design is in npipe.h): started (ConnectNamedPipe,
 * ReadFile, WriteFile; WaitNamedPipe on a pool thread), waited for by a wait thread, and completed
 * on the JS thread: a message read whole, errors made the same for every path, JS called back.
 */
#include "npipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void op_free(op_t* op) {
  io_put_event(op->io, op->ov.hEvent);
  free(op->kind == OP_WRITE ? NULL : op->data); /* a write's data is the JS Buffer's */
  free(op->name);
  free(op);
}

op_t* op_new(napi_env env, io_t* io, pipe_t* p, op_kind_t kind, napi_value callback) {
  op_t* op = calloc(1, sizeof *op);
  if (op == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  op->kind = kind;
  op->io = io;
  op->pipe = p;
  if (kind != OP_WAIT && (op->ov.hEvent = io_take_event(io)) == NULL) {
    ipc_throw_errno(env, GetLastError(), "CreateEvent");
    free(op);
    return NULL;
  }
  if (napi_create_reference(env, callback, 1, &op->callback) != napi_ok) {
    op_free(op);
    ipc_throw_napi_failure(env, "keeping a callback");
    return NULL;
  }
  return op;
}

/*
 * Called right after an overlapped call that returned `ok`: a pending operation waits for its
 * event; one that finished at once (or failed at once) is queued, so JS always hears of it later,
 * never from inside the call that started it.
 */
static void submit_wait(op_t* op) {
  if (RegisterWaitForSingleObject(&op->wait, op->ov.hEvent, io_on_signaled, op, INFINITE,
                                  WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD)) {
    return;
  }
  DWORD err = GetLastError();
  io_t* io = op->io;
  op->wait = NULL;
  InterlockedIncrement(&io->workers);
  if (QueueUserWorkItem(io_event_worker, op, WT_EXECUTELONGFUNCTION)) return;
  InterlockedDecrement(&io->workers);
  /* No thread at all to wait on: the operation fails with the reason, rather than block the JS
   * thread on the peer. Its cancellation completes at once (no peer to wait for); op_complete()
   * then reports what had moved (a write: bytesWritten). */
  op->wait_error = err != 0 ? err : ERROR_NOT_ENOUGH_MEMORY;
  CancelIoEx(op->pipe->handle, &op->ov);
  DWORD n;
  GetOverlappedResult(op->pipe->handle, &op->ov, &n, TRUE);
  op->sync = true;
  io_push_done(io, op);
}

void op_submit(op_t* op, BOOL ok) {
  DWORD err = ok ? 0 : GetLastError();
  if (!ok && err == ERROR_IO_PENDING) {
    submit_wait(op);
    return;
  }
  if (!ok && err != ERROR_MORE_DATA) op->sync_error = err;
  op->sync = true;
  io_push_done(op->io, op);
}

/*
 * ConnectNamedPipe. ERROR_PIPE_CONNECTED (the client came first) and ERROR_NO_DATA (it came and
 * went; op_complete() takes the instance back and waits on) are outcomes of a call that never
 * started: the OVERLAPPED says nothing of them.
 */
void op_start_connect(op_t* op) {
  BOOL ok = ConnectNamedPipe(op->pipe->handle, &op->ov);
  DWORD err = ok ? 0 : GetLastError();
  if (err == ERROR_PIPE_CONNECTED || err == ERROR_NO_DATA) {
    op->sync_error = err == ERROR_NO_DATA ? err : 0;
    op->known = true;
    op->sync = true;
    io_push_done(op->io, op);
    return;
  }
  op_submit(op, ok);
}

static bool is_end_of_stream(DWORD err) {
  return err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_HANDLE_EOF ||
         err == ERROR_NO_DATA;
}

/* Clears an op for another overlapped call on it. Not every call resets the event (ConnectNamedPipe
 * may not, under Wine at least), and a stale signal would report a pending call as done. */
static void rearm(op_t* op) {
  memset(&op->ov.Internal, 0, sizeof op->ov - sizeof op->ov.hEvent);
  ResetEvent(op->ov.hEvent);
  op->sync = false;
  op->known = false;
  op->sync_error = 0;
}

static void start_read(op_t* op) {
  char* at = op->oversize ? op->data : op->data + op->filled;
  DWORD want = op->oversize ? op->size : op->size - op->filled;
  rearm(op);
  op_submit(op, ReadFile(op->pipe->handle, at, want, NULL, &op->ov));
}

/* Handles a finished read part. Returns true if the read goes on (more of the message). */
static bool continue_read(op_t* op, DWORD err, DWORD n) {
  if (err != 0 && err != ERROR_MORE_DATA) return false;
  if (op->oversize) op->total += n;
  else op->filled += n;
  if (err == 0) return false;
  DWORD left = 0;
  if (!PeekNamedPipe(op->pipe->handle, NULL, 0, NULL, NULL, &left) || left == 0) {
    left = op->size > 65536 ? op->size : 65536; /* the OS would not say: grow by steps */
  }
  if (!op->oversize && (uint64_t)op->filled + left <= op->quota) {
    char* grown = realloc(op->data, op->filled + left);
    if (grown != NULL) {
      op->data = grown;
      op->size = op->filled + left;
      start_read(op);
      return true;
    }
    op->no_memory = true; /* drain the rest as for an oversize message, then report ENOMEM */
  }
  if (!op->oversize) {
    op->oversize = true; /* drain the rest in place, then report it: the next read starts a message */
    op->total = op->filled;
  }
  start_read(op);
  return true;
}

static void call_back(io_t* io, op_t* op, size_t argc, napi_value* argv) {
  napi_env env = io->env;
  napi_value fn, global, result;
  if (napi_get_reference_value(env, op->callback, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &global);
  if (napi_make_callback(env, io->async_context, global, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

static napi_value message_too_large(napi_env env, uint64_t size, DWORD quota) {
  char text[200];
  snprintf(text, sizeof text,
           "a message of %llu bytes is over this pipe's limit of %lu bytes (maxMessageSize); it was discarded",
           (unsigned long long)size, (unsigned long)quota);
  napi_value code, message, error, size_value;
  napi_create_string_utf8(env, "ERR_INTERPROCESS_MESSAGE_TOO_LARGE", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_range_error(env, code, message, &error);
  napi_create_double(env, (double)size, &size_value);
  napi_set_named_property(env, error, "size", size_value);
  return error;
}

static void set_count(napi_env env, napi_value object, const char* key, uint64_t count) {
  napi_value value;
  if (napi_create_double(env, (double)count, &value) == napi_ok) napi_set_named_property(env, object, key, value);
}

/* The reader's end is gone (or going): for a write, Unix's EPIPE. */
static bool is_broken_pipe(DWORD err) {
  return err == ERROR_NO_DATA || err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED;
}

/*
 * The error of a write of `size` bytes that moved `sent` and ended with `err` (0: it ended short),
 * the same for every write path: no reader left is EPIPE, a write that sent part of its bytes is
 * ERR_INTERPROCESS_SHORT_WRITE, and each carries bytesWritten.
 */
napi_value op_write_error(napi_env env, DWORD err, DWORD sent, DWORD size) {
  napi_value error = NULL, code, message;
  char text[240];
  if (err == 0 || (err == ERROR_OPERATION_ABORTED && sent > 0)) {
    if (err == 0) {
      snprintf(text, sizeof text, "a write of %lu bytes sent only %lu: the message was not sent whole",
               (unsigned long)size, (unsigned long)sent);
    } else {
      snprintf(text, sizeof text,
               "a write of %lu bytes was cancelled after it had sent %lu (the pipe was destroyed, or no thread could "
               "wait for it): the reader may get that part alone",
               (unsigned long)size, (unsigned long)sent);
    }
    if (napi_create_string_utf8(env, "ERR_INTERPROCESS_SHORT_WRITE", NAPI_AUTO_LENGTH, &code) != napi_ok ||
        napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok ||
        napi_create_error(env, code, message, &error) != napi_ok) {
      return NULL;
    }
  } else if (is_broken_pipe(err)) {
    napi_value errno_value, syscall;
    if (napi_create_string_utf8(env, "EPIPE", NAPI_AUTO_LENGTH, &code) != napi_ok ||
        napi_create_string_utf8(env, "WriteFile EPIPE (broken pipe: the other end is closed)", NAPI_AUTO_LENGTH,
                                &message) != napi_ok ||
        napi_create_error(env, code, message, &error) != napi_ok ||
        napi_create_int32(env, UV_EPIPE, &errno_value) != napi_ok ||
        napi_create_string_utf8(env, "WriteFile", NAPI_AUTO_LENGTH, &syscall) != napi_ok) {
      return NULL;
    }
    napi_set_named_property(env, error, "errno", errno_value);
    napi_set_named_property(env, error, "syscall", syscall);
  } else {
    error = ipc_errno_error(env, (int)err, "WriteFile");
    if (error == NULL) return NULL;
  }
  set_count(env, error, "bytesWritten", sent);
  return error;
}

static void free_external(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* A whole message read by `op`, as a Buffer. Small messages are copied (the 64 KiB read buffer
 * is not kept alive by 64 bytes); large ones are handed over, trimmed to their size. */
napi_value op_message_value(napi_env env, op_t* op) {
  napi_value buffer = NULL;
  if (op->filled <= 16384) {
    napi_create_buffer_copy(env, op->filled, op->data, NULL, &buffer);
    return buffer;
  }
  char* trimmed = op->filled < op->size ? realloc(op->data, op->filled) : NULL;
  if (trimmed != NULL) op->data = trimmed;
  if (napi_create_external_buffer(env, op->filled, op->data, free_external, NULL, &buffer) == napi_ok) {
    op->data = NULL; /* the Buffer owns it now */
  } else {
    napi_create_buffer_copy(env, op->filled, op->data, NULL, &buffer);
  }
  return buffer;
}

void op_complete(io_t* io, op_t* op) {
  napi_env env = io->env;
  pipe_t* p = op->pipe;
  if (op->wait) {
    UnregisterWaitEx(op->wait, NULL);
    op->wait = NULL;
  }
  DWORD err = op->sync_error, n = 0;
  if (op->kind != OP_WAIT && err == 0 && !op->known) {
    err = GetOverlappedResult(p->handle, &op->ov, &n, FALSE) ? 0 : GetLastError();
    if (err == ERROR_IO_INCOMPLETE && !op->sync) {
      /* Woken while still pending (a stale signal): wait again. */
      ResetEvent(op->ov.hEvent);
      if (HasOverlappedIoCompleted(&op->ov)) SetEvent(op->ov.hEvent);
      submit_wait(op);
      return;
    }
  }
  if (op->kind == OP_READ && !p->closing && continue_read(op, err, n)) return;
  if (op->kind == OP_CONNECT && err == ERROR_NO_DATA && !p->closing) {
    /* A client connected and left before we accepted it: take the instance back and wait on. */
    DisconnectNamedPipe(p->handle);
    rearm(op);
    op_start_connect(op);
    return;
  }
  if (op->kind == OP_CONNECT && err == ERROR_PIPE_CONNECTED) err = 0;
  if (err == ERROR_OPERATION_ABORTED && op->wait_error != 0 && !(op->kind == OP_WRITE && n > 0)) {
    err = op->wait_error; /* cancelled by us, for want of a thread to wait on: say why */
  }

  io_untrack(io, op);
  napi_value argv[2];
  napi_get_null(env, &argv[0]);
  napi_get_null(env, &argv[1]);
  size_t argc = 1;
  if (op->kind == OP_READ && err == 0 && !op->oversize) {
    /* The message, whole. An empty message is an empty Buffer; the end of the stream is null. */
    argv[1] = op_message_value(env, op);
    argc = 2;
  } else if (op->kind == OP_READ && err == 0 && op->no_memory) {
    char text[200];
    snprintf(text, sizeof text, "ReadFile ENOMEM: no memory for a message of %llu bytes; it was discarded",
             (unsigned long long)op->total);
    napi_value code, message, error;
    if (napi_create_string_utf8(env, "ENOMEM", NAPI_AUTO_LENGTH, &code) == napi_ok &&
        napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) == napi_ok &&
        napi_create_error(env, code, message, &error) == napi_ok) {
      set_count(env, error, "size", op->total);
      argv[0] = error;
    }
  } else if (op->kind == OP_READ && err == 0) {
    argv[0] = message_too_large(env, op->total, op->quota);
  } else if (op->kind == OP_READ && is_end_of_stream(err)) {
    argc = 2; /* null, null: the end */
  } else if (op->kind == OP_WRITE && (err != 0 || n != op->size)) {
    napi_value error = op_write_error(env, err, n, op->size);
    if (error != NULL) argv[0] = error;
  } else if (err != 0) {
    const char* syscall = op->kind == OP_CONNECT ? "ConnectNamedPipe"
                        : op->kind == OP_READ    ? "ReadFile"
                        : op->kind == OP_WRITE   ? "WriteFile"
                                                 : "WaitNamedPipe";
    napi_value error = ipc_errno_error(env, (int)err, syscall);
    if (error != NULL) argv[0] = error;
  }
  if (op->keep) napi_delete_reference(env, op->keep);
  if (p != NULL && --p->ops == 0) {
    if (p->closing) pipe_close_handle(p);
    napi_reference_unref(env, p->self, NULL);
  }
  call_back(io, op, argc, argv);
  napi_delete_reference(env, op->callback);
  op_free(op);
}
