/* Sessions over real loopback connections, through the public header:
 * one test per rule of the session issue, and the reference's scenarios. */
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "net.h"

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int messages, chunks, reports, aborted, closed;
  msrp_result closed_reason;
  size_t total_bytes;
  /* the last whole message */
  uint8_t *last;
  size_t last_len;
  char last_ct[64];
  char last_report_mid[64];
  char last_report_range[64];
  uint16_t last_report_status;
  /* order of arrival: index of the big message among messages */
  int big_position;
  size_t big_len;
  /* streaming reassembly target */
  uint8_t *stream_buf;
  size_t stream_cap;
  size_t stream_got;
  int stream_done;
  /* when set, on_chunk records each chunk here (test_chat_interrupts_a_long_chunk) */
  struct seen_chunk { size_t n; uint8_t flag; bool chat, star; } *seq;
  size_t seq_n, seq_cap;
  /* when set, on_chunk keeps every other chunk here instead of freeing it */
  msrp_chunk **kept;
  size_t kept_n, kept_cap;
  int freed;
  /* when set, on_message sends a REPORT about the message with this code */
  msrp_session *self;
  uint16_t report_code;
  msrp_result report_result;
  bool report_sent;
  msrp_result report_on_report_chunk;
  /* when set, on_message tries a blocking deliver_chunk of this chunk */
  msrp_chunk *deliver_in_cb;
  msrp_result deliver_in_cb_result;
} inbox;

static void inbox_init(inbox *b) {
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->m, NULL);
  pthread_cond_init(&b->c, NULL);
  b->big_position = -1;
}

static void inbox_destroy(inbox *b) {
  free(b->last);
  pthread_mutex_destroy(&b->m);
  pthread_cond_destroy(&b->c);
}

static void bump(inbox *b) { pthread_cond_broadcast(&b->c); }

static void s_on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  inbox *b = ud;
  char *ct = NULL;
  pthread_mutex_lock(&b->m);
  msrp_chunk_content_type(head, &ct);
  snprintf(b->last_ct, sizeof b->last_ct, "%s", ct ? ct : "");
  msrp_string_free(ct);
  free(b->last);
  b->last = malloc(len ? len : 1);
  if (len) memcpy(b->last, data, len);
  b->last_len = len;
  if (b->big_len && len == b->big_len) b->big_position = b->messages;
  if (b->report_code && b->self)
    b->report_result = msrp_session_send_report(b->self, head, b->report_code, "Could not deliver", &b->report_sent);
  if (b->deliver_in_cb && b->self) b->deliver_in_cb_result = msrp_session_deliver_chunk(b->self, b->deliver_in_cb, 1000, NULL);
  b->messages++;
  b->total_bytes += len;
  bump(b);
  pthread_mutex_unlock(&b->m);
}

static void s_on_chunk(void *ud, msrp_chunk *c) {
  inbox *b = ud;
  pthread_mutex_lock(&b->m);
  const uint8_t *d = NULL;
  size_t n = 0;
  uint64_t start = 0, end = 0, total = 0;
  /* (test_chat_interrupts_a_long_chunk's chat line is not part of the file) */
  bool chat = b->seq && msrp_chunk_data(c, &d, &n) == MSRP_RESULT_OK && n == 9 && memcmp(d, "chat line", 9) == 0;
  if (b->stream_buf && !chat && msrp_chunk_data(c, &d, &n) == MSRP_RESULT_OK &&
      msrp_chunk_byte_range(c, &start, &end, &total) == MSRP_RESULT_OK && start >= 1 &&
      start - 1 + n <= b->stream_cap) {
    if (n) memcpy(b->stream_buf + start - 1, d, n);
    b->stream_got += n;
    if (msrp_chunk_flag(c) == MSRP_FLAG_END) b->stream_done = 1;
  }
  if (b->seq && b->seq_n < b->seq_cap) {
    char *range = NULL;
    msrp_chunk_header(c, "Byte-Range", &range);
    b->seq[b->seq_n++] = (struct seen_chunk){
        .n = n, .flag = msrp_chunk_flag(c), .chat = chat,
        .star = range && strstr(range, "-*/") != NULL};
    msrp_string_free(range);
  }
  bool keep = b->kept && b->chunks % 2 == 0 && b->kept_n < b->kept_cap;
  if (keep) b->kept[b->kept_n++] = c;
  b->chunks++;
  bump(b);
  pthread_mutex_unlock(&b->m);
  if (!keep) msrp_chunk_free(c);
}

static void s_on_report(void *ud, msrp_chunk *r) {
  inbox *b = ud;
  char *mid = NULL, *range = NULL;
  uint16_t code = 0;
  pthread_mutex_lock(&b->m);
  /* A REPORT cannot itself be reported on. */
  if (b->self) b->report_on_report_chunk = msrp_session_send_report(b->self, r, 500, NULL, NULL);
  msrp_chunk_message_id(r, &mid);
  msrp_chunk_header(r, "Byte-Range", &range);
  msrp_chunk_status(r, &code, NULL);
  snprintf(b->last_report_mid, sizeof b->last_report_mid, "%s", mid ? mid : "");
  snprintf(b->last_report_range, sizeof b->last_report_range, "%s", range ? range : "");
  b->last_report_status = code;
  b->reports++;
  bump(b);
  pthread_mutex_unlock(&b->m);
  msrp_string_free(mid);
  msrp_string_free(range);
  msrp_chunk_free(r);
}

static void s_on_aborted(void *ud, const char *mid) {
  inbox *b = ud;
  (void)mid;
  pthread_mutex_lock(&b->m);
  b->aborted++;
  bump(b);
  pthread_mutex_unlock(&b->m);
}

static void s_on_closed(void *ud, msrp_result why, const char *msg) {
  inbox *b = ud;
  (void)msg;
  pthread_mutex_lock(&b->m);
  b->closed++;
  b->closed_reason = why;
  bump(b);
  pthread_mutex_unlock(&b->m);
}

static void s_free(void *ud) {
  inbox *b = ud;
  pthread_mutex_lock(&b->m);
  b->freed++;
  bump(b);
  pthread_mutex_unlock(&b->m);
}

/* Waits until *field (an int in the inbox) reaches at least `want`. */
static int wait_for(inbox *b, const int *field, int want, int ms) { return wait_int(&b->m, &b->c, field, want, ms); }

static const msrp_session_callbacks CBS = {
    .on_message = s_on_message, .on_chunk = s_on_chunk, .on_report = s_on_report, .on_aborted = s_on_aborted, .on_closed = s_on_closed};

typedef struct {
  msrp_context *ctx;
  msrp_session *a, *b;
  inbox ia, ib;
} spair;

static void spair_open_ctx(spair *p, const msrp_session_options *oa, const msrp_session_options *ob,
                           bool no_busy_wait) {
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  co.no_busy_wait = no_busy_wait;
  CHECK_OK(msrp_context_new(&co, &p->ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(p->ctx, false, NULL, &ta, &tb);
  inbox_init(&p->ia);
  inbox_init(&p->ib);
  CHECK_OK(msrp_session_new(ta, oa, &CBS, &p->ia, s_free, &p->a));
  CHECK_OK(msrp_session_new(tb, ob, &CBS, &p->ib, s_free, &p->b));
}

static void spair_open(spair *p, const msrp_session_options *oa, const msrp_session_options *ob) {
  spair_open_ctx(p, oa, ob, false);
}

static void spair_close(spair *p) {
  msrp_session_free(p->a);
  msrp_session_free(p->b);
  CHECK(wait_for(&p->ia, &p->ia.freed, 1, 5000) && wait_for(&p->ib, &p->ib.freed, 1, 5000));
  CHECK(p->ia.closed == 1 && p->ib.closed == 1); /* on_closed once, before userdata_free */
  msrp_context_free(p->ctx);
  inbox_destroy(&p->ia);
  inbox_destroy(&p->ib);
}

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int done;
  uint16_t code;
  uint64_t sent, acked, total;
  int progress_calls;
} msgwatch;

static void mw_init(msgwatch *w) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->m, NULL);
  pthread_cond_init(&w->c, NULL);
}

static void mw_progress(void *ud, uint64_t msg, uint64_t sent, uint64_t acked, uint64_t total) {
  msgwatch *w = ud;
  (void)msg;
  pthread_mutex_lock(&w->m);
  w->sent = sent;
  w->acked = acked;
  w->total = total;
  w->progress_calls++;
  pthread_mutex_unlock(&w->m);
}

static void mw_done(void *ud, uint64_t msg, const char *mid, uint16_t code, const char *comment) {
  (void)mid;
  msgwatch *w = ud;
  (void)msg;
  (void)comment;
  pthread_mutex_lock(&w->m);
  w->code = code;
  w->done++;
  pthread_cond_broadcast(&w->c);
  pthread_mutex_unlock(&w->m);
}

static int mw_wait(msgwatch *w, int ms) {
  double until = now_ms() + ms;
  pthread_mutex_lock(&w->m);
  while (!w->done && now_ms() < until) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->c, &w->m, &ts);
  }
  int d = w->done;
  pthread_mutex_unlock(&w->m);
  return d;
}

static const msrp_message_callbacks MW = {.on_progress = mw_progress, .on_done = mw_done};

/* deliver_chunk gets 200 both ways, call after call (from the second call
 * on, the wait starts busy-waiting unless the context turned that off). */
static void test_deliver_chunk_both_ways(bool no_busy_wait) {
  spair p;
  spair_open_ctx(&p, NULL, NULL, no_busy_wait);
  msrp_session *sides[2] = {p.a, p.b};
  inbox *boxes[2] = {&p.ib, &p.ia};
  for (int i = 0; i < 2; i++) {
    msrp_chunk_params prm;
    memset(&prm, 0, sizeof prm);
    prm.data = (const uint8_t *)"hi there";
    prm.data_len = 8;
    msrp_chunk *c = NULL;
    CHECK_OK(msrp_session_make_chunk(sides[i], &prm, &c));
    CHECK_OK(msrp_chunk_set_content_type(c, "text/plain"));
    uint16_t code = 0;
    for (int k = 1; k <= 20; k++) {
      code = 0;
      CHECK_OK(msrp_session_deliver_chunk(sides[i], c, 5000, &code));
      CHECK(code == 200);
      CHECK(wait_for(boxes[i], &boxes[i]->messages, k, 5000));
    }
    CHECK(boxes[i]->last_len == 8 && memcmp(boxes[i]->last, "hi there", 8) == 0);
    CHECK(strcmp(boxes[i]->last_ct, "text/plain") == 0);
    /* Failure-Report: no returns at once with 200 */
    CHECK_OK(msrp_chunk_set_failure_report(c, MSRP_REPORT_NO));
    code = 0;
    CHECK_OK(msrp_session_deliver_chunk(sides[i], c, 5000, &code));
    CHECK(code == 200);
    msrp_chunk_free(c);
  }
  spair_close(&p);
}

/* A blocking deliver_chunk inside a callback is refused (it would wait for
 * the thread that runs it) before anything is sent. */
static void test_deliver_chunk_in_callback(void) {
  spair p;
  spair_open(&p, NULL, NULL);
  msrp_chunk_params prm;
  memset(&prm, 0, sizeof prm);
  prm.data = (const uint8_t *)"from the callback";
  prm.data_len = 17;
  msrp_chunk *back = NULL;
  CHECK_OK(msrp_session_make_chunk(p.b, &prm, &back));
  CHECK_OK(msrp_chunk_set_content_type(back, "text/plain"));
  pthread_mutex_lock(&p.ib.m);
  p.ib.self = p.b;
  p.ib.deliver_in_cb = back;
  pthread_mutex_unlock(&p.ib.m);
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"ping", 4, "text/plain", NULL, NULL, NULL, NULL));
  CHECK(wait_for(&p.ib, &p.ib.messages, 1, 5000));
  pthread_mutex_lock(&p.ib.m);
  CHECK(p.ib.deliver_in_cb_result == MSRP_RESULT_IN_CALLBACK);
  p.ib.deliver_in_cb = NULL;
  pthread_mutex_unlock(&p.ib.m);
  /* Nothing went to A: a later message is the first A receives. */
  uint16_t code = 0;
  CHECK_OK(msrp_session_deliver_chunk(p.b, back, 5000, &code));
  CHECK(wait_for(&p.ia, &p.ia.messages, 1, 5000));
  usleep(100 * 1000);
  CHECK(p.ia.messages == 1);
  msrp_chunk_free(back);
  spair_close(&p);
}

/* Success-Report yes brings back one REPORT with the message id and whole byte range. */
static void test_success_report(void) {
  msrp_session_options o = msrp_session_options_default();
  o.chunk_size = 1000;
  spair p;
  spair_open(&p, &o, NULL);
  uint8_t data[4500];
  memset(data, 'r', sizeof data);
  msrp_message_options mo = msrp_message_options_default();
  mo.success_report = true;
  mo.message_id = "report-me-please";
  msgwatch w;
  mw_init(&w);
  CHECK_OK(msrp_session_send_message(p.a, data, sizeof data, "text/plain", &mo, &MW, &w, NULL));
  CHECK(mw_wait(&w, 5000) && w.code == 200);
  CHECK(w.acked == sizeof data && w.total == sizeof data && w.progress_calls >= 5);
  CHECK(wait_for(&p.ia, &p.ia.reports, 1, 5000));
  usleep(50000);
  CHECK(p.ia.reports == 1);
  CHECK(strcmp(p.ia.last_report_mid, "report-me-please") == 0);
  CHECK(strcmp(p.ia.last_report_range, "1-4500/4500") == 0);
  CHECK(p.ia.last_report_status == 200);
  spair_close(&p);
}

/* The application reports a failure found after the 200 (reference
 * send_report): a failure REPORT goes back when Failure-Report asks for it,
 * none for a 200 without Success-Report, and none with Failure-Report no. */
static void test_application_failure_report(void) {
  spair p;
  spair_open(&p, NULL, NULL);
  p.ib.self = p.b;
  p.ia.self = p.a;
  /* 200 about a message that asked for no success REPORT: nothing to send. */
  pthread_mutex_lock(&p.ib.m);
  p.ib.report_code = 200;
  pthread_mutex_unlock(&p.ib.m);
  msrp_message_options mo = msrp_message_options_default();
  mo.message_id = "fail-me-1";
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"hello", 5, "text/plain", &mo, NULL, NULL, NULL));
  CHECK(wait_for(&p.ib, &p.ib.messages, 1, 5000));
  CHECK(p.ib.report_result == MSRP_RESULT_OK && !p.ib.report_sent);
  /* A failure code: the REPORT reaches the sender with the message's range. */
  pthread_mutex_lock(&p.ib.m);
  p.ib.report_code = 503;
  pthread_mutex_unlock(&p.ib.m);
  mo.message_id = "fail-me-2";
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"second", 6, "text/plain", &mo, NULL, NULL, NULL));
  CHECK(wait_for(&p.ib, &p.ib.messages, 2, 5000));
  CHECK(p.ib.report_result == MSRP_RESULT_OK && p.ib.report_sent);
  CHECK(wait_for(&p.ia, &p.ia.reports, 1, 5000));
  CHECK(strcmp(p.ia.last_report_mid, "fail-me-2") == 0);
  CHECK(strcmp(p.ia.last_report_range, "1-6/6") == 0);
  CHECK(p.ia.last_report_status == 503);
  CHECK(p.ia.report_on_report_chunk == MSRP_RESULT_WRONG_KIND);
  /* Failure-Report no: the sender wants no failure REPORT. */
  mo.message_id = "fail-me-3";
  mo.failure_report = MSRP_REPORT_NO;
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"third", 5, "text/plain", &mo, NULL, NULL, NULL));
  CHECK(wait_for(&p.ib, &p.ib.messages, 3, 5000));
  CHECK(p.ib.report_result == MSRP_RESULT_OK && !p.ib.report_sent);
  usleep(100000);
  CHECK(p.ia.reports == 1);
  spair_close(&p);
}

/* Rules of the receiving side: 415, 413, 481, 501, NICKNAME, and the sender's view of them. */
static void test_receiving_rules(void) {
  msrp_session_options ob = msrp_session_options_default();
  ob.accept_types = "text/* message/cpim";
  ob.max_message_size = 1000;
  spair p;
  spair_open(&p, NULL, &ob);
  msgwatch w415, w413, wok;
  mw_init(&w415);
  mw_init(&w413);
  mw_init(&wok);
  uint8_t big[3000];
  memset(big, 'b', sizeof big);
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"png", 3, "image/png", NULL, &MW, &w415, NULL));
  CHECK_OK(msrp_session_send_message(p.a, big, sizeof big, "text/plain", NULL, &MW, &w413, NULL));
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"cpim", 4, "Message/CPIM", NULL, &MW, &wok, NULL));
  CHECK(mw_wait(&w415, 5000) && w415.code == 415);
  CHECK(mw_wait(&w413, 5000) && w413.code == 413);
  CHECK(mw_wait(&wok, 5000) && wok.code == 200);
  CHECK(wait_for(&p.ib, &p.ib.messages, 1, 5000));
  usleep(50000);
  CHECK(p.ib.messages == 1); /* the refused ones never reached the application */

  msrp_chunk *c = NULL;
  uint16_t code = 0;
  msrp_chunk_params prm;
  memset(&prm, 0, sizeof prm);
  prm.method = "FOO";
  CHECK_OK(msrp_session_make_chunk(p.a, &prm, &c));
  CHECK_RES(msrp_session_deliver_chunk(p.a, c, 5000, &code), MSRP_RESULT_TRANSACTION_FAILED);
  CHECK(code == 501);
  msrp_chunk_free(c);
  prm.method = "SEND";
  CHECK_OK(msrp_session_make_chunk(p.a, &prm, &c));
  CHECK_OK(msrp_chunk_set_to_path(c, "msrp://127.0.0.1:9/not-this-session;tcp"));
  CHECK_RES(msrp_session_deliver_chunk(p.a, c, 5000, &code), MSRP_RESULT_TRANSACTION_FAILED);
  CHECK(code == 481);
  msrp_chunk_free(c);
  prm.method = "NICKNAME";
  CHECK_OK(msrp_session_make_chunk(p.a, &prm, &c));
  CHECK_OK(msrp_chunk_remove_header(c, "Byte-Range"));
  CHECK_OK(msrp_chunk_remove_header(c, "Message-ID"));
  CHECK_RES(msrp_session_deliver_chunk(p.a, c, 5000, &code), MSRP_RESULT_TRANSACTION_FAILED);
  CHECK(code == 400); /* no Use-Nickname */
  CHECK_OK(msrp_chunk_add_header(c, "Use-Nickname", "\"Alice\""));
  CHECK_OK(msrp_session_deliver_chunk(p.a, c, 5000, &code));
  CHECK(code == 200);
  CHECK(wait_for(&p.ib, &p.ib.chunks, 1, 5000));
  msrp_chunk_free(c);
  /* REPORTs are never answered: deliver returns at once. */
  prm.method = "REPORT";
  CHECK_OK(msrp_session_make_chunk(p.a, &prm, &c));
  CHECK_OK(msrp_chunk_set_status(c, 200, "OK"));
  CHECK_OK(msrp_session_deliver_chunk(p.a, c, 5000, &code));
  CHECK(wait_for(&p.ib, &p.ib.reports, 1, 5000));
  msrp_chunk_free(c);
  spair_close(&p);
}

/* A response timeout gives 408 locally while the peer still receives the chunk;
 * when the peer closes, pending callbacks fire with errors. */
typedef struct {
  pthread_mutex_t m;
  int calls;
  uint16_t code;
  bool local;
} respwatch;

static void rw_cb(void *ud, uint16_t code, const char *comment, bool local) {
  respwatch *r = ud;
  (void)comment;
  pthread_mutex_lock(&r->m);
  r->calls++;
  r->code = code;
  r->local = local;
  pthread_mutex_unlock(&r->m);
}

static void test_timeout_and_peer_close(void) {
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&co, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  msrp_session_options o = msrp_session_options_default();
  o.response_timeout_ms = 1;
  inbox ia;
  inbox_init(&ia);
  msrp_session *a = NULL;
  CHECK_OK(msrp_session_new(ta, &o, &CBS, &ia, s_free, &a));
  /* The peer is a bare transport that reads but never answers. */
  msrp_chunk_params prm;
  memset(&prm, 0, sizeof prm);
  prm.data = (const uint8_t *)"x";
  prm.data_len = 1;
  msrp_chunk *c = NULL;
  CHECK_OK(msrp_session_make_chunk(a, &prm, &c));
  CHECK_OK(msrp_chunk_set_content_type(c, "text/plain"));
  uint16_t code = 0;
  CHECK_RES(msrp_session_deliver_chunk(a, c, 5000, &code), MSRP_RESULT_TIMEOUT);
  CHECK(code == 408);
  msrp_chunk *got = NULL;
  CHECK_OK(msrp_transport_read_chunk(tb, SIZE_MAX, 5000, &got, NULL));
  CHECK(msrp_chunk_size(got) == 1);
  msrp_chunk_free(got);
  /* Failure-Report partial: the local response at the deadline is 200. */
  CHECK_OK(msrp_chunk_set_failure_report(c, MSRP_REPORT_PARTIAL));
  CHECK_OK(msrp_session_deliver_chunk(a, c, 5000, &code));
  CHECK(code == 200);
  msrp_chunk_free(c);
  msrp_transport_free(tb);
  CHECK(wait_for(&ia, &ia.closed, 1, 5000));
  CHECK(ia.closed_reason == MSRP_RESULT_CLOSED);
  CHECK(msrp_session_is_closed(a));
  /* Sending after close is an error, not a crash. */
  respwatch r;
  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.m, NULL);
  CHECK_OK(msrp_session_make_chunk(a, &prm, &c));
  CHECK_RES(msrp_session_send_chunk(a, c, rw_cb, &r), MSRP_RESULT_CLOSED);
  CHECK_RES(msrp_session_send_message(a, (const uint8_t *)"x", 1, "text/plain", NULL, NULL, NULL, NULL), MSRP_RESULT_CLOSED);
  msrp_chunk_free(c);
  msrp_session_free(a);
  CHECK(wait_for(&ia, &ia.freed, 1, 5000));
  CHECK(r.calls == 0);
  pthread_mutex_destroy(&r.m);
  inbox_destroy(&ia);
  msrp_context_free(ctx);
}

/* Pending responses fail locally (code 0) when the connection goes away. */
static void test_pending_callbacks_on_close(void) {
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&co, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  inbox ia;
  inbox_init(&ia);
  msrp_session *a = NULL;
  CHECK_OK(msrp_session_new(ta, NULL, &CBS, &ia, s_free, &a));
  respwatch r;
  memset(&r, 0, sizeof r);
  pthread_mutex_init(&r.m, NULL);
  msrp_chunk *c = NULL;
  CHECK_OK(msrp_session_make_chunk(a, NULL, &c));
  CHECK_OK(msrp_session_send_chunk(a, c, rw_cb, &r));
  msrp_chunk *got = NULL;
  CHECK_OK(msrp_transport_read_chunk(tb, SIZE_MAX, 5000, &got, NULL)); /* arrived, unanswered */
  msrp_chunk_free(got);
  msrp_transport_free(tb);
  CHECK(wait_for(&ia, &ia.closed, 1, 5000));
  pthread_mutex_lock(&r.m);
  CHECK(r.calls == 1 && r.code == 0 && r.local);
  pthread_mutex_unlock(&r.m);
  msrp_chunk_free(c);
  msrp_session_free(a);
  CHECK(wait_for(&ia, &ia.freed, 1, 5000));
  pthread_mutex_destroy(&r.m);
  inbox_destroy(&ia);
  msrp_context_free(ctx);
}

static char *temp_file(const uint8_t *data, size_t n) {
  char *name = malloc(64);
  snprintf(name, 64, "/tmp/msrp-test-XXXXXX");
  int fd = mkstemp(name);
  CHECK(fd >= 0);
  size_t off = 0;
  while (fd >= 0 && off < n) {
    ssize_t w = write(fd, data + off, n - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  CHECK(off == n);
  if (fd >= 0) close(fd);
  return name;
}

/* A 10 MB file and 1,000 small messages sent together arrive intact, and the
 * small ones do not wait for the file. */
static void test_file_and_chat_interleave(void) {
  enum { FILE_SIZE = 10 * 1000 * 1000, SMALL = 1000 };
  uint8_t *data = malloc(FILE_SIZE);
  for (size_t i = 0; i < FILE_SIZE; i++) data[i] = (uint8_t)((i * 2654435761u) >> 13);
  char *path = temp_file(data, FILE_SIZE);
  spair p;
  spair_open(&p, NULL, NULL);
  p.ib.big_len = FILE_SIZE;
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.path = path;
  f.fd = -1;
  f.content_type = "application/octet-stream";
  msrp_message_options mo = msrp_message_options_default();
  mo.content_disposition = "attachment; filename=\"big.bin\"";
  msgwatch wf;
  mw_init(&wf);
  uint64_t handle = 0;
  CHECK_OK(msrp_session_send_file(p.a, &f, &mo, &MW, &wf, &handle));
  CHECK(handle != 0);
  for (int i = 0; i < SMALL; i++) {
    char line[32];
    int n = snprintf(line, sizeof line, "line %d", i);
    CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)line, (size_t)n, "text/plain", NULL, NULL, NULL, NULL));
  }
  CHECK(mw_wait(&wf, 60000) && wf.code == 200);
  CHECK(wf.acked == FILE_SIZE && wf.total == FILE_SIZE);
  CHECK(wait_for(&p.ib, &p.ib.messages, SMALL + 1, 30000));
  pthread_mutex_lock(&p.ib.m);
  CHECK(p.ib.big_position == SMALL); /* every chat line arrived before the file finished */
  CHECK(p.ib.total_bytes > FILE_SIZE);
  pthread_mutex_unlock(&p.ib.m);
  spair_close(&p);
  /* the file's bytes: received whole at position SMALL; check them */
  unlink(path);
  free(path);
  free(data);
}

/* A pair whose receiving side (b) streams: its chunks are copied into a
 * zeroed buffer of `cap` bytes at their Byte-Range (freed by the caller). */
static void spair_open_streaming_chunks(spair *p, size_t cap, size_t chunk_size) {
  msrp_session_options oa = msrp_session_options_default();
  oa.chunk_size = chunk_size;
  msrp_session_options ob = msrp_session_options_default();
  ob.streaming = true;
  spair_open(p, &oa, &ob);
  p->ib.stream_buf = calloc(1, cap);
  p->ib.stream_cap = cap;
}

/* The same with the sender's default chunk size. */
static void spair_open_streaming(spair *p, size_t cap) { spair_open_streaming_chunks(p, cap, 0); }

/* The file's bytes arrive intact (compared byte for byte), and a transfer resumed
 * from a position completes the file on the receiving side. */
static void test_file_intact_and_resume(void) {
  enum { FILE_SIZE = 3 * 1000 * 1000, RESUME_AT = 1234567 };
  uint8_t *data = malloc(FILE_SIZE);
  for (size_t i = 0; i < FILE_SIZE; i++) data[i] = (uint8_t)(i * 31 + (i >> 9));
  char *path = temp_file(data, FILE_SIZE);
  spair p;
  spair_open_streaming(&p, FILE_SIZE);
  /* The receiver already has the first part (from an earlier, interrupted transfer). */
  memcpy(p.ib.stream_buf, data, RESUME_AT);
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.path = path;
  f.fd = -1;
  f.position = RESUME_AT;
  msgwatch w;
  mw_init(&w);
  CHECK_OK(msrp_session_send_file(p.a, &f, NULL, &MW, &w, NULL));
  CHECK(mw_wait(&w, 30000) && w.code == 200);
  CHECK(w.total == FILE_SIZE - RESUME_AT && w.acked == FILE_SIZE - RESUME_AT);
  CHECK(wait_for(&p.ib, &p.ib.stream_done, 1, 10000));
  pthread_mutex_lock(&p.ib.m);
  CHECK(p.ib.stream_got == FILE_SIZE - RESUME_AT);
  CHECK(memcmp(p.ib.stream_buf, data, FILE_SIZE) == 0);
  pthread_mutex_unlock(&p.ib.m);
  /* The same file from a descriptor, whole, in reassembly mode on the other side. */
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0);
  memset(&f, 0, sizeof f);
  f.fd = fd;
  mw_init(&w);
  p.ia.big_len = FILE_SIZE;
  CHECK_OK(msrp_session_send_file(p.b, &f, NULL, &MW, &w, NULL));
  close(fd); /* libmsrp reads its own duplicate */
  CHECK(mw_wait(&w, 30000) && w.code == 200);
  CHECK(wait_for(&p.ia, &p.ia.messages, 1, 10000));
  pthread_mutex_lock(&p.ia.m);
  CHECK(p.ia.last_len == FILE_SIZE && memcmp(p.ia.last, data, FILE_SIZE) == 0);
  pthread_mutex_unlock(&p.ia.m);
  free(p.ib.stream_buf);
  spair_close(&p);
  unlink(path);
  free(path);
  free(data);
}

/* RFC 4975 §7.1.1: a large message goes in long chunks whose Byte-Range
 * ends in '*', and a chat line sent while one is in flight ends it at once
 * ('+'): the line arrives between two chunks of the file, and both arrive
 * intact. The receiver streams, so it sees every chunk as it came. */
static void test_chat_interrupts_a_long_chunk(void) {
  enum { FILE_SIZE = 48 * 1000 * 1000, MAX_SEQ = 4096 };
  uint8_t *data = malloc(FILE_SIZE);
  for (size_t i = 0; i < FILE_SIZE; i++) data[i] = (uint8_t)((i * 2654435761u) >> 9);
  spair p;
  /* 256 KiB chunks: their bodies, of unannounced length, are assembled
   * past 128 KiB in a recycled buffer by the receiving reader. */
  spair_open_streaming_chunks(&p, FILE_SIZE, 256 * 1024);
  p.ib.seq = calloc(MAX_SEQ, sizeof *p.ib.seq);
  p.ib.seq_cap = MAX_SEQ;
  msgwatch w;
  mw_init(&w);
  CHECK_OK(msrp_session_send_message(p.a, data, FILE_SIZE, "application/octet-stream", NULL, &MW, &w, NULL));
  /* Once the file is on its way, a chat line. */
  CHECK(wait_for(&p.ib, &p.ib.chunks, 2, 30000));
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"chat line", 9, "text/plain", NULL, NULL, NULL, NULL));
  CHECK(mw_wait(&w, 60000) && w.code == 200);
  CHECK(wait_for(&p.ib, &p.ib.stream_done, 1, 30000));
  CHECK(wait_for(&p.ib, &p.ib.chunks, 3, 30000));
  pthread_mutex_lock(&p.ib.m);
  size_t chat_at = SIZE_MAX, file_chunks = 0, starred = 0;
  for (size_t i = 0; i < p.ib.seq_n; i++) {
    if (p.ib.seq[i].chat) {
      chat_at = i;
    } else {
      file_chunks++;
      if (p.ib.seq[i].star) starred++;
    }
  }
  CHECK(chat_at != SIZE_MAX);
  /* Between two chunks of the file: the one before it was ended with '+'. */
  CHECK(chat_at > 0 && chat_at + 1 < p.ib.seq_n);
  if (chat_at > 0 && chat_at != SIZE_MAX) CHECK(p.ib.seq[chat_at - 1].flag == MSRP_FLAG_MORE);
  /* Long chunks: about one per 256 KiB, though handed to the connection
   * 64 KiB at a time (64 KiB chunks would be 733), all over 2048 bytes and
   * so with '*' as range-end. */
  CHECK(file_chunks <= FILE_SIZE / (256 << 10) + 8);
  CHECK(starred == file_chunks);
  /* The file, reassembled from its chunks, is intact. */
  CHECK(p.ib.stream_got == FILE_SIZE);
  CHECK(memcmp(p.ib.stream_buf, data, FILE_SIZE) == 0);
  pthread_mutex_unlock(&p.ib.m);
  free(p.ib.seq);
  free(p.ib.stream_buf);
  spair_close(&p);
  free(data);
}

/* Received chunks the application keeps after its callback keep their
 * bodies while the rest of the transfer arrives: large bodies stay where the
 * connection read them, and a buffer is read into again only once no chunk
 * holds a piece of it. Every other chunk is kept, so buffers are partly
 * freed, then checked against the file once all of it has arrived. */
static void test_kept_chunks_stay_intact(void) {
  enum { FILE_SIZE = 6 * 1000 * 1000, MAX_KEPT = 200 };
  uint8_t *data = malloc(FILE_SIZE);
  for (size_t i = 0; i < FILE_SIZE; i++) data[i] = (uint8_t)((i * 2654435761u) >> 11);
  spair p;
  /* 64 KiB chunks from the sender (it would send 128 KiB ones by default). */
  spair_open_streaming_chunks(&p, FILE_SIZE, 65536);
  p.ib.kept = calloc(MAX_KEPT, sizeof *p.ib.kept);
  p.ib.kept_cap = MAX_KEPT;
  msgwatch w;
  mw_init(&w);
  CHECK_OK(msrp_session_send_message(p.a, data, FILE_SIZE, "application/octet-stream", NULL, &MW, &w, NULL));
  CHECK(mw_wait(&w, 30000) && w.code == 200);
  CHECK(wait_for(&p.ib, &p.ib.stream_done, 1, 10000));
  pthread_mutex_lock(&p.ib.m);
  CHECK(p.ib.stream_got == FILE_SIZE && memcmp(p.ib.stream_buf, data, FILE_SIZE) == 0);
  CHECK(p.ib.kept_n >= 40); /* 64 KiB chunks: about 46 of 92 kept */
  size_t kept_bytes = 0;
  for (size_t i = 0; i < p.ib.kept_n; i++) {
    const uint8_t *d = NULL;
    size_t n = 0;
    uint64_t start = 0, end = 0, total = 0;
    CHECK_OK(msrp_chunk_data(p.ib.kept[i], &d, &n));
    CHECK_OK(msrp_chunk_byte_range(p.ib.kept[i], &start, &end, &total));
    CHECK(n > 0 && start >= 1 && start - 1 + n <= FILE_SIZE);
    if (n > 0 && start >= 1 && start - 1 + n <= FILE_SIZE) CHECK(memcmp(d, data + start - 1, n) == 0);
    kept_bytes += n;
    msrp_chunk_free(p.ib.kept[i]);
  }
  CHECK(kept_bytes >= FILE_SIZE / 3);
  pthread_mutex_unlock(&p.ib.m);
  free(p.ib.kept);
  free(p.ib.stream_buf);
  spair_close(&p);
  free(data);
}

typedef struct {
  size_t left;
} counter_src;

static size_t read_counter(void *ud, uint8_t *buf, size_t len) {
  counter_src *s = ud;
  size_t n = len < s->left ? len : s->left;
  for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)('a' + (s->left - i) % 26);
  s->left -= n;
  return n;
}

/* A read callback of unknown length streams with '*' totals; cancel aborts with '#'. */
static void test_read_callback_and_cancel(void) {
  msrp_session_options oa = msrp_session_options_default();
  oa.chunk_size = 4096;
  oa.window = 1;
  spair p;
  spair_open(&p, &oa, NULL);
  counter_src src = {100000};
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.fd = -1;
  f.read = read_counter;
  f.read_userdata = &src;
  f.content_type = "text/plain";
  msgwatch w;
  mw_init(&w);
  CHECK_OK(msrp_session_send_file(p.a, &f, NULL, &MW, &w, NULL));
  CHECK(mw_wait(&w, 10000) && w.code == 200);
  CHECK(wait_for(&p.ib, &p.ib.messages, 1, 5000));
  CHECK(p.ib.last_len == 100000);
  /* Cancel a large message after its first chunks. */
  uint8_t *big = calloc(1, 2000000);
  msgwatch wc;
  mw_init(&wc);
  uint64_t h = 0;
  CHECK_OK(msrp_session_send_message(p.a, big, 2000000, "text/plain", NULL, &MW, &wc, &h));
  usleep(2000);
  msrp_result cr = msrp_session_cancel(p.a, h);
  CHECK(cr == MSRP_RESULT_OK || cr == MSRP_RESULT_NOT_FOUND);
  CHECK(mw_wait(&wc, 10000));
  if (cr == MSRP_RESULT_OK) {
    CHECK(wc.code == 0);
    CHECK(wait_for(&p.ib, &p.ib.aborted, 1, 5000));
  }
  CHECK_RES(msrp_session_cancel(p.a, h), MSRP_RESULT_NOT_FOUND);
  free(big);
  spair_close(&p);
}

typedef struct {
  size_t left;
  uint8_t fill; /* written into the buffer; 0: nothing is written */
  int dirty;    /* a buffer arrived holding something other than zeros or `fill` */
} fill_src;

static size_t read_fill(void *ud, uint8_t *buf, size_t len) {
  fill_src *s = ud;
  for (size_t i = 0; i < len; i++)
    if (buf[i] && buf[i] != s->fill) s->dirty = 1;
  size_t n = len < s->left ? len : s->left;
  if (s->fill) memset(buf, s->fill, n);
  s->left -= n;
  return n; /* with fill 0: claims n bytes without writing them */
}

/* Read buffers are recycled: within a message a read callback may get
 * back bytes it gave earlier for that message; a buffer new to the message
 * is zeroed. So one that claims bytes it did not write sends zeros, never
 * what another message left in the buffer: the second message here gets
 * the buffers the first one filled with 0xAB back from the shared pool. */
static void test_read_callback_buffer_holds_no_other_message(void) {
  spair p;
  spair_open(&p, NULL, NULL);
  enum { SIZE = 4 * 1024 * 1024 };
  fill_src first = {SIZE, 0xAB, 0}, second = {SIZE, 0, 0};
  fill_src *srcs[2] = {&first, &second};
  for (int k = 0; k < 2; k++) {
    msrp_outgoing_file f;
    memset(&f, 0, sizeof f);
    f.fd = -1;
    f.read = read_fill;
    f.read_userdata = srcs[k];
    f.size = SIZE;
    f.content_type = "application/octet-stream";
    msgwatch w;
    mw_init(&w);
    CHECK_OK(msrp_session_send_file(p.a, &f, NULL, &MW, &w, NULL));
    CHECK(mw_wait(&w, 10000) && w.code == 200);
    CHECK(wait_for(&p.ib, &p.ib.messages, k + 1, 5000));
  }
  CHECK(!first.dirty && !second.dirty);
  pthread_mutex_lock(&p.ib.m);
  int zeros = p.ib.last_len == SIZE;
  for (size_t i = 0; zeros && i < SIZE; i++) zeros = p.ib.last[i] == 0;
  pthread_mutex_unlock(&p.ib.m);
  CHECK(zeros);
  spair_close(&p);
}

/* Files queued by path hold no descriptor while they wait: with the
 * process allowed only about 40 more descriptors, 200 files queued at once
 * all go (before, each queued file kept its descriptor open, and the 40th
 * or so call failed with "Too many open files"). */
static void test_many_queued_files_hold_no_descriptors(void) {
  enum { FILES = 200, SIZE = 1000 };
  char dir[] = "/tmp/msrp_many_files_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[FILES][64];
  uint8_t body[SIZE];
  for (int i = 0; i < FILES; i++) {
    snprintf(path[i], sizeof path[i], "%s/f%d", dir, i);
    memset(body, 'a' + i % 26, sizeof body);
    FILE *f = fopen(path[i], "wb");
    CHECK(f && fwrite(body, 1, sizeof body, f) == sizeof body);
    if (f) fclose(f);
  }
  spair p;
  spair_open(&p, NULL, NULL);
  struct rlimit old;
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  int lowest = dup(0); /* the lowest free descriptor */
  close(lowest);
  struct rlimit low = old;
  low.rlim_cur = (rlim_t)lowest + 40;
  CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
  donebox d;
  donebox_init(&d);
  const msrp_message_callbacks cb = {.on_done = donebox_on_done};
  int queued = 0;
  for (int i = 0; i < FILES; i++) {
    msrp_outgoing_file f;
    memset(&f, 0, sizeof f);
    f.path = path[i];
    f.fd = -1;
    f.content_type = "application/octet-stream";
    if (msrp_session_send_file(p.a, &f, NULL, &cb, &d, NULL) == MSRP_RESULT_OK) queued++;
  }
  CHECK(queued == FILES);
  CHECK(wait_int(&d.m, &d.c, &d.done, queued, 20000) && d.ok == queued);
  CHECK(wait_for(&p.ib, &p.ib.messages, FILES, 20000));
  pthread_mutex_lock(&p.ib.m);
  CHECK(p.ib.total_bytes == (size_t)FILES * SIZE);
  /* the last one queued arrived last, whole */
  memset(body, 'a' + (FILES - 1) % 26, sizeof body);
  CHECK(p.ib.last_len == SIZE && memcmp(p.ib.last, body, SIZE) == 0);
  pthread_mutex_unlock(&p.ib.m);
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  spair_close(&p);
  donebox_destroy(&d);
  for (int i = 0; i < FILES; i++) unlink(path[i]);
  rmdir(dir);
}

typedef struct {
  msrp_session *s;
  uint64_t handle;
  size_t left;
  int calls;    /* reads that called into the session */
  int failures; /* of those calls */
} reentrant_src;

static size_t read_reentrant(void *ud, uint8_t *buf, size_t len) {
  reentrant_src *r = ud;
  char *id = NULL;
  if (msrp_session_message_id(r->s, r->handle, &id) != MSRP_RESULT_OK || !id || !*id) r->failures++;
  msrp_string_free(id);
  if (r->calls == 0 &&
      msrp_session_send_message(r->s, (const uint8_t *)"from read", 9, "text/plain", NULL, NULL, NULL, NULL) !=
          MSRP_RESULT_OK)
    r->failures++;
  r->calls++;
  size_t n = len < r->left ? len : r->left;
  memset(buf, 'r', n);
  r->left -= n;
  return n;
}

/* A read callback runs without the session locked, so it may call the
 * session's functions (here msrp_session_message_id and
 * msrp_session_send_message): before, the session was locked while it ran
 * and such a call never returned. */
static void test_read_callback_may_call_the_session(void) {
  msrp_session_options oa = msrp_session_options_default();
  oa.chunk_size = 4096;
  spair p;
  spair_open(&p, &oa, NULL);
  reentrant_src r = {p.a, 0, 20000, 0, 0};
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.fd = -1;
  f.read = read_reentrant;
  f.read_userdata = &r;
  f.size = 20000;
  f.content_type = "application/octet-stream";
  msgwatch w;
  mw_init(&w);
  CHECK_OK(msrp_session_send_file(p.a, &f, NULL, &MW, &w, &r.handle));
  CHECK(mw_wait(&w, 10000) && w.code == 200);
  CHECK(wait_for(&p.ib, &p.ib.messages, 2, 5000));
  CHECK(r.calls >= 5 && r.failures == 0);
  spair_close(&p);
}

/* What the peer's SDP allows (RFC 4975 §8.6 accept-types, max-size) is
 * checked before a message is queued: the call fails at once, nothing goes
 * out, and the session goes on. */
static void test_peer_accept_types_and_max_size(void) {
  msrp_session_options oa = msrp_session_options_default();
  oa.peer_accept_types = "text/plain message/*";
  oa.peer_max_size = 10;
  spair p;
  spair_open(&p, &oa, NULL);
  CHECK_RES(msrp_session_send_message(p.a, (const uint8_t *)"png", 3, "image/png", NULL, NULL, NULL, NULL),
            MSRP_RESULT_NOT_ACCEPTED_BY_PEER);
  CHECK(strstr(msrp_last_error_message(), "image/png") != NULL);
  CHECK_RES(msrp_session_send_message(p.a, (const uint8_t *)"0123456789x", 11, "text/plain", NULL, NULL, NULL,
                                      NULL),
            MSRP_RESULT_PEER_MAX_SIZE);
  CHECK(strstr(msrp_last_error_message(), "max-size") != NULL);
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.fd = -1;
  f.read = read_counter;
  counter_src src = {100};
  f.read_userdata = &src;
  f.size = 100;
  f.content_type = "text/plain";
  CHECK_RES(msrp_session_send_file(p.a, &f, NULL, NULL, NULL, NULL), MSRP_RESULT_PEER_MAX_SIZE);
  CHECK(src.left == 100); /* nothing was read */
  CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"fits", 4, "message/cpim", NULL, NULL, NULL, NULL));
  CHECK(wait_for(&p.ib, &p.ib.messages, 1, 5000));
  CHECK(strcmp(msrp_result_str(MSRP_RESULT_NOT_ACCEPTED_BY_PEER), "unknown result code") != 0);
  CHECK(strcmp(msrp_result_str(MSRP_RESULT_PEER_MAX_SIZE), "unknown result code") != 0);
  spair_close(&p);
}

/* shutdown(sync) sends what is queued first; without sync, pending callbacks fail. */
static void test_shutdown(void) {
  spair p;
  spair_open(&p, NULL, NULL);
  for (int i = 0; i < 50; i++)
    CHECK_OK(msrp_session_send_message(p.a, (const uint8_t *)"queued", 6, "text/plain", NULL, NULL, NULL, NULL));
  CHECK_OK(msrp_session_shutdown(p.a, true, 10000));
  CHECK(wait_for(&p.ib, &p.ib.messages, 50, 5000));
  CHECK(msrp_session_is_closed(p.a));
  CHECK_RES(msrp_session_send_message(p.a, (const uint8_t *)"late", 4, "text/plain", NULL, NULL, NULL, NULL), MSRP_RESULT_CLOSED);
  spair_close(&p);

  spair q;
  spair_open(&q, NULL, NULL);
  msgwatch w;
  mw_init(&w);
  uint8_t *big = calloc(1, 5000000);
  CHECK_OK(msrp_session_send_message(q.a, big, 5000000, "text/plain", NULL, &MW, &w, NULL));
  CHECK_OK(msrp_session_shutdown(q.a, false, 0));
  CHECK(mw_wait(&w, 5000));
  CHECK(w.code == 0 || w.code == 200); /* closed before it finished (or, rarely, just after) */
  free(big);
  spair_close(&q);
}

/* A single huge chunk reaches the session in bounded parts: one response for
 * the transaction, the message intact; over the size limit, one 413 and the
 * rest dropped, and the session goes on. */
static void test_huge_single_chunk(void) {
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&co, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  msrp_session_options ob = msrp_session_options_default();
  ob.max_message_size = 8 * 1024 * 1024;
  inbox ib;
  inbox_init(&ib);
  msrp_session *b = NULL;
  CHECK_OK(msrp_session_new(tb, &ob, &CBS, &ib, s_free, &b));

  enum { BIG = 5 * 1000 * 1000, HUGE = 20 * 1000 * 1000 };
  uint8_t *data = malloc(HUGE);
  for (size_t i = 0; i < HUGE; i++) data[i] = (uint8_t)(i * 13 + (i >> 11));
  msrp_chunk_params prm;
  memset(&prm, 0, sizeof prm);
  prm.data = data;
  prm.data_len = BIG;
  msrp_chunk *c = NULL, *r = NULL;
  bool changed = false;
  uint16_t code = 0;
  CHECK_OK(msrp_transport_make_chunk(ta, &prm, &c));
  CHECK_OK(msrp_chunk_set_content_type(c, "application/octet-stream"));
  CHECK_OK(msrp_chunk_ensure_unique_transaction_id(c, &changed));
  CHECK_OK(msrp_transport_write_chunk(ta, c, 30000));
  CHECK_OK(msrp_transport_read_chunk(ta, SIZE_MAX, 30000, &r, NULL));
  CHECK_OK(msrp_chunk_code(r, &code));
  CHECK(code == 200);
  msrp_chunk_free(r);
  r = NULL;
  CHECK_RES(msrp_transport_read_chunk(ta, SIZE_MAX, 300, &r, NULL), MSRP_RESULT_TIMEOUT); /* no second response */
  CHECK(wait_for(&ib, &ib.messages, 1, 10000));
  pthread_mutex_lock(&ib.m);
  CHECK(ib.last_len == BIG && memcmp(ib.last, data, BIG) == 0);
  pthread_mutex_unlock(&ib.m);
  msrp_chunk_free(c);

  /* 20 MB in one chunk, total not announced, to a session that takes 8 MiB. */
  prm.data_len = HUGE;
  prm.total = MSRP_BYTE_RANGE_UNKNOWN;
  prm.flag = MSRP_FLAG_END;
  CHECK_OK(msrp_transport_make_chunk(ta, &prm, &c));
  CHECK_OK(msrp_chunk_set_content_type(c, "application/octet-stream"));
  CHECK_OK(msrp_chunk_ensure_unique_transaction_id(c, &changed));
  CHECK_OK(msrp_transport_write_chunk(ta, c, 30000));
  CHECK_OK(msrp_transport_read_chunk(ta, SIZE_MAX, 30000, &r, NULL));
  CHECK_OK(msrp_chunk_code(r, &code));
  CHECK(code == 413);
  msrp_chunk_free(r);
  r = NULL;
  CHECK_RES(msrp_transport_read_chunk(ta, SIZE_MAX, 300, &r, NULL), MSRP_RESULT_TIMEOUT);
  msrp_chunk_free(c);
  /* ... and the session still takes ordinary messages. */
  prm.data = (const uint8_t *)"after";
  prm.data_len = 5;
  prm.total = 0;
  prm.flag = 0;
  CHECK_OK(msrp_transport_make_chunk(ta, &prm, &c));
  CHECK_OK(msrp_chunk_set_content_type(c, "text/plain"));
  CHECK_OK(msrp_transport_write_chunk(ta, c, 5000));
  CHECK_OK(msrp_transport_read_chunk(ta, SIZE_MAX, 5000, &r, NULL));
  CHECK_OK(msrp_chunk_code(r, &code));
  CHECK(code == 200);
  CHECK(wait_for(&ib, &ib.messages, 2, 5000));
  msrp_chunk_free(r);
  msrp_chunk_free(c);
  free(data);
  msrp_session_free(b);
  msrp_transport_free(ta);
  CHECK(wait_for(&ib, &ib.freed, 1, 5000));
  inbox_destroy(&ib);
  msrp_context_free(ctx);
}

/* Keep-alive: an idle session sends an empty SEND with Keep-Alive: yes. */
static void test_keepalive(void) {
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&co, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  msrp_session_options o = msrp_session_options_default();
  o.keepalive_ms = 50;
  msrp_session *a = NULL;
  CHECK_OK(msrp_session_new(ta, &o, NULL, NULL, NULL, &a));
  msrp_chunk *ka = NULL;
  CHECK_OK(msrp_transport_read_chunk(tb, SIZE_MAX, 5000, &ka, NULL));
  char *m = NULL, *h = NULL;
  CHECK_OK(msrp_chunk_method(ka, &m));
  CHECK_STR(m, "SEND");
  CHECK_OK(msrp_chunk_header(ka, "Keep-Alive", &h));
  CHECK_STR(h, "yes");
  CHECK(msrp_chunk_size(ka) == 0);
  CHECK_OK(msrp_transport_write_response(tb, ka, 200, "OK", 5000));
  msrp_chunk_free(ka);
  msrp_session_free(a);
  msrp_transport_free(tb);
  msrp_context_free(ctx);
}

/* A buffer lent to msrp_session_send_message_nocopy: how often it was
 * given back. */
typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int released;
} lent;

static void lent_init(lent *l) {
  memset(l, 0, sizeof *l);
  pthread_mutex_init(&l->m, NULL);
  pthread_cond_init(&l->c, NULL);
}

static void lent_release(void *ud) {
  lent *l = ud;
  pthread_mutex_lock(&l->m);
  l->released++;
  pthread_cond_broadcast(&l->c);
  pthread_mutex_unlock(&l->m);
}

static int lent_count(lent *l) {
  pthread_mutex_lock(&l->m);
  int n = l->released;
  pthread_mutex_unlock(&l->m);
  return n;
}

/* A message sent without a copy arrives intact and its buffer is given back
 * exactly once: after it was sent, at once when the call fails, and when
 * the session is freed with the message still queued. */
static void test_send_without_copy(void) {
  const size_t n = 5 * 1000 * 1000;
  uint8_t *buf = malloc(n);
  for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(i * 7 + i / 251);
  spair p;
  spair_open(&p, NULL, NULL);
  lent l;
  lent_init(&l);
  msgwatch w;
  mw_init(&w);
  uint64_t h = 0;
  CHECK_OK(msrp_session_send_message_nocopy(p.a, buf, n, lent_release, &l, "application/octet-stream", NULL, &MW, &w,
                                            &h));
  CHECK(h != 0);
  CHECK(mw_wait(&w, 10000) && w.code == 200);
  CHECK(wait_for(&p.ib, &p.ib.messages, 1, 5000));
  CHECK(p.ib.last_len == n && memcmp(p.ib.last, buf, n) == 0);
  CHECK(wait_int(&l.m, &l.c, &l.released, 1, 5000));
  /* A failing call gives the buffer back before it returns. */
  lent bad;
  lent_init(&bad);
  CHECK_RES(msrp_session_send_message_nocopy(p.a, buf, n, lent_release, &bad, "notatype", NULL, NULL, NULL, NULL),
            MSRP_RESULT_INVALID_HEADER);
  CHECK(lent_count(&bad) == 1);
  CHECK_RES(msrp_session_send_message_nocopy(NULL, buf, n, lent_release, &bad, "a/b", NULL, NULL, NULL, NULL),
            MSRP_RESULT_NULL_ARGUMENT);
  CHECK(lent_count(&bad) == 2);
  /* A NULL release: nothing to call (a buffer that outlives the session). */
  static const uint8_t hello[] = "hello";
  CHECK_OK(msrp_session_send_message_nocopy(p.a, hello, 5, NULL, NULL, "text/plain", NULL, NULL, NULL, NULL));
  CHECK(wait_for(&p.ib, &p.ib.messages, 2, 5000));
  CHECK(p.ib.last_len == 5 && memcmp(p.ib.last, "hello", 5) == 0);
  spair_close(&p);
  CHECK(lent_count(&l) == 1 && lent_count(&bad) == 2);

  /* Freed with a large message still queued: its buffer comes back once. */
  msrp_session_options oa = msrp_session_options_default();
  oa.chunk_size = 4096;
  oa.window = 1;
  spair q;
  spair_open(&q, &oa, NULL);
  lent queued;
  lent_init(&queued);
  CHECK_OK(msrp_session_send_message_nocopy(q.a, buf, n, lent_release, &queued, "application/octet-stream", NULL, NULL,
                                            NULL, NULL));
  spair_close(&q);
  CHECK(wait_int(&queued.m, &queued.c, &queued.released, 1, 5000));
  usleep(100000);
  CHECK(lent_count(&queued) == 1);
  CHECK(q.ib.messages == 0);
  free(buf);
}

static void test_bad_arguments(void) {
  msrp_session *s = NULL;
  CHECK_RES(msrp_session_new(NULL, NULL, NULL, NULL, NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_session_send_chunk(NULL, NULL, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_session_deliver_chunk(NULL, NULL, 0, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_session_send_message(NULL, NULL, 0, "a/b", NULL, NULL, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_session_send_file(NULL, NULL, NULL, NULL, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_session_cancel(NULL, 1), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_session_shutdown(NULL, false, 0), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(msrp_session_is_closed(NULL));
  msrp_session_free(NULL);

  spair p;
  spair_open(&p, NULL, NULL);
  CHECK_RES(msrp_session_send_message(p.a, NULL, 5, "text/plain", NULL, NULL, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_session_send_message(p.a, (const uint8_t *)"x", 1, "notatype", NULL, NULL, NULL, NULL), MSRP_RESULT_INVALID_HEADER);
  msrp_message_options mo = msrp_message_options_default();
  mo.failure_report = 9;
  CHECK_RES(msrp_session_send_message(p.a, (const uint8_t *)"x", 1, "text/plain", &mo, NULL, NULL, NULL), MSRP_RESULT_INVALID_ARGUMENT);
  mo = msrp_message_options_default();
  mo.message_id = "x";
  CHECK_RES(msrp_session_send_message(p.a, (const uint8_t *)"x", 1, "text/plain", &mo, NULL, NULL, NULL), MSRP_RESULT_INVALID_HEADER);
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.fd = -1;
  CHECK_RES(msrp_session_send_file(p.a, &f, NULL, NULL, NULL, NULL), MSRP_RESULT_INVALID_ARGUMENT);
  f.path = "/nonexistent/definitely/not/here";
  CHECK_RES(msrp_session_send_file(p.a, &f, NULL, NULL, NULL, NULL), MSRP_RESULT_IO);
  CHECK_LAST_ERROR_HAS("cannot open");
  msrp_chunk *resp = NULL;
  CHECK_OK(msrp_chunk_new_response("abcd", 200, NULL, &resp));
  CHECK_RES(msrp_session_send_chunk(p.a, resp, NULL, NULL), MSRP_RESULT_WRONG_KIND);
  msrp_chunk_free(resp);
  CHECK_RES(msrp_session_cancel(p.a, 424242), MSRP_RESULT_NOT_FOUND);
  spair_close(&p);
}

int main(void) {
  test_deliver_chunk_both_ways(false);
  test_deliver_chunk_both_ways(true);
  test_deliver_chunk_in_callback();
  test_success_report();
  test_application_failure_report();
  test_receiving_rules();
  test_timeout_and_peer_close();
  test_pending_callbacks_on_close();
  test_file_and_chat_interleave();
  test_file_intact_and_resume();
  test_kept_chunks_stay_intact();
  test_chat_interrupts_a_long_chunk();
  test_read_callback_and_cancel();
  test_read_callback_buffer_holds_no_other_message();
  test_read_callback_may_call_the_session();
  test_many_queued_files_hold_no_descriptors();
  test_peer_accept_types_and_max_size();
  test_shutdown();
  test_keepalive();
  test_huge_single_chunk();
  test_send_without_copy();
  test_bad_arguments();
  return check_summary("test_session");
}
