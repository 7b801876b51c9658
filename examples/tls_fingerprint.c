/* msrps checked by certificate fingerprint (RFC 8122), the way SIP does it:
 * each side has a self-signed certificate, puts its fingerprint in its SDP
 * (a=fingerprint), and checks the peer's certificate against the one the
 * peer's SDP gave. Then a connection from someone whose certificate does
 * not match is refused. One process on loopback; exit status 0 on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  volatile int done;
  msrp_result result;
  msrp_transport *t;
  char message[256];
} bound;

static void on_bound(void *ud, msrp_result r, msrp_transport *t, const char *msg) {
  bound *b = ud;
  b->result = r;
  b->t = t;
  snprintf(b->message, sizeof b->message, "%s", msg);
  b->done = 1;
}

/* A certificate made for this call, and its fingerprint for a=fingerprint. */
static msrp_tls *identity(const char *name, char **fingerprint) {
  msrp_tls *t = NULL;
  TRY(msrp_tls_new(&t));
  TRY(msrp_tls_generate_self_signed(t, name));
  TRY(msrp_tls_fingerprint(t, NULL, fingerprint));
  return t;
}

/* Bob accepts on msrps, expecting the certificate `expect`; a caller with
 * `tls` connects. Returns bob's result; *caller_result gets the caller's. */
static msrp_result call(msrp_context *ctx, msrp_tls *bob_tls, const char *expect, msrp_tls *tls, const char *bob_fp,
                        msrp_result *caller_result) {
  msrp_connector *acc = NULL, *con = NULL;
  char *bob_path = NULL, *caller_path = NULL;
  TRY(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  TRY(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  TRY(msrp_connector_set_tls(acc, bob_tls));
  TRY(msrp_connector_set_peer_fingerprint(acc, expect)); /* from the caller's SDP */
  TRY(msrp_connector_set_tls(con, tls));
  TRY(msrp_connector_set_peer_fingerprint(con, bob_fp)); /* from bob's SDP */
  TRY(msrp_connector_prepare(acc, "msrps://127.0.0.1:0;tcp", &bob_path));
  TRY(msrp_connector_prepare(con, "msrps://127.0.0.1:9;tcp", &caller_path));
  bound b;
  memset(&b, 0, sizeof b);
  /* Bob waits 3 s for a caller whose certificate matches. */
  TRY(msrp_connector_complete_async(acc, caller_path, 3000, on_bound, &b));
  msrp_transport *t = NULL;
  *caller_result = msrp_connector_complete(con, bob_path, 10000, &t);
  if (*caller_result == MSRP_RESULT_OK) {
    /* A line over the encrypted connection. */
    msrp_chunk_params p;
    memset(&p, 0, sizeof p);
    p.data = (const uint8_t *)"secret";
    p.data_len = 6;
    msrp_chunk *c = NULL;
    TRY(msrp_transport_make_chunk(t, &p, &c));
    TRY(msrp_chunk_set_content_type(c, "text/plain"));
    TRY(msrp_transport_write_chunk(t, c, 5000));
    msrp_chunk_free(c);
  }
  for (int i = 0; i < 1000 && !b.done; i++) usleep(10 * 1000);
  if (b.result == MSRP_RESULT_OK) {
    msrp_chunk *in = NULL;
    TRY(msrp_transport_read_chunk(b.t, SIZE_MAX, 5000, &in, NULL));
    const uint8_t *d = NULL;
    size_t n = 0;
    TRY(msrp_chunk_data(in, &d, &n));
    printf("bob read over msrps: %.*s\n", (int)n, (const char *)d);
    msrp_chunk_free(in);
  } else {
    printf("bob refused the caller: %s (%s)\n", msrp_result_str(b.result), b.message);
  }
  msrp_transport_free(t);
  msrp_transport_free(b.t);
  msrp_string_free(bob_path);
  msrp_string_free(caller_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  return b.result;
}

int main(void) {
  msrp_context *ctx = NULL;
  TRY(msrp_context_new(NULL, &ctx));
  char *bob_fp = NULL, *alice_fp = NULL, *mallory_fp = NULL;
  msrp_tls *bob = identity("bob.example", &bob_fp);
  msrp_tls *alice = identity("alice.example", &alice_fp);
  msrp_tls *mallory = identity("mallory.example", &mallory_fp);
  printf("bob's a=fingerprint:%s\nalice's a=fingerprint:%s\n", bob_fp, alice_fp);

  msrp_result caller = MSRP_RESULT_OK;
  msrp_result r = call(ctx, bob, alice_fp, alice, bob_fp, &caller);
  int ok = r == MSRP_RESULT_OK && caller == MSRP_RESULT_OK;
  /* Mallory has a certificate of her own, not the one alice's SDP announced. */
  r = call(ctx, bob, alice_fp, mallory, bob_fp, &caller);
  printf("mallory's call: bob %s, mallory %s\n", msrp_result_str(r), msrp_result_str(caller));
  ok = ok && r == MSRP_RESULT_TLS_FINGERPRINT_MISMATCH && caller != MSRP_RESULT_OK;

  msrp_string_free(bob_fp);
  msrp_string_free(alice_fp);
  msrp_string_free(mallory_fp);
  msrp_tls_free(bob);
  msrp_tls_free(alice);
  msrp_tls_free(mallory);
  msrp_context_free(ctx);
  printf("%s\n", ok ? "fingerprints checked" : "fingerprint example FAILED");
  return ok ? 0 : 1;
}
