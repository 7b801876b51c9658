/* Relay connections through the public header, against a real Kamailio
 * relay on loopback: A (active) and B (passive) bound through the relay
 * with sessions, a 5 MB message with a success REPORT coming back through
 * the relay, prepare in its callback form, and a wrong password. */
#include <fcntl.h>
#include <sys/stat.h>

#include "net.h"
#include "relay.h"

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int messages, reports;
  uint8_t *last;
  size_t last_len;
  uint16_t report_status;
  char report_range[64];
} box;

static void on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  box *b = ud;
  (void)head;
  pthread_mutex_lock(&b->m);
  free(b->last);
  b->last = malloc(len ? len : 1);
  if (len) memcpy(b->last, data, len);
  b->last_len = len;
  b->messages++;
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
}

static void on_report(void *ud, msrp_chunk *r) {
  box *b = ud;
  char *range = NULL;
  pthread_mutex_lock(&b->m);
  msrp_chunk_status(r, &b->report_status, NULL);
  msrp_chunk_header(r, "Byte-Range", &range);
  snprintf(b->report_range, sizeof b->report_range, "%s", range ? range : "");
  b->reports++;
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
  msrp_string_free(range);
  msrp_chunk_free(r);
}

static int wait_count(box *b, const int *field, int n, int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  pthread_mutex_lock(&b->m);
  int rc = 0;
  while (*field < n && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&b->c, &b->m, &ts);
  int ok = *field >= n;
  pthread_mutex_unlock(&b->m);
  return ok;
}

static msrp_relay_settings relay_settings(const test_relay *r, const char *user, const char *password) {
  msrp_relay_settings s = msrp_relay_settings_default();
  s.domain = "relay.test";
  s.username = user;
  s.password = password;
  s.host = "127.0.0.1";
  s.port = (uint16_t)r->port;
  return s;
}

typedef struct {
  completion done;
  char path[1024];
} prepared;

static void on_prepared(void *ud, msrp_result r, const char *path, const char *msg) {
  prepared *p = ud;
  snprintf(p->path, sizeof p->path, "%s", path ? path : "");
  completion_set(&p->done, r, msg);
}

static void test_sessions_through_relay(const test_relay *relay) {
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  o.worker_threads = 2;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&o, &ctx));
  msrp_relay_settings sa = relay_settings(relay, "alice", "secret");
  msrp_relay_settings sb = relay_settings(relay, "bob", "secret");
  msrp_connector *ca = NULL, *cb = NULL;
  CHECK_OK(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &sa, &ca));
  CHECK_OK(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &sb, &cb));
  /* Relay connectors take TLS in their settings, not per connector. */
  CHECK_RES(msrp_connector_set_peer_fingerprint(ca, NULL), MSRP_RESULT_WRONG_KIND);
  char *pa = NULL;
  CHECK_OK(msrp_connector_prepare(ca, NULL, &pa));
  /* The path for SDP: the relay's Use-Path first, then our own URI. */
  char want[64];
  snprintf(want, sizeof want, "msrp://127.0.0.1:%d/", relay->port);
  CHECK(pa && strncmp(pa, want, strlen(want)) == 0 && strchr(pa, ' ') != NULL);
  prepared pb;
  memset(&pb, 0, sizeof pb);
  completion_init(&pb.done);
  CHECK_OK(msrp_connector_prepare_async(cb, NULL, 10000, on_prepared, &pb));
  CHECK(completion_wait(&pb.done, 15000));
  CHECK(pb.done.result == MSRP_RESULT_OK && strncmp(pb.path, want, strlen(want)) == 0);
  completion done;
  completion_init(&done);
  CHECK_OK(msrp_connector_complete_async(cb, pa, 10000, on_complete, &done));
  msrp_transport *ta = NULL;
  CHECK_OK(msrp_connector_complete(ca, pb.path, 10000, &ta));
  CHECK(completion_wait(&done, 15000));
  CHECK(done.result == MSRP_RESULT_OK);
  box ba, bb;
  memset(&ba, 0, sizeof ba);
  memset(&bb, 0, sizeof bb);
  pthread_mutex_init(&ba.m, NULL);
  pthread_cond_init(&ba.c, NULL);
  pthread_mutex_init(&bb.m, NULL);
  pthread_cond_init(&bb.c, NULL);
  msrp_session_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  cbs.on_message = on_message;
  cbs.on_report = on_report;
  msrp_session *a = NULL, *b = NULL;
  if (ta && done.transport) {
    CHECK_OK(msrp_session_new(ta, NULL, &cbs, &ba, NULL, &a));
    CHECK_OK(msrp_session_new(done.transport, NULL, &cbs, &bb, NULL, &b));
  }
  /* 5 MB from A to B in 8 KiB chunks, with a success REPORT back. */
  enum { N = 5 * 1024 * 1024 };
  uint8_t *data = malloc(N);
  for (size_t i = 0; i < N; i++) data[i] = (uint8_t)((i * 2654435761u) >> 13);
  msrp_message_options mo = msrp_message_options_default();
  mo.success_report = true;
  CHECK_OK(msrp_session_send_message(a, data, N, "application/octet-stream", &mo, NULL, NULL, NULL));
  CHECK(wait_count(&bb, &bb.messages, 1, 60000));
  CHECK(bb.last_len == N && bb.last && memcmp(bb.last, data, N) == 0);
  CHECK(wait_count(&ba, &ba.reports, 1, 30000));
  CHECK(ba.report_status == 200);
  CHECK(strcmp(ba.report_range, "1-5242880/5242880") == 0);
  /* And a chat line the other way. */
  CHECK_OK(msrp_session_send_message(b, (const uint8_t *)"hi A", 4, "text/plain", NULL, NULL, NULL, NULL));
  CHECK(wait_count(&ba, &ba.messages, 1, 15000));
  CHECK(ba.last_len == 4 && ba.last && memcmp(ba.last, "hi A", 4) == 0);
  msrp_session_free(a);
  msrp_session_free(b);
  free(data);
  free(ba.last);
  free(bb.last);
  msrp_string_free(pa);
  msrp_connector_free(ca);
  msrp_connector_free(cb);
  completion_destroy(&done);
  completion_destroy(&pb.done);
  msrp_context_free(ctx);
}

static void test_wrong_password(const test_relay *relay) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_relay_settings s = relay_settings(relay, "alice", "wrong");
  msrp_connector *c = NULL;
  CHECK_OK(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &s, &c));
  char *path = NULL;
  CHECK_RES(msrp_connector_prepare(c, NULL, &path), MSRP_RESULT_AUTH_FAILED);
  CHECK_LAST_ERROR_HAS("password");
  CHECK(path == NULL);
  /* complete without a successful prepare is a state error. */
  msrp_transport *t = NULL;
  CHECK_RES(msrp_connector_complete(c, "msrp://127.0.0.1:9/x;tcp", 1000, &t), MSRP_RESULT_BAD_STATE);
  msrp_connector_free(c);
  /* Settings without user, or without host and domain, are refused up front. */
  msrp_relay_settings bad = msrp_relay_settings_default();
  CHECK_RES(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &bad, &c), MSRP_RESULT_NULL_ARGUMENT);
  bad.username = "u";
  bad.password = "p";
  CHECK_RES(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &bad, &c), MSRP_RESULT_INVALID_ARGUMENT);
  bad.domain = "relay.test";
  bad.nameserver = "not an address";
  CHECK_RES(msrp_connector_new_relay(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &bad, &c), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("address:port");
  msrp_context_free(ctx);
}

int main(void) {
  test_relay relay;
  if (relay_start(&relay, 60, 3600) != 0) {
    fprintf(stderr, "test_relay: the relay did not start\n");
    return 1;
  }
  test_sessions_through_relay(&relay);
  test_wrong_password(&relay);
  relay_stop(&relay, check_failed_ > 0);
  return check_summary("test_relay");
}
