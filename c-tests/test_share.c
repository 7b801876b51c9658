/* Several sessions on one connection (RFC 4975 §5.4, §7.3): sharing active
 * connectors, a sharing server, two processes with many sessions. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"

static msrp_context *new_ctx(void) { return new_ctx_threads(2); }

/* Heap in use now, from /proc (0 where it cannot be read). */
static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* What one session received. */
typedef struct {
  pthread_mutex_t *m;
  pthread_cond_t *c;
  int *total;
  int index;
  int got;      /* messages */
  int wrong;    /* messages that were another session's */
  size_t bytes; /* of the largest message */
  int closed;
  int chat_before_file_done; /* chat lines that came while the file was in flight */
  int *file_done;
} box;

static void b_on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  (void)head;
  box *b = ud;
  char want[64];
  snprintf(want, sizeof want, "message %d", b->index);
  pthread_mutex_lock(b->m);
  b->got++;
  if (len > b->bytes) b->bytes = len;
  if (len < 1000 && (len != strlen(want) || memcmp(data, want, len) != 0)) b->wrong++;
  if (len < 1000 && b->file_done && !*b->file_done) b->chat_before_file_done++;
  if (len >= 1000 && b->file_done) *b->file_done = 1;
  (*b->total)++;
  pthread_cond_broadcast(b->c);
  pthread_mutex_unlock(b->m);
}

static void b_on_closed(void *ud, msrp_result r, const char *msg) {
  (void)r;
  (void)msg;
  box *b = ud;
  pthread_mutex_lock(b->m);
  b->closed++;
  pthread_cond_broadcast(b->c);
  pthread_mutex_unlock(b->m);
}

static const msrp_session_callbacks CBS = {.on_message = b_on_message, .on_closed = b_on_closed};

/* Waits until *n >= want or `ms` passed; returns whether it got there. */
static int wait_count(pthread_mutex_t *m, pthread_cond_t *c, int *n, int want, int ms) {
  double until = now_ms() + ms;
  pthread_mutex_lock(m);
  while (*n < want && now_ms() < until) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
  }
  int ok = *n >= want;
  pthread_mutex_unlock(m);
  return ok;
}

/* Reads one line (without the newline) into buf; 0 at the end. */
static int read_line(FILE *f, char *buf, size_t cap) {
  if (!fgets(buf, (int)cap, f)) return 0;
  buf[strcspn(buf, "\n")] = 0;
  return 1;
}

static void send_text(msrp_session *s, int i) {
  char text[64];
  int n = snprintf(text, sizeof text, "message %d", i);
  CHECK_OK(msrp_session_send_message(s, (const uint8_t *)text, (size_t)n, "text/plain", NULL, NULL, NULL, NULL));
}

/* Sessions made from `transports`, each with its box. */
typedef struct {
  int n;
  box *boxes;
  msrp_session **sessions;
  pthread_mutex_t m;
  pthread_cond_t c;
  int total, closed_total;
} side;

static void side_init(side *s, int n) {
  memset(s, 0, sizeof *s);
  s->n = n;
  s->boxes = calloc((size_t)n, sizeof *s->boxes);
  s->sessions = calloc((size_t)n, sizeof *s->sessions);
  pthread_mutex_init(&s->m, NULL);
  pthread_cond_init(&s->c, NULL);
  for (int i = 0; i < n; i++) {
    s->boxes[i].m = &s->m;
    s->boxes[i].c = &s->c;
    s->boxes[i].total = &s->total;
    s->boxes[i].index = i;
  }
}

/* Frees the sessions (their on_closed may still run, until the context is freed). */
static void side_end(side *s) {
  for (int i = 0; i < s->n; i++) msrp_session_free(s->sessions[i]);
  memset(s->sessions, 0, (size_t)s->n * sizeof *s->sessions);
}

/* After the context is freed: no callback runs any more. */
static void side_free(side *s) {
  side_end(s);
  free(s->boxes);
  free(s->sessions);
  pthread_mutex_destroy(&s->m);
  pthread_cond_destroy(&s->c);
}

/* Waits for each completion and makes a session of each transport; returns how many bound. */
static int side_bind(side *s, completion *done, const char *who) {
  int bound = 0;
  for (int i = 0; i < s->n; i++) {
    if (completion_wait(&done[i], 60000) && done[i].result == MSRP_RESULT_OK) {
      bound++;
      CHECK_OK(msrp_session_new(done[i].transport, NULL, &CBS, &s->boxes[i], NULL, &s->sessions[i]));
    } else {
      fprintf(stderr, "%s: session %d not bound: %s\n", who, i, done[i].message);
    }
  }
  return bound;
}

static int side_check(side *s, const char *who) {
  int wrong = 0, missing = 0;
  for (int i = 0; i < s->n; i++) {
    wrong += s->boxes[i].wrong;
    missing += s->boxes[i].got != 1;
  }
  if (wrong || missing) fprintf(stderr, "%s: %d wrong, %d sessions without exactly one message\n", who, wrong, missing);
  return wrong == 0 && missing == 0;
}

/* The passive side of the two-process test: a sharing server. Writes its
 * paths, reads the peer's, completes, receives one message per session
 * and answers each. */
static int run_server(int n, FILE *to_client, FILE *from_client) {
  msrp_context *ctx = new_ctx();
  msrp_server *srv = NULL;
  CHECK_OK(msrp_server_new(ctx, false, NULL, &srv));
  CHECK_OK(msrp_server_set_share_connections(srv, true));
  char **spath = calloc((size_t)n, sizeof *spath);
  for (int i = 0; i < n; i++) {
    CHECK_OK(msrp_server_prepare(srv, NULL, &spath[i]));
    fprintf(to_client, "%s\n", spath[i] ? spath[i] : "none");
  }
  fflush(to_client);
  completion *done = calloc((size_t)n, sizeof *done);
  char line[512];
  long before = rss_kib();
  for (int i = 0; i < n; i++) {
    completion_init(&done[i]);
    if (!read_line(from_client, line, sizeof line)) {
      fprintf(stderr, "server: the client's path %d did not come\n", i);
      return 1;
    }
    CHECK_OK(msrp_server_complete_async(srv, line, 60000, on_complete, &done[i]));
  }
  side s;
  side_init(&s, n);
  int bound = side_bind(&s, done, "server");
  CHECK(bound == n);
  CHECK(wait_count(&s.m, &s.c, &s.total, n, 60000));
  long after = rss_kib();
  CHECK(side_check(&s, "server"));
  for (int i = 0; i < n; i++)
    if (s.sessions[i]) send_text(s.sessions[i], i);
  printf("server: %d sessions bound, %d messages received; memory %.1f KiB per session (RSS %ld -> %ld KiB)\n", bound, s.total,
         (double)(after - before) / n, before, after);
  /* The client closes when it has its answers; the sessions see it. */
  for (int i = 0; i < n; i++) s.boxes[i].total = &s.closed_total;
  int closed_seen = 0;
  double until = now_ms() + 60000;
  while (now_ms() < until) {
    pthread_mutex_lock(&s.m);
    closed_seen = 0;
    for (int i = 0; i < n; i++) closed_seen += s.boxes[i].closed > 0;
    pthread_mutex_unlock(&s.m);
    if (closed_seen == n) break;
    usleep(20000);
  }
  CHECK(closed_seen == n);
  side_end(&s);
  for (int i = 0; i < n; i++) {
    completion_destroy(&done[i]);
    msrp_string_free(spath[i]);
  }
  free(done);
  free(spath);
  msrp_server_free(srv);
  msrp_context_free(ctx);
  side_free(&s);
  return check_summary("test_share (server process)");
}

/* The active side: one sharing connector per session. */
static int run_client(int n, FILE *to_server, FILE *from_server) {
  msrp_context *ctx = new_ctx();
  char **spath = calloc((size_t)n, sizeof *spath);
  char line[512];
  for (int i = 0; i < n; i++) {
    if (!read_line(from_server, line, sizeof line)) {
      fprintf(stderr, "client: the server's path %d did not come\n", i);
      return 1;
    }
    spath[i] = strdup(line);
  }
  long before = rss_kib();
  msrp_connector **con = calloc((size_t)n, sizeof *con);
  completion *done = calloc((size_t)n, sizeof *done);
  for (int i = 0; i < n; i++) {
    char *cpath = NULL;
    completion_init(&done[i]);
    CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con[i]));
    CHECK_OK(msrp_connector_set_share_connection(con[i], true));
    CHECK_OK(msrp_connector_prepare(con[i], NULL, &cpath));
    fprintf(to_server, "%s\n", cpath ? cpath : "none");
    msrp_string_free(cpath);
  }
  fflush(to_server);
  double t0 = now_ms();
  for (int i = 0; i < n; i++) CHECK_OK(msrp_connector_complete_async(con[i], spath[i], 60000, on_complete, &done[i]));
  side s;
  side_init(&s, n);
  int bound = side_bind(&s, done, "client");
  double bind_ms = now_ms() - t0;
  CHECK(bound == n);
  size_t conns = 0, sessions = 0;
  CHECK_OK(msrp_context_shared_connections(ctx, &conns, &sessions));
  /* 4096 sessions per connection at most: 10,000 take three. */
  CHECK(conns >= 1 && conns <= 4 && conns == (size_t)(n + 4095) / 4096);
  CHECK(sessions == (size_t)n);
  for (int i = 0; i < n; i++)
    if (s.sessions[i]) send_text(s.sessions[i], i);
  CHECK(wait_count(&s.m, &s.c, &s.total, n, 60000));
  long after = rss_kib();
  CHECK(side_check(&s, "client"));
  printf("client: %d sessions on %zu connections (bound in %.0f ms), %d answers received; memory %.1f KiB per session (RSS %ld -> %ld KiB)\n",
         bound, conns, bind_ms, s.total, (double)(after - before) / n, before, after);
  side_end(&s);
  CHECK_OK(msrp_context_shared_connections(ctx, &conns, &sessions));
  CHECK(conns == 0 && sessions == 0); /* the last session took each connection along */
  for (int i = 0; i < n; i++) {
    completion_destroy(&done[i]);
    msrp_connector_free(con[i]);
    free(spath[i]);
  }
  free(done);
  free(con);
  free(spath);
  msrp_context_free(ctx);
  side_free(&s);
  return check_summary("test_share (client process)");
}

/* n sessions between two processes over shared connections; a message each way on each. */
static void test_two_processes(int n) {
  int p2c[2], c2p[2];
  CHECK(pipe(p2c) == 0 && pipe(c2p) == 0);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(p2c[1]);
    close(c2p[0]);
    FILE *in = fdopen(p2c[0], "r"), *out = fdopen(c2p[1], "w");
    int rc = run_client(n, out, in);
    fclose(in);
    fclose(out);
    fflush(NULL);
    _exit(rc);
  }
  CHECK(pid > 0);
  close(p2c[0]);
  close(c2p[1]);
  FILE *out = fdopen(p2c[1], "w"), *in = fdopen(c2p[0], "r");
  int rc = run_server(n, out, in);
  fclose(out);
  fclose(in);
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(rc == 0);
}

/* A pair of sessions per index over one sharing connector/server pair in
 * this process. */
typedef struct {
  msrp_context *ctx;
  msrp_server *srv;
  side a, b; /* a: active (sharing connectors), b: server side */
} pairs;

static void pairs_close(pairs *p);
static size_t shared_conns(msrp_context *ctx);

/* A sharing connector completing against a path prepared on `srv`
 * (`server_uri` may be NULL; `fp`, when given, is the certificate the
 * connector expects); the server's complete is started too when
 * `server_completes`. */
typedef struct {
  char *spath, *cpath;
  msrp_connector *con;
  completion cd, sd;
} attempt;

static void attempt_start(attempt *t, msrp_context *ctx, msrp_server *srv, const char *server_uri, const char *fp,
                          bool server_completes) {
  memset(t, 0, sizeof *t);
  completion_init(&t->cd);
  completion_init(&t->sd);
  CHECK_OK(msrp_server_prepare(srv, server_uri, &t->spath));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &t->con));
  CHECK_OK(msrp_connector_set_share_connection(t->con, true));
  if (fp) CHECK_OK(msrp_connector_set_peer_fingerprint(t->con, fp));
  CHECK_OK(msrp_connector_prepare(t->con, NULL, &t->cpath));
  CHECK_OK(msrp_connector_complete_async(t->con, t->spath, 10000, on_complete, &t->cd));
  if (server_completes) CHECK_OK(msrp_server_complete_async(srv, t->cpath, 10000, on_complete, &t->sd));
}

/* Frees what attempt_start made (the transports are the caller's). */
static void attempt_end(attempt *t) {
  completion_destroy(&t->cd);
  completion_destroy(&t->sd);
  msrp_connector_free(t->con);
  msrp_string_free(t->spath);
  msrp_string_free(t->cpath);
}

/* Opens one more pair: a sharing connector (checking the server's
 * certificate by `fp` when given) to a URI prepared on the server; the
 * server completes it when `expect_ok`. Returns the connector's result. */
static msrp_result pair_add(pairs *p, int i, const char *server_uri, const char *fp, bool expect_ok) {
  attempt t;
  attempt_start(&t, p->ctx, p->srv, server_uri, fp, expect_ok);
  CHECK(completion_wait(&t.cd, 15000));
  if (expect_ok) {
    CHECK(completion_wait(&t.sd, 15000));
    CHECK(t.cd.result == MSRP_RESULT_OK && t.sd.result == MSRP_RESULT_OK);
    if (t.cd.transport) CHECK_OK(msrp_session_new(t.cd.transport, NULL, &CBS, &p->a.boxes[i], NULL, &p->a.sessions[i]));
    if (t.sd.transport) CHECK_OK(msrp_session_new(t.sd.transport, NULL, &CBS, &p->b.boxes[i], NULL, &p->b.sessions[i]));
  } else {
    CHECK_OK(msrp_server_cleanup(p->srv, t.spath));
  }
  msrp_result r = t.cd.result;
  attempt_end(&t);
  return r;
}

/* Sessions over msrps and over WebSocket share connections too; the TLS
 * check is part of what a connection is shared by: a connector expecting
 * another certificate does not join the open connection (it connects on
 * its own and is refused). */
static void test_sharing_over_msrps_and_ws(void) {
  msrp_tls *st = NULL;
  CHECK_OK(msrp_tls_new(&st));
  CHECK_OK(msrp_tls_generate_self_signed(st, "server.invalid"));
  char *fp = NULL;
  CHECK_OK(msrp_tls_fingerprint(st, NULL, &fp));
  const char *wrong = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
  const char *uris[] = {"msrps://127.0.0.1:0;tcp", "msrp://127.0.0.1:0;ws", "msrps://127.0.0.1:0;ws"};
  for (int k = 0; k < 3; k++) {
    pairs p;
    memset(&p, 0, sizeof p);
    p.ctx = new_ctx();
    CHECK_OK(msrp_server_new(p.ctx, false, NULL, &p.srv));
    CHECK_OK(msrp_server_set_share_connections(p.srv, true));
    CHECK_OK(msrp_server_set_tls(p.srv, st));
    side_init(&p.a, 3);
    side_init(&p.b, 3);
    int tls = strncmp(uris[k], "msrps", 5) == 0;
    for (int i = 0; i < 2; i++) CHECK(pair_add(&p, i, uris[k], tls ? fp : NULL, true) == MSRP_RESULT_OK);
    CHECK(shared_conns(p.ctx) == 1);
    if (tls) {
      CHECK(pair_add(&p, 2, uris[k], wrong, false) == MSRP_RESULT_TLS_FINGERPRINT_MISMATCH);
      CHECK(shared_conns(p.ctx) == 1);
    }
    for (int i = 0; i < 2; i++) {
      send_text(p.a.sessions[i], i);
      send_text(p.b.sessions[i], i);
    }
    CHECK(wait_count(&p.b.m, &p.b.c, &p.b.total, 2, 10000));
    CHECK(wait_count(&p.a.m, &p.a.c, &p.a.total, 2, 10000));
    for (int i = 0; i < 2; i++) CHECK(p.a.boxes[i].got == 1 && p.b.boxes[i].got == 1 && p.a.boxes[i].wrong + p.b.boxes[i].wrong == 0);
    printf("sharing over %s: 2 sessions on %zu connection\n", uris[k], shared_conns(p.ctx));
    pairs_close(&p);
  }
  msrp_string_free(fp);
  msrp_tls_free(st);
}

static void pairs_open(pairs *p, int n) {
  p->ctx = new_ctx();
  CHECK_OK(msrp_server_new(p->ctx, false, NULL, &p->srv));
  CHECK_OK(msrp_server_set_share_connections(p->srv, true));
  side_init(&p->a, n);
  side_init(&p->b, n);
  for (int i = 0; i < n; i++) CHECK(pair_add(p, i, NULL, NULL, true) == MSRP_RESULT_OK);
}

static void pairs_close(pairs *p) {
  side_end(&p->a);
  side_end(&p->b);
  msrp_server_free(p->srv);
  msrp_context_free(p->ctx);
  side_free(&p->a);
  side_free(&p->b);
}

static size_t shared_conns(msrp_context *ctx) {
  size_t c = 99;
  CHECK_OK(msrp_context_shared_connections(ctx, &c, NULL));
  return c;
}

/* The outcome of one sent message. */
typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int done;
  uint16_t code;
} msg_outcome;

static void outcome_init(msg_outcome *o) {
  memset(o, 0, sizeof *o);
  pthread_mutex_init(&o->m, NULL);
  pthread_cond_init(&o->c, NULL);
}

static void outcome_destroy(msg_outcome *o) {
  pthread_mutex_destroy(&o->m);
  pthread_cond_destroy(&o->c);
}

static void o_on_done(void *ud, uint64_t message, const char *message_id, uint16_t code, const char *comment) {
  (void)message;
  (void)message_id;
  (void)comment;
  msg_outcome *o = ud;
  pthread_mutex_lock(&o->m);
  o->code = code;
  o->done++;
  pthread_cond_broadcast(&o->c);
  pthread_mutex_unlock(&o->m);
}

static const msrp_message_callbacks OUTCOME_CBS = {.on_done = o_on_done};

/* A session that ends leaves the connection to the others (it does not
 * close it); the last one takes it along. */
static void test_a_session_ends_without_closing_the_connection(void) {
  pairs p;
  pairs_open(&p, 3);
  CHECK(shared_conns(p.ctx) == 1);
  msrp_session_free(p.a.sessions[0]);
  p.a.sessions[0] = NULL;
  CHECK(shared_conns(p.ctx) == 1);
  /* Its peer learns of the end from signalling (a SIP BYE), not from the
   * connection; a message it sends now gets 481 (RFC 4975 §7.3). */
  msg_outcome o;
  outcome_init(&o);
  const char *text = "anyone there?";
  CHECK_OK(msrp_session_send_message(p.b.sessions[0], (const uint8_t *)text, strlen(text), "text/plain", NULL, &OUTCOME_CBS, &o, NULL));
  CHECK(wait_count(&o.m, &o.c, &o.done, 1, 10000));
  CHECK(o.code == 481);
  CHECK(p.b.boxes[0].closed == 0);
  outcome_destroy(&o);
  /* The others still talk both ways. */
  for (int i = 1; i < 3; i++) {
    send_text(p.a.sessions[i], i);
    send_text(p.b.sessions[i], i);
  }
  CHECK(wait_count(&p.b.m, &p.b.c, &p.b.total, 2, 10000));
  CHECK(wait_count(&p.a.m, &p.a.c, &p.a.total, 2, 10000));
  for (int i = 1; i < 3; i++) {
    CHECK(p.a.boxes[i].got == 1 && p.a.boxes[i].wrong == 0 && p.a.boxes[i].closed == 0);
    CHECK(p.b.boxes[i].got == 1 && p.b.boxes[i].wrong == 0 && p.b.boxes[i].closed == 0);
  }
  msrp_session_free(p.a.sessions[1]);
  p.a.sessions[1] = NULL;
  CHECK(shared_conns(p.ctx) == 1);
  msrp_session_free(p.a.sessions[2]);
  p.a.sessions[2] = NULL;
  CHECK(shared_conns(p.ctx) == 0);
  CHECK(wait_count(&p.b.m, &p.b.c, &p.b.boxes[2].closed, 1, 10000));
  pairs_close(&p);
}

/* RFC 4975 §7.3: a request for a session the connection does not carry
 * gets 481 (and reaches no session). */
static void test_a_request_for_no_session_on_the_connection_gets_481(void) {
  msrp_context *ctx = new_ctx();
  msrp_server *srv = NULL;
  CHECK_OK(msrp_server_new(ctx, false, NULL, &srv));
  CHECK_OK(msrp_server_set_share_connections(srv, true));
  attempt t;
  attempt_start(&t, ctx, srv, NULL, NULL, true);
  CHECK(completion_wait(&t.cd, 10000) && completion_wait(&t.sd, 10000));
  const char *spath = t.spath, *cpath = t.cpath;
  msrp_transport *ct = t.cd.transport, *st = t.sd.transport;
  if (ct && st) {
    /* A SEND that is not the first of a session, for a session id the
     * server never bound on this connection: the server has no expected
     * URI with it, so the binding it would start is refused with 481. */
    msrp_chunk *c = NULL;
    CHECK_OK(msrp_chunk_new_request("SEND", &c));
    char *bogus = strdup(spath);
    char *slash = strrchr(bogus, '/');
    if (slash && slash[1]) slash[1] = slash[1] == 'x' ? 'y' : 'x'; /* another session id */
    CHECK_OK(msrp_chunk_set_to_path(c, bogus));
    CHECK_OK(msrp_chunk_set_from_path(c, cpath));
    CHECK_OK(msrp_chunk_set_message_id(c, "m12345"));
    CHECK_OK(msrp_chunk_set_data(c, (const uint8_t *)"hi", 2));
    CHECK_OK(msrp_chunk_set_content_type(c, "text/plain"));
    CHECK_OK(msrp_transport_write_chunk(ct, c, 5000));
    msrp_chunk *got = NULL;
    CHECK_OK(msrp_transport_read_chunk(ct, SIZE_MAX, 5000, &got, NULL));
    uint16_t code = 0;
    if (got) CHECK_OK(msrp_chunk_code(got, &code));
    CHECK(code == 481);
    msrp_chunk_free(got);
    /* The real session's transport saw nothing of it. */
    got = NULL;
    CHECK_RES(msrp_transport_read_chunk(st, SIZE_MAX, 300, &got, NULL), MSRP_RESULT_TIMEOUT);
    msrp_chunk_free(got);
    msrp_chunk_free(c);
    free(bogus);
  }
  msrp_transport_free(ct);
  msrp_transport_free(st);
  attempt_end(&t);
  msrp_server_free(srv);
  msrp_context_free(ctx);
}

/* A sharing connector whose peer does not demultiplex (a server without
 * msrp_server_set_share_connections): the second session's binding SEND
 * reaches the first session, which answers 481 (RFC 4975 §7.3); the second
 * complete fails with MSRP_RESULT_BIND_REJECTED and the first session goes
 * on. */
static void test_a_peer_that_does_not_share_refuses_the_second_session(void) {
  msrp_context *ctx = new_ctx();
  msrp_server *srv = NULL;
  CHECK_OK(msrp_server_new(ctx, false, NULL, &srv));
  side a, b;
  side_init(&a, 2);
  side_init(&b, 2);
  for (int i = 0; i < 2; i++) {
    attempt t;
    attempt_start(&t, ctx, srv, NULL, NULL, i == 0);
    CHECK(completion_wait(&t.cd, 10000));
    if (i == 0) {
      CHECK(completion_wait(&t.sd, 10000));
      CHECK(t.cd.result == MSRP_RESULT_OK && t.sd.result == MSRP_RESULT_OK);
      if (t.cd.transport) CHECK_OK(msrp_session_new(t.cd.transport, NULL, &CBS, &a.boxes[0], NULL, &a.sessions[0]));
      if (t.sd.transport) CHECK_OK(msrp_session_new(t.sd.transport, NULL, &CBS, &b.boxes[0], NULL, &b.sessions[0]));
    } else {
      CHECK(t.cd.result == MSRP_RESULT_BIND_REJECTED);
      CHECK(strstr(t.cd.message, "481") != NULL);
      CHECK(t.cd.transport == NULL);
      CHECK_OK(msrp_server_cleanup(srv, t.spath));
    }
    attempt_end(&t);
  }
  CHECK(shared_conns(ctx) == 1);
  send_text(a.sessions[0], 0);
  CHECK(wait_count(&b.m, &b.c, &b.total, 1, 10000));
  CHECK(b.boxes[0].got == 1 && b.boxes[0].wrong == 0 && b.boxes[0].closed == 0);
  side_end(&a);
  side_end(&b);
  msrp_server_free(srv);
  msrp_context_free(ctx);
  side_free(&a);
  side_free(&b);
}

/* A large file on one session while another chats on the same connection:
 * the chat lines arrive while the file is still in flight, and the file
 * arrives whole. */
static void test_chat_beside_a_file_on_one_connection(size_t file_len) {
  pairs p;
  pairs_open(&p, 2);
  CHECK(shared_conns(p.ctx) == 1);
  int file_done = 0;
  p.b.boxes[0].file_done = &file_done;
  p.b.boxes[1].file_done = &file_done;
  uint8_t *data = malloc(file_len);
  for (size_t i = 0; i < file_len; i++) data[i] = (uint8_t)(i * 7 + 3);
  CHECK_OK(msrp_session_send_message(p.a.sessions[0], data, file_len, "application/octet-stream", NULL, NULL, NULL, NULL));
  usleep(20000);
  int lines = 0;
  for (int k = 0; k < 5; k++) {
    send_text(p.a.sessions[1], 1);
    lines++;
    usleep(5000);
  }
  CHECK(wait_count(&p.b.m, &p.b.c, &p.b.total, 1 + lines, 60000));
  CHECK(p.b.boxes[0].got == 1 && p.b.boxes[0].bytes == file_len);
  CHECK(p.b.boxes[1].got == lines && p.b.boxes[1].wrong == 0);
  printf("chat beside a %zu-byte file: %d of %d chat lines arrived before the file was complete\n", file_len,
         p.b.boxes[1].chat_before_file_done, lines);
  CHECK(p.b.boxes[1].chat_before_file_done >= 1);
  free(data);
  pairs_close(&p);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc > 1 && strcmp(argv[1], "ends") == 0) {
    test_a_session_ends_without_closing_the_connection();
    return check_summary("test_share");
  }
  int slow = getenv("MSRP_UNDER_VALGRIND") != NULL;
  test_a_session_ends_without_closing_the_connection();
  test_a_request_for_no_session_on_the_connection_gets_481();
  test_a_peer_that_does_not_share_refuses_the_second_session();
  test_sharing_over_msrps_and_ws();
  test_chat_beside_a_file_on_one_connection(slow ? 8u << 20 : 64u << 20);
  test_two_processes(slow ? 200 : 10000);
  return check_summary("test_share");
}
