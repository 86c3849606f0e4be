/*
 * Windows named pipes of our own, with every option CreateNamedPipeW has (message mode, direction,
 * instance limit, buffer sizes, PIPE_REJECT_REMOTE_CLIENTS, FILE_FLAG_FIRST_PIPE_INSTANCE, a
 * security descriptor from SDDL) and the peer's process and session ids, which Node's pipes hide.
 *
 * I/O is overlapped and never blocks the event loop or the thread pool. Each operation has its own
 * event; RegisterWaitForSingleObject waits for it on a Windows wait thread, whose callback only
 * queues the operation and wakes the loop (uv_async_send). Completions are then handled, and JS
 * called back, on the JS thread. Events rather than an I/O completion port: a byte-mode pipe is
 * handed to libuv (toFd, then net.Socket), which associates the handle with its own port, and a
 * handle can belong to one port only.
 *
 * Ownership of an operation: the thread that pushes it on the done queue (push_done) gives it to
 * the JS thread with that call and never touches it again; the JS thread may free it at once. A
 * thread of ours (a WaitNamedPipe worker, or the fallback waiter when RegisterWaitForSingleObject
 * fails) counts itself in io->workers, and its very last act is to leave that count: teardown
 * waits for none to be left before it frees the io. Wait-thread callbacks are waited for by
 * UnregisterWaitEx at teardown.
 *
 * Message mode reads whole messages: a read that ends with ERROR_MORE_DATA grows its buffer to the
 * message's size (PeekNamedPipe) up to the caller's quota and reads on; a message over the quota
 * is drained and reported as ERR_INTERPROCESS_MESSAGE_TOO_LARGE, so the next message still arrives.
 * A message that the buffer cannot grow to hold (out of memory) is drained the same way and
 * reported as ENOMEM: a read never leaves a fragment of a message for the next one.
 *
 * Writes: one error for "no reader left" on every path (EPIPE; libuv would call ERROR_NO_DATA
 * EAGAIN and ERROR_BROKEN_PIPE EOF), and every failed write says how many bytes went
 * (`bytesWritten`); one cancelled after it sent part of its message is ERR_INTERPROCESS_SHORT_WRITE.
 *
 * Closing never discards what was written: close() cancels reads and accepts, lets writes in
 * flight complete, then closes the handle (no DisconnectNamedPipe, which drops unread data).
 *
 * Teardown of the environment (a worker, say): an async cleanup hook cancels what is in flight,
 * waits for it (briefly, on the JS thread, which runs no JS any more), closes every handle and
 * then the uv_async handle.
 */
#include "../common/addon.h"

#include <uv.h> /* first: it brings winsock2.h, which must come before windows.h */
#include <windows.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct io_s io_t;
typedef struct pipe_s pipe_t;
typedef struct op_s op_t;

typedef enum { OP_CONNECT, OP_READ, OP_WRITE, OP_WAIT } op_kind_t;

struct op_s {
  OVERLAPPED ov;
  op_kind_t kind;
  io_t* io;
  pipe_t* pipe;       /* NULL for OP_WAIT */
  HANDLE wait;        /* RegisterWaitForSingleObject's handle while waiting */
  DWORD sync_error;   /* set when the call failed at once: GetOverlappedResult has nothing */
  bool known;         /* the outcome is sync_error, without GetOverlappedResult (it never started) */
  bool sync;          /* finished at once (no wait registered) */
  napi_ref callback;
  napi_ref keep;      /* OP_WRITE: the Buffer being written */
  char* data;         /* OP_READ: the message so far; OP_WRITE: the bytes */
  DWORD size, filled; /* OP_READ: buffer size and bytes in it; OP_WRITE: bytes to write */
  DWORD quota;        /* OP_READ: the largest message accepted */
  uint64_t total;     /* OP_READ: bytes of an oversize message drained so far */
  bool oversize;
  wchar_t* name;      /* OP_WAIT: the pipe name; the worker's result goes to sync_error */
  DWORD timeout;
  DWORD wait_error;   /* why no wait thread took the op (its fallback cancelled it), else 0 */
  bool no_memory;     /* OP_READ: the buffer could not grow to the message: drained, then ENOMEM */
  op_t* next_done;
  op_t *prev, *next; /* the io's list of operations in flight */
};

struct pipe_s {
  HANDLE handle;
  io_t* io;
  napi_env env;
  napi_ref self; /* weak; strong while operations are in flight */
  int ops;       /* operations in flight */
  bool closing, keep_alive;
  pipe_t *prev, *next; /* the io's list of live pipes */
};

struct io_s {
  napi_env env;
  uv_async_t async;
  CRITICAL_SECTION lock;
  op_t *done_head, *done_tail; /* under lock: finished, waiting for the JS thread */
  op_t* in_flight;
  pipe_t* pipes;
  int active; /* operations in flight that keep the loop alive */
  volatile LONG workers; /* threads of ours that may still touch this io (see the top of the file) */
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup;
  bool tearing_down;
  HANDLE events[64]; /* spare events (EVENT_POOL, below) */
  int spare_events;
};

/* ---------- the per-environment completion queue ---------- */

static void push_done(io_t* io, op_t* op) {
  op->next_done = NULL;
  EnterCriticalSection(&io->lock);
  if (io->done_tail) io->done_tail->next_done = op;
  else io->done_head = op;
  io->done_tail = op;
  LeaveCriticalSection(&io->lock);
  uv_async_send(&io->async);
}

static void CALLBACK on_signaled(void* context, BOOLEAN timed_out) {
  (void)timed_out;
  op_t* op = context;
  push_done(op->io, op);
}

static DWORD WINAPI wait_worker(void* context) {
  op_t* op = context;
  io_t* io = op->io;
  op->sync_error = WaitNamedPipeW(op->name, op->timeout) ? 0 : GetLastError();
  op->sync = true;
  push_done(io, op); /* op is the JS thread's now: not touched again */
  InterlockedDecrement(&io->workers); /* the last touch of io: teardown waits for this */
  return 0;
}

/* The fallback when no wait thread takes an op (RegisterWaitForSingleObject failed): a pool thread
 * of Windows waits for its event instead, never the JS thread. */
static DWORD WINAPI event_worker(void* context) {
  op_t* op = context;
  io_t* io = op->io;
  WaitForSingleObject(op->ov.hEvent, INFINITE);
  push_done(io, op); /* op is the JS thread's now: not touched again */
  InterlockedDecrement(&io->workers); /* the last touch of io: teardown waits for this */
  return 0;
}

static void track(io_t* io, op_t* op) {
  op->next = io->in_flight;
  op->prev = NULL;
  if (io->in_flight) io->in_flight->prev = op;
  io->in_flight = op;
  bool keeps = op->pipe == NULL || op->pipe->keep_alive;
  if (keeps && io->active++ == 0) uv_ref((uv_handle_t*)&io->async);
  if (op->pipe != NULL && op->pipe->ops++ == 0) napi_reference_ref(io->env, op->pipe->self, NULL);
}

static void untrack(io_t* io, op_t* op) {
  if (op->prev) op->prev->next = op->next;
  else io->in_flight = op->next;
  if (op->next) op->next->prev = op->prev;
  bool keeps = op->pipe == NULL || op->pipe->keep_alive;
  if (keeps && --io->active == 0) uv_unref((uv_handle_t*)&io->async);
}

/* Events are kept for reuse: making and closing one per operation costs a system call each (a
 * wineserver round trip under Wine), which shows on small messages. */
#define EVENT_POOL 64

static HANDLE take_event(io_t* io) {
  if (io->spare_events > 0) return io->events[--io->spare_events];
  return CreateEventW(NULL, TRUE, FALSE, NULL);
}

static void free_op(op_t* op) {
  io_t* io = op->io;
  if (op->ov.hEvent && (io->tearing_down || io->spare_events == EVENT_POOL || !ResetEvent(op->ov.hEvent))) {
    CloseHandle(op->ov.hEvent);
  } else if (op->ov.hEvent) {
    io->events[io->spare_events++] = op->ov.hEvent;
  }
  free(op->kind == OP_WRITE ? NULL : op->data);
  free(op->name);
  free(op);
}

static void close_pipe_handle(pipe_t* p) {
  if (p->handle != INVALID_HANDLE_VALUE) CloseHandle(p->handle);
  p->handle = INVALID_HANDLE_VALUE;
}

static void on_io_closed(uv_handle_t* handle) {
  io_t* io = handle->data;
  while (io->spare_events > 0) CloseHandle(io->events[--io->spare_events]);
  DeleteCriticalSection(&io->lock);
  napi_remove_async_cleanup_hook(io->cleanup);
  free(io);
}

static void on_teardown(napi_async_cleanup_hook_handle hook, void* arg) {
  (void)hook;
  io_t* io = arg;
  io->tearing_down = true; /* JS can no longer run: touch no JS value from here on */
  for (op_t* op = io->in_flight; op != NULL; op = op->next) {
    if (op->wait) UnregisterWaitEx(op->wait, INVALID_HANDLE_VALUE); /* waits for a running callback */
    op->wait = NULL;
    if (op->kind != OP_WAIT && !op->sync && op->pipe->handle != INVALID_HANDLE_VALUE) {
      DWORD n;
      CancelIoEx(op->pipe->handle, &op->ov);
      GetOverlappedResult(op->pipe->handle, &op->ov, &n, TRUE); /* also wakes a fallback waiter */
    }
  }
  /* Workers (WaitNamedPipe: at most its timeout) hand their op over, then leave the count. */
  while (InterlockedCompareExchange(&io->workers, 0, 0) != 0) Sleep(1);
  while (io->in_flight) {
    op_t* op = io->in_flight;
    io->in_flight = op->next;
    free_op(op);
  }
  for (pipe_t* p = io->pipes; p != NULL; p = p->next) {
    close_pipe_handle(p);
    p->io = NULL;
  }
  io->pipes = NULL;
  uv_close((uv_handle_t*)&io->async, on_io_closed);
}

static void complete(io_t* io, op_t* op);

static void on_async(uv_async_t* handle) {
  io_t* io = handle->data;
  if (io->tearing_down) return;
  EnterCriticalSection(&io->lock);
  op_t* list = io->done_head;
  io->done_head = io->done_tail = NULL;
  LeaveCriticalSection(&io->lock);
  napi_handle_scope scope;
  if (napi_open_handle_scope(io->env, &scope) != napi_ok) return;
  while (list) {
    op_t* op = list;
    list = op->next_done;
    complete(io, op);
  }
  napi_close_handle_scope(io->env, scope);
}

/* This environment's io, made on first use; NULL with an exception thrown on failure. */
static io_t* get_io(napi_env env) {
  ipc_instance_t* instance = ipc_instance(env);
  if (instance == NULL) return NULL;
  if (instance->windows_io != NULL) return instance->windows_io;
  uv_loop_t* loop;
  io_t* io = calloc(1, sizeof *io);
  if (io == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(io);
    ipc_throw_napi_failure(env, "creating the named-pipe I/O state");
    return NULL;
  }
  io->env = env;
  if (uv_async_init(loop, &io->async, on_async) != 0) {
    free(io);
    ipc_throw_napi_failure(env, "creating the named-pipe wakeup");
    return NULL;
  }
  io->async.data = io;
  uv_unref((uv_handle_t*)&io->async);
  InitializeCriticalSection(&io->lock);
  napi_value resource_name;
  if (napi_create_string_utf8(env, "interprocess.NamedPipe", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, NULL, resource_name, &io->async_context) != napi_ok ||
      napi_add_async_cleanup_hook(env, on_teardown, io, &io->cleanup) != napi_ok) {
    ipc_throw_napi_failure(env, "creating the named-pipe I/O state");
    return NULL; /* leaks one small struct on a path that never happens in practice */
  }
  instance->windows_io = io;
  return io;
}

/* ---------- operations ---------- */

static op_t* new_op(napi_env env, io_t* io, pipe_t* p, op_kind_t kind, napi_value callback) {
  op_t* op = calloc(1, sizeof *op);
  if (op == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  op->kind = kind;
  op->io = io;
  op->pipe = p;
  if (kind != OP_WAIT && (op->ov.hEvent = take_event(io)) == NULL) {
    ipc_throw_errno(env, GetLastError(), "CreateEvent");
    free(op);
    return NULL;
  }
  if (napi_create_reference(env, callback, 1, &op->callback) != napi_ok) {
    free_op(op);
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
  if (RegisterWaitForSingleObject(&op->wait, op->ov.hEvent, on_signaled, op, INFINITE,
                                  WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD)) {
    return;
  }
  DWORD err = GetLastError();
  io_t* io = op->io;
  op->wait = NULL;
  InterlockedIncrement(&io->workers);
  if (QueueUserWorkItem(event_worker, op, WT_EXECUTELONGFUNCTION)) return;
  InterlockedDecrement(&io->workers);
  /* No thread at all to wait on: the operation fails with the reason, rather than block the JS
   * thread on the peer. Its cancellation completes at once (no peer to wait for); complete()
   * then reports what had moved (a write: bytesWritten). */
  op->wait_error = err != 0 ? err : ERROR_NOT_ENOUGH_MEMORY;
  CancelIoEx(op->pipe->handle, &op->ov);
  DWORD n;
  GetOverlappedResult(op->pipe->handle, &op->ov, &n, TRUE);
  op->sync = true;
  push_done(io, op);
}

static void submit(op_t* op, BOOL ok) {
  DWORD err = ok ? 0 : GetLastError();
  if (!ok && err == ERROR_IO_PENDING) {
    submit_wait(op);
    return;
  }
  if (!ok && err != ERROR_MORE_DATA) op->sync_error = err;
  op->sync = true;
  push_done(op->io, op);
}

/*
 * ConnectNamedPipe. ERROR_PIPE_CONNECTED (the client came first) and ERROR_NO_DATA (it came and
 * went; complete() takes the instance back and waits on) are outcomes of a call that never
 * started: the OVERLAPPED says nothing of them.
 */
static void start_connect(op_t* op) {
  BOOL ok = ConnectNamedPipe(op->pipe->handle, &op->ov);
  DWORD err = ok ? 0 : GetLastError();
  if (err == ERROR_PIPE_CONNECTED || err == ERROR_NO_DATA) {
    op->sync_error = err == ERROR_NO_DATA ? err : 0;
    op->known = true;
    op->sync = true;
    push_done(op->io, op);
    return;
  }
  submit(op, ok);
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
  submit(op, ReadFile(op->pipe->handle, at, want, NULL, &op->ov));
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
static napi_value write_error(napi_env env, DWORD err, DWORD sent, DWORD size) {
  napi_value error = NULL, code, message;
  char text[240];
  if (err == 0 || (err == ERROR_OPERATION_ABORTED && sent > 0)) {
    if (err == 0) {
      snprintf(text, sizeof text, "a write of %lu bytes sent only %lu: the message was not sent whole",
               (unsigned long)size, (unsigned long)sent);
    } else {
      snprintf(text, sizeof text,
               "a write of %lu bytes was cancelled after it had sent %lu (the pipe was destroyed, or no thread could wait for it): the reader may get that part alone",
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
        napi_create_string_utf8(env, "WriteFile EPIPE (broken pipe: the other end is closed)", NAPI_AUTO_LENGTH, &message) != napi_ok ||
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
static napi_value message_value(napi_env env, op_t* op) {
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

static void complete(io_t* io, op_t* op) {
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
    start_connect(op);
    return;
  }
  if (op->kind == OP_CONNECT && err == ERROR_PIPE_CONNECTED) err = 0;
  if (err == ERROR_OPERATION_ABORTED && op->wait_error != 0 && !(op->kind == OP_WRITE && n > 0)) {
    err = op->wait_error; /* cancelled by us, for want of a thread to wait on: say why */
  }

  untrack(io, op);
  napi_value argv[2];
  napi_get_null(env, &argv[0]);
  napi_get_null(env, &argv[1]);
  size_t argc = 1;
  if (op->kind == OP_READ && err == 0 && !op->oversize) {
    /* The message, whole. An empty message is an empty Buffer; the end of the stream is null. */
    argv[1] = message_value(env, op);
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
    napi_value error = write_error(env, err, n, op->size);
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
    if (p->closing) close_pipe_handle(p);
    napi_reference_unref(env, p->self, NULL);
  }
  call_back(io, op, argc, argv);
  napi_delete_reference(env, op->callback);
  free_op(op);
}

/* ---------- the NamedPipe class ---------- */

static void pipe_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  pipe_t* p = data;
  if (p->io != NULL) {
    if (p->prev) p->prev->next = p->next;
    else p->io->pipes = p->next;
    if (p->next) p->next->prev = p->prev;
  }
  close_pipe_handle(p);
  free(p);
}

static napi_ref pipe_constructor_ref(napi_env env, napi_ref set);

/* Wraps a handle we own in a new NamedPipe object; closes the handle if that fails. */
static napi_value wrap_handle(napi_env env, HANDLE handle) {
  io_t* io = get_io(env);
  napi_value ctor, object;
  napi_ref ref = pipe_constructor_ref(env, NULL);
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

static bool is_function(napi_env env, napi_value value) {
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
  if (p == NULL || argc < 1 || !is_function(env, argv[0])) return NULL;
  op_t* op = new_op(env, p->io, p, OP_CONNECT, argv[0]);
  if (op == NULL) return NULL;
  track(p->io, op);
  start_connect(op);
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
  if (!is_function(env, argv[1])) return NULL;
  op_t* op = new_op(env, p->io, p, OP_READ, argv[1]);
  if (op == NULL) return NULL;
  /* No PeekNamedPipe first (a system call, on every message): a larger message grows the buffer
   * from what ERROR_MORE_DATA says is left. */
  op->quota = quota;
  op->size = quota < 65536 ? quota : 65536;
  op->data = malloc(op->size > 0 ? op->size : 1);
  if (op->data == NULL) {
    napi_delete_reference(env, op->callback);
    free_op(op);
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
    napi_value message = message_value(env, op);
    napi_delete_reference(env, op->callback);
    free_op(op);
    return message;
  }
  track(p->io, op);
  SetLastError(err);
  submit(op, ok);
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
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok || !is_function(env, argv[1])) {
    if (!is_buffer) ipc_throw_type(env, "write(buffer, callback): the data must be a Buffer");
    return NULL;
  }
  if (length > MAXDWORD) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a named-pipe write is at most 4 GiB - 1 bytes");
    return NULL;
  }
  op_t* op = new_op(env, p->io, p, OP_WRITE, argv[1]);
  if (op == NULL) return NULL;
  if (napi_create_reference(env, argv[0], 1, &op->keep) != napi_ok) {
    napi_delete_reference(env, op->callback);
    free_op(op);
    ipc_throw_napi_failure(env, "keeping a Buffer");
    return NULL;
  }
  op->data = data;
  op->size = (DWORD)length;
  DWORD n = 0;
  napi_value result;
  BOOL ok = WriteFile(p->handle, data, (DWORD)length, NULL, &op->ov);
  DWORD err = ok ? 0 : GetLastError();
  if (ok && GetOverlappedResult(p->handle, &op->ov, &n, FALSE) && n == length) {
    /* Taken whole at once (the usual case): say so, and no callback; JS resolves on its own. */
    napi_delete_reference(env, op->keep);
    napi_delete_reference(env, op->callback);
    free_op(op);
    NAPI_CALL(env, napi_get_boolean(env, true, &result));
    return result;
  }
  track(p->io, op);
  SetLastError(err);
  submit(op, ok); /* pending, failed, or short: the callback tells */
  NAPI_CALL(env, napi_get_boolean(env, false, &result));
  return result;
}

/* [a, b] as a JS array of two numbers. */
static napi_value two_numbers(napi_env env, int64_t a, int64_t b) {
  napi_value result, first, second;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CALL(env, napi_create_int64(env, a, &first));
  NAPI_CALL(env, napi_create_int64(env, b, &second));
  NAPI_CALL(env, napi_set_element(env, result, 0, first));
  NAPI_CALL(env, napi_set_element(env, result, 1, second));
  return result;
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
  return two_numbers(env, available, left);
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
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
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
    close_pipe_handle(p);
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

/* The NamedPipe class, kept per environment in a reference made at init. */
static napi_ref pipe_constructor_ref(napi_env env, napi_ref set) {
  ipc_instance_t* instance = ipc_instance(env);
  if (instance == NULL) return NULL;
  if (set != NULL) instance->named_pipe_class = set;
  return instance->named_pipe_class;
}

/* ---------- creating and opening ---------- */

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
  wchar_t* name = get_wide(env, argv[0], "the pipe name");
  if (name == NULL) return NULL;
  SECURITY_ATTRIBUTES attributes = {sizeof attributes, NULL, inheritable};
  napi_valuetype sddl_type;
  napi_typeof(env, argv[6], &sddl_type);
  if (sddl_type == napi_string) {
    wchar_t* sddl = get_wide(env, argv[6], "securityDescriptor");
    if (sddl == NULL) {
      free(name);
      return NULL;
    }
    BOOL ok = ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &attributes.lpSecurityDescriptor, NULL);
    DWORD err = GetLastError();
    free(sddl);
    if (!ok) {
      free(name);
      ipc_throw_errno(env, err, "ConvertStringSecurityDescriptorToSecurityDescriptor");
      return NULL;
    }
  }
  HANDLE handle = CreateNamedPipeW(name, open_mode | FILE_FLAG_OVERLAPPED, pipe_mode, max_instances, out_size,
                                   in_size, 0, &attributes);
  DWORD err = GetLastError();
  if (attributes.lpSecurityDescriptor) LocalFree(attributes.lpSecurityDescriptor);
  free(name);
  if (handle == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, err, "CreateNamedPipe");
    return NULL;
  }
  return wrap_handle(env, handle);
}

/* open(name, access, messageMode) -> a client end (CreateFileW, overlapped). Throws at once. */
static napi_value np_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t access;
  bool message_mode = false;
  if (argc < 3 || napi_get_value_uint32(env, argv[1], &access) != napi_ok ||
      napi_get_value_bool(env, argv[2], &message_mode) != napi_ok) {
    ipc_throw_type(env, "open(name, access, messageMode)");
    return NULL;
  }
  wchar_t* name = get_wide(env, argv[0], "the pipe name");
  if (name == NULL) return NULL;
  /* SECURITY_IDENTIFICATION: a server may learn who we are, never act as us. */
  HANDLE handle = CreateFileW(name, access, 0, NULL, OPEN_EXISTING,
                              FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
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
  return wrap_handle(env, handle);
}

/* wait(name, timeoutMs, callback(err)): WaitNamedPipeW on a Windows pool thread, not Node's. */
static napi_value np_wait(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t timeout;
  if (argc < 3 || napi_get_value_uint32(env, argv[1], &timeout) != napi_ok || !is_function(env, argv[2])) {
    if (argc < 3) ipc_throw_type(env, "wait(name, timeoutMs, callback)");
    return NULL;
  }
  io_t* io = get_io(env);
  if (io == NULL) return NULL;
  wchar_t* name = get_wide(env, argv[0], "the pipe name");
  if (name == NULL) return NULL;
  op_t* op = new_op(env, io, NULL, OP_WAIT, argv[2]);
  if (op == NULL) {
    free(name);
    return NULL;
  }
  op->name = name;
  op->timeout = timeout == 0 ? 1 : timeout; /* 0 would mean the pipe's default */
  track(io, op);
  InterlockedIncrement(&io->workers);
  if (!QueueUserWorkItem(wait_worker, op, WT_EXECUTELONGFUNCTION)) {
    InterlockedDecrement(&io->workers);
    op->sync_error = GetLastError();
    op->sync = true;
    push_done(io, op);
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
  return two_numbers(env, read_fd, write_fd);
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
  napi_value result;
  if (err == ERROR_OPERATION_ABORTED) {
    /* Cancelled by our timeout: what moved before it, or -1 if nothing did. */
    NAPI_CALL(env, n > 0 ? napi_create_uint32(env, n, &result) : napi_create_int32(env, -1, &result));
    return result;
  }
  if (!write && (err == ERROR_BROKEN_PIPE || err == ERROR_HANDLE_EOF)) err = 0;
  if (write && err != 0) {
    napi_value error = write_error(env, err, n, want);
    if (error == NULL) ipc_throw_napi_failure(env, "creating a write error");
    else napi_throw(env, error);
    return NULL;
  }
  if (err != 0 && err != ERROR_MORE_DATA) {
    ipc_throw_errno(env, err, write ? "WriteFile" : "ReadFile");
    return NULL;
  }
  NAPI_CALL(env, napi_create_uint32(env, n, &result));
  return result;
}

/* The one argument of a call that takes a descriptor; false (with an exception thrown) if it is not one. */
static bool fd_argument(napi_env env, napi_callback_info info, int* fd) {
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

/* dupFd(fd) -> a new descriptor of node.exe's runtime for a duplicate of fd's handle. */
static napi_value np_dup_fd(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_argument(env, info, &fd)) return NULL;
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
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, result_fd, &result));
  return result;
}

/* fdType(fd) -> 'pipe', 'file', 'char' or 'unknown' (GetFileType); EBADF if fd is not open. */
static napi_value np_fd_type(napi_env env, napi_callback_info info) {
  int fd;
  if (!fd_argument(env, info, &fd)) return NULL;
  HANDLE handle = uv_get_osfhandle(fd);
  if (handle == INVALID_HANDLE_VALUE) {
    ipc_throw_errno(env, ERROR_INVALID_HANDLE, "GetFileType");
    return NULL;
  }
  DWORD type = GetFileType(handle);
  const char* name = type == FILE_TYPE_PIPE ? "pipe" : type == FILE_TYPE_DISK ? "file" : type == FILE_TYPE_CHAR ? "char" : "unknown";
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
  napi_value result;
  NAPI_CALL(env, napi_create_uint32(env, count, &result));
  return result;
}

napi_value ipc_named_pipe_init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"connect", NULL, pipe_connect, NULL, NULL, NULL, napi_default, NULL},
      {"read", NULL, pipe_read, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, pipe_write, NULL, NULL, NULL, napi_default, NULL},
      {"peek", NULL, pipe_peek, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, pipe_info, NULL, NULL, NULL, napi_default, NULL},
      {"securityDescriptor", NULL, pipe_security, NULL, NULL, NULL, napi_default, NULL},
      {"toFd", NULL, pipe_to_fd, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, pipe_close, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, pipe_ref, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, np;
  napi_ref cls_ref;
  NAPI_CALL(env, napi_define_class(env, "NamedPipe", NAPI_AUTO_LENGTH, pipe_constructor, NULL,
                                   sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_CALL(env, napi_create_reference(env, cls, 1, &cls_ref));
  pipe_constructor_ref(env, cls_ref);
  NAPI_CALL(env, napi_create_object(env, &np));
  NAPI_CALL(env, ipc_set_fn(env, np, "create", np_create));
  NAPI_CALL(env, ipc_set_fn(env, np, "open", np_open));
  NAPI_CALL(env, ipc_set_fn(env, np, "wait", np_wait));
  NAPI_CALL(env, ipc_set_fn(env, np, "pair", np_pair));
  NAPI_CALL(env, ipc_set_fn(env, np, "syncIo", np_sync_io));
  NAPI_CALL(env, ipc_set_fn(env, np, "dupFd", np_dup_fd));
  NAPI_CALL(env, ipc_set_fn(env, np, "fdType", np_fd_type));
  NAPI_CALL(env, ipc_set_fn(env, np, "handleCount", np_handle_count));
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
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    NAPI_CALL(env, ipc_set_int(env, constants, table[i].name, table[i].value));
  }
  NAPI_CALL(env, napi_set_named_property(env, np, "constants", constants));
  NAPI_CALL(env, napi_set_named_property(env, exports, "namedPipe", np));
  return exports;
}
