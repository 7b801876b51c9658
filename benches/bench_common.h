/* What the benchmark harnesses share: raw TCP baselines over loopback,
 * timing, and binding a pair of libmsrp transports. Header-only; include
 * once per program. */
#ifndef MSRP_BENCH_COMMON_H
#define MSRP_BENCH_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <stdatomic.h>

#include "msrp.h"

#define CHUNK (64 * 1024)

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void must(msrp_result r, const char *what) {
  if (r != MSRP_RESULT_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, msrp_result_str(r), msrp_last_error_message());
    exit(1);
  }
}

/* The median of three runs: the raw baselines swing between runs on a
 * shared machine, so figures are compared as medians of alternating runs. */
static inline double median3(const double v[3]) {
  double a = v[0], b = v[1], c = v[2];
  if (a > b) { double t = a; a = b; b = t; }
  if (b > c) { double t = b; b = c; c = t; }
  if (a > b) { double t = a; a = b; b = t; }
  return b;
}

static inline int raw_listener(uint16_t *port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 64) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &len) != 0) {
    perror("raw listener");
    exit(1);
  }
  *port = ntohs(a.sin_port);
  return l;
}

static inline int raw_connect(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("raw connect");
    exit(1);
  }
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static inline double raw_setup(int n) {
  uint16_t port = 0;
  int l = raw_listener(&port);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    int c = raw_connect(port);
    int a = accept(l, NULL, NULL);
    close(c);
    close(a);
  }
  double dt = now_s() - t0;
  close(l);
  return n / dt;
}

typedef struct {
  int fd;
  size_t total;
} raw_writer_arg;

static inline void *raw_writer(void *p) {
  raw_writer_arg *w = p;
  char *buf = calloc(1, CHUNK);
  size_t sent = 0;
  while (sent < w->total) {
    ssize_t n = write(w->fd, buf, CHUNK);
    if (n <= 0) break;
    sent += (size_t)n;
  }
  free(buf);
  return NULL;
}

static inline double raw_bulk(size_t total) {
  uint16_t port = 0;
  int l = raw_listener(&port);
  int c = raw_connect(port);
  int a = accept(l, NULL, NULL);
  raw_writer_arg w = {c, total};
  pthread_t th;
  char *buf = malloc(CHUNK);
  double t0 = now_s();
  pthread_create(&th, NULL, raw_writer, &w);
  size_t got = 0;
  while (got < total) {
    ssize_t n = read(a, buf, CHUNK);
    if (n <= 0) break;
    got += (size_t)n;
  }
  double dt = now_s() - t0;
  pthread_join(th, NULL);
  free(buf);
  close(a);
  close(c);
  close(l);
  return (double)got / dt / 1e6;
}

/* ---- libmsrp ---- */

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int done;
  msrp_transport *t;
  msrp_result r;
} waiter;

static inline void on_complete(void *ud, msrp_result r, msrp_transport *t, const char *msg) {
  waiter *w = ud;
  (void)msg;
  pthread_mutex_lock(&w->m);
  w->r = r;
  w->t = t;
  w->done = 1;
  pthread_cond_signal(&w->c);
  pthread_mutex_unlock(&w->m);
}

/* A bound pair; with `acc_tls` and `con_tls` (both or neither) it is msrps,
 * each side checking the other's fingerprint. */
static inline void msrp_pair_with(msrp_context *ctx, const msrp_tls *acc_tls, const msrp_tls *con_tls,
                                  msrp_transport **active, msrp_transport **passive) {
  msrp_connector *acc = NULL, *con = NULL;
  char *ap = NULL, *cp = NULL;
  waiter w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.c, NULL);
  must(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc), "acceptor");
  must(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con), "connector");
  if (acc_tls && con_tls) {
    char *fa = NULL, *fc = NULL;
    must(msrp_tls_fingerprint(acc_tls, NULL, &fa), "fingerprint");
    must(msrp_tls_fingerprint(con_tls, NULL, &fc), "fingerprint");
    must(msrp_connector_set_tls(acc, acc_tls), "set_tls");
    must(msrp_connector_set_tls(con, con_tls), "set_tls");
    must(msrp_connector_set_peer_fingerprint(acc, fc), "peer fingerprint");
    must(msrp_connector_set_peer_fingerprint(con, fa), "peer fingerprint");
    msrp_string_free(fa);
    msrp_string_free(fc);
    must(msrp_connector_prepare(acc, "msrps://127.0.0.1:0;tcp", &ap), "prepare");
    must(msrp_connector_prepare(con, "msrps://127.0.0.1:9;tcp", &cp), "prepare");
  } else {
    must(msrp_connector_prepare(acc, NULL, &ap), "prepare");
    must(msrp_connector_prepare(con, NULL, &cp), "prepare");
  }
  must(msrp_connector_complete_async(acc, cp, 10000, on_complete, &w), "complete_async");
  must(msrp_connector_complete(con, ap, 10000, active), "complete");
  pthread_mutex_lock(&w.m);
  while (!w.done) pthread_cond_wait(&w.c, &w.m);
  pthread_mutex_unlock(&w.m);
  must(w.r, "acceptor complete");
  *passive = w.t;
  msrp_string_free(ap);
  msrp_string_free(cp);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  pthread_mutex_destroy(&w.m);
  pthread_cond_destroy(&w.c);
}

static inline void msrp_pair(msrp_context *ctx, msrp_transport **active, msrp_transport **passive) {
  msrp_pair_with(ctx, NULL, NULL, active, passive);
}

/* ---- session workloads shared by the session and relay benchmarks ---- */

/* A read callback for msrp_outgoing_file that hands out `*left` zero bytes. */
static inline size_t zero_reader(void *ud, uint8_t *buf, size_t len) {
  size_t *left = ud;
  (void)buf; /* libmsrp hands a zeroed buffer; leave the bytes as they are */
  size_t n = len < *left ? len : *left;
  *left -= n;
  return n;
}

/* Queues `total` zero bytes as one file on `s`; `left` must live until sent. */
static inline void send_zeros(msrp_session *s, size_t total, size_t *left, const msrp_message_callbacks *mc,
                              void *ud) {
  *left = total;
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.fd = -1;
  f.read = zero_reader;
  f.read_userdata = left;
  f.size = total;
  must(msrp_session_send_file(s, &f, NULL, mc, ud, NULL), "send_file");
}

/* Polls until `*v` reaches `want` or `max_s` seconds passed. */
static inline void wait_until(atomic_ullong *v, unsigned long long want, double max_s) {
  double until = now_s() + max_s;
  const struct timespec pause = {0, 200000};
  while (atomic_load(v) < want && now_s() < until) nanosleep(&pause, NULL);
}

/* The process's resident memory in KiB (Linux), -1 when unknown. */
static inline long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) v = strtol(line + 6, NULL, 10);
  fclose(f);
  return v;
}

/* The first member of a session's userdata in these benchmarks. libmsrp
 * may still call back after msrp_session_free returns (a late response,
 * on_closed) until it calls userdata_free, so userdata on the stack must
 * live until then: free sessions with free_session. */
typedef struct {
  atomic_ullong released;
} session_owner;

/* userdata_free for userdata that starts with a session_owner. */
static inline void session_owner_release(void *ud) { atomic_store(&((session_owner *)ud)->released, 1); }

/* Frees `s` and waits (at most 10 s) until libmsrp released its userdata. */
static inline void free_session(msrp_session *s, session_owner *o) {
  msrp_session_free(s);
  wait_until(&o->released, 1, 10);
  if (!atomic_load(&o->released)) fprintf(stderr, "a session's userdata was not released within 10 s\n");
}

#endif
