/* Session benchmarks through the public C API, each next to a raw TCP
 * baseline in the same process where there is one:
 *  - bulk A->B through the session API (send_file from a read callback,
 *    streaming receiver) vs 64 KiB write()/read() over loopback TCP, over
 *    msrp and over msrps (TLS 1.3);
 *  - 100-byte messages, SEND and 200 OK, with a window: messages per second;
 *  - stop-and-wait round trip (deliver_chunk) vs a raw TCP ping-pong;
 *  - peak memory above the idle process while 1 GB goes to a slow reader.
 * Prints one JSON line per figure; figures with a baseline are medians of
 * alternating runs (MSRP_BENCH_RUNS, see bench_common.h). Build in Release
 * (see docs/performance.md). */
#define _POSIX_C_SOURCE 200809L
#include "bench_common.h"


typedef struct {
  session_owner owner; /* first: see free_session */
  bench_count bytes;
  bench_count messages;
  atomic_int done;
  uint16_t code;
  useconds_t slow_us;
} counters;

static void c_on_chunk(void *ud, msrp_chunk *c) {
  counters *k = ud;
  count_add(&k->bytes, msrp_chunk_size(c));
  if (k->slow_us) usleep(k->slow_us);
  msrp_chunk_free(c);
}

static void c_on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  counters *k = ud;
  (void)head;
  (void)data;
  count_add(&k->bytes, len);
  count_add(&k->messages, 1);
}

static void c_done(void *ud, uint64_t msg, const char *mid, uint16_t code, const char *comment) {
  (void)mid;
  counters *k = ud;
  (void)msg;
  (void)comment;
  k->code = code;
  atomic_fetch_add(&k->done, 1);
}

static void sessions_with(msrp_context *ctx, const msrp_tls *tls_a, const msrp_tls *tls_b,
                          const msrp_session_options *oa, const msrp_session_options *ob, counters *ka, counters *kb,
                          msrp_session **a, msrp_session **b) {
  msrp_transport *ta = NULL, *tb = NULL;
  msrp_pair_with(ctx, tls_b, tls_a, &ta, &tb);
  msrp_session_callbacks ca = {.on_message = c_on_message, .on_chunk = c_on_chunk};
  must(msrp_session_new(ta, oa, &ca, ka, session_owner_release, a), "session a");
  must(msrp_session_new(tb, ob, &ca, kb, session_owner_release, b), "session b");
}

static void sessions(msrp_context *ctx, const msrp_session_options *oa, const msrp_session_options *ob,
                     counters *ka, counters *kb, msrp_session **a, msrp_session **b) {
  sessions_with(ctx, NULL, NULL, oa, ob, ka, kb, a, b);
}

/* Bulk A->B through sessions; over msrps when `tls_a` and `tls_b` are given. */
static double msrp_bulk_session(msrp_context *ctx, size_t total, const msrp_tls *tls_a, const msrp_tls *tls_b) {
  msrp_session_options ob = msrp_session_options_default();
  ob.streaming = true;
  counters ka, kb;
  memset(&ka, 0, sizeof ka);
  memset(&kb, 0, sizeof kb);
  msrp_session *a = NULL, *b = NULL;
  sessions_with(ctx, tls_a, tls_b, NULL, &ob, &ka, &kb, &a, &b);
  size_t left;
  msrp_message_callbacks mc = {.on_done = c_done};
  double t0 = now_s();
  send_zeros(a, total, &left, &mc, &ka);
  count_wait(&kb.bytes, total, 120);
  double dt = now_s() - t0;
  if (count_get(&kb.bytes) != total) fprintf(stderr, "bulk: only %llu bytes arrived\n", (unsigned long long)count_get(&kb.bytes));
  free_session(a, &ka.owner);
  free_session(b, &kb.owner);
  return (double)total / dt / 1e6;
}

static double msrp_small_messages(msrp_context *ctx, int n) {
  msrp_session_options oa = msrp_session_options_default();
  oa.window = 256;
  counters ka, kb;
  memset(&ka, 0, sizeof ka);
  memset(&kb, 0, sizeof kb);
  msrp_session *a = NULL, *b = NULL;
  sessions(ctx, &oa, NULL, &ka, &kb, &a, &b);
  uint8_t body[100];
  memset(body, 'm', sizeof body);
  double t0 = now_s();
  for (int i = 0; i < n; i++)
    must(msrp_session_send_message(a, body, sizeof body, "text/plain", NULL, NULL, NULL, NULL), "send_message");
  count_wait(&kb.messages, (unsigned long long)n, 120);
  double dt = now_s() - t0;
  free_session(a, &ka.owner);
  free_session(b, &kb.owner);
  return n / dt;
}

static double msrp_rtt_us(msrp_context *ctx, int n) {
  counters ka, kb;
  memset(&ka, 0, sizeof ka);
  memset(&kb, 0, sizeof kb);
  msrp_session *a = NULL, *b = NULL;
  sessions(ctx, NULL, NULL, &ka, &kb, &a, &b);
  uint8_t body[100];
  memset(body, 'p', sizeof body);
  msrp_chunk_params p;
  memset(&p, 0, sizeof p);
  p.data = body;
  p.data_len = sizeof body;
  msrp_chunk *c = NULL;
  must(msrp_session_make_chunk(a, &p, &c), "make_chunk");
  must(msrp_chunk_set_content_type(c, "text/plain"), "content type");
  for (int i = 0; i < 100; i++) must(msrp_session_deliver_chunk(a, c, 5000, NULL), "warm-up");
  double t0 = now_s();
  for (int i = 0; i < n; i++) must(msrp_session_deliver_chunk(a, c, 5000, NULL), "deliver_chunk");
  double dt = now_s() - t0;
  msrp_chunk_free(c);
  free_session(a, &ka.owner);
  free_session(b, &kb.owner);
  return dt / n * 1e6;
}

typedef struct {
  int fd;
  int n;
} pong_arg;

static void *raw_ponger(void *p) {
  pong_arg *a = p;
  char buf[100], resp[60];
  memset(resp, 'r', sizeof resp);
  for (int i = 0; i < a->n; i++) {
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t r = read(a->fd, buf + got, sizeof buf - got);
      if (r <= 0) return NULL;
      got += (size_t)r;
    }
    if (write(a->fd, resp, sizeof resp) != (ssize_t)sizeof resp) return NULL;
  }
  return NULL;
}

static double raw_rtt_us(int n) {
  uint16_t port = 0;
  int l = raw_listener(&port);
  int c = raw_connect(port);
  int s = accept(l, NULL, NULL);
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pong_arg pa = {s, n + 100};
  pthread_t th;
  pthread_create(&th, NULL, raw_ponger, &pa);
  char req[100], resp[60];
  memset(req, 'q', sizeof req);
  double t0 = 0;
  for (int i = 0; i < n + 100; i++) {
    if (i == 100) t0 = now_s();
    if (write(c, req, sizeof req) != (ssize_t)sizeof req) break;
    size_t got = 0;
    while (got < sizeof resp) {
      ssize_t r = read(c, resp + got, sizeof resp - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
  }
  double dt = now_s() - t0;
  pthread_join(th, NULL);
  close(c);
  close(s);
  close(l);
  return dt / n * 1e6;
}

typedef struct {
  atomic_int stop;
  long peak;
} sampler;

static void *sample_rss(void *p) {
  sampler *s = p;
  while (!atomic_load(&s->stop)) {
    long v = rss_kib();
    if (v > s->peak) s->peak = v;
    usleep(2000);
  }
  return NULL;
}

/* Peak resident memory above the idle process (sessions bound, nothing sent
 * yet) while `total` bytes go to a reader that takes `slow_us` per 64 KiB
 * chunk. Counts both ends, since both live in this process. */
static double msrp_slow_reader_peak_mib(msrp_context *ctx, size_t total, useconds_t slow_us, double *mbps) {
  msrp_session_options ob = msrp_session_options_default();
  ob.streaming = true;
  counters ka, kb;
  memset(&ka, 0, sizeof ka);
  memset(&kb, 0, sizeof kb);
  kb.slow_us = slow_us;
  msrp_session *a = NULL, *b = NULL;
  sessions(ctx, NULL, &ob, &ka, &kb, &a, &b);
  usleep(100000);
  long idle = rss_kib();
  sampler smp;
  atomic_init(&smp.stop, 0);
  smp.peak = idle;
  pthread_t th;
  pthread_create(&th, NULL, sample_rss, &smp);
  size_t left;
  double t0 = now_s();
  send_zeros(a, total, &left, NULL, NULL);
  count_wait(&kb.bytes, total, 600);
  *mbps = (double)count_get(&kb.bytes) / (now_s() - t0) / 1e6;
  atomic_store(&smp.stop, 1);
  pthread_join(th, NULL);
  free_session(a, &ka.owner);
  free_session(b, &kb.owner);
  return (double)(smp.peak - idle) / 1024.0;
}

/* Bulk runs alternating with their raw baseline (over msrps when `tls_a`
 * and `tls_b` are given), compared by their medians. */
static void bulk_series(msrp_context *ctx, size_t total, int runs, const msrp_tls *tls_a, const msrp_tls *tls_b) {
  double base[BENCH_MAX_RUNS], lib[BENCH_MAX_RUNS];
  for (int i = 0; i < runs; i++) {
    base[i] = raw_bulk(total);
    lib[i] = msrp_bulk_session(ctx, total, tls_a, tls_b);
  }
  bool tls = tls_a != NULL;
  print_compared(tls ? "session_bulk_tls" : "session_bulk", "raw_tcp_64KiB",
                 tls ? "libmsrp_session_msrps" : "libmsrp_session", "MB_per_s", total, runs,
                 compare_runs(base, lib, runs), tls ? ">=0.4" : ">=0.85");
}

/* MSRP_BENCH_ONLY=bulk|tls|small|rtt runs that part alone (for profiling
 * one figure); unset, all of them run. */
static bool wanted(const char *part) {
  const char *only = getenv("MSRP_BENCH_ONLY");
  return only == NULL || strcmp(only, part) == 0;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 1024;
  int small = argc > 2 ? atoi(argv[2]) : 200000;
  int pings = argc > 3 ? atoi(argv[3]) : 5000;
  size_t total = mib * 1024 * 1024;
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  const char *workers = getenv("MSRP_BENCH_WORKERS");
  o.worker_threads = workers ? (uint32_t)atoi(workers) : 2;
  msrp_context *ctx = NULL;
  must(msrp_context_new(&o, &ctx), "context");
  printf("{\"bench\":\"setup\",\"worker_threads\":%u}\n", o.worker_threads);

  /* Memory first, while the process is fresh (later runs leave freed heap behind). */
  double slow_mbps = 0;
  double peak = getenv("MSRP_BENCH_ONLY") ? 0 : msrp_slow_reader_peak_mib(ctx, total, 300, &slow_mbps);
  if (!getenv("MSRP_BENCH_ONLY")) printf("{\"bench\":\"slow_reader_memory\",\"impl\":\"libmsrp_session\",\"bytes\":%zu,\"reader_MB_per_s\":%.0f,\"peak_MiB_above_idle\":%.1f,\"goal\":\"<=8\"}\n", total, slow_mbps, peak);
  if (argc > 4 && strcmp(argv[4], "memory") == 0) {
    msrp_context_free(ctx);
    return 0;
  }
  /* Bulk and round trip alternate with their raw baselines run by run
   * (see bench_runs); the medians are compared. */
  int runs = bench_runs();
  double base[BENCH_MAX_RUNS], lib[BENCH_MAX_RUNS];
  if (wanted("bulk")) bulk_series(ctx, total, runs, NULL, NULL);
  /* The same bulk transfer over msrps (TLS 1.3, self-signed certificates
   * checked by fingerprint), against its own raw baseline runs. */
  msrp_tls *tls_a = NULL, *tls_b = NULL;
  must(msrp_tls_new(&tls_a), "tls");
  must(msrp_tls_new(&tls_b), "tls");
  must(msrp_tls_generate_self_signed(tls_a, "a.invalid"), "certificate");
  must(msrp_tls_generate_self_signed(tls_b, "b.invalid"), "certificate");
  if (wanted("tls")) bulk_series(ctx, total, runs, tls_a, tls_b);
  msrp_tls_free(tls_a);
  msrp_tls_free(tls_b);
  if (wanted("small")) {
    for (int i = 0; i < runs; i++) lib[i] = msrp_small_messages(ctx, small);
    bench_stats sm = stats_of(lib, runs);
    printf("{\"bench\":\"small_messages_100B\",\"impl\":\"libmsrp_session\",\"messages_per_s\":%.0f,\"count\":%d,"
           "\"median_of\":%d,\"single_run_min\":%.0f,\"single_run_max\":%.0f,\"goal\":\">=250000\"}\n",
           sm.median, small, runs, sm.min, sm.max);
  }
  if (wanted("rtt")) {
    for (int i = 0; i < runs; i++) {
      base[i] = raw_rtt_us(pings);
      lib[i] = msrp_rtt_us(ctx, pings);
    }
    print_compared("round_trip", "raw_tcp_ping_pong", "libmsrp_deliver_chunk", "us", 0, runs,
                   compare_runs(base, lib, runs), "<=2");
  }
  msrp_context_free(ctx);
  return 0;
}
