/*
 * C baseline for the pipe rows: pipe() + fork(), plain blocking reads and writes, the same
 * tests as bench/workers/pipe.js. One process is started; it makes the pipes and forks its peer.
 *
 * Usage: pipe <test> <numbers...>
 *   throughput TOTAL_BYTES CHUNK_BYTES PIPE_BYTES      the child reads and reports
 *   latency    WARMUP ROUNDS MESSAGE_BYTES PIPE_BYTES   the child echoes, the parent reports
 * PIPE_BYTES: F_SETPIPE_SZ on each pipe (Linux; 0 keeps the kernel's default, 64 KiB).
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <fcntl.h>
#include <sys/wait.h>
#include "io.h"

static void make_pipe(int fds[2], long size) {
  if (pipe2(fds, O_CLOEXEC) < 0) die("pipe2");
#ifdef F_SETPIPE_SZ
  if (size > 0 && fcntl(fds[1], F_SETPIPE_SZ, (int)size) < 0) die("fcntl(F_SETPIPE_SZ)");
#else
  (void)size;
#endif
}

/* Forks the peer: returns 0 in the child, the child's pid in the parent. */
static pid_t fork_peer(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) guard_process(); /* dies with the parent */
  return pid;
}

/* The parent exits as its peer did, so a failing peer fails the measurement. */
static int wait_peer(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
  program = "pipe";
  guard_process();
  if (argc < 5) {
    fprintf(stderr, "usage: %s throughput|latency N1 N2 [N3] PIPE_BYTES\n", argv[0]);
    return 2;
  }
  const char *test = argv[1];
  long long a = atoll(argv[2]), b = atoll(argv[3]), c = argc > 5 ? atoll(argv[4]) : 0;
  long size = atol(argv[argc - 1]); /* PIPE_BYTES comes last */

  if (strcmp(test, "throughput") == 0) {
    int data[2];
    make_pipe(data, size);
    pid_t pid = fork_peer();
    if (pid == 0) {
      close(data[1]);
      receive_all(data[0], (uint64_t)a, (size_t)b);
      return 0;
    }
    close(data[0]);
    send_all(data[1], (uint64_t)a, (size_t)b);
    close(data[1]);
    return wait_peer(pid);
  }
  if (strcmp(test, "latency") == 0) {
    int down[2], up[2]; /* parent -> child, child -> parent */
    make_pipe(down, size);
    make_pipe(up, size);
    pid_t pid = fork_peer();
    if (pid == 0) {
      close(down[1]);
      close(up[0]);
      echo(down[0], up[1], (size_t)c);
      return 0;
    }
    close(down[0]);
    close(up[1]);
    ping_pong(up[0], down[1], (long)a, (long)b, (size_t)c);
    close(down[1]); /* the child sees EOF and exits */
    return wait_peer(pid);
  }
  fprintf(stderr, "pipe: unknown test %s\n", test);
  return 2;
}
