/* Relay benchmark through the public C API: the same session workloads
 * direct and through a real Kamailio relay (started here on loopback, as
 * the relay tests do), in one run:
 *  - bulk A->B (send_file from a read callback, streaming receiver; 64 KiB
 *    chunks direct, 8 KiB through the relay);
 *  - 100-byte messages, SEND and 200 OK, with a window of 32.
 * Prints one JSON line per figure. Build in Release (see docs/performance.md). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "bench_common.h"
#include "relay.h"

typedef struct {
  session_owner owner; /* first: see free_session */
  bench_count bytes;
  bench_count messages;
} counters;

static void on_chunk(void *ud, msrp_chunk *c) {
  counters *k = ud;
  count_add(&k->bytes, msrp_chunk_size(c));
  msrp_chunk_free(c);
}

static void on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  counters *k = ud;
  (void)head;
  (void)data;
  count_add(&k->bytes, len);
  count_add(&k->messages, 1);
}

static void relay_pair(msrp_context *ctx, int port, msrp_transport **ta, msrp_transport **tb) {
  msrp_relay_settings s = msrp_relay_settings_default();
  s.domain = "relay.test";
  s.password = "secret";
  s.host = "127.0.0.1";
  s.port = (uint16_t)port;
  msrp_connector *ca = NULL, *cb = NULL;
  s.username = "alice";
  must(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &s, &ca), "relay a");
  s.username = "bob";
  must(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &s, &cb), "relay b");
  char *pa = NULL, *pb = NULL;
  must(msrp_connector_prepare(ca, NULL, &pa), "prepare a");
  must(msrp_connector_prepare(cb, NULL, &pb), "prepare b");
  waiter w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.c, NULL);
  must(msrp_connector_complete_async(cb, pa, 10000, on_complete, &w), "complete b");
  must(msrp_connector_complete(ca, pb, 10000, ta), "complete a");
  pthread_mutex_lock(&w.m);
  while (!w.done) pthread_cond_wait(&w.c, &w.m);
  pthread_mutex_unlock(&w.m);
  must(w.r, "relay bind");
  *tb = w.t;
  msrp_string_free(pa);
  msrp_string_free(pb);
  msrp_connector_free(ca);
  msrp_connector_free(cb);
}

static void sessions(msrp_context *ctx, int relay_port, const msrp_session_options *oa,
                     const msrp_session_options *ob, counters *kb, msrp_session **a, msrp_session **b) {
  msrp_transport *ta = NULL, *tb = NULL;
  if (relay_port) relay_pair(ctx, relay_port, &ta, &tb);
  else msrp_pair(ctx, &ta, &tb);
  msrp_session_callbacks cbs = {.on_message = on_message, .on_chunk = on_chunk};
  must(msrp_session_new(ta, oa, &cbs, NULL, NULL, a), "session a");
  must(msrp_session_new(tb, ob, &cbs, kb, session_owner_release, b), "session b");
}

static double bulk(msrp_context *ctx, int relay_port, size_t total) {
  msrp_session_options ob = msrp_session_options_default();
  ob.streaming = true;
  counters kb;
  memset(&kb, 0, sizeof kb);
  msrp_session *a = NULL, *b = NULL;
  sessions(ctx, relay_port, NULL, &ob, &kb, &a, &b);
  size_t left;
  double t0 = now_s();
  send_zeros(a, total, &left, NULL, NULL);
  count_wait(&kb.bytes, total, 300);
  double dt = now_s() - t0;
  if (count_get(&kb.bytes) != total)
    fprintf(stderr, "bulk: only %llu of %zu bytes arrived\n", (unsigned long long)count_get(&kb.bytes), total);
  msrp_session_free(a);
  free_session(b, &kb.owner);
  return (double)total / dt / 1e6;
}

static double small_messages(msrp_context *ctx, int relay_port, int n) {
  msrp_session_options oa = msrp_session_options_default();
  oa.window = 32;
  counters kb;
  memset(&kb, 0, sizeof kb);
  msrp_session *a = NULL, *b = NULL;
  sessions(ctx, relay_port, &oa, NULL, &kb, &a, &b);
  uint8_t body[100];
  memset(body, 'm', sizeof body);
  double t0 = now_s();
  for (int i = 0; i < n; i++)
    must(msrp_session_send_message(a, body, sizeof body, "text/plain", NULL, NULL, NULL, NULL), "send_message");
  count_wait(&kb.messages, (unsigned long long)n, 300);
  double dt = now_s() - t0;
  if (count_get(&kb.messages) != (unsigned long long)n)
    fprintf(stderr, "messages: only %llu of %d arrived\n", (unsigned long long)count_get(&kb.messages), n);
  msrp_session_free(a);
  free_session(b, &kb.owner);
  return n / dt;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
  int n = argc > 2 ? atoi(argv[2]) : 50000;
  size_t total = mib * 1024 * 1024;
  test_relay relay;
  if (relay_start(&relay, 60, 3600) != 0) {
    fprintf(stderr, "bench_relay: kamailio did not start\n");
    return 1;
  }
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  o.worker_threads = 2;
  msrp_context *ctx = NULL;
  must(msrp_context_new(&o, &ctx), "context");
  double bd = bulk(ctx, 0, total), br = bulk(ctx, relay.port, total);
  printf("{\"bench\":\"relay_bulk\",\"impl\":\"libmsrp_direct\",\"MB_per_s\":%.0f,\"bytes\":%zu}\n", bd, total);
  printf("{\"bench\":\"relay_bulk\",\"impl\":\"libmsrp_via_kamailio\",\"MB_per_s\":%.0f,\"bytes\":%zu,\"ratio_to_direct\":%.3f}\n", br, total, br / bd);
  double md = small_messages(ctx, 0, n), mr = small_messages(ctx, relay.port, n);
  printf("{\"bench\":\"relay_messages_100B\",\"impl\":\"libmsrp_direct\",\"messages_per_s\":%.0f,\"count\":%d}\n", md, n);
  printf("{\"bench\":\"relay_messages_100B\",\"impl\":\"libmsrp_via_kamailio\",\"messages_per_s\":%.0f,\"count\":%d,\"ratio_to_direct\":%.3f}\n", mr, n, mr / md);
  msrp_context_free(ctx);
  relay_stop(&relay, false);
  return 0;
}
