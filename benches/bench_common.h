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

/* Comparisons alternate libmsrp and its baseline run by run, and compare
 * medians: on this shared 2-core machine a single run of either side can
 * be off by half (raw TCP over loopback moves between 1.5 and 4 GB/s from
 * one run to the next), so a ratio from one pair of runs, or even from
 * medians of three, scatters widely. MSRP_BENCH_RUNS sets the number of
 * runs per comparison (odd; default 11). */
#define BENCH_MAX_RUNS 101

static inline int bench_runs(void) {
  const char *e = getenv("MSRP_BENCH_RUNS");
  int n = e ? atoi(e) : 11;
  if (n < 1) n = 1;
  if (n > BENCH_MAX_RUNS) n = BENCH_MAX_RUNS;
  return n | 1;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median, smallest and largest of `n` values (n <= BENCH_MAX_RUNS). */
typedef struct {
  double median, min, max;
} bench_stats;

static inline bench_stats stats_of(const double *v, int n) {
  double s[BENCH_MAX_RUNS];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
  bench_stats r = {s[n / 2], s[0], s[n - 1]};
  return r;
}

/* libmsrp against its baseline over `n` alternating runs: the medians, their
 * ratio (libmsrp / baseline), and the smallest and largest ratio of a
 * single pair of runs, to show the scatter. */
typedef struct {
  double base, lib, ratio, pair_min, pair_max;
} bench_compared;

static inline bench_compared compare_runs(const double *base, const double *lib, int n) {
  double pr[BENCH_MAX_RUNS];
  for (int i = 0; i < n; i++) pr[i] = lib[i] / base[i];
  bench_stats b = stats_of(base, n), l = stats_of(lib, n), p = stats_of(pr, n);
  bench_compared c = {b.median, l.median, l.median / b.median, p.min, p.max};
  return c;
}

/* Prints a comparison as two JSON lines: the baseline's median, then
 * libmsrp's, with the ratio of the medians and the scatter of the
 * ratios of single pairs of runs. `bytes` 0 leaves bytes out; `goal` may be
 * NULL; `base_impl` NULL leaves out the baseline's line (a second libmsrp
 * variant compared with the same baseline runs). */
static inline void print_compared(const char *bench, const char *base_impl, const char *lib_impl, const char *unit,
                                  size_t bytes, int n, bench_compared c, const char *goal) {
  const char *vf = strcmp(unit, "us") == 0 ? "%.1f" : "%.0f";
  char bv[32], lv[32], by[48] = "", gl[48] = "";
  snprintf(bv, sizeof bv, vf, c.base);
  snprintf(lv, sizeof lv, vf, c.lib);
  if (bytes) snprintf(by, sizeof by, ",\"bytes\":%zu", bytes);
  if (goal) snprintf(gl, sizeof gl, ",\"goal\":\"%s\"", goal);
  if (base_impl)
    printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"%s\":%s%s,\"median_of\":%d}\n", bench, base_impl, unit, bv, by, n);
  printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"%s\":%s%s,\"median_of\":%d,\"ratio_to_raw\":%.3f,"
         "\"single_run_ratio_min\":%.3f,\"single_run_ratio_max\":%.3f%s}\n",
         bench, lib_impl, unit, lv, by, n, c.ratio, c.pair_min, c.pair_max, gl);
  fflush(stdout);
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

/* `n` bound pairs over one shared connection (RFC 4975 §5.4): sharing
 * active connectors to a sharing server. The server is returned to free
 * after the transports. */
static inline msrp_server *msrp_shared_pairs(msrp_context *ctx, int n, msrp_transport **active,
                                             msrp_transport **passive) {
  msrp_server *srv = NULL;
  must(msrp_server_new(ctx, false, NULL, &srv), "server");
  must(msrp_server_set_share_connections(srv, true), "share");
  for (int i = 0; i < n; i++) {
    msrp_connector *con = NULL;
    char *sp = NULL, *cp = NULL;
    waiter w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.m, NULL);
    pthread_cond_init(&w.c, NULL);
    must(msrp_server_prepare(srv, NULL, &sp), "server prepare");
    must(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con), "connector");
    must(msrp_connector_set_share_connection(con, true), "share");
    must(msrp_connector_prepare(con, NULL, &cp), "prepare");
    must(msrp_server_complete_async(srv, cp, 10000, on_complete, &w), "server complete");
    must(msrp_connector_complete(con, sp, 10000, &active[i]), "complete");
    pthread_mutex_lock(&w.m);
    while (!w.done) pthread_cond_wait(&w.c, &w.m);
    pthread_mutex_unlock(&w.m);
    must(w.r, "server complete");
    passive[i] = w.t;
    msrp_string_free(sp);
    msrp_string_free(cp);
    msrp_connector_free(con);
    pthread_mutex_destroy(&w.m);
    pthread_cond_destroy(&w.c);
  }
  return srv;
}

/* ---- session workloads shared by the session and relay benchmarks ---- */

/* A read callback for msrp_outgoing_file that hands out `*left` zero bytes. */
static inline size_t zero_reader(void *ud, uint8_t *buf, size_t len) {
  size_t *left = ud;
  (void)buf; /* libmsrp hands zeros or this message's earlier (zero) bytes: leave them */
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

/* Polls until `*v` reaches `want` or `max_s` seconds passed (for short
 * waits; a benchmark's main wait uses a bench_count). */
static inline void wait_until(atomic_ullong *v, unsigned long long want, double max_s) {
  double until = now_s() + max_s;
  const struct timespec pause = {0, 200000};
  while (atomic_load(v) < want && now_s() < until) nanosleep(&pause, NULL);
}

/* A count that callbacks raise and the main thread waits on without
 * polling: polling every 200 us woke the waiting thread thousands of times
 * a second, CPU taken from the two cores the measured transfer shares
 * and that the raw baselines (blocked in read) do not pay. Zeroed memory is
 * a count at 0 that nobody waits for. */
typedef struct {
  atomic_ullong v;
  atomic_ullong want; /* 0: nobody waits */
} bench_count;

static pthread_mutex_t bench_count_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bench_count_c = PTHREAD_COND_INITIALIZER;

static inline unsigned long long count_get(bench_count *c) { return atomic_load(&c->v); }

static inline void count_add(bench_count *c, unsigned long long n) {
  unsigned long long now = atomic_fetch_add(&c->v, n) + n;
  unsigned long long want = atomic_load(&c->want);
  if (want && now >= want && now - n < want) {
    pthread_mutex_lock(&bench_count_m);
    pthread_cond_broadcast(&bench_count_c);
    pthread_mutex_unlock(&bench_count_m);
  }
}

/* Waits until the count reaches `want` (> 0) or `max_s` seconds passed. */
static inline void count_wait(bench_count *c, unsigned long long want, double max_s) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)max_s;
  pthread_mutex_lock(&bench_count_m);
  atomic_store(&c->want, want);
  while (atomic_load(&c->v) < want)
    if (pthread_cond_timedwait(&bench_count_c, &bench_count_m, &until) != 0 && atomic_load(&c->v) < want) break;
  atomic_store(&c->want, 0);
  pthread_mutex_unlock(&bench_count_m);
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
