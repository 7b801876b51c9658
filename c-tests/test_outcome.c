/* A sent message's outcome, through the public header (the large-messages
 * issue, "message-level outcome", extra headers and keep-alive): on_done
 * carries the Message-ID, a message handle gives it, REPORTs about a
 * message reach that message's callbacks as well as the session's; extra
 * headers travel with every chunk; a keep-alive that fails ends the session
 * with a reason that says so. */
#include <unistd.h>

#include "raw.h"

typedef struct {
  pthread_mutex_t m;
  int done, msg_reports, session_reports, messages, closed;
  uint16_t done_code;
  char done_mid[64];
  char report_mid[64];
  uint16_t report_status;
  uint64_t report_msg;
  char recv_mid[64];
  char recv_content_id[64];
  char recv_custom[64];
  msrp_result closed_reason;
  char closed_msg[256];
} outcome;

static void o_init(outcome *o) {
  memset(o, 0, sizeof *o);
  pthread_mutex_init(&o->m, NULL);
}

static int o_wait(outcome *o, const int *f, int want, int ms) { return wait_int(&o->m, NULL, f, want, ms); }

static void copy_header(const msrp_chunk *c, const char *name, char *out, size_t cap) {
  char *v = NULL;
  out[0] = 0;
  if (msrp_chunk_header(c, name, &v) == MSRP_RESULT_OK && v) snprintf(out, cap, "%s", v);
  msrp_string_free(v);
}

static void m_done(void *ud, uint64_t msg, const char *mid, uint16_t code, const char *comment) {
  outcome *o = ud;
  (void)msg;
  (void)comment;
  pthread_mutex_lock(&o->m);
  o->done++;
  o->done_code = code;
  snprintf(o->done_mid, sizeof o->done_mid, "%s", mid);
  pthread_mutex_unlock(&o->m);
}

static void m_report(void *ud, uint64_t msg, const msrp_chunk *r) {
  outcome *o = ud;
  pthread_mutex_lock(&o->m);
  o->msg_reports++;
  o->report_msg = msg;
  copy_header(r, "Message-ID", o->report_mid, sizeof o->report_mid);
  char status[64];
  copy_header(r, "Status", status, sizeof status);
  o->report_status = (uint16_t)atoi(status + 4); /* "000 200 OK" */
  pthread_mutex_unlock(&o->m);
}

static void s_report(void *ud, msrp_chunk *r) {
  outcome *o = ud;
  pthread_mutex_lock(&o->m);
  o->session_reports++;
  pthread_mutex_unlock(&o->m);
  msrp_chunk_free(r);
}

static void s_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  outcome *o = ud;
  (void)data;
  (void)len;
  pthread_mutex_lock(&o->m);
  o->messages++;
  copy_header(head, "Message-ID", o->recv_mid, sizeof o->recv_mid);
  copy_header(head, "Content-ID", o->recv_content_id, sizeof o->recv_content_id);
  copy_header(head, "X-Custom", o->recv_custom, sizeof o->recv_custom);
  pthread_mutex_unlock(&o->m);
}

static void s_closed(void *ud, msrp_result why, const char *msg) {
  outcome *o = ud;
  pthread_mutex_lock(&o->m);
  o->closed++;
  o->closed_reason = why;
  snprintf(o->closed_msg, sizeof o->closed_msg, "%s", msg);
  pthread_mutex_unlock(&o->m);
}

/* A read callback that holds its data back until `asked` is set. */
typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int asked;
  size_t left;
} gate;

static size_t gated_read(void *ud, uint8_t *buf, size_t len) {
  gate *g = ud;
  pthread_mutex_lock(&g->m);
  for (int i = 0; i < 1000 && !g->asked; i++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&g->c, &g->m, &ts);
  }
  size_t n = len < g->left ? len : g->left;
  g->left -= n;
  pthread_mutex_unlock(&g->m);
  memset(buf, 'x', n);
  return n;
}

static const msrp_session_callbacks CBS = {.on_message = s_message, .on_report = s_report, .on_closed = s_closed};

/* on_done carries the Message-ID, msrp_session_message_id gives the same
 * while the message is sent, the receiver sees it; the success REPORT
 * reaches the message's on_report and the session's on_report; extra
 * headers arrive; the session's own headers are refused as extras. */
static void test_message_id_reports_and_headers(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  outcome a, b;
  o_init(&a);
  o_init(&b);
  msrp_session *sa = NULL, *sb = NULL;
  CHECK_OK(msrp_session_new(ta, NULL, &CBS, &a, NULL, &sa));
  CHECK_OK(msrp_session_new(tb, NULL, &CBS, &b, NULL, &sb));

  msrp_message_options mo = msrp_message_options_default();
  mo.success_report = true;
  msrp_extra_header hs[2] = {{"Content-ID", "<part1@example.com>"}, {"X-Custom", "yes"}};
  mo.headers = hs;
  mo.headers_len = 2;
  msrp_message_callbacks mc = {.on_done = m_done, .on_report = m_report};
  uint64_t id = 0;
  /* Its data comes from a read callback that waits until the Message-ID was
   * asked for: the message is surely still being sent then (a plain 300 kB
   * message could finish first on a fast loopback, as a fresh-clone run
   * once showed). */
  gate g;
  memset(&g, 0, sizeof g);
  pthread_mutex_init(&g.m, NULL);
  pthread_cond_init(&g.c, NULL);
  g.left = 300 * 1000;
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.fd = -1;
  f.read = gated_read;
  f.read_userdata = &g;
  f.size = g.left;
  f.content_type = "application/octet-stream";
  CHECK_OK(msrp_session_send_file(sa, &f, &mo, &mc, &a, &id));
  char *mid = NULL;
  CHECK_OK(msrp_session_message_id(sa, id, &mid));
  pthread_mutex_lock(&g.m);
  g.asked = 1;
  pthread_cond_broadcast(&g.c);
  pthread_mutex_unlock(&g.m);
  CHECK(o_wait(&a, &a.done, 1, 10000));
  CHECK(o_wait(&a, &a.msg_reports, 1, 10000));
  CHECK(o_wait(&b, &b.messages, 1, 10000));
  CHECK(o_wait(&a, &a.session_reports, 1, 10000));
  CHECK(mid && strcmp(a.done_mid, mid) == 0 && strcmp(b.recv_mid, mid) == 0);
  CHECK(a.done_code == 200);
  CHECK(a.report_msg == id && strcmp(a.report_mid, mid) == 0 && a.report_status == 200);
  CHECK(strcmp(b.recv_content_id, "<part1@example.com>") == 0 && strcmp(b.recv_custom, "yes") == 0);
  msrp_string_free(mid);
  /* Done: the handle no longer names a message being sent. */
  CHECK_RES(msrp_session_message_id(sa, id, &mid), MSRP_RESULT_NOT_FOUND);
  pthread_mutex_destroy(&g.m); /* done: the message was read whole */
  pthread_cond_destroy(&g.c);

  /* The session writes these itself. */
  msrp_extra_header own[1] = {{"Message-ID", "mine"}};
  mo.headers = own;
  mo.headers_len = 1;
  CHECK(msrp_session_send_message(sa, (const uint8_t *)"x", 1, "text/plain", &mo, NULL, NULL, NULL) !=
        MSRP_RESULT_OK);
  msrp_extra_header bad[1] = {{"X-Bad", "line\r\nInjected: 1"}};
  mo.headers = bad;
  CHECK(msrp_session_send_message(sa, (const uint8_t *)"x", 1, "text/plain", &mo, NULL, NULL, NULL) !=
        MSRP_RESULT_OK);

  msrp_session_free(sa);
  msrp_session_free(sb);
  msrp_context_free(ctx);
  pthread_mutex_destroy(&a.m);
  pthread_mutex_destroy(&b.m);
}

/* Reads from the raw peer until a SEND with a Keep-Alive header arrived;
 * writes its transaction id to tid. */
static int read_keepalive(int fd, char *tid, size_t cap, int ms) {
  static char buf[65536];
  size_t len = 0;
  double until = now_ms() + ms;
  for (;;) {
    buf[len] = 0;
    char *k = strstr(buf, "Keep-Alive");
    if (k) {
      char *start = k;
      while (start > buf && strncmp(start, "MSRP ", 5) != 0) start--;
      if (sscanf(start, "MSRP %31s SEND", tid) == 1 && strlen(tid) < cap) return 1;
      return 0;
    }
    int left = (int)(until - now_ms());
    if (left <= 0) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) return 0;
    ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (r <= 0) return 0;
    len += (size_t)r;
    if (len >= sizeof buf - 1) len = 0;
  }
}

/* A keep-alive that gets no response (the peer reads but never answers), or
 * an error response, ends the session with a reason that says so. */
static void test_keepalive_failures(void) {
  for (int answer = 0; answer < 2; answer++) {
    msrp_context *ctx = NULL;
    CHECK_OK(msrp_context_new(NULL, &ctx));
    rawpeer p;
    msrp_transport *t = NULL;
    raw_bind(ctx, &p, &t);
    outcome o;
    o_init(&o);
    msrp_session_options so = msrp_session_options_default();
    so.keepalive_ms = 200;
    so.response_timeout_ms = 400;
    msrp_session *s = NULL;
    CHECK_OK(msrp_session_new(t, &so, &CBS, &o, NULL, &s));
    char tid[32] = "";
    CHECK(read_keepalive(p.fd, tid, sizeof tid, 5000));
    if (answer) {
      char resp[512];
      int n = snprintf(resp, sizeof resp, "MSRP %s 481 No Such Session\r\nTo-Path: %s\r\nFrom-Path: %s\r\n-------%s$\r\n",
                       tid, p.from, p.to, tid);
      CHECK(send_all(p.fd, resp, (size_t)n) == 0);
    }
    CHECK(o_wait(&o, &o.closed, 1, 5000));
    if (answer) {
      CHECK(o.closed_reason == MSRP_RESULT_TRANSACTION_FAILED);
      CHECK(strstr(o.closed_msg, "keep-alive") != NULL && strstr(o.closed_msg, "481") != NULL);
    } else {
      CHECK(o.closed_reason == MSRP_RESULT_TIMEOUT);
      CHECK(strstr(o.closed_msg, "keep-alive") != NULL);
    }
    close(p.fd);
    msrp_session_free(s);
    msrp_context_free(ctx);
    pthread_mutex_destroy(&o.m);
  }
}

int main(void) {
  test_message_id_reports_and_headers();
  test_keepalive_failures();
  return check_summary("test_outcome");
}
