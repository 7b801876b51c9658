/* Teardown, through the public header (the hostile-peers issue, items 4
 * and 5): freeing a context with live sessions delivers every pending
 * session callback exactly once (on_done of messages in flight, on_closed
 * of every session, last); a synchronous shutdown refused inside a callback
 * changes nothing. */
#include <dirent.h>
#include <unistd.h>

#include "net.h"

typedef struct {
  pthread_mutex_t m;
  int closed, done, messages, freed;
  int done_after_closed; /* an on_done that came after on_closed: wrong */
  msrp_result closed_reason;
  /* shutdown from a callback */
  msrp_session *self;
  msrp_result shutdown_in_cb;
  int tried;
} tally;

static void t_init(tally *t) {
  memset(t, 0, sizeof *t);
  pthread_mutex_init(&t->m, NULL);
}

static void t_on_closed(void *ud, msrp_result why, const char *msg) {
  tally *t = ud;
  (void)msg;
  pthread_mutex_lock(&t->m);
  t->closed++;
  t->closed_reason = why;
  pthread_mutex_unlock(&t->m);
}

static void t_on_done(void *ud, uint64_t msg, const char *mid, uint16_t code, const char *comment) {
  (void)mid;
  tally *t = ud;
  (void)msg;
  (void)code;
  (void)comment;
  pthread_mutex_lock(&t->m);
  t->done++;
  if (t->closed) t->done_after_closed++;
  pthread_mutex_unlock(&t->m);
}

static void t_free(void *ud) {
  tally *t = ud;
  pthread_mutex_lock(&t->m);
  t->freed++;
  pthread_mutex_unlock(&t->m);
}

static void t_on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  tally *t = ud;
  (void)head;
  (void)data;
  (void)len;
  pthread_mutex_lock(&t->m);
  t->messages++;
  bool first = t->self && !t->tried;
  t->tried = 1;
  pthread_mutex_unlock(&t->m);
  if (first) {
    /* Queue an answer, then try a synchronous shutdown here: refused, and
     * the answer still goes out. */
    CHECK_OK(msrp_session_send_message(t->self, (const uint8_t *)"answer", 6, "text/plain", NULL, NULL, NULL, NULL));
    t->shutdown_in_cb = msrp_session_shutdown(t->self, true, 1000);
  }
}

static const msrp_session_callbacks CBS = {.on_message = t_on_message, .on_closed = t_on_closed};

static int get(tally *t, const int *field) {
  pthread_mutex_lock(&t->m);
  int v = *field;
  pthread_mutex_unlock(&t->m);
  return v;
}

/* Item 4: pairs of sessions, one of them with a 16 MiB message in flight and
 * one quiet; the context is freed without freeing the sessions. Every
 * session's on_closed runs once (MSRP_RESULT_CLOSED), the message's on_done
 * once and before it, userdata_free after; the session handles stay valid
 * for msrp_session_free. Before, on_closed ran for 0-1 of 2 and on_done
 * for 0 of 1. Both delivery modes. */
static void test_free_context_with_live_sessions(bool queued) {
  enum { PAIRS = 3 };
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  co.queued_callbacks = queued;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&co, &ctx));
  tally t[2 * PAIRS];
  msrp_session *s[2 * PAIRS];
  for (int i = 0; i < PAIRS; i++) {
    msrp_transport *ta = NULL, *tb = NULL;
    make_pair_ex(ctx, false, NULL, queued, &ta, &tb);
    t_init(&t[2 * i]);
    t_init(&t[2 * i + 1]);
    CHECK_OK(msrp_session_new(ta, NULL, &CBS, &t[2 * i], t_free, &s[2 * i]));
    CHECK_OK(msrp_session_new(tb, NULL, &CBS, &t[2 * i + 1], t_free, &s[2 * i + 1]));
  }
  size_t big = 16u << 20;
  uint8_t *body = calloc(1, big);
  msrp_message_callbacks mc = {.on_done = t_on_done};
  CHECK_OK(msrp_session_send_message(s[0], body, big, "application/octet-stream", NULL, &mc, &t[0], NULL));
  CHECK_OK(msrp_session_send_message(s[2], (const uint8_t *)"hi", 2, "text/plain", NULL, &mc, &t[2], NULL));
  free(body);
  usleep(300 * 1000);
  if (queued) msrp_context_dispatch(ctx, 0, NULL); /* whatever came so far */
  msrp_context_free(ctx);
  for (int i = 0; i < 2 * PAIRS; i++) {
    CHECK(get(&t[i], &t[i].closed) == 1);
    CHECK(t[i].closed_reason == MSRP_RESULT_CLOSED);
    CHECK(get(&t[i], &t[i].done_after_closed) == 0);
  }
  CHECK(get(&t[0], &t[0].done) == 1);
  CHECK(get(&t[2], &t[2].done) == 1);
  for (int i = 0; i < 2 * PAIRS; i++) {
    CHECK(msrp_session_is_closed(s[i]));
    CHECK(msrp_session_send_message(s[i], (const uint8_t *)"x", 1, "text/plain", NULL, NULL, NULL, NULL) ==
          MSRP_RESULT_CLOSED);
    msrp_session_free(s[i]);
    CHECK(get(&t[i], &t[i].freed) == 1);
    pthread_mutex_destroy(&t[i].m);
  }
}

/* Item 5: msrp_session_shutdown(s, true, ...) inside a callback returns
 * MSRP_RESULT_IN_CALLBACK and changes nothing: the message queued just
 * before it arrives, and the session stays open. Before, the refusal
 * closed the session and dropped the message. */
static void test_refused_shutdown_changes_nothing(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  tally a, b;
  t_init(&a);
  t_init(&b);
  msrp_session *sa = NULL, *sb = NULL;
  CHECK_OK(msrp_session_new(ta, NULL, &CBS, &a, NULL, &sa));
  CHECK_OK(msrp_session_new(tb, NULL, &CBS, &b, NULL, &sb));
  b.self = sb;
  CHECK_OK(msrp_session_send_message(sa, (const uint8_t *)"hello", 5, "text/plain", NULL, NULL, NULL, NULL));
  for (int i = 0; i < 500 && get(&a, &a.messages) < 1; i++) usleep(10 * 1000);
  CHECK(get(&a, &a.messages) == 1);
  CHECK(b.shutdown_in_cb == MSRP_RESULT_IN_CALLBACK);
  CHECK(!msrp_session_is_closed(sb));
  CHECK(get(&b, &b.closed) == 0);
  /* Outside a callback it works. */
  CHECK_OK(msrp_session_shutdown(sb, true, 5000));
  CHECK(msrp_session_is_closed(sb));
  msrp_session_free(sa);
  msrp_session_free(sb);
  msrp_context_free(ctx);
  pthread_mutex_destroy(&a.m);
  pthread_mutex_destroy(&b.m);
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

/* Item 6: a session whose on_closed has run keeps no connection: once the
 * peer closed, its socket is closed (and its read buffers freed) although
 * the application has not freed the session yet; the handle stays valid
 * and answers MSRP_RESULT_CLOSED. Before, every such session kept its
 * socket until msrp_session_free. */
static void test_closed_sessions_release_their_connections(void) {
  enum { PAIRS = 10 };
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  int base = open_fds();
  tally t[PAIRS];
  msrp_session *a[PAIRS], *b[PAIRS];
  for (int i = 0; i < PAIRS; i++) {
    msrp_transport *ta = NULL, *tb = NULL;
    make_pair(ctx, false, NULL, &ta, &tb);
    t_init(&t[i]);
    CHECK_OK(msrp_session_new(ta, NULL, NULL, NULL, NULL, &a[i]));
    CHECK_OK(msrp_session_new(tb, NULL, &CBS, &t[i], NULL, &b[i]));
    /* some traffic, so that read buffers were used */
    CHECK_OK(msrp_session_send_message(a[i], (const uint8_t *)"hello", 5, "text/plain", NULL, NULL, NULL, NULL));
  }
  int busy = open_fds();
  CHECK(busy >= base + 2 * PAIRS);
  for (int i = 0; i < PAIRS; i++) msrp_session_free(a[i]);
  for (int i = 0; i < PAIRS; i++)
    for (int k = 0; k < 500 && get(&t[i], &t[i].closed) == 0; k++) usleep(10 * 1000);
  int after = -1;
  for (int k = 0; k < 200; k++) { /* sockets close as the tasks finish */
    after = open_fds();
    if (after <= base) break;
    usleep(10 * 1000);
  }
  printf("open descriptors: %d before, %d with %d pairs, %d after the peers closed (sessions not freed)\n", base,
         busy, PAIRS, after);
  CHECK(after <= base);
  for (int i = 0; i < PAIRS; i++) {
    CHECK(get(&t[i], &t[i].closed) == 1);
    CHECK(msrp_session_is_closed(b[i]));
    CHECK(msrp_session_send_message(b[i], (const uint8_t *)"x", 1, "text/plain", NULL, NULL, NULL, NULL) ==
          MSRP_RESULT_CLOSED);
    msrp_session_free(b[i]);
    pthread_mutex_destroy(&t[i].m);
  }
  msrp_context_free(ctx);
}

int main(void) {
  test_closed_sessions_release_their_connections();
  test_free_context_with_live_sessions(false);
  test_free_context_with_live_sessions(true);
  test_refused_shutdown_changes_nothing();
  return check_summary("test_teardown");
}
