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
 *
 * The parts, one file and one prefix each (see common/addon.h):
 *   io.c         io_    the per-environment completion queue, its threads and its teardown
 *   operation.c  op_    one overlapped operation: started, waited for, completed, called back
 *   pipe.c       pipe_  the NamedPipe class (connect, read, write, info, close, ...)
 *   npipe.c      np_    the namedPipe export: creating and opening pipes, unnamed pairs, sync I/O
 *   handle.c     hnd_   raw handles: described, adopted, shared with a process; the client's identity
 */
#ifndef INTERPROCESS_NPIPE_H
#define INTERPROCESS_NPIPE_H
#include "../common/addon.h"

#include <uv.h> /* first: it brings winsock2.h, which must come before windows.h */
#include <windows.h>

/* Events kept for reuse per environment: making and closing one per operation costs a system call
 * each (a wineserver round trip under Wine), which shows on small messages. */
#define IO_EVENT_POOL 64

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
  HANDLE events[IO_EVENT_POOL]; /* spare events, kept for reuse (io.c) */
  int spare_events;
};

/* io.c */
/* This environment's io, made on first use; NULL with an exception thrown on failure. */
io_t* io_get(napi_env env);
/* Hands a finished op to the JS thread (any thread may call it); the caller never touches op again. */
void io_push_done(io_t* io, op_t* op);
/* RegisterWaitForSingleObject's callback: op's event is signaled. */
void CALLBACK io_on_signaled(void* context, BOOLEAN timed_out);
/* Pool threads of ours (counted in io->workers): WaitNamedPipe for an OP_WAIT, and the fallback
 * that waits for an op's event when no wait thread takes it. */
DWORD WINAPI io_wait_worker(void* context);
DWORD WINAPI io_event_worker(void* context);
/* An op is in flight (keeps the loop and its pipe alive) / no longer. */
void io_track(io_t* io, op_t* op);
void io_untrack(io_t* io, op_t* op);
/* A manual-reset event for an op, from the pool if one is spare; NULL (GetLastError) on failure. */
HANDLE io_take_event(io_t* io);
/* Gives an op's event back to the pool, or closes it. */
void io_put_event(io_t* io, HANDLE event);

/* operation.c */
/* A new op of `kind` on p (NULL for OP_WAIT) that calls `callback` back; NULL with an exception thrown. */
op_t* op_new(napi_env env, io_t* io, pipe_t* p, op_kind_t kind, napi_value callback);
void op_free(op_t* op);
/* Right after an overlapped call that returned `ok`: waits for the op, or queues it if it is done. */
void op_submit(op_t* op, BOOL ok);
void op_start_connect(op_t* op);
/* On the JS thread, for each op the queue hands over: finishes it (or starts its next part), then
 * calls JS back and frees it. */
void op_complete(io_t* io, op_t* op);
/* The message a read op holds, as a Buffer (NULL if it could not be made). */
napi_value op_message_value(napi_env env, op_t* op);
/* The error of a write of `size` bytes that moved `sent` and ended with `err` (0: it ended short). */
napi_value op_write_error(napi_env env, DWORD err, DWORD sent, DWORD size);

/* pipe.c */
/* Defines the NamedPipe class of this environment; NULL with an exception thrown on failure. */
napi_value pipe_init(napi_env env);
/* Wraps a handle we own in a new NamedPipe object; closes the handle if that fails. */
napi_value pipe_wrap(napi_env env, HANDLE handle);
void pipe_close_handle(pipe_t* p);
/* true if value is a function, else false with ERR_INVALID_ARG_TYPE thrown. */
bool pipe_is_callback(napi_env env, napi_value value);

/* npipe.c: the namedPipe export. */
napi_value np_init(napi_env env, napi_value exports);

/* handle.c: raw handles (describe, adopt, share with a process), impersonating a pipe's client. */
napi_status hnd_init(napi_env env, napi_value np);
#endif
