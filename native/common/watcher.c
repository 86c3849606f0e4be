/*
 * Watcher: readiness of a descriptor from libuv (uv_poll) on the environment's own loop, so no
 * syscall ever blocks the event loop or the thread pool. JS does the I/O when told the descriptor
 * is ready; this file only waits.
 *
 *   const w = new Watcher(fd, (status, events) => {...});  // status < 0: a libuv error code
 *   w.start(READABLE | WRITABLE); w.stop(); w.close();
 *
 * A descriptor with a pending error (a connection reset by its peer) polls POLLERR; libuv then
 * stops the handle by itself and reports UV_EBADF, though the descriptor is fine. The watcher
 * tells that apart from a descriptor really closed under it: for POLLERR the callback gets status
 * 0 and the events it waited for plus ERROR (so the caller does its I/O, and the syscall returns
 * the error and then whatever is still queued); for a closed descriptor, status UV_EBADF. Either
 * way polling has stopped, here as in libuv: start() again to go on waiting. start() on a
 * descriptor that is closed (or cannot be polled) throws EBADF (EPERM) instead of letting libuv
 * abort in epoll_ctl.
 *
 * By default the watcher never owns the descriptor. `new Watcher(fd, callback, true)` makes it the
 * owner: the descriptor is closed right after polling stops for good (close(), teardown of the
 * environment, or collection of a stopped watcher), never while libuv still watches it. The
 * primitives whose descriptors Node does not own (datagram and seqpacket sockets) rely on this
 * so that a terminated worker leaks nothing.
 *
 * Lifetime: the struct outlives both the JS object and the uv handle, and is freed once both are
 * gone. While started, the JS object is held strongly so its callback cannot be collected. An
 * async cleanup hook closes the handle when the environment (a worker, say) is torn down, and Node
 * waits for that close before it frees the loop.
 */
#include "addon.h"

#include <errno.h>
#include <stdlib.h>
#include <uv.h>
#ifdef _WIN32
#include <io.h>
#else
#include <sys/stat.h>
#include <unistd.h>
#endif

/* Reported with the events when the descriptor polled POLLERR (not a libuv flag). */
#define WATCHER_ERROR 16

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref self;     /* the JS object; strong while started */
  napi_ref callback; /* the JS callback; strong until closed */
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup;
  int events;
  int fd;
  int owned_fd; /* closed once polling has stopped for good; -1 if not ours */
  bool closing, closed, finalized, tearing_down;
} watcher_t;

static void watcher_free_if_done(watcher_t* w) {
  if (w->closed && w->finalized) free(w);
}

static void on_close(uv_handle_t* handle) {
  watcher_t* w = (watcher_t*)handle->data;
  w->closed = true;
  if (!w->tearing_down) {
    napi_async_destroy(w->env, w->async_context);
    if (w->callback) napi_delete_reference(w->env, w->callback);
    w->callback = NULL;
  }
  napi_remove_async_cleanup_hook(w->cleanup);
  watcher_free_if_done(w);
}

static void free_on_close(uv_handle_t* handle) { free(handle->data); }

static void watcher_release(watcher_t* w) {
  if (w->events != 0 && !w->finalized && !w->tearing_down) napi_reference_unref(w->env, w->self, NULL);
  w->events = 0;
}

static void watcher_close(watcher_t* w) {
  if (w->closing) return;
  w->closing = true;
  uv_poll_stop(&w->poll); /* libuv forgets the descriptor here, so closing it below is safe */
  watcher_release(w);
  if (w->owned_fd >= 0) {
#ifdef _WIN32
    closesocket((SOCKET)(intptr_t)w->owned_fd);
#else
    close(w->owned_fd);
#endif
    w->owned_fd = -1;
  }
  uv_close((uv_handle_t*)&w->poll, on_close);
}

static void on_teardown(napi_async_cleanup_hook_handle handle, void* arg) {
  (void)handle;
  watcher_t* w = (watcher_t*)arg;
  w->tearing_down = true; /* JS can no longer run: touch no JS value from here on */
  watcher_close(w);
}

static void on_finalize(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  watcher_t* w = (watcher_t*)data;
  w->finalized = true;
  if (!w->closing) watcher_close(w);
  watcher_free_if_done(w);
}

#ifndef _WIN32
/* 0 if libuv can poll fd; otherwise the errno epoll_ctl would fail with (libuv aborts on it). */
static int pollable(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
#if defined(__linux__)
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return EPERM;
#endif
  return 0;
}
#endif

static void on_poll(uv_poll_t* handle, int status, int events) {
  watcher_t* w = (watcher_t*)handle->data;
  if (w->closing || w->tearing_down) return;
  /* libuv stops polling by itself on an error: so do we (after the callback, unless it started
   * again), or start() would believe it still runs. */
  bool stopped = status < 0 && !uv_is_active((uv_handle_t*)handle);
#ifndef _WIN32
  if (stopped && status == UV_EBADF && pollable(w->fd) == 0) {
    /* POLLERR on a valid descriptor: ready, and the I/O call will say what went wrong. */
    status = 0;
    events = (w->events & (UV_READABLE | UV_WRITABLE)) | WATCHER_ERROR;
  }
#endif
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self, fn, argv[2], result;
  if (napi_get_reference_value(env, w->self, &self) == napi_ok && self != NULL &&
      napi_get_reference_value(env, w->callback, &fn) == napi_ok && fn != NULL &&
      napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_create_int32(env, events, &argv[1]) == napi_ok) {
    /* make_callback runs microtasks and nextTicks afterwards, as any libuv callback in Node. */
    if (napi_make_callback(env, w->async_context, self, fn, 2, argv, &result) == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
  if (stopped && !w->closing && !w->tearing_down && !uv_is_active((uv_handle_t*)handle)) watcher_release(w);
}

static watcher_t* unwrap(napi_env env, napi_value self) {
  watcher_t* w = NULL;
  if (napi_unwrap(env, self, (void**)&w) != napi_ok || w == NULL) {
    ipc_throw_type(env, "not a Watcher");
    return NULL;
  }
  if (w->closing) {
    ipc_throw(env, IPC_ERROR, "ERR_INTERPROCESS_CLOSED", "this watcher is closed");
    return NULL;
  }
  return w;
}

static napi_value watcher_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self, target;
  NAPI_CALL(env, napi_get_new_target(env, info, &target));
  if (target == NULL) {
    ipc_throw_type(env, "Watcher must be called with new");
    return NULL;
  }
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  int fd;
  if (argc < 2 || !ipc_get_fd(env, argv[0], &fd)) return NULL;
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[1], &type));
  if (type != napi_function) {
    ipc_throw_type(env, "the Watcher callback must be a function");
    return NULL;
  }
  bool owns_fd = false;
  if (argc >= 3 && napi_get_value_bool(env, argv[2], &owns_fd) != napi_ok) {
    ipc_throw_type(env, "the Watcher's third argument (owns the descriptor) must be a boolean");
    return NULL;
  }
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  watcher_t* w = calloc(1, sizeof *w);
  if (w == NULL) {
    ipc_throw_errno(env, ENOMEM, "calloc");
    return NULL;
  }
  w->env = env;
  w->fd = fd;
  w->owned_fd = -1;
#ifdef _WIN32
  int err = uv_poll_init_socket(loop, &w->poll, (uv_os_sock_t)(intptr_t)fd);
#else
  int err = uv_poll_init(loop, &w->poll, fd);
#endif
  if (err != 0) {
    free(w);
    ipc_throw_errno(env, err, "uv_poll_init"); /* a libuv error: negative, taken as it is */
    return NULL;
  }
  w->poll.data = w;
  napi_value resource_name;
  if (napi_create_string_utf8(env, "interprocess.Watcher", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, self, resource_name, &w->async_context) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_wrap(env, self, w, on_finalize, NULL, &w->self) != napi_ok) {
    /* Nothing owns w yet but the handle: close it and free in the close callback. */
    w->finalized = true;
    w->tearing_down = true;
    w->closing = true;
    uv_close((uv_handle_t*)&w->poll, free_on_close);
    ipc_throw_napi_failure(env, "creating a Watcher");
    return NULL;
  }
  if (napi_add_async_cleanup_hook(env, on_teardown, w, &w->cleanup) != napi_ok) {
    ipc_throw_napi_failure(env, "registering a Watcher cleanup hook");
    return NULL;
  }
  if (owns_fd) {
    w->owned_fd = fd; /* only now: a constructor that throws has closed nothing */
    ipc_release_fd(env, fd); /* claimed from the registry of unclaimed descriptors in the same step */
  }
  return self;
}

static napi_value watcher_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w == NULL) return NULL;
  int events = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &events) != napi_ok ||
      (events & ~(UV_READABLE | UV_WRITABLE | UV_DISCONNECT)) != 0 || events == 0) {
    ipc_throw_type(env, "events must be a non-empty mask of READABLE, WRITABLE, DISCONNECT");
    return NULL;
  }
#ifndef _WIN32
  int unusable = pollable(w->fd);
  if (unusable != 0) {
    ipc_throw_errno(env, unusable, "uv_poll_start");
    return NULL;
  }
#endif
  int err = uv_poll_start(&w->poll, events, on_poll);
  if (err != 0) {
    ipc_throw_errno(env, err, "uv_poll_start");
    return NULL;
  }
  if (w->events == 0) NAPI_CALL(env, napi_reference_ref(env, w->self, NULL));
  w->events = events;
  return NULL;
}

static napi_value watcher_stop(napi_env env, napi_callback_info info) {
  napi_value self;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w == NULL) return NULL;
  uv_poll_stop(&w->poll);
  watcher_release(w);
  return NULL;
}

static napi_value watcher_close_js(napi_env env, napi_callback_info info) {
  napi_value self;
  NAPI_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  watcher_t* w = NULL;
  if (napi_unwrap(env, self, (void**)&w) == napi_ok && w != NULL) watcher_close(w);
  return NULL;
}

static napi_value watcher_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  watcher_t* w = unwrap(env, self);
  if (w == NULL) return NULL;
  bool keep_alive = true;
  if (argc >= 1) napi_get_value_bool(env, argv[0], &keep_alive);
  if (keep_alive) uv_ref((uv_handle_t*)&w->poll);
  else uv_unref((uv_handle_t*)&w->poll);
  return NULL;
}

napi_value watcher_init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"start", NULL, watcher_start, NULL, NULL, NULL, napi_default_method, NULL},
      {"stop", NULL, watcher_stop, NULL, NULL, NULL, napi_default_method, NULL},
      {"close", NULL, watcher_close_js, NULL, NULL, NULL, napi_default_method, NULL},
      {"ref", NULL, watcher_ref, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_value cls;
  NAPI_CALL(env, napi_define_class(env, "Watcher", NAPI_AUTO_LENGTH, watcher_new, NULL,
                                   sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_CALL(env, napi_set_named_property(env, exports, "Watcher", cls));
  napi_value events;
  NAPI_CALL(env, napi_create_object(env, &events));
  NAPI_CALL(env, ipc_set_int(env, events, "READABLE", UV_READABLE));
  NAPI_CALL(env, ipc_set_int(env, events, "WRITABLE", UV_WRITABLE));
  NAPI_CALL(env, ipc_set_int(env, events, "DISCONNECT", UV_DISCONNECT));
  NAPI_CALL(env, ipc_set_int(env, events, "ERROR", WATCHER_ERROR));
  NAPI_CALL(env, napi_set_named_property(env, exports, "pollEvents", events));
  return exports;
}
