/*
 * The measurement loops on plain blocking descriptors, shared by bench/c/pipe.c and
 * bench/c/fifo.c (the same loops as bench/c/local_socket.c, which predates this header).
 * Results go to stdout as one JSON line, the bench protocol (see bench/README.md).
 */
#ifndef BENCH_IO_H
#define BENCH_IO_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static const char *program = "bench";

static inline void die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", program, what, strerror(errno));
  exit(1);
}

/* Never outlive the harness (or the parent that forked us), nor hang if the peer dies. */
static inline void guard_process(void) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  alarm(300);
  signal(SIGPIPE, SIG_IGN);
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void *alloc_or_die(size_t size) {
  void *p = malloc(size);
  if (!p) die("malloc");
  return p;
}

static inline void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    buf += n;
    len -= (size_t)n;
  }
}

/* Reads exactly len bytes; returns 0 on EOF before the first byte. */
static inline int read_exact(int fd, char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (n == 0) {
      if (got == 0) return 0;
      errno = EPIPE;
      die("read (EOF mid-message)");
    }
    got += (size_t)n;
  }
  return 1;
}

/* Receiver: reads and discards TOTAL bytes in CHUNK reads, timed from the first byte to the last. */
static inline void receive_all(int fd, uint64_t total, size_t chunk) {
  char *buf = alloc_or_die(chunk);
  uint64_t got = 0, first = 0;
  while (got < total) {
    ssize_t n = read(fd, buf, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (n == 0) break;
    if (got == 0) first = now_ns();
    got += (uint64_t)n;
  }
  uint64_t last = now_ns();
  printf("{\"bytes\":%llu,\"ns\":%llu}\n", (unsigned long long)got, (unsigned long long)(last - first));
  fflush(stdout);
  free(buf);
}

/* Sender: TOTAL bytes in CHUNK writes. */
static inline void send_all(int fd, uint64_t total, size_t chunk) {
  char *buf = alloc_or_die(chunk);
  memset(buf, 'x', chunk);
  for (uint64_t sent = 0; sent < total; sent += chunk) write_all(fd, buf, chunk);
  free(buf);
}

/* Echo: sends back whatever arrives on IN to OUT until IN ends. */
static inline void echo(int in, int out, size_t message) {
  char *buf = alloc_or_die(message);
  for (;;) {
    ssize_t n = read(in, buf, message);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (n == 0) break;
    write_all(out, buf, (size_t)n);
  }
  free(buf);
}

/* Ping-pong: one message out, the whole echo back, then the next; each round trip timed. */
static inline void ping_pong(int in, int out, long warmup, long rounds, size_t message) {
  char *ping = alloc_or_die(message), *pong = alloc_or_die(message);
  uint64_t *samples = alloc_or_die(sizeof *samples * (size_t)rounds);
  memset(ping, 'p', message);
  for (long i = 0; i < warmup + rounds; i++) {
    uint64_t start = now_ns();
    write_all(out, ping, message);
    if (!read_exact(in, pong, message)) {
      errno = EPIPE;
      die("echo side closed");
    }
    uint64_t end = now_ns();
    if (i >= warmup) samples[i - warmup] = end - start;
  }
  printf("{\"samples_ns\":[");
  for (long i = 0; i < rounds; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)samples[i]);
  printf("]}\n");
  fflush(stdout);
  free(ping);
  free(pong);
  free(samples);
}

#endif
