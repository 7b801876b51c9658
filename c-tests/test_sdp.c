/* From an SDP offer to a running session with the library alone (issue 22):
 * alice offers, bob answers, each reads the other's SDP text, negotiates,
 * applies the result to its connector and session options, and the session
 * honours what the peer's SDP allows. Plus the errors a SIP stack must be
 * able to tell apart. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int messages;
  char last[64];
} inbox;

static void on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  (void)head;
  inbox *b = ud;
  pthread_mutex_lock(&b->m);
  snprintf(b->last, sizeof b->last, "%.*s", (int)len, (const char *)data);
  b->messages++;
  pthread_cond_broadcast(&b->c);
  pthread_mutex_unlock(&b->m);
}

static char *sdp_of(const msrp_sdp_media *m, const char *user) {
  char *text = NULL;
  CHECK_OK(msrp_sdp_media_to_sdp(m, user, 1, &text));
  return text;
}

static msrp_sdp_media *read_sdp(const char *text) {
  size_t n = 0;
  CHECK_OK(msrp_sdp_media_count(text, &n));
  CHECK(n == 1);
  msrp_sdp_media *m = NULL;
  CHECK_OK(msrp_sdp_media_parse(text, 0, &m));
  return m;
}

/* One offer/answer through SDP text, as two SIP user agents see it: alice
 * offers from `al`, bob reads it and answers from `bl`, alice reads the
 * answer, and each side negotiates. */
typedef struct {
  msrp_sdp_media *offer, *answer, *got_offer, *got_answer;
  char *offer_text, *answer_text;
  msrp_negotiation *an, *bn; /* alice's and bob's */
  char *a_remote, *b_remote; /* the remote path each side completes with */
} exchange;

static void exchange_run(exchange *x, const msrp_sdp_local *al, const msrp_sdp_local *bl) {
  memset(x, 0, sizeof *x);
  CHECK_OK(msrp_sdp_offer(al, &x->offer));
  x->offer_text = sdp_of(x->offer, "alice");
  x->got_offer = read_sdp(x->offer_text);
  CHECK_OK(msrp_sdp_answer(bl, x->got_offer, &x->answer));
  x->answer_text = sdp_of(x->answer, "bob");
  x->got_answer = read_sdp(x->answer_text);
  CHECK_OK(msrp_sdp_negotiate(x->offer, x->got_answer, true, &x->an));
  CHECK_OK(msrp_sdp_negotiate(x->answer, x->got_offer, false, &x->bn));
  CHECK_OK(msrp_negotiation_remote_path(x->an, &x->a_remote));
  CHECK_OK(msrp_negotiation_remote_path(x->bn, &x->b_remote));
}

static void exchange_free(exchange *x) {
  msrp_negotiation_free(x->an);
  msrp_negotiation_free(x->bn);
  msrp_sdp_media_free(x->offer);
  msrp_sdp_media_free(x->answer);
  msrp_sdp_media_free(x->got_offer);
  msrp_sdp_media_free(x->got_answer);
  msrp_string_free(x->offer_text);
  msrp_string_free(x->answer_text);
  msrp_string_free(x->a_remote);
  msrp_string_free(x->b_remote);
}

static void test_offer_answer_to_a_session(void) {
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&co, &ctx));
  /* alice cannot take connections (behind a NAT, say): she offers
   * a=setup:active (RFC 6135 §4.2.2) and accepts only text/plain. */
  msrp_connector *ac = NULL, *bc = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &ac));
  char *a_path = NULL, *b_path = NULL;
  CHECK_OK(msrp_connector_prepare(ac, "msrp://127.0.0.1:9/alice;tcp", &a_path));
  msrp_sdp_local al = msrp_sdp_local_default();
  al.full_local_path = a_path;
  al.accept_types = "text/plain";
  al.max_size = 100;
  /* bob prepares a passive connector and answers. */
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &bc));
  CHECK_OK(msrp_connector_prepare(bc, "msrp://127.0.0.1:0/bob;tcp", &b_path));
  msrp_sdp_local bl = msrp_sdp_local_default();
  bl.full_local_path = b_path;
  bl.can_accept = true;
  exchange x;
  exchange_run(&x, &al, &bl);
  CHECK(strstr(x.offer_text, "a=setup:active\r\n") != NULL);
  CHECK(strstr(x.offer_text, "a=accept-types:text/plain\r\n") != NULL);
  CHECK(strstr(x.offer_text, "a=max-size:100\r\n") != NULL);
  char *lines = NULL;
  CHECK_OK(msrp_sdp_media_lines(x.offer, &lines));
  CHECK(strncmp(lines, "m=message 9 TCP/MSRP *\r\n", 24) == 0);
  msrp_string_free(lines);
  char *offered_path = NULL;
  CHECK_OK(msrp_sdp_media_path(x.got_offer, &offered_path));
  CHECK(strcmp(offered_path, a_path) == 0);
  msrp_string_free(offered_path);
  CHECK(strstr(x.answer_text, "a=setup:passive\r\n") != NULL);
  CHECK(strstr(x.answer_text, "a=accept-types:text/plain\r\n") != NULL); /* the intersection */

  /* Each side applies what it negotiated. */
  CHECK(msrp_negotiation_is_active(x.an) && !msrp_negotiation_is_active(x.bn));
  /* The wrong kind of connector is told so. */
  CHECK_RES(msrp_negotiation_apply(x.an, bc, NULL), MSRP_RESULT_WRONG_KIND);
  CHECK_LAST_ERROR_HAS("active");
  msrp_session_options ao = msrp_session_options_default();
  msrp_session_options bo = msrp_session_options_default();
  CHECK_OK(msrp_negotiation_apply(x.an, ac, &ao));
  CHECK_OK(msrp_negotiation_apply(x.bn, bc, &bo));
  CHECK(bo.peer_max_size == 100 && bo.peer_accept_types && strcmp(bo.peer_accept_types, "text/plain") == 0);
  CHECK(strcmp(x.a_remote, b_path) == 0);
  CHECK(strcmp(x.b_remote, a_path) == 0);

  /* Connect as negotiated; bob's session honours alice's SDP. */
  completion done;
  completion_init(&done);
  CHECK_OK(msrp_connector_complete_async(bc, x.b_remote, 10000, on_complete, &done));
  msrp_transport *at = NULL;
  CHECK_OK(msrp_connector_complete(ac, x.a_remote, 10000, &at));
  CHECK(completion_wait(&done, 10000) && done.result == MSRP_RESULT_OK);
  inbox in;
  memset(&in, 0, sizeof in);
  pthread_mutex_init(&in.m, NULL);
  pthread_cond_init(&in.c, NULL);
  msrp_session_callbacks acb;
  memset(&acb, 0, sizeof acb);
  acb.on_message = on_message;
  msrp_session *as = NULL, *bs = NULL;
  CHECK_OK(msrp_session_new(at, &ao, &acb, &in, NULL, &as));
  CHECK_OK(msrp_session_new(done.transport, &bo, NULL, NULL, NULL, &bs));
  CHECK_RES(msrp_session_send_message(bs, (const uint8_t *)"<png>", 5, "image/png", NULL, NULL, NULL, NULL),
            MSRP_RESULT_NOT_ACCEPTED_BY_PEER);
  CHECK_OK(msrp_session_send_message(bs, (const uint8_t *)"hello alice", 11, "text/plain", NULL, NULL, NULL, NULL));
  CHECK(wait_int(&in.m, &in.c, &in.messages, 1, 5000));
  pthread_mutex_lock(&in.m);
  CHECK(strcmp(in.last, "hello alice") == 0);
  pthread_mutex_unlock(&in.m);

  msrp_session_free(as);
  msrp_session_free(bs);
  exchange_free(&x);
  msrp_string_free(a_path);
  msrp_string_free(b_path);
  msrp_connector_free(ac);
  msrp_connector_free(bc);
  completion_destroy(&done);
  msrp_context_free(ctx);
}

/* RFC 6135 §4.2.2: an offerer that can take connections offers actpass and
 * listens; the answerer may still choose to connect itself (a=setup:passive
 * is not forced): then the offerer is passive and keeps its listening
 * connector. When the answer is passive, the offerer becomes active:
 * msrp_negotiation_connector swaps in an active connector prepared with the
 * same path it put in the SDP, which the peer then sees in From-Path. Both
 * outcomes end in a session. */
static void run_actpass(bool answerer_can_accept) {
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.worker_threads = 2;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&co, &ctx));
  msrp_connector *listening = NULL, *bc = NULL;
  char *a_path = NULL, *b_path = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &listening));
  CHECK_OK(msrp_connector_prepare(listening, "msrp://127.0.0.1:0/alice2;tcp", &a_path));
  msrp_sdp_local al = msrp_sdp_local_default();
  al.full_local_path = a_path;
  al.can_accept = true;
  msrp_sdp_local bl = msrp_sdp_local_default();
  CHECK_OK(msrp_connector_new(ctx,
                              answerer_can_accept ? MSRP_CONNECTOR_KIND_PASSIVE : MSRP_CONNECTOR_KIND_ACTIVE,
                              false, NULL, &bc));
  CHECK_OK(msrp_connector_prepare(bc, answerer_can_accept ? "msrp://127.0.0.1:0/bob2;tcp" : "msrp://127.0.0.1:9/bob2;tcp",
                                  &b_path));
  bl.full_local_path = b_path;
  bl.can_accept = answerer_can_accept;
  exchange x;
  exchange_run(&x, &al, &bl);
  CHECK(strstr(x.offer_text, "a=setup:actpass\r\n") != NULL);
  msrp_negotiation *an = x.an, *bn = x.bn;
  CHECK(msrp_negotiation_is_active(an) == answerer_can_accept);
  CHECK(msrp_negotiation_is_active(bn) == !answerer_can_accept);
  /* One call makes each side's connector ready: alice's listening one is
   * replaced by an active one with the same path when she must connect. */
  msrp_connector *ac = listening;
  CHECK_OK(msrp_negotiation_connector(an, &ac));
  CHECK((ac != listening) == answerer_can_accept);
  CHECK_OK(msrp_negotiation_connector(bn, &bc));
  /* The connector ends up with the role the negotiation gives. */
  CHECK_OK(msrp_negotiation_apply(an, ac, NULL));
  CHECK_OK(msrp_negotiation_apply(bn, bc, NULL));
  const char *a_remote = x.a_remote, *b_remote = x.b_remote;
  /* The passive side waits in the background, the active one connects. */
  msrp_connector *passive = msrp_negotiation_is_active(an) ? bc : ac;
  msrp_connector *active = msrp_negotiation_is_active(an) ? ac : bc;
  const char *passive_remote = msrp_negotiation_is_active(an) ? b_remote : a_remote;
  const char *active_remote = msrp_negotiation_is_active(an) ? a_remote : b_remote;
  completion done;
  completion_init(&done);
  CHECK_OK(msrp_connector_complete_async(passive, passive_remote, 10000, on_complete, &done));
  msrp_transport *t = NULL;
  CHECK_OK(msrp_connector_complete(active, active_remote, 10000, &t));
  CHECK(completion_wait(&done, 10000) && done.result == MSRP_RESULT_OK);
  msrp_transport_free(t);
  msrp_transport_free(done.transport);
  completion_destroy(&done);
  msrp_connector_free(ac); /* `listening` was freed if it was replaced */
  msrp_connector_free(bc);
  exchange_free(&x);
  msrp_string_free(a_path);
  msrp_string_free(b_path);
  msrp_context_free(ctx);
}

static void test_actpass_either_way(void) {
  run_actpass(true);  /* answer passive: the offerer connects */
  run_actpass(false); /* answer active: the offerer keeps listening */
}

/* RFC 5547 §8: alice offers to send a file (sendonly, with its
 * file-selector and a SHA-1 hash made by msrp_file_hash); bob reads what
 * the offer describes before answering, answers recvonly with the same
 * selector (§8.3), and both negotiations say who sends it. Then the
 * reverse: bob asks for a file (recvonly) and alice's answer sends it. */
static void test_file_offer_answer(void) {
  const char *file = "/tmp/msrp-test-sdp-file.txt";
  FILE *f = fopen(file, "w");
  CHECK(f != NULL);
  fputs("abc", f);
  fclose(f);
  char *hash = NULL;
  CHECK_OK(msrp_file_hash(file, &hash));
  /* SHA-1("abc"), FIPS 180-2 appendix A.1. */
  CHECK(strcmp(hash, "sha-1:A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D") == 0);
  remove(file);
  CHECK_RES(msrp_file_hash(file, &hash), MSRP_RESULT_IO);
  CHECK_LAST_ERROR_HAS(file);

  for (int asking = 0; asking < 2; asking++) {
    msrp_sdp_file fd = msrp_sdp_file_default();
    fd.send = !asking;
    fd.name = "My \"cool\" photo.txt"; /* quotes are percent-encoded on the wire (RFC 5547 §6) */
    fd.media_type = "text/plain";
    fd.has_size = true;
    fd.size = 3;
    fd.hash = hash;
    fd.disposition = "attachment";
    fd.dates = "modification:\"Sun, 6 Dec 2026 10:00:00 +0000\"";
    msrp_sdp_local al = msrp_sdp_local_default();
    al.full_local_path = "msrp://127.0.0.1:7001/alicef;tcp";
    al.file = &fd;
    msrp_sdp_local bl = msrp_sdp_local_default();
    bl.full_local_path = "msrp://127.0.0.1:7002/bobf;tcp";
    bl.can_accept = true;
    exchange x;
    exchange_run(&x, &al, &bl);
    CHECK(strstr(x.offer_text, asking ? "a=recvonly\r\n" : "a=sendonly\r\n") != NULL);
    CHECK(strstr(x.answer_text, asking ? "a=sendonly\r\n" : "a=recvonly\r\n") != NULL);
    CHECK(strstr(x.offer_text, "a=file-selector:name:\"My %22cool%22 photo.txt\" type:text/plain size:3 hash:sha-1:A9:") !=
          NULL);
    CHECK(strstr(x.offer_text, "a=file-transfer-id:") != NULL);
    /* What bob sees in the offer before he answers. */
    msrp_sdp_file seen;
    CHECK_OK(msrp_sdp_media_file(x.got_offer, &seen));
    CHECK(seen.send == !asking);
    CHECK(seen.name && strcmp(seen.name, "My \"cool\" photo.txt") == 0);
    CHECK(seen.media_type && strcmp(seen.media_type, "text/plain") == 0);
    CHECK(seen.has_size && seen.size == 3);
    CHECK(seen.hash && strcasecmp(seen.hash, hash) == 0);
    CHECK(seen.transfer_id && strlen(seen.transfer_id) > 0);
    CHECK(seen.disposition && strcmp(seen.disposition, "attachment") == 0);
    CHECK(seen.dates && strstr(seen.dates, "2026") != NULL);
    CHECK(seen.range_start == 0);
    /* The answer repeats the selector and the id. */
    msrp_sdp_file in_answer;
    CHECK_OK(msrp_sdp_media_file(x.got_answer, &in_answer));
    CHECK(in_answer.send == (bool)asking);
    CHECK(strcmp(in_answer.transfer_id, seen.transfer_id) == 0);
    CHECK(strcasecmp(in_answer.hash, hash) == 0);
    /* Each side learns whether it sends. */
    msrp_sdp_file af, bf;
    CHECK_OK(msrp_negotiation_file(x.an, &af));
    CHECK_OK(msrp_negotiation_file(x.bn, &bf));
    CHECK(af.send == !asking && bf.send == (bool)asking);
    CHECK(af.has_size && af.size == 3 && bf.has_size && bf.size == 3);
    CHECK(strcmp(bf.name, "My \"cool\" photo.txt") == 0);
    exchange_free(&x);
  }

  /* A chat is not a file transfer; bad file settings are named. */
  msrp_sdp_local cl = msrp_sdp_local_default();
  cl.full_local_path = "msrp://127.0.0.1:7001/chat;tcp";
  msrp_sdp_media *chat = NULL;
  CHECK_OK(msrp_sdp_offer(&cl, &chat));
  msrp_sdp_file none;
  CHECK_RES(msrp_sdp_media_file(chat, &none), MSRP_RESULT_NOT_FOUND);
  CHECK_LAST_ERROR_HAS("file-selector");
  msrp_sdp_media_free(chat);
  chat = NULL;
  msrp_sdp_file bad = msrp_sdp_file_default();
  bad.hash = "sha-1:nothex";
  cl.file = &bad;
  CHECK_RES(msrp_sdp_offer(&cl, &chat), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("file.hash");
  bad = msrp_sdp_file_default();
  bad.name = "../../etc/passwd";
  CHECK_RES(msrp_sdp_offer(&cl, &chat), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("file.name");
  bad = msrp_sdp_file_default();
  bad.range_start = 10;
  bad.range_stop = 5;
  CHECK_RES(msrp_sdp_offer(&cl, &chat), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_HAS("range");
  CHECK(chat == NULL);
  msrp_string_free(hash);
}

/* msrp_negotiation_connector with a relay connection: one of the role the
 * negotiation gives stays as it is; one of the other role is refused with
 * WRONG_KIND and left unchanged (a relay connection cannot listen). So is
 * an active direct connector that the negotiation makes passive. */
static void test_negotiation_connector_roles(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_sdp_local al = msrp_sdp_local_default();
  al.full_local_path = "msrp://127.0.0.1:2855/relay1;tcp msrp://127.0.0.1:9/alicer;tcp"; /* behind a relay */
  msrp_sdp_local bl = msrp_sdp_local_default();
  bl.full_local_path = "msrp://127.0.0.1:7003/bobr;tcp";
  bl.can_accept = true;
  exchange x;
  exchange_run(&x, &al, &bl);
  CHECK(strstr(x.offer_text, "a=setup:active\r\n") != NULL);
  CHECK(msrp_negotiation_is_active(x.an) && !msrp_negotiation_is_active(x.bn));
  msrp_relay_settings rs = msrp_relay_settings_default();
  rs.host = "127.0.0.1";
  rs.username = "alice";
  rs.password = "secret";
  for (int kind = 0; kind < 2; kind++) {
    msrp_connector *r = NULL;
    CHECK_OK(msrp_connector_new_relay(ctx, kind ? MSRP_CONNECTOR_KIND_PASSIVE : MSRP_CONNECTOR_KIND_ACTIVE, false, NULL,
                                      &rs, &r));
    msrp_connector *before = r;
    if (kind) {
      CHECK_RES(msrp_negotiation_connector(x.an, &r), MSRP_RESULT_WRONG_KIND);
      CHECK_LAST_ERROR_HAS("relay connection");
    } else {
      CHECK_OK(msrp_negotiation_connector(x.an, &r));
    }
    CHECK(r == before);
    msrp_connector_free(r);
  }
  msrp_connector *active = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &active));
  msrp_connector *before = active;
  CHECK_RES(msrp_negotiation_connector(x.bn, &active), MSRP_RESULT_WRONG_KIND);
  CHECK(active == before);
  msrp_connector *none = NULL;
  CHECK_RES(msrp_negotiation_connector(x.bn, &none), MSRP_RESULT_NULL_ARGUMENT);
  msrp_connector_free(active);
  exchange_free(&x);
  msrp_context_free(ctx);
}

/* RFC 7701 §8: a chat room's answer carries a=chatroom with its tokens; the
 * participant learns from its negotiation that the peer is a chat room that
 * takes nicknames. A plain peer is no chat room. */
static void test_chatroom_attribute(void) {
  msrp_sdp_local al = msrp_sdp_local_default();
  al.full_local_path = "msrp://127.0.0.1:7011/alicec;tcp";
  msrp_sdp_local focus = msrp_sdp_local_default();
  focus.full_local_path = "msrp://127.0.0.1:7012/room;tcp";
  focus.can_accept = true;
  focus.chatroom = "nickname private-messages";
  exchange x;
  exchange_run(&x, &al, &focus);
  CHECK(strstr(x.answer_text, "a=chatroom:nickname private-messages\r\n") != NULL);
  char *t = NULL;
  CHECK_OK(msrp_negotiation_chatroom(x.an, &t));
  CHECK(strcmp(t, "nickname private-messages") == 0);
  msrp_string_free(t);
  CHECK_RES(msrp_negotiation_chatroom(x.bn, &t), MSRP_RESULT_NOT_FOUND);
  exchange_free(&x);
}

/* A transport libmsrp does not carry (here `sctp`) is refused with
 * MSRP_RESULT_UNSUPPORTED and never dialled as TCP: not as a local URI
 * (connector, server), not as the first hop to connect to (a listener there
 * sees no connection). WebSocket (`ws`, RFC 7977) is carried; its SDP
 * follows RFC 7977 §5.2.2: TCP/MSRP or TCP/TLS/MSRP in the m-line, the ws
 * URI in the path; an offer of TCP/WSS/MSRP, as some clients send, is
 * answered as TCP/TLS/MSRP. */
static void test_transports(void) {
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(NULL, &ctx));
  msrp_connector *pc = NULL, *ac = NULL;
  msrp_server *srv = NULL;
  char *path = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &pc));
  CHECK_RES(msrp_connector_prepare(pc, "msrp://127.0.0.1:0/scx;sctp", &path), MSRP_RESULT_UNSUPPORTED);
  CHECK_LAST_ERROR_HAS("transport 'sctp'");
  CHECK_OK(msrp_server_new(ctx, false, NULL, &srv));
  CHECK_RES(msrp_server_prepare(srv, "msrp://127.0.0.1:0/scy;sctp", &path), MSRP_RESULT_UNSUPPORTED);
  CHECK(path == NULL);
  /* A listener where the sctp hop points: nothing may connect to it. */
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 4) == 0);
  CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
  char remote[128];
  snprintf(remote, sizeof remote, "msrp://127.0.0.1:%d/peer;sctp", ntohs(a.sin_port));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &ac));
  CHECK_OK(msrp_connector_prepare(ac, NULL, &path));
  msrp_transport *t = NULL;
  CHECK_RES(msrp_connector_complete(ac, remote, 3000, &t), MSRP_RESULT_UNSUPPORTED);
  CHECK_LAST_ERROR_HAS("transport 'sctp'");
  CHECK(t == NULL);
  fcntl(l, F_SETFL, O_NONBLOCK);
  CHECK(accept(l, NULL, NULL) < 0); /* nobody dialled it */
  close(l);
  msrp_string_free(path);
  path = NULL;
  /* A ws URI is taken. */
  msrp_connector *wc = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &wc));
  CHECK_OK(msrp_connector_prepare(wc, "msrp://127.0.0.1:0/wsx;ws", &path));
  CHECK(path && strstr(path, ";ws") != NULL);
  msrp_string_free(path);
  msrp_connector_free(wc);
  /* The SDP side: an offer of TCP/WSS/MSRP with a ws path ... */
  const char *ws_offer = "v=0\r\ns=-\r\nt=0 0\r\nc=IN IP4 127.0.0.1\r\nm=message 443 TCP/WSS/MSRP *\r\n"
                         "a=accept-types:text/plain\r\na=path:msrps://127.0.0.1:443/ws1;ws\r\n";
  msrp_sdp_media *offer = NULL, *answer = NULL;
  CHECK_OK(msrp_sdp_media_parse(ws_offer, 0, &offer));
  msrp_sdp_local bl = msrp_sdp_local_default();
  /* ... cannot be answered from a plain path (it is TLS) ... */
  bl.full_local_path = "msrp://127.0.0.1:7020/bws;tcp";
  CHECK_RES(msrp_sdp_answer(&bl, offer, &answer), MSRP_RESULT_SDP_NOT_NEGOTIABLE);
  CHECK_LAST_ERROR_HAS("msrps");
  /* ... and is answered from a TLS one, as TCP/TLS/MSRP. */
  bl.full_local_path = "msrps://127.0.0.1:7020/bws;tcp";
  CHECK_OK(msrp_sdp_answer(&bl, offer, &answer));
  char *lines = NULL;
  CHECK_OK(msrp_sdp_media_lines(answer, &lines));
  CHECK(lines && strstr(lines, "m=message 7020 TCP/TLS/MSRP") != NULL);
  msrp_string_free(lines);
  msrp_sdp_media_free(answer);
  answer = NULL;
  /* Our own ws path in an offer: TCP/MSRP in the m-line, ;ws in a=path. */
  bl.full_local_path = "msrp://client.invalid:9/bws;ws";
  CHECK_OK(msrp_sdp_offer(&bl, &answer));
  CHECK_OK(msrp_sdp_media_lines(answer, &lines));
  CHECK(lines && strstr(lines, "m=message 9 TCP/MSRP") != NULL && strstr(lines, "a=path:msrp://client.invalid:9/bws;ws") != NULL);
  msrp_string_free(lines);
  msrp_sdp_media_free(answer);
  msrp_sdp_media_free(offer);
  msrp_connector_free(pc);
  msrp_connector_free(ac);
  msrp_server_free(srv);
  msrp_context_free(ctx);
}

/* What a SIP stack must tell apart: a malformed SDP (the line is named),
 * no MSRP media at that index, an offer that cannot be answered (488). */
static void test_errors(void) {
  msrp_sdp_media *m = NULL;
  size_t n = 9;
  CHECK_RES(msrp_sdp_media_count("v=0\r\nm=message 9 TCP/MSRP *\r\na=max-size:lots\r\n", &n),
            MSRP_RESULT_INVALID_SDP);
  CHECK_LAST_ERROR_HAS("line 3");
  CHECK(n == 9);
  CHECK_OK(msrp_sdp_media_count("v=0\r\nm=audio 4000 RTP/AVP 0\r\n", &n));
  CHECK(n == 0);
  CHECK_RES(msrp_sdp_media_parse("v=0\r\nm=audio 4000 RTP/AVP 0\r\n", 0, &m), MSRP_RESULT_NOT_FOUND);
  CHECK(m == NULL);
  const char *png_only =
      "v=0\r\ns=-\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\na=accept-types:image/png\r\n"
      "a=path:msrp://127.0.0.1:9/x;tcp\r\n";
  CHECK_OK(msrp_sdp_media_parse(png_only, 0, &m));
  msrp_sdp_local l = msrp_sdp_local_default();
  l.full_local_path = "msrp://127.0.0.1:7000/me;tcp";
  l.accept_types = "text/plain";
  msrp_sdp_media *a = NULL;
  CHECK_RES(msrp_sdp_answer(&l, m, &a), MSRP_RESULT_SDP_NOT_NEGOTIABLE);
  CHECK_LAST_ERROR_HAS("no content type in common");
  CHECK(a == NULL);
  l.full_local_path = NULL;
  CHECK_RES(msrp_sdp_offer(&l, &a), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_sdp_media_to_sdp(m, "two words", 1, (char **)&a), MSRP_RESULT_INVALID_ARGUMENT);
  msrp_sdp_media_free(m);
  msrp_sdp_media_free(NULL);
  msrp_negotiation_free(NULL);
  CHECK(!msrp_negotiation_is_active(NULL));
}

int main(void) {
  test_offer_answer_to_a_session();
  test_actpass_either_way();
  test_file_offer_answer();
  test_negotiation_connector_roles();
  test_chatroom_attribute();
  test_transports();
  test_errors();
  return check_summary("test_sdp");
}
