/*
 * The C baseline of the shared-memory rows: the layout of docs/shared-memory.md (one ring, the
 * writer's records memcpy'd in, the reader's memcpy'd out), set up the same way (a memfd sent
 * over a Unix socket), with C11 acquire/release on head and tail. Its sides spin with
 * sched_yield() instead of sleeping on a doorbell: the cost of the memory traffic alone.
 * Usage: shm rate <server|client> <socket-path> <count> <messageBytes>
 * The server reports one JSON line like the Node workers ({"ready":true} first).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEADER 384
#define CAPACITY (8u << 20)
#define TAIL 128
#define HEAD 256

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static _Atomic uint32_t* word(uint8_t* base, size_t off) { return (_Atomic uint32_t*)(void*)(base + off); }

int main(int argc, char** argv) {
  if (argc < 6) return 2;
  int server = strcmp(argv[2], "server") == 0;
  const char* path = argv[3];
  long count = atol(argv[4]);
  uint32_t size = (uint32_t)atol(argv[5]);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  size_t total = HEADER + CAPACITY;
  uint8_t* base;
  if (server) {
    unlink(path);
    if (bind(s, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(s, 1) != 0) return perror("listen"), 1;
    printf("{\"ready\":true}\n");
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    int fd = memfd_create("bench-shm", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)total) != 0) return perror("memfd"), 1;
    base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    if (sendmsg(c, &msg, 0) != 1) return perror("sendmsg"), 1;
    /* The reader: copy each message out of the ring. */
    uint8_t* out = malloc(size + 8);
    uint32_t head = 0;
    long got = 0, bad = 0, warm = count / 5;
    uint64_t first = 0, last = 0;
    while (got < count) {
      uint32_t tail = atomic_load_explicit(word(base, TAIL), memory_order_acquire);
      if (tail == head) {
        sched_yield();
        continue;
      }
      while (head != tail) {
        uint32_t pos = head & (CAPACITY - 1);
        uint32_t len, kind;
        memcpy(&len, base + HEADER + pos, 4);
        memcpy(&kind, base + HEADER + pos + 4, 4);
        if (kind == 5) {
          head += CAPACITY - pos;
          continue;
        }
        if (len > CAPACITY / 2 || pos + 8 + len > CAPACITY) return fprintf(stderr, "bad record\n"), 1;
        memcpy(out, base + HEADER + pos + 8, len);
        if (len != size || (size >= 4 && memcmp(out, &(uint32_t){(uint32_t)got}, 4) != 0)) bad++;
        head += 8 + ((len + 7) & ~7u);
        last = now_ns();
        if (got == warm) first = last;
        got++;
      }
      atomic_store_explicit(word(base, HEAD), head, memory_order_release);
    }
    printf("{\"expected\":%ld,\"messages\":%ld,\"timed\":%ld,\"bad\":%ld,\"ns\":%llu,\"bytes\":%u}\n", count, got,
           got - 1 - warm, bad, (unsigned long long)(last - first), size);
    return 0;
  }
  if (connect(s, (struct sockaddr*)&addr, sizeof addr) != 0) return perror("connect"), 1;
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  if (recvmsg(s, &msg, 0) != 1) return perror("recvmsg"), 1;
  int fd;
  memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fd);
  base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  uint8_t* body = malloc(size + 8);
  memset(body, 1, size);
  uint32_t tail = 0;
  if (size + 16 > CAPACITY / 2) return fprintf(stderr, "message too large for this baseline\n"), 1;
  for (long i = 0; i < count; i++) {
    if (size >= 4) memcpy(body, &(uint32_t){(uint32_t)i}, 4);
    uint32_t need = 8 + ((size + 7) & ~7u);
    for (;;) {
      uint32_t head = atomic_load_explicit(word(base, HEAD), memory_order_acquire);
      uint32_t free_bytes = CAPACITY - (tail - head);
      uint32_t pos = tail & (CAPACITY - 1);
      uint32_t to_end = CAPACITY - pos;
      if (need > to_end) {
        if (free_bytes >= to_end) {
          uint32_t pad[2] = {to_end - 8, 5};
          memcpy(base + HEADER + pos, pad, 8);
          tail += to_end;
          continue;
        }
      } else if (free_bytes >= need) {
        uint32_t hdr[2] = {size, 1};
        memcpy(base + HEADER + pos, hdr, 8);
        memcpy(base + HEADER + pos + 8, body, size);
        tail += need;
        /* publish per message (as the Node side publishes per batch: at most as often) */
        atomic_store_explicit(word(base, TAIL), tail, memory_order_release);
        break;
      }
      atomic_store_explicit(word(base, TAIL), tail, memory_order_release);
      sched_yield();
    }
  }
  /* Done once the reader has taken everything (it exits after reporting). */
  while (atomic_load_explicit(word(base, HEAD), memory_order_acquire) != tail) sched_yield();
  return 0;
}
