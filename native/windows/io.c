/*
 * The per-environment completion queue of named-pipe operations (the design is in npipe.h): wait
 * threads and our own pool threads push finished operations on it, and a uv_async wakes the JS
 * thread, which completes them (operation.c). Also the pool of events, and teardown.
 */
#include "npipe.h"

#include <stdlib.h>

void io_push_done(io_t* io, op_t* op) {
  op->next_done = NULL;
  EnterCriticalSection(&io->lock);
  if (io->done_tail) io->done_tail->next_done = op;
  else io->done_head = op;
  io->done_tail = op;
  LeaveCriticalSection(&io->lock);
  uv_async_send(&io->async);
}

void CALLBACK io_on_signaled(void* context, BOOLEAN timed_out) {
  (void)timed_out;
  op_t* op = context;
  io_push_done(op->io, op);
}

DWORD WINAPI io_wait_worker(void* context) {
  op_t* op = context;
  io_t* io = op->io;
  op->sync_error = WaitNamedPipeW(op->name, op->timeout) ? 0 : GetLastError();
  op->sync = true;
  io_push_done(io, op); /* op is the JS thread's now: not touched again */
  InterlockedDecrement(&io->workers); /* the last touch of io: teardown waits for this */
  return 0;
}

/* The fallback when no wait thread takes an op (RegisterWaitForSingleObject failed): a pool thread
 * of Windows waits for its event instead, never the JS thread. */
DWORD WINAPI io_event_worker(void* context) {
  op_t* op = context;
  io_t* io = op->io;
  WaitForSingleObject(op->ov.hEvent, INFINITE);
  io_push_done(io, op); /* op is the JS thread's now: not touched again */
  InterlockedDecrement(&io->workers); /* the last touch of io: teardown waits for this */
  return 0;
}

void io_track(io_t* io, op_t* op) {
  op->next = io->in_flight;
  op->prev = NULL;
  if (io->in_flight) io->in_flight->prev = op;
  io->in_flight = op;
  bool keeps = op->pipe == NULL || op->pipe->keep_alive;
  if (keeps && io->active++ == 0) uv_ref((uv_handle_t*)&io->async);
  if (op->pipe != NULL && op->pipe->ops++ == 0) napi_reference_ref(io->env, op->pipe->self, NULL);
}

void io_untrack(io_t* io, op_t* op) {
  if (op->prev) op->prev->next = op->next;
  else io->in_flight = op->next;
  if (op->next) op->next->prev = op->prev;
  bool keeps = op->pipe == NULL || op->pipe->keep_alive;
  if (keeps && --io->active == 0) uv_unref((uv_handle_t*)&io->async);
}

HANDLE io_take_event(io_t* io) {
  if (io->spare_events > 0) return io->events[--io->spare_events];
  return CreateEventW(NULL, TRUE, FALSE, NULL);
}

void io_put_event(io_t* io, HANDLE event) {
  if (event == NULL) return;
  /* Torn down, full, or not reset (it would wake its next op at once): closed, not kept. */
  if (io->tearing_down || io->spare_events == IO_EVENT_POOL || !ResetEvent(event)) CloseHandle(event);
  else io->events[io->spare_events++] = event;
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
    op_free(op);
  }
  for (pipe_t* p = io->pipes; p != NULL; p = p->next) {
    pipe_close_handle(p);
    p->io = NULL;
  }
  io->pipes = NULL;
  uv_close((uv_handle_t*)&io->async, on_io_closed);
}

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
    op_complete(io, op);
  }
  napi_close_handle_scope(io->env, scope);
}

io_t* io_get(napi_env env) {
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
