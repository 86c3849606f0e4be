/*
 * C baseline for the FIFO rows: mkfifo(), then plain blocking open/read/write, the same tests
 * as bench/workers/fifo.js. The server creates the FIFOs and prints {"ready":true}.
 *
 * Usage: fifo <test> <role> <base-path> <numbers...>
 *   throughput server|client BASE TOTAL_BYTES CHUNK_BYTES      FIFO BASE.data; the server reads
 *   latency    server|client BASE WARMUP ROUNDS MESSAGE_BYTES  FIFOs BASE.up (client to server)
 *                                                             and BASE.down; the server echoes
 * Both sides open BASE.up before BASE.down: a blocking open waits for the other side's.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include "io.h"

static char *path_of(const char *base, const char *suffix) {
  char *path = alloc_or_die(strlen(base) + strlen(suffix) + 1);
  strcpy(path, base);
  strcat(path, suffix);
  return path;
}

static int open_fifo(const char *path, int flags) {
  int fd;
  while ((fd = open(path, flags | O_CLOEXEC)) < 0) {
    if (errno != EINTR) die(path);
  }
  return fd;
}

static void ready(void) {
  printf("{\"ready\":true}\n");
  fflush(stdout);
}

int main(int argc, char **argv) {
  program = "fifo";
  guard_process();
  if (argc < 6) {
    fprintf(stderr, "usage: %s throughput|latency server|client BASE N1 N2 [N3]\n", argv[0]);
    return 2;
  }
  const char *test = argv[1];
  int server = strcmp(argv[2], "server") == 0;
  const char *base = argv[3];
  long long a = atoll(argv[4]), b = atoll(argv[5]), c = argc > 6 ? atoll(argv[6]) : 0;

  if (strcmp(test, "throughput") == 0) {
    char *data = path_of(base, ".data");
    if (server) {
      if (mkfifo(data, 0600) < 0) die("mkfifo");
      ready();
      int fd = open_fifo(data, O_RDONLY);
      receive_all(fd, (uint64_t)a, (size_t)b);
      unlink(data);
    } else {
      int fd = open_fifo(data, O_WRONLY);
      send_all(fd, (uint64_t)a, (size_t)b);
      close(fd);
    }
    return 0;
  }
  if (strcmp(test, "latency") == 0) {
    char *up = path_of(base, ".up"), *down = path_of(base, ".down");
    if (server) {
      if (mkfifo(up, 0600) < 0 || mkfifo(down, 0600) < 0) die("mkfifo");
      ready();
      int in = open_fifo(up, O_RDONLY);
      int out = open_fifo(down, O_WRONLY);
      echo(in, out, (size_t)c);
      unlink(up);
      unlink(down);
    } else {
      int out = open_fifo(up, O_WRONLY);
      int in = open_fifo(down, O_RDONLY);
      ping_pong(in, out, (long)a, (long)b, (size_t)c);
      close(out); /* the server sees EOF and exits */
    }
    return 0;
  }
  fprintf(stderr, "fifo: unknown test %s\n", test);
  return 2;
}
