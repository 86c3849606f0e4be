/*
 * What the socket baselines share on top of io.h (the loops every C baseline uses): a socket
 * address from a path. Each .c file in bench/c is its own program and sets `program` (the name
 * its errors start with) first thing in main().
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#include "io.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

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
