/* Sending and receiving a file with progress: alice sends a file with
 * msrp_session_send_file (read as its chunks go out), bob writes it to disk
 * as it arrives (on_message_start + msrp_incoming_to_path), so neither side
 * holds the file in memory, whatever its size. Both print their progress;
 * the program checks that the copy equals the original. Alice and bob run
 * in one process on loopback; callbacks run on libmsrp's threads. Exit
 * status 0 on success. */
#include <pthread.h>
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

enum { SIZE = 8 * 1024 * 1024 + 123 };

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  char path[256];  /* where bob writes */
  int sent_done;   /* alice: on_done ran */
  int sent_code;
  int saved;       /* bob: on_message_saved ran */
  int failed;      /* bob: on_incomplete ran */
  int last_pct[2]; /* progress already printed, by side */
} transfer;

static void progress(transfer *t, int side, uint64_t done, uint64_t total) {
  int pct = total ? (int)(done * 100 / total) : 0;
  pthread_mutex_lock(&t->m);
  if (pct / 25 > t->last_pct[side] / 25 || pct == 100) {
    if (pct != t->last_pct[side]) printf("%s: %3d%%\n", side ? "bob received" : "alice sent+acked", pct);
    t->last_pct[side] = pct;
  }
  pthread_mutex_unlock(&t->m);
}

/* alice: message callbacks */
static void on_progress(void *ud, uint64_t msg, uint64_t sent, uint64_t acked, uint64_t total) {
  (void)msg;
  (void)sent;
  progress(ud, 0, acked, total);
}

static void on_done(void *ud, uint64_t msg, const char *message_id, uint16_t code, const char *comment) {
  transfer *t = ud;
  (void)msg;
  printf("alice: message %s done: %u %s\n", message_id, code, comment);
  pthread_mutex_lock(&t->m);
  t->sent_done = 1;
  t->sent_code = code;
  pthread_cond_broadcast(&t->c);
  pthread_mutex_unlock(&t->m);
}

/* bob: where an incoming file goes, chosen from its headers */
static void on_message_start(void *ud, const msrp_chunk *head, const char *message_id, uint64_t total,
                             msrp_incoming *in) {
  transfer *t = ud;
  char *disp = NULL;
  msrp_chunk_header(head, "Content-Disposition", &disp);
  printf("bob: message %s starts, %llu bytes, %s\n", message_id, (unsigned long long)total, disp ? disp : "");
  msrp_string_free(disp);
  if (msrp_incoming_to_path(in, t->path) != MSRP_RESULT_OK) msrp_incoming_refuse(in);
}

static void on_incoming_progress(void *ud, const char *message_id, uint64_t received, uint64_t total) {
  (void)message_id;
  progress(ud, 1, received, total);
}

static void on_message_saved(void *ud, const msrp_chunk *head, const char *message_id, uint64_t size) {
  transfer *t = ud;
  (void)head;
  printf("bob: message %s saved, %llu bytes\n", message_id, (unsigned long long)size);
  pthread_mutex_lock(&t->m);
  t->saved = 1;
  pthread_cond_broadcast(&t->c);
  pthread_mutex_unlock(&t->m);
}

static void on_incomplete(void *ud, const msrp_chunk *head, const char *message_id, uint64_t received, uint64_t total,
                          msrp_result reason, const char *why) {
  transfer *t = ud;
  (void)head;
  (void)total;
  fprintf(stderr, "bob: message %s incomplete after %llu bytes: %s (%s)\n", message_id,
          (unsigned long long)received, msrp_result_str(reason), why);
  pthread_mutex_lock(&t->m);
  t->failed = 1;
  pthread_cond_broadcast(&t->c);
  pthread_mutex_unlock(&t->m);
}

static void on_bound(void *ud, msrp_result r, msrp_transport *tr, const char *msg) {
  msrp_transport **out = ud;
  if (r != MSRP_RESULT_OK) {
    fprintf(stderr, "bob could not accept: %s\n", msg);
    exit(1);
  }
  *out = tr;
}

static int same_files(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    int ca = fgetc(fa), cb = fgetc(fb);
    if (ca != cb) same = 0;
    if (ca == EOF || cb == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

int main(void) {
  char dir[] = "/tmp/msrp-example-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char src[300];
  snprintf(src, sizeof src, "%s/report.pdf", dir);
  FILE *f = fopen(src, "wb");
  for (int i = 0; i < SIZE; i++) fputc((i * 131 + i / 4096) & 0xff, f);
  fclose(f);

  transfer t;
  memset(&t, 0, sizeof t);
  pthread_mutex_init(&t.m, NULL);
  pthread_cond_init(&t.c, NULL);
  snprintf(t.path, sizeof t.path, "%s/received.pdf", dir);

  msrp_context *ctx = NULL;
  TRY(msrp_context_new(NULL, &ctx));
  msrp_connector *acc = NULL, *con = NULL;
  char *bob_path = NULL, *alice_path = NULL;
  TRY(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  TRY(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  TRY(msrp_connector_prepare(acc, "msrp://127.0.0.1:0;tcp", &bob_path));
  TRY(msrp_connector_prepare(con, NULL, &alice_path));
  msrp_transport *volatile tb = NULL;
  TRY(msrp_connector_complete_async(acc, alice_path, 10000, on_bound, (void *)&tb));
  msrp_transport *ta = NULL;
  TRY(msrp_connector_complete(con, bob_path, 10000, &ta));
  for (int i = 0; i < 1000 && !tb; i++) usleep(10 * 1000);

  msrp_session_callbacks bob_cb;
  memset(&bob_cb, 0, sizeof bob_cb);
  bob_cb.on_message_start = on_message_start;
  bob_cb.on_incoming_progress = on_incoming_progress;
  bob_cb.on_message_saved = on_message_saved;
  bob_cb.on_incomplete = on_incomplete;
  msrp_session *alice = NULL, *bob = NULL;
  TRY(msrp_session_new(ta, NULL, NULL, NULL, NULL, &alice));
  TRY(msrp_session_new(tb, NULL, &bob_cb, &t, NULL, &bob));

  msrp_outgoing_file file;
  memset(&file, 0, sizeof file);
  file.path = src;
  file.fd = -1;
  file.content_type = "application/pdf";
  msrp_message_options mo = msrp_message_options_default();
  mo.content_disposition = "attachment; filename=\"report.pdf\"";
  msrp_message_callbacks mc;
  memset(&mc, 0, sizeof mc);
  mc.on_progress = on_progress;
  mc.on_done = on_done;
  TRY(msrp_session_send_file(alice, &file, &mo, &mc, &t, NULL));

  pthread_mutex_lock(&t.m);
  for (int i = 0; i < 600 && !((t.sent_done && t.saved) || t.failed); i++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_cond_timedwait(&t.c, &t.m, &ts);
  }
  int ok = t.sent_done && t.sent_code == 200 && t.saved && !t.failed;
  pthread_mutex_unlock(&t.m);
  ok = ok && same_files(src, t.path);

  msrp_session_free(alice);
  msrp_session_free(bob);
  msrp_string_free(bob_path);
  msrp_string_free(alice_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  msrp_context_free(ctx);
  remove(src);
  remove(t.path);
  rmdir(dir);
  printf("%s\n", ok ? "file transfer done, copy identical" : "file transfer FAILED");
  return ok ? 0 : 1;
}
