/* Large and early messages, through the public header (the large-messages
 * issue): messages a peer sent and closed before msrp_session_new are
 * delivered; large messages queued at once are all accepted with the same
 * settings at both ends; an interrupted chunk takes its body's length
 * (RFC 4975 §7.3.1); a stalled message expires and is reported; incomplete
 * messages are listed when the session closes. The peer is a raw socket
 * where the item is about what another implementation sends. */
#include <netinet/tcp.h>
#include <unistd.h>

#include "raw.h"

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int messages, closed, incomplete, expired;
  int incomplete_before_closed; /* on_incomplete calls seen before on_closed */
  int saved_before_closed;      /* on_message_saved calls seen before on_closed */
  msrp_result closed_reason;
  char bodies[8][32];
  uint64_t inc_received, inc_total;
  char inc_mid[64];
  bool inc_had_head;
  msrp_result inc_reason;
  char inc_why[256];
  /* sinks: where on_message_start sends messages (0 memory, 1 file, 2
   * callback that fails after fail_after bytes, 3 refuse) */
  int sink_mode;
  char sink_path[256];
  uint64_t fail_after, written;
  int started, saved, progress_calls, progress_backwards;
  msrp_session *self;          /* for mode 4: refused part-way from on_incoming_progress */
  msrp_result refuse_result;
  int refused;
  uint64_t last_progress, saved_size, start_total;
  /* large messages: sizes and checks of what arrived */
  size_t big_ok;
  uint8_t seed_seen[32];
} box;

static void box_init(box *b) {
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->m, NULL);
  pthread_cond_init(&b->c, NULL);
}

static void box_destroy(box *b) {
  pthread_mutex_destroy(&b->m);
  pthread_cond_destroy(&b->c);
}

/* Large test bodies: byte i of message `seed` is (i * 7 + seed) & 0xff,
 * with the seed in the first byte. */
static uint8_t *big_body(size_t n, uint8_t seed) {
  uint8_t *p = malloc(n);
  CHECK(p != NULL);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7 + seed);
  p[0] = seed;
  return p;
}

/* Whether the file at `path` holds exactly the `n` bytes at `want`. */
static bool file_holds(const char *path, const uint8_t *want, size_t n) {
  FILE *g = fopen(path, "rb");
  uint8_t *back = malloc(n + 1);
  size_t got = g && back ? fread(back, 1, n + 1, g) : 0;
  if (g) fclose(g);
  bool same = back && got == n && memcmp(back, want, n) == 0;
  free(back);
  return same;
}

static void b_on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  box *b = ud;
  (void)head;
  pthread_mutex_lock(&b->m);
  if (len > 1000) {
    bool ok = true;
    for (size_t i = 1; i < len && ok; i++) ok = data[i] == (uint8_t)(i * 7 + data[0]);
    if (ok && data[0] < 32) {
      b->big_ok++;
      b->seed_seen[data[0]]++;
    }
  } else if (b->messages < 8) {
    snprintf(b->bodies[b->messages], sizeof b->bodies[0], "%.*s", (int)len, (const char *)data);
  }
  b->messages++;
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
}

static void b_on_closed(void *ud, msrp_result why, const char *msg) {
  box *b = ud;
  (void)msg;
  pthread_mutex_lock(&b->m);
  b->closed++;
  b->closed_reason = why;
  b->incomplete_before_closed = b->incomplete;
  b->saved_before_closed = b->saved;
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
}

static void b_on_incomplete(void *ud, const msrp_chunk *head, const char *mid, uint64_t received, uint64_t total,
                            msrp_result reason, const char *why) {
  box *b = ud;
  bool expired = reason == MSRP_RESULT_TIMEOUT;
  b->inc_reason = reason;
  snprintf(b->inc_why, sizeof b->inc_why, "%s", why);
  pthread_mutex_lock(&b->m);
  b->incomplete++;
  if (expired) b->expired++;
  b->inc_received = received;
  b->inc_total = total;
  b->inc_had_head = head != NULL;
  snprintf(b->inc_mid, sizeof b->inc_mid, "%s", mid);
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
}

static const msrp_session_callbacks CBS = {
    .on_message = b_on_message, .on_closed = b_on_closed, .on_incomplete = b_on_incomplete};

static int b_write(void *ud, uint64_t offset, const uint8_t *data, size_t len) {
  box *b = ud;
  (void)offset;
  (void)data;
  if (b->written + len > b->fail_after) return -1;
  b->written += len;
  return 0;
}

static void b_on_start(void *ud, const msrp_chunk *head, const char *mid, uint64_t total, msrp_incoming *in) {
  box *b = ud;
  (void)head;
  (void)mid;
  pthread_mutex_lock(&b->m);
  b->started++;
  b->start_total = total;
  pthread_mutex_unlock(&b->m);
  /* NULL arguments other than `in` (the generated NULL test cannot make an
   * msrp_incoming: it exists only during this callback). */
  CHECK_RES(msrp_incoming_to_path(in, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_incoming_to_callback(in, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  if (b->sink_mode == 1 || b->sink_mode == 4) CHECK_OK(msrp_incoming_to_path(in, b->sink_path));
  if (b->sink_mode == 2) CHECK_OK(msrp_incoming_to_callback(in, b_write, b));
  if (b->sink_mode == 3) CHECK_OK(msrp_incoming_refuse(in));
}

static void b_on_progress(void *ud, const char *mid, uint64_t received, uint64_t total) {
  box *b = ud;
  (void)mid;
  (void)total;
  pthread_mutex_lock(&b->m);
  b->progress_calls++;
  if (received < b->last_progress) b->progress_backwards++;
  b->last_progress = received;
  bool refuse = b->sink_mode == 4 && !b->refused && received >= 1000 * 1000;
  if (refuse) b->refused = 1;
  pthread_mutex_unlock(&b->m);
  if (refuse) b->refuse_result = msrp_session_refuse_incoming(b->self, mid);
}

static void b_on_saved(void *ud, const msrp_chunk *head, const char *mid, uint64_t size) {
  box *b = ud;
  (void)head;
  (void)mid;
  pthread_mutex_lock(&b->m);
  b->saved++;
  b->saved_size = size;
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
}

static const msrp_session_callbacks SINK_CBS = {.on_message = b_on_message,
                                                .on_closed = b_on_closed,
                                                .on_incomplete = b_on_incomplete,
                                                .on_message_start = b_on_start,
                                                .on_incoming_progress = b_on_progress,
                                                .on_message_saved = b_on_saved};

/* Waits until *field >= want (1) or ms pass (0). */
static int wait_for(box *b, const int *field, int want, int ms) { return wait_int(&b->m, &b->c, field, want, ms); }

/* Item 3: a peer that sends right after binding and closes (as
 * python3-msrplib does after sends with Failure-Report no) loses nothing
 * when the application calls msrp_session_new 500 ms later: the messages
 * arrive, the one left incomplete is listed, then on_closed. Before, the
 * call failed with "the transport is already closed". */
static void test_messages_sent_before_the_session_and_a_close(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  rawpeer p;
  msrp_transport *t = NULL;
  raw_bind(ctx, &p, &t);
  const char *no = "Failure-Report: no\r\n";
  raw_send(&p, "early001", "early1", "1-3/3", no, "one", '$');
  raw_send(&p, "early002", "early2", "1-3/3", no, "two", '$');
  raw_send(&p, "early003", "early3", "1-5/5", no, "three", '$');
  raw_send(&p, "early004", "early4", "1-4/10", no, "part", '+');
  close(p.fd);
  usleep(500 * 1000);
  box b;
  box_init(&b);
  msrp_session *s = NULL;
  CHECK_OK(msrp_session_new(t, NULL, &CBS, &b, NULL, &s));
  CHECK(wait_for(&b, &b.closed, 1, 5000));
  CHECK(b.messages == 3);
  CHECK(strcmp(b.bodies[0], "one") == 0 && strcmp(b.bodies[1], "two") == 0 && strcmp(b.bodies[2], "three") == 0);
  CHECK(b.closed_reason == MSRP_RESULT_CLOSED);
  /* The incomplete one is listed, before on_closed. */
  CHECK(b.incomplete_before_closed == 1 && b.expired == 0);
  CHECK(strcmp(b.inc_mid, "early4") == 0 && b.inc_received == 4 && b.inc_total == 10 && b.inc_had_head);
  msrp_session_free(s);
  msrp_context_free(ctx);
  box_destroy(&b);
}

/* Item 4 (RFC 4975 §7.3.1: "The receiver SHOULD determine the actual length
 * of each chunk by inspecting the payload itself"): an interrupted chunk
 * whose Byte-Range gives a numeric end is accepted with its body's length.
 * Item 5: a message that stops progressing expires with on_incomplete, and
 * its late chunks get 413; the session goes on. */
static void test_interrupted_chunks_and_expiry(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  rawpeer p;
  msrp_transport *t = NULL;
  raw_bind(ctx, &p, &t);
  box b;
  box_init(&b);
  msrp_session_options o = msrp_session_options_default();
  o.incomplete_timeout_ms = 300;
  msrp_session *s = NULL;
  CHECK_OK(msrp_session_new(t, &o, &CBS, &b, NULL, &s));
  raw_send(&p, "intr0001", "cut1", "1-10/10", "", "01234", '+');
  CHECK(read_code(p.fd, "intr0001", 5000) == 200);
  raw_send(&p, "intr0002", "cut1", "6-10/10", "", "56789", '$');
  CHECK(read_code(p.fd, "intr0002", 5000) == 200);
  CHECK(wait_for(&b, &b.messages, 1, 5000));
  CHECK(strcmp(b.bodies[0], "0123456789") == 0);

  raw_send(&p, "stal0001", "stalled1", "1-4/8", "", "abcd", '+');
  CHECK(read_code(p.fd, "stal0001", 5000) == 200);
  CHECK(wait_for(&b, &b.expired, 1, 5000));
  CHECK(strcmp(b.inc_mid, "stalled1") == 0 && b.inc_received == 4 && b.inc_total == 8);
  raw_send(&p, "stal0002", "stalled1", "5-8/8", "", "efgh", '$');
  CHECK(read_code(p.fd, "stal0002", 5000) == 413);
  raw_send(&p, "after001", "after1", "1-5/5", "", "after", '$');
  CHECK(read_code(p.fd, "after001", 5000) == 200);
  CHECK(wait_for(&b, &b.messages, 2, 5000));
  CHECK(strcmp(b.bodies[1], "after") == 0);
  close(p.fd);
  CHECK(wait_for(&b, &b.closed, 1, 5000));
  CHECK(b.incomplete == 1); /* nothing else was left incomplete */
  msrp_session_free(s);
  msrp_context_free(ctx);
  box_destroy(&b);
}

/* Item 1, scaled down (1.5 MB messages, 2 MiB per-message limit at both
 * ends instead of 50 MB and 64 MiB): eight large messages and a chat line
 * queued at once are all answered 200 and arrive intact. Before, the
 * messages took turns, grew together past the one limit, and every one
 * after the first got 413. */
static void test_many_large_messages_at_once(void) {
  enum { N = 8, SIZE = 1500 * 1000 };
  msrp_context *ctx = NULL;
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  CHECK_OK(msrp_context_new(&co, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  msrp_session_options o = msrp_session_options_default();
  o.max_message_size = 2 * 1024 * 1024;
  box b;
  box_init(&b);
  msrp_session *sa = NULL, *sb = NULL;
  CHECK_OK(msrp_session_new(ta, &o, NULL, NULL, NULL, &sa));
  CHECK_OK(msrp_session_new(tb, &o, &CBS, &b, NULL, &sb));
  donebox d;
  donebox_init(&d);
  msrp_message_callbacks mc = {.on_done = donebox_on_done};
  for (int i = 0; i < N; i++) {
    uint8_t *body = big_body(SIZE, (uint8_t)i);
    CHECK_OK(msrp_session_send_message(sa, body, SIZE, "application/octet-stream", NULL, &mc, &d, NULL));
    free(body);
  }
  CHECK_OK(msrp_session_send_message(sa, (const uint8_t *)"chat", 4, "text/plain", NULL, &mc, &d, NULL));
  double until = now_ms() + 60000;
  pthread_mutex_lock(&d.m);
  while (d.done < N + 1 && now_ms() < until) {
    pthread_mutex_unlock(&d.m);
    usleep(20 * 1000);
    pthread_mutex_lock(&d.m);
  }
  int done = d.done, ok = d.ok;
  pthread_mutex_unlock(&d.m);
  CHECK(done == N + 1);
  CHECK(ok == N + 1);
  CHECK(wait_for(&b, &b.messages, N + 1, 10000));
  CHECK(b.big_ok == N);
  for (int i = 0; i < N; i++) CHECK(b.seed_seen[i] == 1);
  msrp_session_free(sa);
  msrp_session_free(sb);
  msrp_context_free(ctx);
  donebox_destroy(&d);
  box_destroy(&b);
}

typedef struct {
  pthread_mutex_t m;
  int done;
  uint16_t code;
} one_done;

static void o_on_done(void *ud, uint64_t msg, const char *mid, uint16_t code, const char *comment) {
  one_done *d = ud;
  (void)msg;
  (void)mid;
  (void)comment;
  pthread_mutex_lock(&d->m);
  d->done++;
  d->code = code;
  pthread_mutex_unlock(&d->m);
}

static int done_wait(one_done *d, int ms) { return wait_int(&d->m, NULL, &d->done, 1, ms); }

/* Receiving to a sink (item 2): with on_message_start set, a message in
 * several chunks goes where the application says as its chunks arrive —
 * here a file, with a per-message memory limit of 1 MiB that a 24 MB file
 * is far over: progress grows to the total, on_message_saved reports the
 * size, the file's bytes equal the source. A write callback that fails
 * part-way refuses the rest (the sender gets 413, on_incomplete says IO);
 * msrp_incoming_refuse refuses from the start; no choice means memory. */
static void test_receiving_to_sinks(void) {
  enum { SIZE = 24 * 1000 * 1000 + 17 };
  msrp_context *ctx = NULL;
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  CHECK_OK(msrp_context_new(&co, &ctx));
  char dir[] = "/tmp/msrp-sink-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char src[300];
  snprintf(src, sizeof src, "%s/source.bin", dir);
  uint8_t *body = big_body(SIZE, 5);
  FILE *f = fopen(src, "wb");
  CHECK(f && fwrite(body, 1, SIZE, f) == SIZE);
  fclose(f);
  for (int mode = 0; mode < 5; mode++) {
    msrp_transport *ta = NULL, *tb = NULL;
    make_pair(ctx, false, NULL, &ta, &tb);
    box b;
    box_init(&b);
    b.sink_mode = mode;
    snprintf(b.sink_path, sizeof b.sink_path, "%s/received.bin", dir);
    b.fail_after = 1000 * 1000;
    msrp_session_options ob = msrp_session_options_default();
    ob.max_message_size = 1024 * 1024;
    msrp_session *sa = NULL, *sb = NULL;
    CHECK_OK(msrp_session_new(ta, NULL, NULL, NULL, NULL, &sa));
    CHECK_OK(msrp_session_new(tb, &ob, &SINK_CBS, &b, NULL, &b.self));
    sb = b.self;
    one_done d;
    memset(&d, 0, sizeof d);
    pthread_mutex_init(&d.m, NULL);
    msrp_outgoing_file of;
    memset(&of, 0, sizeof of);
    of.path = src;
    of.fd = -1;
    msrp_message_callbacks mc = {.on_done = o_on_done};
    CHECK_OK(msrp_session_send_file(sa, &of, NULL, &mc, &d, NULL));
    CHECK(done_wait(&d, 60000));
    if (mode == 1) {
      CHECK(d.code == 200);
      CHECK(wait_for(&b, &b.saved, 1, 10000));
      CHECK(b.started == 1 && b.start_total == SIZE && b.saved_size == SIZE);
      CHECK(b.progress_calls > 10 && b.progress_backwards == 0 && b.last_progress == SIZE);
      CHECK(file_holds(b.sink_path, body, SIZE));
      CHECK(b.messages == 0 && b.incomplete == 0);
    } else {
      /* memory over its 1 MiB limit, a failing callback, a refusal, a
       * refusal part-way (msrp_session_refuse_incoming) */
      CHECK(d.code == 413);
      CHECK(b.started == 1 && b.saved == 0 && b.messages == 0);
      if (mode == 0) CHECK(wait_for(&b, &b.incomplete, 1, 5000) && b.inc_reason == MSRP_RESULT_TOO_LARGE);
      if (mode == 2) {
        CHECK(wait_for(&b, &b.incomplete, 1, 5000) && b.inc_reason == MSRP_RESULT_IO);
        CHECK(b.written <= b.fail_after && strstr(b.inc_why, "callback") != NULL);
      }
      if (mode == 3) CHECK(b.incomplete == 0);
      if (mode == 4) {
        CHECK(b.refused == 1 && b.refuse_result == MSRP_RESULT_OK && b.incomplete == 0);
        CHECK_RES(msrp_session_refuse_incoming(sb, "nosuchmessage"), MSRP_RESULT_NOT_FOUND);
      }
    }
    /* The session goes on after a refused message: a small message in
     * several chunks with no choice reaches on_message from memory. */
    uint8_t *mid = big_body(200 * 1000, 9);
    b.sink_mode = 0;
    CHECK_OK(msrp_session_send_message(sa, mid, 200 * 1000, "application/octet-stream", NULL, NULL, NULL, NULL));
    free(mid);
    CHECK(wait_for(&b, &b.messages, 1, 10000));
    CHECK(b.big_ok == 1);
    msrp_session_free(sa);
    msrp_session_free(sb);
    /* on_closed may still be on its way: the box lives until it ran. */
    CHECK(wait_for(&b, &b.closed, 1, 5000));
    pthread_mutex_destroy(&d.m);
    box_destroy(&b);
    remove(b.sink_path);
  }
  remove(src);
  rmdir(dir);
  free(body);
  msrp_context_free(ctx);
}

/* A message to a sink that completes just before the peer closes is saved,
 * and on_message_saved comes before on_closed, also when the application
 * runs the callbacks later from msrp_context_dispatch (queued_callbacks).
 * Before, the close dropped the sinks at once, and the message's end, still
 * queued, found none: the message was lost without a word. */
static void test_a_saved_message_then_a_close_in_queued_mode(void) {
  msrp_context *ctx = NULL;
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.queued_callbacks = true;
  CHECK_OK(msrp_context_new(&co, &ctx));
  char dir[] = "/tmp/msrp-close-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  box b;
  box_init(&b);
  b.sink_mode = 1;
  snprintf(b.sink_path, sizeof b.sink_path, "%s/received.txt", dir);
  rawpeer p;
  msrp_transport *t = NULL;
  raw_bind_blocking(ctx, &p, &t);
  msrp_session *s = NULL;
  CHECK_OK(msrp_session_new(t, NULL, &SINK_CBS, &b, NULL, &s));
  b.self = s;
  /* The first chunk; the application runs its callbacks (the message's
   * sink is chosen in on_message_start). */
  /* (No responses: a peer that closes with responses unread in its
   * socket resets the connection, and the kernel drops what we had not
   * read yet. Not what this test is about.) */
  const char *no = "Failure-Report: no\r\n";
  raw_send(&p, "close001", "closing1", "1-10/30", no, "0123456789", '+');
  for (int i = 0; i < 500 && !b.started; i++) {
    CHECK_OK(msrp_context_dispatch(ctx, 0, NULL));
    usleep(10 * 1000);
  }
  CHECK(b.started == 1);
  /* The rest, then the peer is gone; all of it, the close included,
   * reaches the queue before the application runs callbacks again. */
  raw_send(&p, "close002", "closing1", "11-20/30", no, "abcdefghij", '+');
  raw_send(&p, "close003", "closing1", "21-30/30", no, "ABCDEFGHIJ", '$');
  close(p.fd);
  usleep(500 * 1000);
  for (int i = 0; i < 500 && !b.closed; i++) {
    size_t ran = 0;
    CHECK_OK(msrp_context_dispatch(ctx, 0, &ran));
    if (!ran) usleep(10 * 1000);
  }
  CHECK(b.closed == 1);
  CHECK(b.started == 1 && b.saved == 1 && b.saved_before_closed == 1 && b.saved_size == 30);
  CHECK(b.incomplete == 0);
  char got[64] = {0};
  FILE *f = fopen(b.sink_path, "rb");
  CHECK(f != NULL);
  if (f) {
    CHECK(fread(got, 1, sizeof got, f) == 30);
    fclose(f);
  }
  CHECK(strcmp(got, "0123456789abcdefghijABCDEFGHIJ") == 0);
  msrp_session_free(s);
  msrp_context_free(ctx);
  unlink(b.sink_path);
  rmdir(dir);
  box_destroy(&b);
}

/* Sends `body` as one message in interruptible chunks (Byte-Range end `*`,
 * RFC 4975 §7.1.1) of uneven sizes, one larger than libmsrp holds whole,
 * each written in uneven slices with pauses, so that the receiver's reads
 * cut bodies anywhere. Failure-Report: no, so nothing comes back. */
static void raw_star_chunks(rawpeer *p, const char *mid, const uint8_t *body, size_t n) {
  static const size_t sizes[] = {150001, 40000, 262144, 1000, 90000, 300000, 7};
  static const size_t slices[] = {1, 4093, 32768, 65537, 100, 150001, 20000};
  int one = 1;
  CHECK(setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
  size_t off = 0, k = 0, s = 0;
  while (off < n) {
    size_t len = sizes[k % 7];
    if (len > n - off) len = n - off;
    bool last = off + len == n;
    char tid[16], head[1024], tail[64];
    snprintf(tid, sizeof tid, "star%04zu", k++);
    int hl = snprintf(head, sizeof head,
                      "MSRP %s SEND\r\nTo-Path: %s\r\nFrom-Path: %s\r\nMessage-ID: %s\r\nByte-Range: %zu-*/%zu\r\n"
                      "Failure-Report: no\r\nContent-Type: application/octet-stream\r\n\r\n",
                      tid, p->to, p->from, mid, off + 1, n);
    int tl = snprintf(tail, sizeof tail, "\r\n-------%s%c\r\n", tid, last ? '$' : '+');
    size_t total = (size_t)hl + len + (size_t)tl;
    uint8_t *w = malloc(total);
    CHECK(w != NULL);
    memcpy(w, head, (size_t)hl);
    memcpy(w + hl, body + off, len);
    memcpy(w + hl + len, tail, (size_t)tl);
    for (size_t at = 0; at < total;) {
      size_t m = slices[s++ % 7];
      if (m > total - at) m = total - at;
      CHECK(send_all(p->fd, w + at, m) == 0);
      at += m;
      usleep(200);
    }
    free(w);
    off += len;
  }
}

/* A peer that is not libmsrp sends a 3 MB message in `*` chunks cut at odd
 * places (raw_star_chunks): bodies spread over several reads are kept as
 * pieces of the read buffers (or copied when small or in too many pieces).
 * The message arrives intact reassembled by the session, in a memory sink
 * (on_message_start choosing nothing), and in a file. */
static void test_star_chunks_cut_anywhere(void) {
  enum { SIZE = 3 * 1000 * 1000 + 11 };
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  char dir[] = "/tmp/msrp-star-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  uint8_t *body = big_body(SIZE, 6);
  for (int mode = 0; mode < 3; mode++) {
    rawpeer p;
    msrp_transport *t = NULL;
    raw_bind(ctx, &p, &t);
    box b;
    box_init(&b);
    b.sink_mode = mode == 2 ? 1 : 0;
    snprintf(b.sink_path, sizeof b.sink_path, "%s/star.bin", dir);
    CHECK_OK(msrp_session_new(t, NULL, mode == 0 ? &CBS : &SINK_CBS, &b, NULL, &b.self));
    raw_star_chunks(&p, "starmsg1", body, SIZE);
    if (mode < 2) {
      CHECK(wait_for(&b, &b.messages, 1, 10000));
      CHECK(b.big_ok == 1 && b.seed_seen[6] == 1);
    } else {
      CHECK(wait_for(&b, &b.saved, 1, 10000) && b.saved_size == SIZE);
      CHECK(file_holds(b.sink_path, body, SIZE));
      remove(b.sink_path);
    }
    CHECK(b.started == (mode == 0 ? 0 : 1) && b.incomplete == 0);
    close(p.fd);
    CHECK(wait_for(&b, &b.closed, 1, 5000));
    msrp_session_free(b.self);
    box_destroy(&b);
  }
  rmdir(dir);
  free(body);
  msrp_context_free(ctx);
}

int main(void) {
  test_a_saved_message_then_a_close_in_queued_mode();
  test_messages_sent_before_the_session_and_a_close();
  test_interrupted_chunks_and_expiry();
  test_many_large_messages_at_once();
  test_receiving_to_sinks();
  test_star_chunks_cut_anywhere();
  return check_summary("test_large_early");
}
