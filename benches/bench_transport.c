/* Transport benchmarks through the public C API, each next to a raw TCP
 * baseline run in the same process with the same buffer sizes:
 *  - connection setup: prepare + complete pairs per second (TCP connect +
 *    binding SEND + 200) vs plain TCP connect + accept;
 *  - bulk transfer: 64 KiB chunks through msrp_transport_write_chunk /
 *    msrp_transport_read_chunk vs 64 KiB write()/read() over loopback TCP.
 * Prints one JSON line per figure. Build in Release (see README). */
#define _POSIX_C_SOURCE 200809L
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

#include "msrp.h"

#define CHUNK (64 * 1024)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void must(msrp_result r, const char *what) {
  if (r != MSRP_RESULT_OK) {
    fprintf(stderr, "%s: %s (%s)\n", what, msrp_result_str(r), msrp_last_error_message());
    exit(1);
  }
}

/* ---- raw TCP ---- */

static int raw_listener(uint16_t *port) {
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

static int raw_connect(uint16_t port) {
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

static double raw_setup(int n) {
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

static void *raw_writer(void *p) {
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

static double raw_bulk(size_t total) {
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

static void on_complete(void *ud, msrp_result r, msrp_transport *t, const char *msg) {
  waiter *w = ud;
  (void)msg;
  pthread_mutex_lock(&w->m);
  w->r = r;
  w->t = t;
  w->done = 1;
  pthread_cond_signal(&w->c);
  pthread_mutex_unlock(&w->m);
}

static void msrp_pair(msrp_context *ctx, msrp_transport **active, msrp_transport **passive) {
  msrp_connector *acc = NULL, *con = NULL;
  char *ap = NULL, *cp = NULL;
  waiter w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.c, NULL);
  must(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc), "acceptor");
  must(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con), "connector");
  must(msrp_connector_prepare(acc, NULL, &ap), "prepare");
  must(msrp_connector_prepare(con, NULL, &cp), "prepare");
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

static double msrp_setup(msrp_context *ctx, int n) {
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    msrp_transport *a = NULL, *p = NULL;
    msrp_pair(ctx, &a, &p);
    msrp_transport_free(a);
    msrp_transport_free(p);
  }
  return n / (now_s() - t0);
}

typedef struct {
  msrp_transport *t;
  msrp_chunk *chunk;
  size_t count;
} msrp_writer_arg;

static void *msrp_writer(void *p) {
  msrp_writer_arg *w = p;
  for (size_t i = 0; i < w->count; i++) must(msrp_transport_write_chunk(w->t, w->chunk, 30000), "write_chunk");
  return NULL;
}

static double msrp_bulk(msrp_context *ctx, size_t total) {
  msrp_transport *a = NULL, *p = NULL;
  msrp_pair(ctx, &a, &p);
  uint8_t *data = calloc(1, CHUNK);
  msrp_chunk_params prm;
  memset(&prm, 0, sizeof prm);
  prm.data = data;
  prm.data_len = CHUNK;
  msrp_chunk *chunk = NULL;
  must(msrp_transport_make_chunk(a, &prm, &chunk), "make_chunk");
  must(msrp_chunk_set_content_type(chunk, "application/octet-stream"), "content type");
  msrp_writer_arg w = {a, chunk, total / CHUNK};
  pthread_t th;
  double t0 = now_s();
  pthread_create(&th, NULL, msrp_writer, &w);
  size_t got = 0;
  for (size_t i = 0; i < w.count; i++) {
    msrp_chunk *c = NULL;
    must(msrp_transport_read_chunk(p, SIZE_MAX, 30000, &c, NULL), "read_chunk");
    got += msrp_chunk_size(c);
    msrp_chunk_free(c);
  }
  double dt = now_s() - t0;
  pthread_join(th, NULL);
  msrp_chunk_free(chunk);
  free(data);
  msrp_transport_free(a);
  msrp_transport_free(p);
  return (double)got / dt / 1e6;
}

int main(int argc, char **argv) {
  int pairs = argc > 1 ? atoi(argv[1]) : 300;
  size_t mib = argc > 2 ? (size_t)atoi(argv[2]) : 512;
  size_t total = mib * 1024 * 1024;
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  o.worker_threads = 2;
  msrp_context *ctx = NULL;
  must(msrp_context_new(&o, &ctx), "context");

  /* warm-up */
  msrp_setup(ctx, 10);
  raw_setup(10);

  double rs = raw_setup(pairs), ms = msrp_setup(ctx, pairs);
  printf("{\"bench\":\"setup\",\"impl\":\"raw_tcp_connect_accept\",\"pairs_per_s\":%.0f}\n", rs);
  printf("{\"bench\":\"setup\",\"impl\":\"libmsrp_prepare_complete\",\"pairs_per_s\":%.0f,\"ratio_to_raw\":%.3f}\n", ms, ms / rs);
  double rb = raw_bulk(total), mb = msrp_bulk(ctx, total);
  printf("{\"bench\":\"bulk_64KiB\",\"impl\":\"raw_tcp\",\"MB_per_s\":%.0f,\"bytes\":%zu}\n", rb, total);
  printf("{\"bench\":\"bulk_64KiB\",\"impl\":\"libmsrp_transport\",\"MB_per_s\":%.0f,\"bytes\":%zu,\"ratio_to_raw\":%.3f}\n", mb, total, mb / rb);
  msrp_context_free(ctx);
  return 0;
}
