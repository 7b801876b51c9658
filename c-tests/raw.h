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

/* The port of the first URI of a path libmsrp gave. */
static inline uint16_t path_port(const char *path) {
  msrp_uri *u = NULL;
  uint16_t port = 0;
  CHECK_OK(msrp_path_get(path, 0, &u));
  CHECK_OK(msrp_uri_port(u, &port));
  msrp_uri_free(u);
  return port;
}

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

/* Sends an empty binding SEND with transaction id `tid` (also its
 * Message-ID) and returns the response code (0: closed, -1: none in 5 s). */
static inline int raw_binding(int fd, const char *tid, const char *to, const char *from) {
  char bind[512];
  int len = snprintf(bind, sizeof bind,
                     "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: %s\r\n"
                     "Byte-Range: 1-0/0\r\n-------%s$\r\n",
                     tid, to, from, tid, tid);
  if (send_all(fd, bind, (size_t)len) != 0) return 0;
  return read_code(fd, tid, 5000);
}

/* A raw peer bound to a passive connector: `fd` is its socket, `to` the
 * connector's path, `from` the peer's; *t gets the bound transport. */
typedef struct {
  int fd;
  char to[128];
  char from[128];
} rawpeer;

/* A passive connector prepared for a raw peer's binding (p's paths set). */
static inline msrp_connector *raw_acceptor(msrp_context *ctx, rawpeer *p) {
  msrp_connector *acc = NULL;
  char *path = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  CHECK_OK(msrp_connector_prepare(acc, NULL, &path));
  snprintf(p->to, sizeof p->to, "%s", path);
  snprintf(p->from, sizeof p->from, "msrp://127.0.0.1:9/rawpeer1;tcp");
  msrp_string_free(path);
  return acc;
}

static inline void raw_bind(msrp_context *ctx, rawpeer *p, msrp_transport **t) {
  msrp_connector *acc = raw_acceptor(ctx, p);
  uint16_t port = path_port(p->to);
  completion done;
  completion_init(&done);
  CHECK_OK(msrp_connector_complete_async(acc, p->from, 5000, on_complete, &done));
  p->fd = raw_connect(port);
  CHECK(p->fd >= 0);
  CHECK(raw_binding(p->fd, "bind0001", p->to, p->from) == 200);
  CHECK(completion_wait(&done, 5000) && done.result == MSRP_RESULT_OK);
  *t = done.transport;
  completion_destroy(&done);
  msrp_connector_free(acc);
}

/* raw_bind for a context in queued mode (no completion callback runs until
 * dispatched): the peer connects and binds from a thread while this one
 * waits in the blocking msrp_connector_complete. */
typedef struct {
  rawpeer *p;
  uint16_t port;
  int code;
} raw_binder;

static void *raw_binder_run(void *arg) {
  raw_binder *b = arg;
  b->p->fd = raw_connect(b->port);
  b->code = b->p->fd >= 0 ? raw_binding(b->p->fd, "bind0001", b->p->to, b->p->from) : -1;
  return NULL;
}

static inline void raw_bind_blocking(msrp_context *ctx, rawpeer *p, msrp_transport **t) {
  msrp_connector *acc = raw_acceptor(ctx, p);
  raw_binder b = {.p = p, .port = path_port(p->to), .code = 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, raw_binder_run, &b) == 0);
  CHECK_OK(msrp_connector_complete(acc, p->from, 5000, t));
  pthread_join(th, NULL);
  CHECK(b.code == 200);
  msrp_connector_free(acc);
}

/* Sends one SEND chunk from the raw peer (text/plain). */
static inline void raw_send(rawpeer *p, const char *tid, const char *mid, const char *range, const char *extra,
                     const char *body, char flag) {
  char msg[4096];
  int len = snprintf(msg, sizeof msg,
                     "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: %s\r\nByte-Range: %s\r\n%s"
                     "Content-Type: text/plain\r\n\r\n%s\r\n-------%s%c\r\n",
                     tid, p->to, p->from, mid, range, extra, body, tid, flag);
  CHECK(send_all(p->fd, msg, (size_t)len) == 0);
}

#endif
