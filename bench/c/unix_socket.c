/*
 * C baseline for the unix-socket rows: the same two tests as bench/workers/unix-socket.js, with
 * plain blocking Unix domain sockets, batched as a good C program would (sendmmsg/recvmmsg).
 *
 * Usage: unix_socket <test> <role> <socket-path> <numbers...>
 *   dgram-rate        server|client PATH COUNT MESSAGE_BYTES
 *     server: binds a datagram socket, receives COUNT messages, reports {"messages","ns","lost"}
 *     timed from the first to the last; client: connects to it and sends COUNT messages.
 *   dgram-pair-rate   server|client PATH COUNT MESSAGE_BYTES
 *     the same, but the client binds PATH.client and the server connects back to it on the first
 *     message (a point-to-point channel: Linux then does not cap the receiver's queue at 10).
 *   seqpacket-latency server|client PATH WARMUP ROUNDS MESSAGE_BYTES
 *     server: echoes each message; client: ping-pong, reports {"samples_ns":[...]}.
 * Protocol (shared with the Node worker): a server prints {"ready":true} once it is bound; the
 * side that measures prints one JSON line; both exit 0 when done.
 */
#define _GNU_SOURCE
#ifndef __linux__
/* sendmmsg, recvmmsg and accept4 are Linux's; only Linux rows are compared so far. */
#include <stdio.h>
int main(void) {
  fprintf(stderr, "unix_socket: the C baseline of the unix-socket rows is Linux only\n");
  return 2;
}
#else
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
#include <sys/prctl.h>

#define BATCH 64

#include "common.h"

static const char *socket_path;


static void ready(void) {
  printf("{\"ready\":true}\n");
  fflush(stdout);
}

static int bound(int type) {
  struct sockaddr_un addr = address_of(socket_path);
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  return fd;
}

static int connected(int type) {
  struct sockaddr_un addr = address_of(socket_path);
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    if (errno != EAGAIN && errno != EINTR) die("connect");
    usleep(50);
  }
  return fd;
}

/* BATCH message headers over one zeroed buffer of BATCH messages of `size` bytes. */
static void batch_of(struct mmsghdr *msgs, struct iovec *iov, size_t size) {
  char *buf = calloc(BATCH, size);
  if (!buf) die("calloc");
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = buf + (size_t)i * size;
    iov[i].iov_len = size;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
}

/* Receives COUNT datagrams in batches; each starts with its sequence number, to count losses. */
static int paired; /* dgram-pair-rate */

static void dgram_server(long count, size_t size) {
  int fd = bound(SOCK_DGRAM);
  ready();
  if (paired) {
    /* The first message tells who sends: connect back to it. */
    char first[64];
    struct sockaddr_un from;
    socklen_t len = sizeof from;
    while (recvfrom(fd, first, sizeof first, MSG_PEEK, (struct sockaddr *)&from, &len) < 0) {
      if (errno != EINTR) die("recvfrom");
    }
    if (connect(fd, (struct sockaddr *)&from, len) < 0) die("connect");
  }
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  batch_of(msgs, iov, size);
  long got = 0;
  uint32_t last_seq = 0;
  uint64_t first = 0;
  while (got < count) {
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recvmmsg");
    }
    if (got == 0) first = now_ns();
    got += n;
    memcpy(&last_seq, iov[n - 1].iov_base, sizeof last_seq);
  }
  uint64_t end = now_ns();
  printf("{\"messages\":%ld,\"ns\":%llu,\"lost\":%ld}\n", got, (unsigned long long)(end - first), (long)last_seq + 1 - got);
  fflush(stdout);
  unlink(socket_path);
}

static void dgram_client(long count, size_t size) {
  int fd;
  if (paired) {
    char own[sizeof ((struct sockaddr_un *)0)->sun_path];
    snprintf(own, sizeof own, "%s.client", socket_path);
    struct sockaddr_un self = address_of(own), addr = address_of(socket_path);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (bind(fd, (struct sockaddr *)&self, sizeof self) < 0) die("bind");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  } else {
    fd = connected(SOCK_DGRAM);
  }
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  batch_of(msgs, iov, size);
  for (long sent = 0; sent < count;) {
    int batch = count - sent < BATCH ? (int)(count - sent) : BATCH;
    for (int i = 0; i < batch; i++) {
      uint32_t seq = (uint32_t)(sent + i);
      memcpy(iov[i].iov_base, &seq, sizeof seq);
    }
    int n = sendmmsg(fd, msgs, (unsigned)batch, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("sendmmsg");
    }
    sent += n;
  }
  close(fd);
}

static void seqpacket_server(size_t size) {
  int listener = bound(SOCK_SEQPACKET);
  if (listen(listener, 511) < 0) die("listen");
  ready();
  int fd;
  while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0) {
    if (errno != EINTR) die("accept");
  }
  char *buf = malloc(size);
  for (;;) {
    ssize_t n = recv(fd, buf, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recv");
    }
    if (n == 0) break;
    if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0) die("send");
  }
  unlink(socket_path);
}

static void seqpacket_client(long warmup, long rounds, size_t size) {
  int fd = connected(SOCK_SEQPACKET);
  char *out = calloc(1, size), *in = malloc(size);
  uint64_t *samples = malloc(sizeof *samples * (size_t)rounds);
  for (long i = 0; i < warmup + rounds; i++) {
    uint64_t start = now_ns();
    if (send(fd, out, size, MSG_NOSIGNAL) < 0) die("send");
    ssize_t n;
    while ((n = recv(fd, in, size, 0)) < 0 && errno == EINTR) {}
    if (n <= 0) die("recv");
    if (i >= warmup) samples[i - warmup] = now_ns() - start;
  }
  close(fd);
  printf("{\"samples_ns\":[");
  for (long i = 0; i < rounds; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)samples[i]);
  printf("]}\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  program = "unix_socket";
  guard_process();
  if (argc < 6) {
    fprintf(stderr, "usage: %s dgram-rate|dgram-pair-rate|seqpacket-latency server|client PATH N1 N2 [N3]\n", argv[0]);
    return 2;
  }
  const char *test = argv[1];
  int server = strcmp(argv[2], "server") == 0;
  socket_path = argv[3];
  long long a = atoll(argv[4]), b = atoll(argv[5]), c = argc > 6 ? atoll(argv[6]) : 0;
  paired = strcmp(test, "dgram-pair-rate") == 0;
  if (strcmp(test, "dgram-rate") == 0 || paired) {
    if (server) dgram_server((long)a, (size_t)b);
    else dgram_client((long)a, (size_t)b);
  } else if (strcmp(test, "seqpacket-latency") == 0) {
    if (server) seqpacket_server((size_t)c);
    else seqpacket_client((long)a, (long)b, (size_t)c);
  } else {
    fprintf(stderr, "unix_socket: unknown test %s\n", test);
    return 2;
  }
  return 0;
}
#endif
