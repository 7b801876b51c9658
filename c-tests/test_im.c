/* Instant messaging through the header (issue 23): message/cpim built and
 * read (RFC 3862), a CPIM chat with IMDN delivery and display
 * notifications correlated to the sent messages (RFC 5438), automatic
 * delivery notifications on and off, and what the peer's SDP allows inside
 * the wrapper (RFC 4975 §8.6). */
#include "net.h"

#define IMDN_NS "urn:ietf:params:imdn"

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  msrp_session *self; /* for answering from callbacks */
  bool send_display;  /* answer each CPIM message with a display notification */
  int cpim, plain;
  char from_uri[128], from_name[64], subject[128], content[128], imdn_id[64], ctype[64];
  /* notifications (the sender's side) */
  int delivered, displayed, notifications;
  char notified_id[64];
  uint64_t notified_msg;
  int done;
  uint16_t done_code;
} party;

static void p_init(party *p) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->m, NULL);
  pthread_cond_init(&p->c, NULL);
}

static void p_destroy(party *p) {
  pthread_mutex_destroy(&p->m);
  pthread_cond_destroy(&p->c);
}

static int p_wait(party *p, const int *field, int want) { return wait_int(&p->m, &p->c, field, want, 10000); }

static void copy_str(char *dst, size_t cap, char *s) {
  snprintf(dst, cap, "%s", s ? s : "");
  msrp_string_free(s);
}

static void on_cpim(void *ud, const msrp_chunk *head, const msrp_cpim *m) {
  party *p = ud;
  (void)head;
  char *v = NULL, *name = NULL;
  pthread_mutex_lock(&p->m);
  if (msrp_cpim_address(m, "From", &name, &v) == MSRP_RESULT_OK) {
    copy_str(p->from_uri, sizeof p->from_uri, v);
    copy_str(p->from_name, sizeof p->from_name, name);
  }
  if (msrp_cpim_header(m, NULL, "Subject", &v) == MSRP_RESULT_OK) copy_str(p->subject, sizeof p->subject, v);
  if (msrp_cpim_header(m, IMDN_NS, "Message-ID", &v) == MSRP_RESULT_OK) copy_str(p->imdn_id, sizeof p->imdn_id, v);
  if (msrp_cpim_content_header(m, "Content-Type", &v) == MSRP_RESULT_OK) copy_str(p->ctype, sizeof p->ctype, v);
  const uint8_t *data = NULL;
  size_t len = 0;
  if (msrp_cpim_content(m, &data, &len) == MSRP_RESULT_OK)
    snprintf(p->content, sizeof p->content, "%.*s", (int)len, (const char *)data);
  p->cpim++;
  pthread_cond_broadcast(&p->c);
  pthread_mutex_unlock(&p->m);
  /* The user read it: a display notification (RFC 5438 §7.2.1.2). */
  if (p->send_display) CHECK_OK(msrp_session_send_imdn(p->self, m, MSRP_IMDN_KIND_DISPLAY, "displayed"));
}

static void on_plain(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  party *p = ud;
  (void)head;
  (void)data;
  (void)len;
  pthread_mutex_lock(&p->m);
  p->plain++;
  pthread_cond_broadcast(&p->c);
  pthread_mutex_unlock(&p->m);
}

static void on_notification(void *ud, uint64_t msg, const char *imdn_id, msrp_imdn_kind kind, const char *status) {
  party *p = ud;
  pthread_mutex_lock(&p->m);
  p->notifications++;
  p->notified_msg = msg;
  snprintf(p->notified_id, sizeof p->notified_id, "%s", imdn_id);
  if (kind == MSRP_IMDN_KIND_DELIVERY && strcmp(status, "delivered") == 0) p->delivered++;
  if (kind == MSRP_IMDN_KIND_DISPLAY && strcmp(status, "displayed") == 0) p->displayed++;
  pthread_cond_broadcast(&p->c);
  pthread_mutex_unlock(&p->m);
}

static void on_done(void *ud, uint64_t msg, const char *message_id, uint16_t code, const char *comment) {
  party *p = ud;
  (void)msg;
  (void)message_id;
  (void)comment;
  pthread_mutex_lock(&p->m);
  p->done++;
  p->done_code = code;
  pthread_cond_broadcast(&p->c);
  pthread_mutex_unlock(&p->m);
}

static const msrp_session_callbacks CBS = {.on_message = on_plain, .on_cpim = on_cpim};

static msrp_cpim *hello(const char *type, const char *text) {
  msrp_cpim *m = NULL;
  CHECK_OK(msrp_cpim_new(type, (const uint8_t *)text, strlen(text), &m));
  CHECK_OK(msrp_cpim_add_address(m, "From", "Alice Liddell", "sip:alice@example.com"));
  CHECK_OK(msrp_cpim_add_address(m, "To", NULL, "sip:bob@example.com"));
  CHECK_OK(msrp_cpim_add_header(m, "Subject", "tea\tat four")); /* a tab: escaped on the wire */
  return m;
}

/* A CPIM chat: alice asks for delivery and display notifications; bob's
 * session answers the delivery request by itself (imdn_auto_delivery) and
 * bob's application sends the display notification when it "shows" the
 * message. Both reach the callbacks of the message they are about, with the
 * imdn.Message-ID bob saw. With auto delivery off only the display comes. */
static void run_chat(bool auto_delivery) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  party a, b;
  p_init(&a);
  p_init(&b);
  b.send_display = true;
  msrp_session_options ao = msrp_session_options_default();
  ao.peer_accept_types = "message/cpim";
  ao.peer_accept_wrapped_types = "text/plain";
  msrp_session_options bo = msrp_session_options_default();
  bo.imdn_auto_delivery = auto_delivery;
  CHECK_OK(msrp_session_new(ta, &ao, &CBS, &a, NULL, &a.self));
  CHECK_OK(msrp_session_new(tb, &bo, &CBS, &b, NULL, &b.self));

  msrp_cpim *m = hello("text/plain", "hello bob");
  msrp_message_callbacks mc = {.on_done = on_done, .on_notification = on_notification};
  uint64_t id = 0;
  CHECK_OK(msrp_session_send_cpim(a.self, m, MSRP_IMDN_POSITIVE_DELIVERY | MSRP_IMDN_DISPLAY, NULL, &mc, &a, &id));
  CHECK(p_wait(&b, &b.cpim, 1));
  CHECK(p_wait(&a, &a.done, 1) && a.done_code == 200);
  CHECK(p_wait(&a, &a.displayed, 1));
  pthread_mutex_lock(&b.m);
  CHECK(strcmp(b.from_uri, "sip:alice@example.com") == 0);
  CHECK(strcmp(b.from_name, "Alice Liddell") == 0);
  CHECK(strcmp(b.subject, "tea\tat four") == 0);
  CHECK(strcmp(b.content, "hello bob") == 0);
  CHECK(strcmp(b.ctype, "text/plain") == 0);
  CHECK(strlen(b.imdn_id) >= 8);
  CHECK(b.plain == 0);
  pthread_mutex_unlock(&b.m);
  if (auto_delivery) CHECK(p_wait(&a, &a.delivered, 1));
  pthread_mutex_lock(&a.m);
  /* The notifications name the message they are about. */
  CHECK(a.notified_msg == id);
  CHECK(strcmp(a.notified_id, b.imdn_id) == 0);
  /* Delivery comes before display when on (it is sent before on_cpim runs);
   * without it only the display notification arrives. */
  CHECK(a.delivered == (auto_delivery ? 1 : 0));
  CHECK(a.displayed == 1);
  CHECK(a.notifications == (auto_delivery ? 2 : 1));
  CHECK(a.cpim == 0 && a.plain == 0); /* notifications are not messages */
  pthread_mutex_unlock(&a.m);

  /* RFC 4975 §8.6: the peer's SDP decides what goes inside the wrapper. */
  msrp_cpim *png = hello("image/png", "not really");
  CHECK_RES(msrp_session_send_cpim(a.self, png, 0, NULL, NULL, NULL, NULL), MSRP_RESULT_NOT_ACCEPTED_BY_PEER);
  CHECK_LAST_ERROR_HAS("image/png");
  CHECK_RES(msrp_session_send_cpim(a.self, m, 0x80, NULL, NULL, NULL, NULL), MSRP_RESULT_INVALID_ARGUMENT);
  /* A message that asked for nothing cannot be answered; a status the
   * kind does not allow is refused. */
  CHECK_RES(msrp_session_send_imdn(b.self, m, MSRP_IMDN_KIND_DELIVERY, "delivered"), MSRP_RESULT_NOT_FOUND);
  CHECK_LAST_ERROR_HAS("imdn.Message-ID");
  CHECK_OK(msrp_cpim_add_header(m, "NS", "imdn <urn:ietf:params:imdn>"));
  CHECK_OK(msrp_cpim_add_header(m, "imdn.Message-ID", "abcd1234"));
  CHECK_RES(msrp_session_send_imdn(b.self, m, MSRP_IMDN_KIND_DISPLAY, "delivered"), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_session_send_imdn(b.self, m, (msrp_imdn_kind)7, "error"), MSRP_RESULT_INVALID_ARGUMENT);
  msrp_cpim_free(png);
  msrp_cpim_free(m);

  msrp_session_free(a.self);
  msrp_session_free(b.self);
  msrp_context_free(ctx);
  p_destroy(&a);
  p_destroy(&b);
}

static void test_cpim_chat_with_notifications(void) {
  run_chat(true);
  run_chat(false);
}

/* A peer that accepts only text/plain gets no message/cpim at all. */
static void test_peer_without_cpim(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  msrp_session_options ao = msrp_session_options_default();
  ao.peer_accept_types = "text/plain";
  msrp_session *sa = NULL, *sb = NULL;
  CHECK_OK(msrp_session_new(ta, &ao, NULL, NULL, NULL, &sa));
  CHECK_OK(msrp_session_new(tb, NULL, NULL, NULL, NULL, &sb));
  msrp_cpim *m = hello("text/plain", "x");
  CHECK_RES(msrp_session_send_cpim(sa, m, 0, NULL, NULL, NULL, NULL), MSRP_RESULT_NOT_ACCEPTED_BY_PEER);
  CHECK_LAST_ERROR_HAS("message/cpim");
  msrp_cpim_free(m);
  msrp_session_free(sa);
  msrp_session_free(sb);
  msrp_context_free(ctx);
}

/* RFC 3862 §5.1's example through the C API: read, headers found (a
 * namespaced one by its URN), encoded back to the same bytes; errors name
 * the byte. */
static void test_cpim_parse_and_encode(void) {
  const char *body =
      "From: MR SANDERS <im:piglet@100akerwood.com>\r\n"
      "To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n"
      "DateTime: 2000-12-13T13:40:00-08:00\r\n"
      "Subject: the weather will be fine today\r\n"
      "Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n"
      "NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
      "Require: MyFeatures.VitalMessageOption\r\n"
      "MyFeatures.VitalMessageOption: Confirmation-requested\r\n"
      "MyFeatures.WackyMessageOption: Use-silly-font\r\n"
      "\r\n"
      "Content-type: text/xml; charset=utf-8\r\n"
      "Content-ID: <1234567890@foo.com>\r\n"
      "\r\n"
      "<body>\r\n"
      "Here is the text of my message.\r\n"
      "</body>";
  msrp_cpim *m = NULL;
  CHECK_OK(msrp_cpim_parse((const uint8_t *)body, strlen(body), &m));
  char *v = NULL, *name = NULL;
  CHECK_OK(msrp_cpim_header(m, "mid:MessageFeatures@id.foo.com", "WackyMessageOption", &v));
  CHECK(strcmp(v, "Use-silly-font") == 0);
  msrp_string_free(v);
  CHECK_OK(msrp_cpim_address(m, "To", &name, &v));
  CHECK(strcmp(name, "Depressed Donkey") == 0 && strcmp(v, "im:eeyore@100akerwood.com") == 0);
  msrp_string_free(name);
  msrp_string_free(v);
  CHECK_OK(msrp_cpim_content_header(m, "content-type", &v));
  CHECK(strcmp(v, "text/xml; charset=utf-8") == 0);
  msrp_string_free(v);
  CHECK_RES(msrp_cpim_header(m, NULL, "cc", &v), MSRP_RESULT_NOT_FOUND);
  size_t len = 0;
  CHECK_RES(msrp_cpim_encode(m, NULL, 0, &len), MSRP_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == strlen(body));
  char *buf = malloc(len);
  CHECK_OK(msrp_cpim_encode(m, (uint8_t *)buf, len, &len));
  CHECK(memcmp(buf, body, len) == 0);
  free(buf);
  msrp_cpim_free(m);

  m = NULL;
  CHECK_RES(msrp_cpim_parse((const uint8_t *)"From: a\r\nTo b\r\n\r\n", 17, &m), MSRP_RESULT_INVALID_CPIM);
  CHECK_LAST_ERROR_HAS("no colon after its name (at byte 11)");
  CHECK(m == NULL);
  CHECK_RES(msrp_cpim_new("not a type", (const uint8_t *)"x", 1, &m), MSRP_RESULT_INVALID_HEADER);
  CHECK_OK(msrp_cpim_new("text/plain", NULL, 0, &m));
  CHECK_RES(msrp_cpim_add_header(m, "a.b.c", "x"), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_cpim_add_header(m, "Bad Name", "x"), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_cpim_add_address(m, "Subject", NULL, "sip:x@y"), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_cpim_add_address(m, "From", NULL, "<bad>"), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_cpim_add_content_header(m, "Content-ID", "a\r\nb"), MSRP_RESULT_INVALID_ARGUMENT);
  msrp_cpim_free(m);
  msrp_cpim_free(NULL);
}

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int events, active, idle, messages;
  bool now_active;
  char ctype[64];
} watcher;

static void on_composing(void *ud, bool active, const char *content_type) {
  watcher *w = ud;
  pthread_mutex_lock(&w->m);
  w->events++;
  if (active) w->active++;
  else w->idle++;
  w->now_active = active;
  snprintf(w->ctype, sizeof w->ctype, "%s", content_type ? content_type : "");
  pthread_cond_broadcast(&w->c);
  pthread_mutex_unlock(&w->m);
}

static void on_watched_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  watcher *w = ud;
  (void)head;
  (void)data;
  (void)len;
  pthread_mutex_lock(&w->m);
  w->messages++;
  pthread_cond_broadcast(&w->c);
  pthread_mutex_unlock(&w->m);
}

/* RFC 3994 §3.2/§3.3 through the header, on real (short) timers: the first
 * keystroke sends "active" (more keystrokes send nothing more); 300 ms
 * without typing sends "idle"; typing again is "active" again; a sent
 * message ends composing at the peer (§3.3 case 2) and no "idle" follows
 * (§3.2). The state machines themselves are tested on a simulated clock in
 * tests/messaging.rs. */
static void test_is_composing(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  watcher w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.c, NULL);
  msrp_session_options ao = msrp_session_options_default();
  ao.composing_idle_ms = 300;
  msrp_session_callbacks bcb = {.on_message = on_watched_message, .on_composing = on_composing};
  msrp_session *sa = NULL, *sb = NULL;
  CHECK_OK(msrp_session_new(ta, &ao, NULL, NULL, NULL, &sa));
  CHECK_OK(msrp_session_new(tb, NULL, &bcb, &w, NULL, &sb));

  for (int i = 0; i < 5; i++) CHECK_OK(msrp_session_composing(sa, NULL));
  CHECK(wait_int(&w.m, &w.c, &w.active, 1, 10000));
  CHECK(wait_int(&w.m, &w.c, &w.idle, 1, 10000)); /* after 300 ms without typing */
  pthread_mutex_lock(&w.m);
  CHECK(w.active == 1 && w.idle == 1 && !w.now_active);
  CHECK(strcmp(w.ctype, "text/plain") == 0);
  pthread_mutex_unlock(&w.m);

  CHECK_OK(msrp_session_composing(sa, "image/png"));
  CHECK(wait_int(&w.m, &w.c, &w.active, 2, 10000));
  pthread_mutex_lock(&w.m);
  CHECK(strcmp(w.ctype, "image/png") == 0);
  pthread_mutex_unlock(&w.m);
  CHECK_OK(msrp_session_send_message(sa, (const uint8_t *)"done", 4, "text/plain", NULL, NULL, NULL, NULL));
  CHECK(wait_int(&w.m, &w.c, &w.messages, 1, 10000));
  CHECK(wait_int(&w.m, &w.c, &w.idle, 2, 10000));
  /* Nothing more: the sender went idle without an "idle" message. */
  nanosleep(&(struct timespec){0, 700 * 1000000L}, NULL);
  pthread_mutex_lock(&w.m);
  CHECK(w.events == 4 && w.messages == 1 && !w.now_active);
  pthread_mutex_unlock(&w.m);

  /* A peer that does not accept is-composing is not sent it. */
  msrp_transport *tc = NULL, *td = NULL;
  make_pair(ctx, false, NULL, &tc, &td);
  msrp_session_options co = msrp_session_options_default();
  co.peer_accept_types = "text/plain";
  msrp_session *sc = NULL, *sd = NULL;
  CHECK_OK(msrp_session_new(tc, &co, NULL, NULL, NULL, &sc));
  CHECK_OK(msrp_session_new(td, NULL, NULL, NULL, NULL, &sd));
  CHECK_RES(msrp_session_composing(sc, NULL), MSRP_RESULT_NOT_ACCEPTED_BY_PEER);
  CHECK_RES(msrp_session_composing(sc, NULL), MSRP_RESULT_NOT_ACCEPTED_BY_PEER); /* every time */
  CHECK_RES(msrp_session_composing(sc, "not a type"), MSRP_RESULT_INVALID_HEADER);

  msrp_session_free(sa);
  msrp_session_free(sb);
  msrp_session_free(sc);
  msrp_session_free(sd);
  msrp_context_free(ctx);
  pthread_mutex_destroy(&w.m);
  pthread_cond_destroy(&w.c);
}

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  msrp_session *self;
  int asked, answers;
  char last_nick[128];
  uint16_t codes[8];
} room;

/* The focus: "Alice the great" is taken (RFC 7701 §9.2), others are fine. */
static void on_nickname(void *ud, const char *tx, const char *nickname) {
  room *r = ud;
  pthread_mutex_lock(&r->m);
  r->asked++;
  snprintf(r->last_nick, sizeof r->last_nick, "%s", nickname);
  pthread_mutex_unlock(&r->m);
  bool taken = strcmp(nickname, "Alice the great") == 0;
  CHECK_OK(msrp_session_answer_nickname(r->self, tx, taken ? 425 : 200, NULL));
  /* Answered once only. */
  CHECK_RES(msrp_session_answer_nickname(r->self, tx, 200, NULL), MSRP_RESULT_NOT_FOUND);
}

static void on_nick_answer(void *ud, uint16_t code, const char *comment, bool local) {
  room *r = ud;
  (void)comment;
  (void)local;
  pthread_mutex_lock(&r->m);
  if (r->answers < 8) r->codes[r->answers] = code;
  r->answers++;
  pthread_cond_broadcast(&r->c);
  pthread_mutex_unlock(&r->m);
}

/* RFC 7701 §7.1 and §9.2: a participant asks for a nickname that is taken
 * (425), then another (200); the focus application decides both. A
 * malformed Use-Nickname gets 424 from the session itself; a focus whose
 * application does not decide answers 403; a session that is not a focus
 * grants any well-formed nickname (200). */
static void test_nickname(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  room client, focus;
  memset(&client, 0, sizeof client);
  memset(&focus, 0, sizeof focus);
  pthread_mutex_init(&client.m, NULL);
  pthread_cond_init(&client.c, NULL);
  pthread_mutex_init(&focus.m, NULL);
  pthread_cond_init(&focus.c, NULL);
  msrp_transport *ta = NULL, *tb = NULL;
  make_pair(ctx, false, NULL, &ta, &tb);
  msrp_session_options fo = msrp_session_options_default();
  fo.nickname_by_application = true;
  msrp_session_callbacks fcb = {.on_nickname = on_nickname};
  CHECK_OK(msrp_session_new(ta, NULL, NULL, NULL, NULL, &client.self));
  CHECK_OK(msrp_session_new(tb, &fo, &fcb, &focus, NULL, &focus.self));

  CHECK_OK(msrp_session_nickname(client.self, "Alice the great", on_nick_answer, &client));
  CHECK(wait_int(&client.m, &client.c, &client.answers, 1, 10000));
  CHECK_OK(msrp_session_nickname(client.self, "Alice \"in\" Wonderland", on_nick_answer, &client));
  CHECK(wait_int(&client.m, &client.c, &client.answers, 2, 10000));
  /* A malformed value, written by hand: not a quoted string. */
  msrp_chunk_params p;
  memset(&p, 0, sizeof p);
  p.method = "NICKNAME";
  msrp_chunk *raw = NULL;
  CHECK_OK(msrp_session_make_chunk(client.self, &p, &raw));
  CHECK_OK(msrp_chunk_remove_header(raw, "Message-ID"));
  CHECK_OK(msrp_chunk_add_header(raw, "Use-Nickname", "no quotes"));
  CHECK_OK(msrp_session_send_chunk(client.self, raw, on_nick_answer, &client));
  msrp_chunk_free(raw);
  CHECK(wait_int(&client.m, &client.c, &client.answers, 3, 10000));
  pthread_mutex_lock(&client.m);
  CHECK(client.codes[0] == 425 && client.codes[1] == 200 && client.codes[2] == 424);
  pthread_mutex_unlock(&client.m);
  pthread_mutex_lock(&focus.m);
  CHECK(focus.asked == 2);
  CHECK(strcmp(focus.last_nick, "Alice \"in\" Wonderland") == 0);
  pthread_mutex_unlock(&focus.m);
  CHECK_RES(msrp_session_nickname(client.self, "", on_nick_answer, &client), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_session_answer_nickname(focus.self, "nosuchtx", 200, NULL), MSRP_RESULT_NOT_FOUND);
  CHECK_RES(msrp_session_answer_nickname(focus.self, "nosuchtx", 302, NULL), MSRP_RESULT_INVALID_CODE);
  msrp_session_free(client.self);
  msrp_session_free(focus.self);

  /* A focus without on_nickname: 403; not a focus: 200. */
  for (int focus_mode = 0; focus_mode < 2; focus_mode++) {
    room c2;
    memset(&c2, 0, sizeof c2);
    pthread_mutex_init(&c2.m, NULL);
    pthread_cond_init(&c2.c, NULL);
    make_pair(ctx, false, NULL, &ta, &tb);
    msrp_session_options o = msrp_session_options_default();
    o.nickname_by_application = focus_mode == 1;
    msrp_session *sa = NULL, *sb = NULL;
    CHECK_OK(msrp_session_new(ta, NULL, NULL, NULL, NULL, &sa));
    CHECK_OK(msrp_session_new(tb, &o, NULL, NULL, NULL, &sb));
    CHECK_OK(msrp_session_nickname(sa, "Bob", on_nick_answer, &c2));
    CHECK(wait_int(&c2.m, &c2.c, &c2.answers, 1, 10000));
    CHECK(c2.codes[0] == (focus_mode ? 403 : 200));
    msrp_session_free(sa);
    msrp_session_free(sb);
    pthread_mutex_destroy(&c2.m);
    pthread_cond_destroy(&c2.c);
  }
  msrp_context_free(ctx);
  pthread_mutex_destroy(&client.m);
  pthread_cond_destroy(&client.c);
  pthread_mutex_destroy(&focus.m);
  pthread_cond_destroy(&focus.c);
}

int main(void) {
  test_cpim_parse_and_encode();
  test_cpim_chat_with_notifications();
  test_peer_without_cpim();
  test_is_composing();
  test_nickname();
  return check_summary("test_im");
}
