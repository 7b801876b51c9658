/* Transport benchmarks through the public C API, each next to a raw TCP
 * baseline run in the same process with the same buffer sizes:
 *  - connection setup: prepare + complete pairs per second (TCP connect +
 *    binding SEND + 200) vs plain TCP connect + accept, and (context) vs
 *    a new listener, connect + accept, a 300-byte request and a 100-byte
 *    answer;
 *  - bulk transfer: 64 KiB chunks through msrp_transport_write_chunk /
 *    msrp_transport_read_chunk vs 64 KiB write()/read() over loopback TCP;
 *  - the same bulk transfer over msrps (TLS 1.3, self-signed certificates
 *    checked by fingerprint) vs the same raw TCP baseline;
 *  - both bulk transfers also with the reading thread reading the
 *    connection itself (msrp_transport_read_directly);
 *  - memory of quiet connections: per connection right after setup, and
 *    per pair after each pair carried one 1 MiB chunk and went quiet.
 * Prints one JSON line per figure; figures with a baseline are medians of
 * alternating runs (MSRP_BENCH_RUNS, see bench_common.h). Build in Release
 * (see docs/performance.md). */
#define _POSIX_C_SOURCE 200809L
#include "bench_common.h"

/* ---- libmsrp ---- */

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

/* Context for connection setup: what a pair of connectors must do at
 * least, on one thread and with no framing at all: a listening socket of
 * its own for the acceptor (as msrp_connector_prepare makes), connect +
 * accept, the exchange a binding is (a 300-byte request from the
 * connecting side, a 100-byte answer back), and closing all three. */
static void raw_full(int fd, char *buf, size_t len, bool rd) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = rd ? read(fd, buf + done, len - done) : write(fd, buf + done, len - done);
    if (n <= 0) {
      perror("raw exchange");
      exit(1);
    }
    done += (size_t)n;
  }
}

static double raw_setup_exchange(int n) {
  char req[300], resp[100];
  memset(req, 'q', sizeof req);
  memset(resp, 'r', sizeof resp);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    uint16_t port = 0;
    int l = raw_listener(&port);
    int c = raw_connect(port);
    int a = accept(l, NULL, NULL);
    raw_full(c, req, sizeof req, false);
    raw_full(a, req, sizeof req, true);
    raw_full(a, resp, sizeof resp, false);
    raw_full(c, resp, sizeof resp, true);
    close(c);
    close(a);
    close(l);
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

/* With `direct`, the reading thread reads the connection itself
 * (msrp_transport_read_directly) instead of libmsrp's reader task. */
static double msrp_bulk(msrp_context *ctx, size_t total, const msrp_tls *ta, const msrp_tls *tc, bool direct) {
  msrp_transport *a = NULL, *p = NULL;
  msrp_pair_with(ctx, ta, tc, &a, &p);
  if (direct) must(msrp_transport_read_directly(p, 10000), "read_directly");
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

/* Resident memory of `n` connection pairs, idle and after a transfer. */
static void quiet_memory(msrp_context *ctx, int n) {
  const size_t body = 1024 * 1024;
  long before = rss_kib();
  msrp_transport **ts = calloc(2 * (size_t)n, sizeof *ts);
  for (int i = 0; i < n; i++) msrp_pair(ctx, &ts[2 * i], &ts[2 * i + 1]);
  usleep(200000);
  long idle = rss_kib();
  uint8_t *data = calloc(1, body);
  for (int i = 0; i < n; i++) {
    msrp_chunk_params prm;
    memset(&prm, 0, sizeof prm);
    prm.data = data;
    prm.data_len = body;
    msrp_chunk *c = NULL, *r = NULL;
    must(msrp_transport_make_chunk(ts[2 * i], &prm, &c), "make_chunk");
    must(msrp_transport_write_chunk(ts[2 * i], c, 30000), "write_chunk");
    msrp_chunk_free(c);
    must(msrp_transport_read_chunk(ts[2 * i + 1], SIZE_MAX, 30000, &r, NULL), "read_chunk");
    msrp_chunk_free(r);
  }
  usleep(200000);
  long after = rss_kib();
  printf("{\"bench\":\"quiet_connections\",\"impl\":\"libmsrp_transport\",\"pairs\":%d,\"KiB_per_idle_connection\":%.1f,\"KiB_per_pair_after_1MiB\":%.1f}\n", n,
         (double)(idle - before) / (2 * n), (double)(after - idle) / n);
  for (int i = 0; i < 2 * n; i++) msrp_transport_free(ts[i]);
  free(ts);
  free(data);
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

  int runs = bench_runs();
  double base[BENCH_MAX_RUNS], lib[BENCH_MAX_RUNS], exch[BENCH_MAX_RUNS];
  for (int i = 0; i < runs; i++) {
    base[i] = raw_setup(pairs);
    exch[i] = raw_setup_exchange(pairs);
    lib[i] = msrp_setup(ctx, pairs);
  }
  print_compared("setup", "raw_tcp_connect_accept", "libmsrp_prepare_complete", "pairs_per_s", 0, runs,
                 compare_runs(base, lib, runs), ">=0.5");
  print_compared("setup_context", "raw_tcp_listen_connect_accept_300B_request_100B_answer", "libmsrp_prepare_complete",
                 "pairs_per_s", 0, runs, compare_runs(exch, lib, runs), NULL);
  /* The raw baseline swings between runs on a shared machine: alternate
   * raw and libmsrp run by run and compare the medians (see bench_runs). */
  double dir[BENCH_MAX_RUNS];
  for (int i = 0; i < runs; i++) {
    base[i] = raw_bulk(total);
    lib[i] = msrp_bulk(ctx, total, NULL, NULL, false);
    dir[i] = msrp_bulk(ctx, total, NULL, NULL, true);
  }
  print_compared("bulk_64KiB", "raw_tcp", "libmsrp_transport", "MB_per_s", total, runs, compare_runs(base, lib, runs), NULL);
  print_compared("bulk_64KiB", NULL, "libmsrp_transport_read_directly", "MB_per_s", total, runs,
                 compare_runs(base, dir, runs), NULL);
  msrp_tls *ta = NULL, *tc = NULL;
  must(msrp_tls_new(&ta), "tls");
  must(msrp_tls_new(&tc), "tls");
  must(msrp_tls_generate_self_signed(ta, "acceptor.invalid"), "certificate");
  must(msrp_tls_generate_self_signed(tc, "connector.invalid"), "certificate");
  for (int i = 0; i < runs; i++) {
    base[i] = raw_bulk(total);
    lib[i] = msrp_bulk(ctx, total, ta, tc, false);
    dir[i] = msrp_bulk(ctx, total, ta, tc, true);
  }
  print_compared("bulk_64KiB_tls", "raw_tcp", "libmsrp_transport_tls", "MB_per_s", total, runs,
                 compare_runs(base, lib, runs), ">=0.4");
  print_compared("bulk_64KiB_tls", NULL, "libmsrp_transport_tls_read_directly", "MB_per_s", total, runs,
                 compare_runs(base, dir, runs), ">=0.4");
  msrp_tls_free(ta);
  msrp_tls_free(tc);
  quiet_memory(ctx, 200);
  msrp_context_free(ctx);
  return 0;
}
