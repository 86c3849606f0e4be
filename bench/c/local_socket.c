/*
 * C baseline for the local-socket rows: the same three tests as bench/workers/local-socket.js,
 * with plain blocking Unix domain stream sockets (epoll for the concurrent connect client).
 *
 * Usage: local_socket <test> <role> <socket-path> <numbers...>
 *   throughput server|client PATH TOTAL_BYTES CHUNK_BYTES
 *   latency    server|client PATH WARMUP ROUNDS MESSAGE_BYTES
 *   accept     server|client PATH WARMUP COUNT CONCURRENCY
 * Protocol (shared with the Node worker): a server prints {"ready":true} once it listens; the
 * side that measures prints one JSON line with its result; both exit 0 when done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/prctl.h>
#endif

#include "common.h"

static const char *socket_path;


static int listen_on(const char *path) {
  struct sockaddr_un addr = address_of(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(fd, 511) < 0) die("listen"); /* 511: Node's default backlog */
  printf("{\"ready\":true}\n");
  fflush(stdout);
  return fd;
}

static int connect_to(const char *path, int flags) {
  struct sockaddr_un addr = address_of(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) die("socket");
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    /* EAGAIN: the backlog is momentarily full; try again rather than fail the run. */
    if (errno != EAGAIN && errno != EINTR) die("connect");
    usleep(50);
  }
  return fd;
}

static int accept_one(int listener) {
  int fd;
  while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0) {
    if (errno != EINTR) die("accept");
  }
  return fd;
}

/* Receiver: reads and discards TOTAL bytes, timed from the first byte to the last. */
static void throughput_server(uint64_t total, size_t chunk) {
  int fd = accept_one(listen_on(socket_path));
  receive_all(fd, total, chunk);
  close(fd);
  unlink(socket_path);
}

static void throughput_client(uint64_t total, size_t chunk) {
  int fd = connect_to(socket_path, 0);
  send_all(fd, total, chunk);
  close(fd);
}

/* Echo server: sends back whatever arrives until the client closes. */
static void latency_server(size_t message) {
  int fd = accept_one(listen_on(socket_path));
  echo(fd, fd, message);
  close(fd);
  unlink(socket_path);
}

/* Ping-pong: one message out, the whole echo back, then the next; each round trip timed. */
static void latency_client(long warmup, long rounds, size_t message) {
  int fd = connect_to(socket_path, 0);
  ping_pong(fd, fd, warmup, rounds, message);
  close(fd);
}

/* Accepts and closes WARMUP + COUNT connections; times COUNT of them after the warmup. */
static void accept_server(long warmup, long count) {
  int listener = listen_on(socket_path);
  uint64_t start = 0;
  for (long i = 0; i < warmup + count; i++) {
    close(accept_one(listener));
    if (i == warmup - 1) start = now_ns();
  }
  uint64_t end = now_ns();
  printf("{\"connections\":%ld,\"ns\":%llu}\n", count, (unsigned long long)(end - start));
  fflush(stdout);
  close(listener);
  unlink(socket_path);
}

#ifdef __linux__
/*
 * Keeps CONCURRENCY connections in flight: connect, wait for the server to close (EOF), close,
 * open the next. Waiting for the server's close bounds the backlog, as the Node client does.
 */
static void accept_client(long total, long concurrency) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  long started = 0, finished = 0;
  struct epoll_event events[256];
  for (; started < total && started < concurrency; started++) {
    int fd = connect_to(socket_path, SOCK_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  char byte;
  while (finished < total) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (read(fd, &byte, 1) > 0) continue; /* the server never sends; ignore */
      close(fd);
      finished++;
      if (started < total) {
        int next = connect_to(socket_path, SOCK_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = next};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, next, &ev) < 0) die("epoll_ctl");
        started++;
      }
    }
  }
}
#else
/* Without epoll: one connection at a time (only Linux results are compared so far). */
static void accept_client(long total, long concurrency) {
  (void)concurrency;
  char byte;
  for (long i = 0; i < total; i++) {
    int fd = connect_to(socket_path, 0);
    while (read(fd, &byte, 1) > 0) {}
    close(fd);
  }
}
#endif

int main(int argc, char **argv) {
  program = "local_socket";
  guard_process();
  if (argc < 6) {
    fprintf(stderr, "usage: %s throughput|latency|accept server|client PATH N1 N2 [N3]\n", argv[0]);
    return 2;
  }
  const char *test = argv[1];
  int server = strcmp(argv[2], "server") == 0;
  socket_path = argv[3];
  long long a = atoll(argv[4]), b = atoll(argv[5]), c = argc > 6 ? atoll(argv[6]) : 0;

  if (strcmp(test, "throughput") == 0) {
    if (server) throughput_server((uint64_t)a, (size_t)b);
    else throughput_client((uint64_t)a, (size_t)b);
  } else if (strcmp(test, "latency") == 0) {
    if (server) latency_server((size_t)c);
    else latency_client((long)a, (long)b, (size_t)c);
  } else if (strcmp(test, "accept") == 0) {
    if (server) accept_server((long)a, (long)b);
    else accept_client((long)(a + b), (long)c);
  } else {
    fprintf(stderr, "local_socket: unknown test %s\n", test);
    return 2;
  }
  return 0;
}
