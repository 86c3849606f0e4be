/*
 * Helpers shared by the C baselines (each .c file in bench/c is its own program). Define PROGRAM (the
 * name errors start with) before including this.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

static void die(const char *what) {
  fprintf(stderr, PROGRAM ": %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_un address_of(const char *path) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    die("socket path");
  }
  strcpy(addr.sun_path, path);
  return addr;
}
#endif
