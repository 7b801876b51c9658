/* What users feel during a file transfer (issue 24): the latency of chat
 * messages sent once every 10 ms while a large file flows on the same
 * session — p50, p99 and the largest, from msrp_session_send_message to the
 * peer's on_message — with the bulk rate beside it, compared with raw TCP
 * bulk in the same run (alternating, medians; see bench_common.h).
 *
 * Usage: msrp_bench_chat_latency [MiB of the file, default 1024]
 * (MSRP_BENCH_RUNS runs each, default 11; MSRP_BENCH_CHUNK sets the sender's
 * chunk_size; MSRP_BENCH_SHARED=1 sends the chat on a second session that
 * shares the file's connection, RFC 4975 §5.4). Not a test: figures go to
 * docs/performance.md with the command. */
#include "bench_common.h"

#define MAX_LAT 200000

typedef struct {
  pthread_mutex_t m;
  double lat[MAX_LAT];
  int n;
  atomic_ullong bulk; /* bytes of the file received */
} receiver;

static int32_t discard(void *ud, uint64_t offset, const uint8_t *data, size_t len) {
  receiver *r = ud;
  (void)offset;
  (void)data;
  atomic_fetch_add(&r->bulk, len);
  return 0;
}

static void on_start(void *ud, const msrp_chunk *head, const char *mid, uint64_t total, msrp_incoming *in) {
  (void)head;
  (void)mid;
  (void)total;
  must(msrp_incoming_to_callback(in, discard, ud), "to_callback");
}

/* A chat message carries its send time (seconds, monotonic clock). */
static void on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  receiver *r = ud;
  (void)head;
  char buf[64];
  size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
  memcpy(buf, data, n);
  buf[n] = 0;
  double sent = atof(buf);
  double l = now_s() - sent;
  pthread_mutex_lock(&r->m);
  if (r->n < MAX_LAT) r->lat[r->n++] = l;
  pthread_mutex_unlock(&r->m);
}

static double pct(double *v, int n, double p) {
  if (n == 0) return 0;
  int i = (int)(p * (n - 1) + 0.5);
  return v[i];
}

typedef struct {
  double mbps, p50_ms, p99_ms, max_ms;
  int chats;
} run_result;

static run_result one_run(msrp_context *ctx, size_t total, int shared) {
  msrp_transport *ta = NULL, *tb = NULL, *ts[2] = {NULL, NULL}, *tp[2] = {NULL, NULL};
  msrp_server *srv = NULL;
  if (shared) {
    srv = msrp_shared_pairs(ctx, 2, ts, tp);
    ta = ts[0];
    tb = tp[0];
  } else {
    msrp_pair(ctx, &ta, &tb);
  }
  static receiver r;
  pthread_mutex_init(&r.m, NULL);
  r.n = 0;
  atomic_store(&r.bulk, 0);
  msrp_session_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_message = on_message;
  cb.on_message_start = on_start;
  msrp_session_options ob = msrp_session_options_default();
  ob.max_message_size = (uint64_t)total + 1;
  msrp_session *a = NULL, *b = NULL;
  /* MSRP_BENCH_CHUNK: the sender's chunk_size (default: the library's). */
  msrp_session_options oa = msrp_session_options_default();
  const char *cs = getenv("MSRP_BENCH_CHUNK");
  if (cs) oa.chunk_size = (size_t)atol(cs);
  must(msrp_session_new(ta, &oa, NULL, NULL, NULL, &a), "session a");
  must(msrp_session_new(tb, &ob, &cb, &r, NULL, &b), "session b");
  /* The chat's session: the file's own, or another on its connection. */
  msrp_session *chat_a = a, *chat_b = NULL;
  if (shared) {
    must(msrp_session_new(ts[1], NULL, NULL, NULL, NULL, &chat_a), "chat session a");
    must(msrp_session_new(tp[1], &ob, &cb, &r, NULL, &chat_b), "chat session b");
  }
  size_t left;
  double t0 = now_s();
  send_zeros(a, total, &left, NULL, NULL);
  int chats = 0;
  const struct timespec tick = {0, 10 * 1000000L};
  while (atomic_load(&r.bulk) < total && now_s() - t0 < 600) {
    nanosleep(&tick, NULL);
    char text[64];
    int n = snprintf(text, sizeof text, "%.9f", now_s());
    must(msrp_session_send_message(chat_a, (const uint8_t *)text, (size_t)n, "text/plain", NULL, NULL, NULL, NULL),
         "chat");
    chats++;
  }
  double secs = now_s() - t0;
  /* The last chat lines arrive after the file's last byte. */
  for (int i = 0; i < 200; i++) {
    pthread_mutex_lock(&r.m);
    int got = r.n;
    pthread_mutex_unlock(&r.m);
    if (got >= chats) break;
    nanosleep(&tick, NULL);
  }
  run_result out;
  out.mbps = (double)atomic_load(&r.bulk) / secs / 1e6;
  pthread_mutex_lock(&r.m);
  qsort(r.lat, (size_t)r.n, sizeof r.lat[0], bench_cmp_double);
  out.p50_ms = pct(r.lat, r.n, 0.50) * 1e3;
  out.p99_ms = pct(r.lat, r.n, 0.99) * 1e3;
  out.max_ms = r.n ? r.lat[r.n - 1] * 1e3 : 0;
  out.chats = r.n;
  pthread_mutex_unlock(&r.m);
  if (shared) {
    msrp_session_free(chat_a);
    msrp_session_free(chat_b);
  }
  msrp_session_free(a);
  msrp_session_free(b);
  if (srv) msrp_server_free(srv);
  pthread_mutex_destroy(&r.m);
  return out;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 1024;
  size_t total = mib * 1024 * 1024;
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  o.worker_threads = 2;
  msrp_context *ctx = NULL;
  must(msrp_context_new(&o, &ctx), "context");
  int runs = bench_runs();
  int shared = getenv("MSRP_BENCH_SHARED") != NULL && atoi(getenv("MSRP_BENCH_SHARED")) != 0;
  double base[BENCH_MAX_RUNS], lib[BENCH_MAX_RUNS], p50[BENCH_MAX_RUNS], p99[BENCH_MAX_RUNS], mx[BENCH_MAX_RUNS];
  for (int i = 0; i < runs; i++) {
    base[i] = raw_bulk(total);
    run_result rr = one_run(ctx, total, shared);
    lib[i] = rr.mbps;
    p50[i] = rr.p50_ms;
    p99[i] = rr.p99_ms;
    mx[i] = rr.max_ms;
    printf("{\"bench\":\"chat_latency_run\",\"run\":%d,\"bulk_MB_per_s\":%.0f,\"raw_MB_per_s\":%.0f,\"chats\":%d,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
           i, rr.mbps, base[i], rr.chats, rr.p50_ms, rr.p99_ms, rr.max_ms);
    fflush(stdout);
  }
  bench_stats s50 = stats_of(p50, runs), s99 = stats_of(p99, runs), smx = stats_of(mx, runs);
  printf("{\"bench\":\"chat_latency_under_bulk%s\",\"bytes\":%zu,\"runs\":%d,\"p50_ms_median\":%.3f,"
         "\"p99_ms_median\":%.3f,\"p99_ms_range\":[%.3f,%.3f],\"max_ms_median\":%.3f,\"goal\":\"p99<=2ms\"}\n",
         shared ? "_shared_connection" : "", total, runs, s50.median, s99.median, s99.min, s99.max, smx.median);
  print_compared("bulk_during_chat", "raw_tcp_64KiB", "libmsrp_session", "MB_per_s", total, runs,
                 compare_runs(base, lib, runs), ">=0.95");
  msrp_context_free(ctx);
  return 0;
}
