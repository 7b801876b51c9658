/* Chat driven by the application's own event loop: callbacks are queued
 * (queued_callbacks) and run on this thread when poll() says the
 * context's descriptor is readable, so the application needs no locks.
 *
 * Alice and bob run in one process on loopback (in a softphone, bob would
 * be the peer across the network and the paths would travel in SDP). Alice
 * sends three lines; bob answers each in capitals; the program ends when
 * alice has all three answers. Exit status 0 on success. */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  const char *name;
  msrp_session *session;
  int received;
  int closed;
  msrp_transport *bound; /* the acceptor's transport, from its callback */
  int bind_done;
} peer;

/* Every callback below runs inside msrp_context_dispatch, on main's thread. */
static void on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  peer *p = ud;
  (void)head;
  printf("%s got: %.*s\n", p->name, (int)len, (const char *)data);
  p->received++;
  if (!strcmp(p->name, "bob")) {
    char answer[256];
    size_t n = len < sizeof answer ? len : sizeof answer;
    for (size_t i = 0; i < n; i++) answer[i] = (char)toupper(data[i]);
    /* Non-blocking: may be called from a callback. */
    TRY(msrp_session_send_message(p->session, (const uint8_t *)answer, n, "text/plain", NULL, NULL, NULL, NULL));
  }
}

static void on_closed(void *ud, msrp_result why, const char *msg) {
  peer *p = ud;
  printf("%s's session closed: %s (%s)\n", p->name, msrp_result_str(why), msg);
  p->closed = 1;
}

static void on_bound(void *ud, msrp_result r, msrp_transport *t, const char *msg) {
  peer *p = ud;
  if (r != MSRP_RESULT_OK) {
    fprintf(stderr, "bob could not accept: %s\n", msg);
    exit(1);
  }
  p->bound = t;
  p->bind_done = 1;
}

/* One turn of the application's loop: wait (at most ms) for the context's
 * descriptor, then run what is queued. A real application adds its own
 * descriptors (SIP sockets, UI) to the same poll. */
static void loop_once(msrp_context *ctx, int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, ms) > 0) TRY(msrp_context_dispatch(ctx, 0, NULL));
}

int main(void) {
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  o.queued_callbacks = true;
  msrp_context *ctx = NULL;
  TRY(msrp_context_new(&o, &ctx));
  int fd = -1;
  TRY(msrp_context_fd(ctx, &fd));

  peer alice = {"alice", NULL, 0, 0, NULL, 0}, bob = {"bob", NULL, 0, 0, NULL, 0};
  msrp_connector *acc = NULL, *con = NULL;
  char *bob_path = NULL, *alice_path = NULL;
  TRY(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  TRY(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  TRY(msrp_connector_prepare(acc, "msrp://127.0.0.1:0;tcp", &bob_path));
  TRY(msrp_connector_prepare(con, NULL, &alice_path));
  /* Offer/answer would carry these paths in SDP a=path. */
  TRY(msrp_connector_complete_async(acc, alice_path, 10000, on_bound, &bob));
  msrp_transport *ta = NULL;
  TRY(msrp_connector_complete(con, bob_path, 10000, &ta));
  for (int i = 0; i < 1000 && !bob.bind_done; i++) loop_once(ctx, fd, 10);
  if (!bob.bind_done) {
    fprintf(stderr, "bob did not bind\n");
    return 1;
  }

  msrp_session_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_message = on_message;
  cb.on_closed = on_closed;
  TRY(msrp_session_new(ta, NULL, &cb, &alice, NULL, &alice.session));
  TRY(msrp_session_new(bob.bound, NULL, &cb, &bob, NULL, &bob.session));

  const char *lines[] = {"hello bob", "how are you?", "bye"};
  for (int i = 0; i < 3; i++)
    TRY(msrp_session_send_message(alice.session, (const uint8_t *)lines[i], strlen(lines[i]), "text/plain", NULL,
                                  NULL, NULL, NULL));
  for (int i = 0; i < 1000 && alice.received < 3 && !alice.closed; i++) loop_once(ctx, fd, 10);
  int ok = alice.received == 3 && bob.received == 3;

  msrp_session_shutdown(alice.session, false, 0);
  msrp_session_free(alice.session);
  msrp_session_free(bob.session);
  msrp_string_free(bob_path);
  msrp_string_free(alice_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  msrp_context_free(ctx); /* runs what is still queued (the on_closed calls) here */
  printf("%s\n", ok ? "chat done" : "chat FAILED");
  return ok ? 0 : 1;
}
