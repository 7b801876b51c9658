/* Helpers for C tests whose peer is a raw socket (a peer that is not
 * libmsrp): connect, send everything, read a response code, see a close. */
#ifndef MSRP_RAW_H
#define MSRP_RAW_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "net.h"

static inline int raw_connect(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) return -1;
  return s;
}

static inline int send_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads until the response to `tid` has ended; returns its code, 0 when the
 * connection closed, -1 on timeout. */
static inline int read_code(int fd, const char *tid, int ms) {
  static char buf[65536];
  size_t len = 0;
  char endline[64];
  snprintf(endline, sizeof endline, "-------%s$\r\n", tid);
  char start[64];
  snprintf(start, sizeof start, "MSRP %s ", tid);
  double until = now_ms() + ms;
  for (;;) {
    buf[len] = 0;
    char *s = strstr(buf, start);
    if (s && strstr(s, endline)) return atoi(s + strlen(start));
    int left = (int)(until - now_ms());
    if (left <= 0) return -1;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) return -1;
    ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (r <= 0) return 0;
    len += (size_t)r;
    if (len >= sizeof buf - 1) len = 0;
  }
}

/* Waits until the peer closes the connection (1), or `ms` pass (0). */
static inline int closed_within(int fd, int ms) {
  char buf[4096];
  double until = now_ms() + ms;
  for (;;) {
    int left = (int)(until - now_ms());
    if (left <= 0) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) return 0;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return 1;
  }
}

#endif
