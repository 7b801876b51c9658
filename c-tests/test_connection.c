/* Connections over real loopback sockets through the public header:
 * context, direct connector and acceptor, shared-port server, transport,
 * loggers and queued callbacks. Mirrors the reference's own test suite. */
#include <dirent.h>
#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>

#include "net.h"

static msrp_context *new_ctx(bool queued) {
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  o.worker_threads = 2;
  o.queued_callbacks = queued;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&o, &ctx));
  return ctx;
}

static msrp_chunk *text_chunk(msrp_transport *t, const char *text, const char *ct, uint8_t flag) {
  msrp_chunk_params p;
  memset(&p, 0, sizeof p);
  p.data = (const uint8_t *)text;
  p.data_len = strlen(text);
  p.flag = flag;
  msrp_chunk *c = NULL;
  CHECK_OK(msrp_transport_make_chunk(t, &p, &c));
  if (c && ct) CHECK_OK(msrp_chunk_set_content_type(c, ct));
  return c;
}

/* A chunk written each way arrives with the same data, content type and flag. */
static void test_chunks_both_ways(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(ctx, false, NULL, &a, &p);
  msrp_transport *pairs[2][2] = {{a, p}, {p, a}};
  for (int i = 0; i < 2; i++) {
    msrp_chunk *c = text_chunk(pairs[i][0], "hello there", "text/plain", MSRP_FLAG_MORE);
    CHECK_OK(msrp_transport_write_chunk(pairs[i][0], c, 5000));
    msrp_chunk *got = NULL;
    uint32_t seg = 99;
    CHECK_OK(msrp_transport_read_chunk(pairs[i][1], SIZE_MAX, 5000, &got, &seg));
    const uint8_t *d = NULL;
    size_t n = 0;
    char *s = NULL;
    CHECK_OK(msrp_chunk_data(got, &d, &n));
    CHECK(n == 11 && memcmp(d, "hello there", 11) == 0);
    CHECK_OK(msrp_chunk_content_type(got, &s));
    CHECK_STR(s, "text/plain");
    CHECK(msrp_chunk_flag(got) == MSRP_FLAG_MORE);
    CHECK(seg == 0);
    uint16_t code = 0;
    CHECK_OK(msrp_transport_check_incoming_send_chunk(pairs[i][1], got, &code));
    CHECK(code == 200);
    /* A response goes back the other way. */
    CHECK_OK(msrp_transport_write_response(pairs[i][1], got, 200, "OK", 5000));
    msrp_chunk *resp = NULL;
    CHECK_OK(msrp_transport_read_chunk(pairs[i][0], SIZE_MAX, 5000, &resp, NULL));
    CHECK_OK(msrp_chunk_code(resp, &code));
    CHECK(code == 200);
    msrp_chunk_free(resp);
    msrp_chunk_free(got);
    msrp_chunk_free(c);
  }
  /* Paths: each side's remote path is the other's local path. */
  char *al = NULL, *pr = NULL;
  CHECK_OK(msrp_transport_local_path(a, &al));
  CHECK_OK(msrp_transport_remote_path(p, &pr));
  CHECK(al && pr && strcmp(al, pr) == 0);
  msrp_string_free(al);
  msrp_string_free(pr);
  CHECK(msrp_transport_id(a) != msrp_transport_id(p) && msrp_transport_id(a) != 0);
  msrp_transport_free(a);
  msrp_transport_free(p);
  msrp_context_free(ctx);
}

/* After the peer closes, read and write give "closed". */
static void test_peer_close(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(ctx, false, NULL, &a, &p);
  msrp_chunk *c = text_chunk(a, "last words", "text/plain", 0);
  CHECK_OK(msrp_transport_write_chunk(a, c, 5000));
  CHECK_OK(msrp_transport_close(a));
  CHECK(msrp_transport_is_closed(a));
  CHECK_RES(msrp_transport_write_chunk(a, c, 5000), MSRP_RESULT_CLOSED);
  msrp_chunk *got = NULL;
  CHECK_OK(msrp_transport_read_chunk(p, SIZE_MAX, 5000, &got, NULL)); /* what came before the close */
  msrp_chunk_free(got);
  got = NULL;
  CHECK_RES(msrp_transport_read_chunk(p, SIZE_MAX, 5000, &got, NULL), MSRP_RESULT_CLOSED);
  CHECK_LAST_ERROR_HAS("peer closed");
  CHECK(got == NULL);
  CHECK(msrp_transport_is_closed(p));
  CHECK_RES(msrp_transport_write_chunk(p, c, 5000), MSRP_RESULT_CLOSED);
  CHECK_RES(msrp_transport_read_chunk(p, SIZE_MAX, 5000, &got, NULL), MSRP_RESULT_CLOSED);
  msrp_chunk_free(c);
  msrp_transport_free(a);
  msrp_transport_free(p);
  msrp_context_free(ctx);
}

static void expect_text(msrp_transport *t, const char *want) {
  msrp_chunk *got = NULL;
  CHECK_OK(msrp_transport_read_chunk(t, SIZE_MAX, 5000, &got, NULL));
  const uint8_t *d = NULL;
  size_t n = 0;
  if (got) CHECK_OK(msrp_chunk_data(got, &d, &n));
  CHECK(got && n == strlen(want) && memcmp(d, want, n) == 0);
  msrp_chunk_free(got);
}

static void write_text(msrp_transport *t, const char *text) {
  msrp_chunk *c = text_chunk(t, text, "text/plain", 0);
  CHECK_OK(msrp_transport_write_chunk(t, c, 5000));
  msrp_chunk_free(c);
}

/* msrp_transport_read_directly: chunks the reader task read ahead before the
 * switch come first and in order; blocking and async reads work after it; a
 * waiting read ends when the transport is closed; the peer's close is seen by
 * the next read. (A switch that cannot wait for a read in progress: see
 * the engine's tests, where the order can be forced.) */
static void test_direct_reads(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(ctx, false, NULL, &a, &p);
  write_text(a, "one");
  write_text(a, "two");
  write_text(a, "three");
  /* Give the reader task time to read them ahead (the test holds either way). */
  usleep(50000);
  CHECK_OK(msrp_transport_read_directly(p, 5000));
  CHECK_OK(msrp_transport_read_directly(p, 5000)); /* again: nothing to do */
  write_text(a, "four");
  expect_text(p, "one");
  expect_text(p, "two");
  expect_text(p, "three");
  expect_text(p, "four");
  /* An async read reads the socket on a libmsrp thread. */
  completion rd;
  completion_init(&rd);
  CHECK_OK(msrp_transport_read_chunk_async(p, SIZE_MAX, 5000, on_read, &rd));
  write_text(a, "five");
  CHECK(completion_wait(&rd, 5000));
  CHECK(rd.result == MSRP_RESULT_OK);
  const uint8_t *d = NULL;
  size_t n = 0;
  if (rd.chunk) CHECK_OK(msrp_chunk_data(rd.chunk, &d, &n));
  CHECK(rd.chunk && n == 4 && memcmp(d, "five", 4) == 0);
  msrp_chunk_free(rd.chunk);
  completion_destroy(&rd);
  /* Responses both ways still work. */
  write_text(p, "back");
  expect_text(a, "back");
  /* A read waiting on the socket ends when the transport is closed here. */
  completion_init(&rd);
  CHECK_OK(msrp_transport_read_chunk_async(p, SIZE_MAX, 20000, on_read, &rd));
  CHECK_OK(msrp_transport_close(p));
  CHECK(completion_wait(&rd, 5000));
  CHECK(rd.result == MSRP_RESULT_CLOSED && rd.chunk == NULL);
  completion_destroy(&rd);
  msrp_transport_free(a);
  msrp_transport_free(p);

  /* The peer's close, seen by the next read. */
  make_pair(ctx, false, NULL, &a, &p);
  CHECK_OK(msrp_transport_read_directly(p, 5000));
  write_text(a, "bye");
  CHECK_OK(msrp_transport_close(a));
  expect_text(p, "bye");
  msrp_chunk *got = NULL;
  CHECK_RES(msrp_transport_read_chunk(p, SIZE_MAX, 5000, &got, NULL), MSRP_RESULT_CLOSED);
  CHECK(got == NULL && msrp_transport_is_closed(p));
  msrp_transport_free(a);
  msrp_transport_free(p);

  msrp_context_free(ctx);
}

/* read_chunk with a small size returns segments whose data concatenates to the original. */
static void test_virtual_segments(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(ctx, false, NULL, &a, &p);
  enum { N = 300000 };
  uint8_t *data = malloc(N);
  uint8_t *back = malloc(N);
  for (size_t i = 0; i < N; i++) data[i] = (uint8_t)(i * 7 + 3);
  msrp_chunk_params prm;
  memset(&prm, 0, sizeof prm);
  prm.data = data;
  prm.data_len = N;
  msrp_chunk *c = NULL;
  CHECK_OK(msrp_transport_make_chunk(a, &prm, &c));
  bool changed = false;
  CHECK_OK(msrp_chunk_ensure_unique_transaction_id(c, &changed));
  CHECK_OK(msrp_transport_write_chunk(a, c, 5000));
  size_t got = 0;
  uint32_t segments = 0, last_seg = 0;
  uint64_t expect_start = 1;
  for (;;) {
    msrp_chunk *s = NULL;
    uint32_t seg = 0;
    msrp_result r = msrp_transport_read_chunk(p, 4096, 5000, &s, &seg);
    CHECK_OK(r);
    if (r != MSRP_RESULT_OK) break;
    const uint8_t *d = NULL;
    size_t n = 0;
    uint64_t start = 0, end = 0, total = 0;
    CHECK_OK(msrp_chunk_data(s, &d, &n));
    CHECK_OK(msrp_chunk_byte_range(s, &start, &end, &total));
    CHECK(start == expect_start && end == start + n - 1 && total == N);
    expect_start += n;
    CHECK(got + n <= N);
    if (got + n <= N && n) memcpy(back + got, d, n);
    got += n;
    segments++;
    last_seg = seg;
    uint8_t flag = msrp_chunk_flag(s);
    msrp_chunk_free(s);
    if (flag == MSRP_FLAG_END) break;
    /* Every segment but the last holds exactly `size` bytes. */
    CHECK(flag == MSRP_FLAG_MORE && seg == segments && n == 4096);
  }
  CHECK(got == N && memcmp(back, data, N) == 0);
  CHECK(segments == (N + 4095) / 4096 && last_seg == segments);
  msrp_chunk_free(c);
  free(data);
  free(back);
  msrp_transport_free(a);
  msrp_transport_free(p);
  msrp_context_free(ctx);
}

/* A bind with a wrong From-Path gives 481 (the peer's complete fails); the
 * acceptor closes that connection and keeps listening until the expected
 * peer binds (a stray connection must not end a call's media setup). */
static void test_wrong_from_path(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_connector *acc = NULL, *con = NULL, *right = NULL;
  char *acc_path = NULL, *con_path = NULL, *right_path = NULL;
  completion done;
  completion_init(&done);
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &right));
  CHECK_OK(msrp_connector_prepare(acc, NULL, &acc_path));
  CHECK_OK(msrp_connector_prepare(con, NULL, &con_path));
  CHECK_OK(msrp_connector_prepare(right, NULL, &right_path));
  CHECK_OK(msrp_connector_complete_async(acc, right_path, 10000, on_complete, &done));
  msrp_transport *t = NULL;
  CHECK_RES(msrp_connector_complete(con, acc_path, 10000, &t), MSRP_RESULT_BIND_REJECTED);
  CHECK_LAST_ERROR_HAS("481");
  CHECK(t == NULL);
  CHECK(!completion_wait(&done, 200)); /* still listening */
  CHECK_OK(msrp_connector_complete(right, acc_path, 10000, &t));
  CHECK(completion_wait(&done, 10000));
  CHECK(done.result == MSRP_RESULT_OK && done.transport != NULL);
  msrp_transport_free(t);
  msrp_transport_free(done.transport);
  msrp_string_free(acc_path);
  msrp_string_free(con_path);
  msrp_string_free(right_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  msrp_connector_free(right);
  completion_destroy(&done);
  msrp_context_free(ctx);
}

/* sessmatch accepts a differing host with the same session id. */
static void test_sessmatch(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_connector *acc = NULL, *con = NULL;
  char *acc_path = NULL, *con_path = NULL;
  completion done;
  completion_init(&done);
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, true, NULL, &acc));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  CHECK_OK(msrp_connector_prepare(acc, NULL, &acc_path));
  CHECK_OK(msrp_connector_prepare(con, "msrp://127.0.0.1:9/peer-session-1;tcp", &con_path));
  /* The acceptor learnt the peer as another host (a NAT in between), same session id. */
  CHECK_OK(msrp_connector_complete_async(acc, "msrp://198.51.100.7:40000/peer-session-1;tcp", 10000, on_complete, &done));
  msrp_transport *t = NULL;
  CHECK_OK(msrp_connector_complete(con, acc_path, 10000, &t));
  CHECK(completion_wait(&done, 10000));
  CHECK(done.result == MSRP_RESULT_OK && done.transport != NULL);
  msrp_transport_free(done.transport);
  msrp_transport_free(t);
  msrp_string_free(acc_path);
  msrp_string_free(con_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  completion_destroy(&done);
  msrp_context_free(ctx);
}

/* Connecting to a closed port fails quickly with a clear error. */
static void test_closed_port(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_connector *acc = NULL, *con = NULL;
  char *path = NULL, *mine = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  CHECK_OK(msrp_connector_prepare(acc, NULL, &path)); /* a port that was free a moment ago */
  CHECK_OK(msrp_connector_cleanup(acc));              /* ... and is closed again */
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  CHECK_OK(msrp_connector_prepare(con, NULL, &mine));
  msrp_transport *t = NULL;
  double t0 = now_ms();
  CHECK_RES(msrp_connector_complete(con, path, 10000, &t), MSRP_RESULT_CONNECT_FAILED);
  CHECK_LAST_ERROR_HAS("cannot connect to 127.0.0.1:");
  CHECK(now_ms() - t0 < 9000);
  msrp_string_free(path);
  msrp_string_free(mine);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  msrp_context_free(ctx);
}

/* cleanup without complete frees the port: the same port can be taken again. */
static void test_cleanup_frees_port(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_connector *acc = NULL, *acc2 = NULL;
  char *path = NULL, *again = NULL, *port_uri = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc2));
  CHECK_OK(msrp_connector_prepare(acc, NULL, &path));
  msrp_uri *u = NULL;
  uint16_t port = 0;
  CHECK_OK(msrp_path_get(path, 0, &u));
  CHECK_OK(msrp_uri_port(u, &port));
  CHECK(port != 0);
  CHECK_OK(msrp_uri_set_session_id(u, "second"));
  CHECK_OK(msrp_uri_format(u, &port_uri));
  CHECK_RES(msrp_connector_prepare(acc2, port_uri, &again), MSRP_RESULT_LISTEN_FAILED); /* taken */
  CHECK_OK(msrp_connector_cleanup(acc));
  CHECK_OK(msrp_connector_prepare(acc2, port_uri, &again)); /* free again */
  CHECK(again && strcmp(again, port_uri) == 0);
  /* complete after cleanup is a state error, not a crash */
  msrp_transport *t = NULL;
  CHECK_RES(msrp_connector_complete(acc, "msrp://127.0.0.1:9/x;tcp", 1000, &t), MSRP_RESULT_BAD_STATE);
  msrp_uri_free(u);
  msrp_string_free(path);
  msrp_string_free(again);
  msrp_string_free(port_uri);
  msrp_connector_free(acc);
  msrp_connector_free(acc2);
  msrp_context_free(ctx);
}

/* Two sessions through one server port, one after the other and at the same time. */
static void test_server_two_sessions(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_server *srv = NULL;
  CHECK_OK(msrp_server_new(ctx, false, NULL, &srv));
  for (int round = 0; round < 2; round++) {
    int n = round == 0 ? 1 : 2; /* one after the other (two rounds of 1), then 2 at once */
    for (int rep = 0; rep < (round == 0 ? 2 : 1); rep++) {
      char *spath[2] = {NULL, NULL}, *cpath[2] = {NULL, NULL};
      msrp_connector *con[2] = {NULL, NULL};
      completion srv_done[2], con_done[2];
      for (int i = 0; i < n; i++) {
        completion_init(&srv_done[i]);
        completion_init(&con_done[i]);
        CHECK_OK(msrp_server_prepare(srv, NULL, &spath[i]));
        CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con[i]));
        CHECK_OK(msrp_connector_prepare(con[i], NULL, &cpath[i]));
      }
      if (n == 2) {
        msrp_uri *u0 = NULL, *u1 = NULL;
        uint16_t p0 = 0, p1 = 1;
        CHECK_OK(msrp_path_get(spath[0], 0, &u0));
        CHECK_OK(msrp_path_get(spath[1], 0, &u1));
        CHECK_OK(msrp_uri_port(u0, &p0));
        CHECK_OK(msrp_uri_port(u1, &p1));
        CHECK(p0 == p1); /* one shared port */
        CHECK(!msrp_uri_equal(u0, u1));
        msrp_uri_free(u0);
        msrp_uri_free(u1);
      }
      /* Connect first (bindings arrive before complete is called), then complete. */
      for (int i = 0; i < n; i++)
        CHECK_OK(msrp_connector_complete_async(con[i], spath[i], 10000, on_complete, &con_done[i]));
      for (int i = n - 1; i >= 0; i--)
        CHECK_OK(msrp_server_complete_async(srv, cpath[i], 10000, on_complete, &srv_done[i]));
      for (int i = 0; i < n; i++) {
        CHECK(completion_wait(&con_done[i], 10000) && completion_wait(&srv_done[i], 10000));
        CHECK(con_done[i].result == MSRP_RESULT_OK && srv_done[i].result == MSRP_RESULT_OK);
        if (con_done[i].transport && srv_done[i].transport) {
          char *remote = NULL;
          CHECK_OK(msrp_transport_remote_path(srv_done[i].transport, &remote));
          CHECK(remote && strcmp(remote, cpath[i]) == 0); /* each session got its own peer */
          msrp_string_free(remote);
          msrp_chunk *c = text_chunk(con_done[i].transport, "ping", "text/plain", 0);
          CHECK_OK(msrp_transport_write_chunk(con_done[i].transport, c, 5000));
          msrp_chunk *got = NULL;
          CHECK_OK(msrp_transport_read_chunk(srv_done[i].transport, SIZE_MAX, 5000, &got, NULL));
          CHECK(msrp_chunk_size(got) == 4);
          msrp_chunk_free(got);
          msrp_chunk_free(c);
        }
        msrp_transport_free(con_done[i].transport);
        msrp_transport_free(srv_done[i].transport);
        CHECK_OK(msrp_server_cleanup(srv, spath[i]));
        CHECK_RES(msrp_server_cleanup(srv, spath[i]), MSRP_RESULT_NOT_FOUND);
        msrp_connector_free(con[i]);
        msrp_string_free(spath[i]);
        msrp_string_free(cpath[i]);
        completion_destroy(&srv_done[i]);
        completion_destroy(&con_done[i]);
      }
    }
  }
  /* An unknown To-Path gets 481. */
  char *spath = NULL, *cpath = NULL;
  msrp_connector *con = NULL;
  CHECK_OK(msrp_server_prepare(srv, NULL, &spath));
  msrp_uri *u = NULL;
  char *wrong = NULL;
  CHECK_OK(msrp_path_get(spath, 0, &u));
  CHECK_OK(msrp_uri_set_session_id(u, "not-prepared"));
  CHECK_OK(msrp_uri_format(u, &wrong));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  CHECK_OK(msrp_connector_prepare(con, NULL, &cpath));
  msrp_transport *t = NULL;
  CHECK_RES(msrp_connector_complete(con, wrong, 10000, &t), MSRP_RESULT_BIND_REJECTED);
  CHECK_LAST_ERROR_HAS("481");
  /* Nobody binds: the server's complete times out. */
  CHECK_RES(msrp_server_complete(srv, "msrp://127.0.0.1:9/nobody;tcp", 200, &t), MSRP_RESULT_TIMEOUT);
  msrp_uri_free(u);
  msrp_string_free(wrong);
  msrp_string_free(spath);
  msrp_string_free(cpath);
  msrp_connector_free(con);
  msrp_server_free(srv);
  msrp_context_free(ctx);
}

/* IPv6 loopback works. */
static void test_ipv6(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(ctx, false, "msrp://[::1]:0;tcp", &a, &p);
  CHECK(a != NULL && p != NULL);
  char *remote = NULL;
  CHECK_OK(msrp_transport_remote_path(a, &remote));
  CHECK(remote && strncmp(remote, "msrp://[::1]:", 13) == 0);
  msrp_string_free(remote);
  msrp_transport_free(a);
  msrp_transport_free(p);
  msrp_context_free(ctx);
}

typedef struct {
  atomic_int new_in, data_in, end_in, new_out, data_out, end_out, messages, freed;
} log_counts;

static int has_end_line(const uint8_t *d, size_t n) {
  for (size_t i = 0; i + 7 <= n; i++)
    if (memcmp(d + i, "-------", 7) == 0) return 1;
  return 0;
}

static void l_chunk(void *ud, uint64_t id, const uint8_t *d, size_t n, const msrp_chunk *c, int out) {
  log_counts *lc = ud;
  (void)id;
  if (n >= 5 && memcmp(d, "MSRP ", 5) == 0 && c != NULL) atomic_fetch_add(out ? &lc->new_out : &lc->new_in, 1);
}
static void l_new_in(void *ud, uint64_t id, const uint8_t *d, size_t n, const msrp_chunk *c) { l_chunk(ud, id, d, n, c, 0); }
static void l_new_out(void *ud, uint64_t id, const uint8_t *d, size_t n, const msrp_chunk *c) { l_chunk(ud, id, d, n, c, 1); }
static void l_data_in(void *ud, uint64_t id, const uint8_t *d, size_t n, const char *tid) {
  (void)id; (void)d;
  if (n > 0 && tid && strlen(tid) >= 4) atomic_fetch_add(&((log_counts *)ud)->data_in, 1);
}
static void l_data_out(void *ud, uint64_t id, const uint8_t *d, size_t n, const char *tid) {
  (void)id; (void)d;
  if (n > 0 && tid && strlen(tid) >= 4) atomic_fetch_add(&((log_counts *)ud)->data_out, 1);
}
static void l_end_in(void *ud, uint64_t id, const uint8_t *d, size_t n, const char *tid) {
  (void)id; (void)tid;
  if (has_end_line(d, n)) atomic_fetch_add(&((log_counts *)ud)->end_in, 1);
}
static void l_end_out(void *ud, uint64_t id, const uint8_t *d, size_t n, const char *tid) {
  (void)id; (void)tid;
  if (has_end_line(d, n)) atomic_fetch_add(&((log_counts *)ud)->end_out, 1);
}
static void l_msg(void *ud, const char *m) {
  if (m && *m) atomic_fetch_add(&((log_counts *)ud)->messages, 1);
}
static void l_free(void *ud) { atomic_fetch_add(&((log_counts *)ud)->freed, 1); }

/* Logger callbacks see both directions; userdata_free runs once, when the last user lets go. */
static void test_logger(void) {
  static log_counts lc;
  memset(&lc, 0, sizeof lc);
  msrp_logger_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  cbs.received_new_chunk = l_new_in;
  cbs.received_chunk_data = l_data_in;
  cbs.received_chunk_end = l_end_in;
  cbs.sent_new_chunk = l_new_out;
  cbs.sent_chunk_data = l_data_out;
  cbs.sent_chunk_end = l_end_out;
  cbs.debug = cbs.info = cbs.warn = cbs.error = cbs.fatal = l_msg;
  msrp_logger *lg = NULL;
  CHECK_OK(msrp_logger_new(&cbs, &lc, l_free, &lg));
  CHECK_OK(msrp_logger_set_default(lg));
  msrp_logger_free(lg); /* the default keeps its own reference */
  CHECK(atomic_load(&lc.freed) == 0);

  msrp_context *ctx = new_ctx(false);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(ctx, false, NULL, &a, &p);
  msrp_chunk *c = text_chunk(a, "logged", "text/plain", 0);
  CHECK_OK(msrp_transport_write_chunk(a, c, 5000));
  msrp_chunk *got = NULL;
  CHECK_OK(msrp_transport_read_chunk(p, SIZE_MAX, 5000, &got, NULL));
  /* binding SEND + 200 + this chunk, seen from both ends */
  CHECK(atomic_load(&lc.new_out) >= 3 && atomic_load(&lc.new_in) >= 3);
  CHECK(atomic_load(&lc.end_out) >= 3 && atomic_load(&lc.end_in) >= 3);
  CHECK(atomic_load(&lc.data_out) >= 1 && atomic_load(&lc.data_in) >= 1);
  CHECK(atomic_load(&lc.messages) >= 1); /* the library's own diagnostics */
  msrp_chunk_free(got);
  msrp_chunk_free(c);
  msrp_transport_free(a);
  msrp_transport_free(p);
  msrp_context_free(ctx);
  CHECK_OK(msrp_logger_set_default(NULL));
  CHECK(atomic_load(&lc.freed) == 1);
}

static void on_read_blocking_inside(void *ud, msrp_result r, msrp_chunk *chunk, uint32_t seg, const char *msg) {
  completion *c = ud;
  (void)seg;
  (void)msg;
  c->chunk = chunk;
  /* Blocking reads on a libmsrp thread are refused, not deadlocked. */
  msrp_chunk *other = NULL;
  msrp_result inner = msrp_transport_read_chunk((msrp_transport *)c->transport, SIZE_MAX, 100, &other, NULL);
  completion_set(c, r == MSRP_RESULT_OK && inner == MSRP_RESULT_IN_CALLBACK ? MSRP_RESULT_OK : MSRP_RESULT_INVALID_ARGUMENT, "");
}

/* Queued callbacks run on the application's thread from dispatch, with a pollable fd;
 * direct callbacks run on a library thread where blocking calls are refused. */
static void test_callback_delivery(void) {
  msrp_context *direct = new_ctx(false);
  int fd = -1;
  CHECK_RES(msrp_context_fd(direct, &fd), MSRP_RESULT_WRONG_KIND);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(direct, false, NULL, &a, &p);
  completion rd;
  completion_init(&rd);
  rd.transport = p;
  CHECK_OK(msrp_transport_read_chunk_async(p, SIZE_MAX, 5000, on_read_blocking_inside, &rd));
  msrp_chunk *c = text_chunk(a, "direct", "text/plain", 0);
  CHECK_OK(msrp_transport_write_chunk(a, c, 5000));
  CHECK(completion_wait(&rd, 5000));
  CHECK(rd.result == MSRP_RESULT_OK);
  CHECK(!pthread_equal(rd.thread, pthread_self()));
  msrp_chunk_free(rd.chunk);
  msrp_chunk_free(c);
  completion_destroy(&rd);
  msrp_transport_free(a);
  msrp_transport_free(p);
  msrp_context_free(direct);

  msrp_context *q = new_ctx(true);
  CHECK_OK(msrp_context_fd(q, &fd));
  CHECK(fd >= 0);
  msrp_connector *acc = NULL, *con = NULL;
  char *acc_path = NULL, *con_path = NULL;
  completion acc_done, con_done;
  completion_init(&acc_done);
  completion_init(&con_done);
  CHECK_OK(msrp_connector_new(q, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc));
  CHECK_OK(msrp_connector_new(q, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  CHECK_OK(msrp_connector_prepare(acc, NULL, &acc_path));
  CHECK_OK(msrp_connector_prepare(con, NULL, &con_path));
  CHECK_OK(msrp_connector_complete_async(acc, con_path, 5000, on_complete, &acc_done));
  CHECK_OK(msrp_connector_complete_async(con, acc_path, 5000, on_complete, &con_done));
  int spins = 0;
  while ((!acc_done.done || !con_done.done) && spins++ < 100) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int pr = poll(&pfd, 1, 100);
    if (pr > 0) {
      size_t ran = 0;
      CHECK_OK(msrp_context_dispatch(q, 0, &ran));
      CHECK(ran >= 1);
    }
  }
  CHECK(acc_done.done == 1 && con_done.done == 1);
  CHECK(acc_done.result == MSRP_RESULT_OK && con_done.result == MSRP_RESULT_OK);
  CHECK(pthread_equal(acc_done.thread, pthread_self()) && pthread_equal(con_done.thread, pthread_self()));
  CHECK(msrp_context_pending_callbacks(q) == 0);
  struct pollfd pfd = {fd, POLLIN, 0};
  CHECK(poll(&pfd, 1, 0) == 0); /* not readable once the queue is empty */
  msrp_transport_free(acc_done.transport);
  msrp_transport_free(con_done.transport);
  msrp_string_free(acc_path);
  msrp_string_free(con_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  completion_destroy(&acc_done);
  completion_destroy(&con_done);
  msrp_context_free(q);
}

/* Freeing the context with live transports and a pending read ends cleanly:
 * the read's callback fires with CLOSED before free returns, and the
 * transports answer CLOSED afterwards. */
/* Threads of this process (Linux); -1 where that cannot be counted. */
static int thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static void test_free_context_with_live_transports(void) {
  int threads_before = thread_count();
  msrp_context *ctx = new_ctx(false);
  msrp_transport *a = NULL, *p = NULL;
  make_pair(ctx, false, NULL, &a, &p);
  completion rd;
  completion_init(&rd);
  CHECK_OK(msrp_transport_read_chunk_async(p, SIZE_MAX, 20000, on_read, &rd));
  CHECK(threads_before < 0 || thread_count() > threads_before);
  msrp_context_free(ctx);
  CHECK(threads_before < 0 || thread_count() == threads_before); /* no libmsrp thread left */
  CHECK(rd.done == 1);
  CHECK(rd.result == MSRP_RESULT_CLOSED && rd.chunk == NULL);
  msrp_chunk *c = NULL;
  CHECK_RES(msrp_transport_read_chunk(a, SIZE_MAX, 100, &c, NULL), MSRP_RESULT_CLOSED);
  CHECK_RES(msrp_transport_make_chunk(a, NULL, &c), MSRP_RESULT_OK);
  CHECK_RES(msrp_transport_write_chunk(a, c, 100), MSRP_RESULT_CLOSED);
  CHECK_RES(msrp_transport_read_chunk_async(p, SIZE_MAX, 100, on_read, &rd), MSRP_RESULT_CLOSED);
  msrp_chunk_free(c);
  msrp_transport_free(a);
  msrp_transport_free(p);
  completion_destroy(&rd);
}

static void test_bad_arguments(void) {
  msrp_context *ctx = new_ctx(false);
  msrp_connector *con = NULL;
  msrp_server *srv = NULL;
  msrp_transport *t = NULL;
  char *s = NULL;
  CHECK_RES(msrp_context_new(NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_context_dispatch(NULL, 0, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_context_fd(ctx, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(msrp_context_pending_callbacks(NULL) == 0);
  CHECK_RES(msrp_connector_new(NULL, 0, false, NULL, &con), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_connector_new(ctx, 7, false, NULL, &con), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con));
  CHECK_RES(msrp_connector_prepare(con, "not a uri", &s), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_connector_prepare(con, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_connector_complete(con, "msrp://127.0.0.1:9/x;tcp", 100, &t), MSRP_RESULT_BAD_STATE);
  CHECK_OK(msrp_connector_prepare(con, NULL, &s));
  CHECK_RES(msrp_connector_complete(con, "garbage", 100, &t), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_connector_complete(con, NULL, 100, &t), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_connector_complete(con, "msrp://127.0.0.1:9/x;tcp", 100, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_connector_complete_async(con, "msrp://127.0.0.1:9/x;tcp", 100, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_connector_complete(NULL, "msrp://127.0.0.1:9/x;tcp", 100, &t), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_connector_cleanup(NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_server_new(NULL, false, NULL, &srv), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_OK(msrp_server_new(ctx, false, NULL, &srv));
  CHECK_RES(msrp_server_prepare(srv, "msrp://[::1:0/x;tcp", &s), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_server_prepare(srv, "msrp://203.0.113.9:0/x;tcp", &s), MSRP_RESULT_LISTEN_FAILED); /* not a local address */
  CHECK_RES(msrp_server_cleanup(srv, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_server_complete(srv, NULL, 100, &t), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_server_complete_async(srv, "msrp://127.0.0.1:9/x;tcp", 100, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_transport_read_chunk(NULL, 0, 100, (msrp_chunk **)&s, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_transport_write_chunk(NULL, NULL, 100), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_transport_make_chunk(NULL, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_transport_close(NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(msrp_transport_is_closed(NULL));
  CHECK(msrp_transport_id(NULL) == 0);
  CHECK_RES(msrp_logger_new(NULL, NULL, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  msrp_string_free(s);
  msrp_transport_free(NULL);
  msrp_connector_free(NULL);
  msrp_server_free(NULL);
  msrp_logger_free(NULL);
  msrp_context_free(NULL);
  msrp_connector_free(con);
  msrp_server_free(srv);
  msrp_context_free(ctx);
}

int main(void) {
  test_chunks_both_ways();
  test_peer_close();
  test_direct_reads();
  test_virtual_segments();
  test_wrong_from_path();
  test_sessmatch();
  test_closed_port();
  test_cleanup_frees_port();
  test_server_two_sessions();
  test_ipv6();
  test_logger();
  test_callback_delivery();
  test_free_context_with_live_transports();
  test_bad_arguments();
  return check_summary("test_connection");
}
