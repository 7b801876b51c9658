/* A relay client (RFC 4976): two participants behind their own MSRP relay
 * (a Kamailio relay in the test; any relay on a real network), each
 * authenticating with digest credentials, exchanging a chat line and a
 * 200 kB message through it. The steps a softphone behind a NAT takes:
 *   1. msrp_connector_new_relay with the relay's address and credentials;
 *   2. msrp_connector_prepare_async: connects, AUTHs (401 answered, 423
 *      retried), and gives the full path (the relay's Use-Path first, our
 *      URI last) for SDP a=path — without blocking the caller;
 *   3. offer/answer carry the paths (here they are simply swapped);
 *   4. msrp_connector_complete: the active side's binding SEND goes through
 *      the relay; the AUTH is refreshed before it expires while the session
 *      lives;
 *   5. chunks are capped at 8 KiB (relays limit frame sizes).
 * Usage: relay_client HOST PORT (users alice and bob, password "secret").
 * Exit status 0 on success. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msrp.h"

#define TRY(expr)                                                                                      \
  do {                                                                                                 \
    msrp_result r_ = (expr);                                                                           \
    if (r_ != MSRP_RESULT_OK) {                                                                        \
      fprintf(stderr, "%s failed: %s (%s)\n", #expr, msrp_result_str(r_), msrp_last_error_message()); \
      exit(1);                                                                                         \
    }                                                                                                  \
  } while (0)

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  char path[1024]; /* from prepare */
  int prepared;
  msrp_transport *t; /* from complete */
  int bound;
  int messages;
  size_t bytes;
} side;

static void wait_for(side *s, int *flag) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  pthread_mutex_lock(&s->m);
  while (!*flag && pthread_cond_timedwait(&s->c, &s->m, &until) == 0) {
  }
  int ok = *flag;
  pthread_mutex_unlock(&s->m);
  if (!ok) {
    fprintf(stderr, "timed out\n");
    exit(1);
  }
}

static void on_prepared(void *ud, msrp_result r, const char *path, const char *message) {
  side *s = ud;
  if (r != MSRP_RESULT_OK) {
    fprintf(stderr, "relay AUTH failed: %s (%s)\n", msrp_result_str(r), message);
    exit(1);
  }
  pthread_mutex_lock(&s->m);
  snprintf(s->path, sizeof s->path, "%s", path);
  s->prepared = 1;
  pthread_cond_broadcast(&s->c);
  pthread_mutex_unlock(&s->m);
}

static void on_bound(void *ud, msrp_result r, msrp_transport *t, const char *message) {
  side *s = ud;
  if (r != MSRP_RESULT_OK) {
    fprintf(stderr, "binding through the relay failed: %s (%s)\n", msrp_result_str(r), message);
    exit(1);
  }
  pthread_mutex_lock(&s->m);
  s->t = t;
  s->bound = 1;
  pthread_cond_broadcast(&s->c);
  pthread_mutex_unlock(&s->m);
}

static void on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  side *s = ud;
  (void)head;
  if (len < 80) printf("bob got: %.*s\n", (int)len, (const char *)data);
  else printf("bob got %zu bytes\n", len);
  pthread_mutex_lock(&s->m);
  s->messages++;
  s->bytes += len;
  pthread_cond_broadcast(&s->c);
  pthread_mutex_unlock(&s->m);
}

static msrp_connector *relay_connector(msrp_context *ctx, msrp_connector_kind kind, const char *host, uint16_t port,
                                       const char *user) {
  msrp_relay_settings rs = msrp_relay_settings_default();
  rs.host = host;
  rs.port = port;
  rs.domain = "example.com";
  rs.username = user;
  rs.password = "secret";
  msrp_connector *c = NULL;
  TRY(msrp_connector_new_relay(ctx, kind, false, NULL, &rs, &c));
  return c;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: relay_client HOST PORT\n");
    return 2;
  }
  const char *host = argv[1];
  uint16_t port = (uint16_t)atoi(argv[2]);
  side alice, bob;
  memset(&alice, 0, sizeof alice);
  memset(&bob, 0, sizeof bob);
  pthread_mutex_init(&alice.m, NULL);
  pthread_cond_init(&alice.c, NULL);
  pthread_mutex_init(&bob.m, NULL);
  pthread_cond_init(&bob.c, NULL);

  msrp_context *ctx = NULL;
  TRY(msrp_context_new(NULL, &ctx));
  msrp_connector *a = relay_connector(ctx, MSRP_CONNECTOR_KIND_ACTIVE, host, port, "alice");
  msrp_connector *b = relay_connector(ctx, MSRP_CONNECTOR_KIND_PASSIVE, host, port, "bob");
  TRY(msrp_connector_prepare_async(a, NULL, 10000, on_prepared, &alice));
  TRY(msrp_connector_prepare_async(b, NULL, 10000, on_prepared, &bob));
  wait_for(&alice, &alice.prepared);
  wait_for(&bob, &bob.prepared);
  printf("alice's path: %s\nbob's path:   %s\n", alice.path, bob.path);

  /* The SDP offer/answer would carry the paths; bob waits, alice binds. */
  TRY(msrp_connector_complete_async(b, alice.path, 10000, on_bound, &bob));
  TRY(msrp_connector_complete_async(a, bob.path, 10000, on_bound, &alice));
  wait_for(&alice, &alice.bound);
  wait_for(&bob, &bob.bound);

  msrp_session_options so = msrp_session_options_default();
  so.chunk_size = 8192;
  msrp_session_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_message = on_message;
  msrp_session *sa = NULL, *sb = NULL;
  TRY(msrp_session_new(alice.t, &so, NULL, NULL, NULL, &sa));
  TRY(msrp_session_new(bob.t, &so, &cb, &bob, NULL, &sb));
  const char *hello = "hello bob, through the relay";
  TRY(msrp_session_send_message(sa, (const uint8_t *)hello, strlen(hello), "text/plain", NULL, NULL, NULL, NULL));
  size_t big = 200 * 1000;
  uint8_t *data = malloc(big);
  for (size_t i = 0; i < big; i++) data[i] = (uint8_t)(i * 7);
  TRY(msrp_session_send_message(sa, data, big, "application/octet-stream", NULL, NULL, NULL, NULL));
  free(data);

  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  pthread_mutex_lock(&bob.m);
  while (bob.messages < 2 && pthread_cond_timedwait(&bob.c, &bob.m, &until) == 0) {
  }
  int ok = bob.messages == 2 && bob.bytes == strlen(hello) + big;
  pthread_mutex_unlock(&bob.m);

  msrp_session_shutdown(sa, true, 5000);
  msrp_session_free(sa);
  msrp_session_free(sb);
  msrp_connector_free(a);
  msrp_connector_free(b);
  msrp_context_free(ctx);
  printf("%s\n", ok ? "relay chat done" : "relay chat FAILED");
  return ok ? 0 : 1;
}
