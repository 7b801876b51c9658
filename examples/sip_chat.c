/* A SIP chat client that attaches MSRP media through libmsrp, on a real SIP
 * stack: libre (the library under baresip; Debian package libre-dev).
 *
 * What it shows, in the order a softphone does it:
 *   1. libmsrp's context runs with queued callbacks; its descriptor
 *      (msrp_context_fd) is watched by libre's own event loop (fd_listen),
 *      so every libmsrp callback runs on the SIP stack's thread — no extra
 *      application thread.
 *   2. REGISTER with the registrar, then INVITE (caller) or answer (callee).
 *   3. The SDP for the MSRP media comes from libmsrp: the connector's path,
 *      msrp_sdp_offer / msrp_sdp_answer, the lines put into our own SDP;
 *      the peer's SDP is read with msrp_sdp_media_parse and settled with
 *      msrp_sdp_negotiate; msrp_negotiation_connector makes the connector
 *      ready (who connects, the peer's fingerprints), msrp_negotiation_apply
 *      gives the session the peer's accept-types and max-size.
 *   4. Chat lines both ways; then a second INVITE offers a file (RFC 5547:
 *      a=file-selector with the file's SHA-1), which the callee checks
 *      before answering, writes to disk as it arrives and verifies against
 *      the hash; the callee reports the check in the chat.
 *   5. BYE ends both calls.
 *
 * Modes (--mode): direct (msrp over TCP; the caller offers actpass and ends
 * up connecting), relay (both through an MSRP relay, RFC 4976, as user
 * alice/bob with password "secret"), msrps (TLS with self-signed
 * certificates, checked against the SDP's a=fingerprint).
 *
 * Why libre and not Sofia-SIP: libre hands the application the SDP bodies
 * of offers and answers (offer/answer callbacks with plain buffers) and
 * takes foreign descriptors into its loop with one call; Sofia-SIP's NUA
 * runs its own SDP offer/answer engine, which would compete with libmsrp's.
 *
 * Usage: sip_chat --user NAME --proxy HOST:PORT [--call PEER] [--mode M]
 *        [--relay-port N] [--lines N] [--send-file PATH] [--recv-dir DIR]
 *        [--expect-file] [--timeout S]
 * Exit status: 0 when everything asked for happened, 1 otherwise, 2 usage. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <re.h>

#include "msrp.h"

/* ---- settings and state ---- */

typedef enum { MODE_DIRECT, MODE_RELAY, MODE_MSRPS } chat_mode;

static struct {
  const char *user, *peer, *proxy_host, *send_file, *recv_dir;
  uint16_t proxy_port, relay_port;
  chat_mode mode;
  int lines;
  bool expect_file;
  int timeout_s;
} opt = {NULL, NULL, NULL, NULL, NULL, 0, 0, MODE_DIRECT, 3, false, 60};

/* One call: its SIP session and its MSRP half. */
typedef struct call {
  const char *what; /* "chat" or "file" */
  struct sipsess *sip;
  msrp_connector *conn;
  char *local_path;
  msrp_sdp_media *ours;
  msrp_negotiation *neg;
  msrp_session *session;
  bool we_offered, established, closed;
  /* a file transfer: where it goes (callee) and what its selector says */
  char file_path[512];
  char file_hash[128];
  uint64_t file_size;
} call;

static msrp_context *ctx;
static msrp_tls *tls; /* msrps mode: our certificate */
static struct sip *sip;
static struct sipsess_sock *sess_sock;
static struct sipreg *reg;
static struct tmr deadline;
static call chat = {.what = "chat"};
static call file = {.what = "file"};
static int received_lines, acked_lines;
static bool file_verified, file_reported, finishing, failed;
/* "sip:" + the --proxy host (< 128) + ":65535;lr" */
static char sip_proxy_route[160];

static void finish(bool ok);

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", opt.user);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  finish(false);
}

/* A libmsrp call that must succeed; says which one failed and why. */
static bool ok_(msrp_result r, const char *what) {
  if (r == MSRP_RESULT_OK) return true;
  fail("%s: %s (%s)", what, msrp_result_str(r), msrp_last_error_message());
  return false;
}
#define OK(expr) ok_((expr), #expr)

/* ---- libmsrp inside libre's loop ---- */

/* libre calls this when libmsrp's descriptor is readable: libmsrp has queued
 * callbacks, which run here, on the SIP stack's thread. */
static void on_msrp_fd(int flags, void *arg) {
  (void)flags;
  (void)arg;
  if (msrp_context_dispatch(ctx, 0, NULL) != MSRP_RESULT_OK) fail("dispatch: %s", msrp_last_error_message());
}

/* ---- the MSRP session of a call ---- */

static void send_line(const char *text) {
  if (!chat.session) return;
  OK(msrp_session_send_message(chat.session, (const uint8_t *)text, strlen(text), "text/plain", NULL, NULL, NULL,
                               NULL));
}

static void maybe_next_step(void);

static void on_line_done(void *ud, uint64_t msg, const char *message_id, uint16_t code, const char *comment) {
  (void)ud;
  (void)msg;
  (void)message_id;
  if (code != 200) {
    fail("a chat line was refused: %u %s", code, comment);
    return;
  }
  acked_lines++;
  maybe_next_step();
}

static void on_chat_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  (void)ud;
  (void)head;
  printf("%s got: %.*s\n", opt.user, (int)len, (const char *)data);
  fflush(stdout);
  if (len > 5 && memcmp(data, "file ", 5) == 0) {
    /* the callee's report on the file it received */
    file_reported = true;
    file_verified = memmem(data, len, "hash ok", 7) != NULL;
  } else {
    received_lines++;
  }
  maybe_next_step();
}

static void on_session_closed(void *ud, msrp_result why, const char *message) {
  call *c = ud;
  if (!finishing && !c->closed) printf("%s: the %s session closed: %s (%s)\n", opt.user, c->what, msrp_result_str(why), message);
}

/* callee: an incoming file goes to the path chosen when the offer came */
static void on_message_start(void *ud, const msrp_chunk *head, const char *message_id, uint64_t total,
                             msrp_incoming *in) {
  call *c = ud;
  (void)head;
  printf("%s: file message %s starts (%llu bytes) -> %s\n", opt.user, message_id, (unsigned long long)total,
         c->file_path);
  if (msrp_incoming_to_path(in, c->file_path) != MSRP_RESULT_OK) msrp_incoming_refuse(in);
}

static void on_message_saved(void *ud, const msrp_chunk *head, const char *message_id, uint64_t size) {
  call *c = ud;
  (void)head;
  (void)message_id;
  char *hash = NULL;
  bool ok = OK(msrp_file_hash(c->file_path, &hash));
  file_verified = ok && size == c->file_size && strcasecmp(hash, c->file_hash) == 0;
  char line[700];
  snprintf(line, sizeof line, "file %s: %llu bytes, %s", c->file_path, (unsigned long long)size,
           file_verified ? "hash ok" : "HASH MISMATCH");
  printf("%s: %s (%s)\n", opt.user, line, hash ? hash : "no hash");
  fflush(stdout);
  msrp_string_free(hash);
  send_line(line);
}

static void on_incomplete(void *ud, const msrp_chunk *head, const char *message_id, uint64_t received, uint64_t total,
                          msrp_result reason, const char *why) {
  (void)ud;
  (void)head;
  (void)message_id;
  (void)total;
  fail("the file stopped after %llu bytes: %s (%s)", (unsigned long long)received, msrp_result_str(reason), why);
}

static void on_file_sent(void *ud, uint64_t msg, const char *message_id, uint16_t code, const char *comment) {
  (void)ud;
  (void)msg;
  printf("%s: file message %s done: %u %s\n", opt.user, message_id, code, comment);
  fflush(stdout);
  if (code != 200) fail("the file was refused: %u %s", code, comment);
}

/* The connector bound: make the session; the chat sends its lines, the
 * file call sends its file if we are the sender. */
static void on_bound(void *ud, msrp_result r, msrp_transport *t, const char *message) {
  call *c = ud;
  if (r != MSRP_RESULT_OK) {
    fail("the %s MSRP connection failed: %s (%s)", c->what, msrp_result_str(r), message);
    return;
  }
  msrp_session_options so = msrp_session_options_default();
  if (opt.mode == MODE_RELAY) so.chunk_size = 8192; /* Kamailio relays frames of at most ~11 KB */
  if (!OK(msrp_negotiation_apply(c->neg, NULL, &so))) return;
  msrp_session_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_closed = on_session_closed;
  if (c == &chat) {
    cb.on_message = on_chat_message;
  } else {
    cb.on_message_start = on_message_start;
    cb.on_message_saved = on_message_saved;
    cb.on_incomplete = on_incomplete;
  }
  if (!OK(msrp_session_new(t, &so, &cb, c, NULL, &c->session))) return;
  printf("%s: %s session up\n", opt.user, c->what);
  fflush(stdout);
  if (c == &chat) {
    for (int i = 1; i <= opt.lines; i++) {
      char line[64];
      snprintf(line, sizeof line, "line %d from %s", i, opt.user);
      msrp_message_callbacks mc;
      memset(&mc, 0, sizeof mc);
      mc.on_done = on_line_done;
      OK(msrp_session_send_message(chat.session, (const uint8_t *)line, strlen(line), "text/plain", NULL, &mc, NULL,
                                   NULL));
    }
    return;
  }
  msrp_sdp_file fd;
  if (OK(msrp_negotiation_file(c->neg, &fd)) && fd.send) {
    msrp_outgoing_file f;
    memset(&f, 0, sizeof f);
    f.path = opt.send_file;
    f.fd = -1;
    f.content_type = fd.media_type ? fd.media_type : "application/octet-stream";
    msrp_message_callbacks mc;
    memset(&mc, 0, sizeof mc);
    mc.on_done = on_file_sent;
    OK(msrp_session_send_file(c->session, &f, NULL, &mc, c, NULL));
  }
}

/* ---- SDP: our media description and the peer's ---- */

/* A connector for this call, prepared: its path goes into our SDP. */
static bool prepare_connector(call *c, msrp_connector_kind kind) {
  if (opt.mode == MODE_RELAY) {
    msrp_relay_settings rs = msrp_relay_settings_default();
    rs.host = opt.proxy_host;
    rs.port = opt.relay_port;
    rs.username = opt.user;
    rs.password = "secret";
    rs.domain = "libmsrp.test";
    if (!OK(msrp_connector_new_relay(ctx, kind, false, NULL, &rs, &c->conn))) return false;
    /* Authenticates with the relay (blocking, bounded; a loopback relay
     * answers at once — an application on a real network uses
     * msrp_connector_prepare_async and answers the INVITE when it ends). */
    return OK(msrp_connector_prepare(c->conn, NULL, &c->local_path));
  }
  if (!OK(msrp_connector_new(ctx, kind, false, NULL, &c->conn))) return false;
  if (opt.mode == MODE_MSRPS && !OK(msrp_connector_set_tls(c->conn, tls))) return false;
  const char *uri = opt.mode == MODE_MSRPS ? "msrps://127.0.0.1:0;tcp" : "msrp://127.0.0.1:0;tcp";
  return OK(msrp_connector_prepare(c->conn, uri, &c->local_path));
}

static msrp_sdp_local local_media(const call *c) {
  msrp_sdp_local l = msrp_sdp_local_default();
  l.full_local_path = c->local_path;
  l.accept_types = c == &chat ? "text/plain" : NULL;
  l.max_size = 64 * 1024 * 1024;
  l.tls = opt.mode == MODE_MSRPS ? tls : NULL;
  /* Directly reachable: we listen and may be connected to. Through a relay
   * the relay carries the connection: we only connect (RFC 4976). */
  l.can_accept = opt.mode != MODE_RELAY;
  return l;
}

/* Our SDP: our own session lines, then the media lines libmsrp made. */
static struct mbuf *sdp_body(const call *c) {
  char *lines = NULL;
  if (!OK(msrp_sdp_media_lines(c->ours, &lines))) return NULL;
  struct mbuf *mb = mbuf_alloc(1024);
  mbuf_printf(mb, "v=0\r\no=%s 1 1 IN IP4 127.0.0.1\r\ns=libmsrp sip_chat\r\nt=0 0\r\n%s", opt.user, lines);
  mbuf_set_pos(mb, 0);
  printf("%s: our SDP for the %s call:\n%s", opt.user, c->what, lines);
  fflush(stdout);
  msrp_string_free(lines);
  return mb;
}

/* The MSRP media of a SIP message's SDP body (the first m=message line). */
static msrp_sdp_media *peer_media(const struct sip_msg *msg) {
  size_t len = mbuf_get_left(msg->mb);
  char *text = malloc(len + 1);
  memcpy(text, mbuf_buf(msg->mb), len);
  text[len] = 0;
  msrp_sdp_media *m = NULL;
  msrp_result r = msrp_sdp_media_parse(text, 0, &m);
  free(text);
  if (r != MSRP_RESULT_OK) {
    fail("the peer's SDP: %s (%s)", msrp_result_str(r), msrp_last_error_message());
    return NULL;
  }
  return m;
}

/* Offer and answer are known: settle them, make the connector ready and
 * start connecting (or waiting for the peer to connect). */
static void start_msrp(call *c, const msrp_sdp_media *theirs) {
  if (!OK(msrp_sdp_negotiate(c->ours, theirs, c->we_offered, &c->neg))) return;
  if (!OK(msrp_negotiation_connector(c->neg, &c->conn))) return;
  char *remote = NULL;
  if (!OK(msrp_negotiation_remote_path(c->neg, &remote))) return;
  printf("%s: %s call settled: we are %s, the peer's path is %s\n", opt.user, c->what,
         msrp_negotiation_is_active(c->neg) ? "active (we connect)" : "passive (the peer connects)", remote);
  fflush(stdout);
  OK(msrp_connector_complete_async(c->conn, remote, 15000, on_bound, c));
  msrp_string_free(remote);
}

/* ---- SIP ---- */

static void on_sip_closed(int err, const struct sip_msg *msg, void *arg) {
  call *c = arg;
  c->closed = true;
  if (finishing) return;
  if (err == ECONNRESET && !msg)
    printf("%s: the %s call ended by the peer (BYE)\n", opt.user, c->what); /* how libre reports a BYE */
  else if (err)
    printf("%s: the %s call ended: %s\n", opt.user, c->what, strerror(err));
  else
    printf("%s: the %s call ended: %u %.*s\n", opt.user, c->what, msg ? msg->scode : 0, msg ? (int)msg->reason.l : 0,
           msg ? msg->reason.p : "");
  fflush(stdout);
  c->sip = mem_deref(c->sip);
  maybe_next_step();
}

static void on_sip_estab(const struct sip_msg *msg, void *arg) {
  call *c = arg;
  (void)msg;
  c->established = true;
  printf("%s: the %s call is established\n", opt.user, c->what);
  fflush(stdout);
}

/* caller: the 200 OK's SDP answer */
static int on_sip_answer(const struct sip_msg *msg, void *arg) {
  call *c = arg;
  msrp_sdp_media *theirs = peer_media(msg);
  if (!theirs) return EPROTO;
  start_msrp(c, theirs);
  msrp_sdp_media_free(theirs);
  return 0;
}

/* A re-INVITE: not used here; keep what we have. */
static int on_sip_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg) {
  (void)msg;
  *descp = sdp_body(arg);
  return *descp ? 0 : ENOMEM;
}

static void place_call(call *c, const msrp_sdp_file *fd) {
  if (!prepare_connector(c, opt.mode == MODE_RELAY ? MSRP_CONNECTOR_KIND_ACTIVE : MSRP_CONNECTOR_KIND_PASSIVE)) return;
  msrp_sdp_local l = local_media(c);
  l.file = fd;
  if (!OK(msrp_sdp_offer(&l, &c->ours))) return;
  c->we_offered = true;
  struct mbuf *body = sdp_body(c);
  char to[128], from[128];
  snprintf(to, sizeof to, "sip:%s@libmsrp.test", opt.peer);
  snprintf(from, sizeof from, "sip:%s@libmsrp.test", opt.user);
  const char *routev[] = {sip_proxy_route};
  int err = sipsess_connect(&c->sip, sess_sock, to, opt.user, from, opt.user, routev, 1, "application/sdp", body, NULL,
                            NULL, false, on_sip_offer, on_sip_answer, NULL, on_sip_estab, NULL, NULL, on_sip_closed, c,
                            NULL);
  mem_deref(body);
  if (err) fail("INVITE %s: %s", to, strerror(err));
}

/* caller: the file call offers the file with its hash */
static void place_file_call(void) {
  char *hash = NULL;
  if (!OK(msrp_file_hash(opt.send_file, &hash))) return;
  FILE *f = fopen(opt.send_file, "rb");
  if (!f) {
    msrp_string_free(hash);
    fail("%s: cannot open", opt.send_file);
    return;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  const char *base = strrchr(opt.send_file, '/');
  msrp_sdp_file fd = msrp_sdp_file_default();
  fd.send = true;
  fd.name = base ? base + 1 : opt.send_file;
  fd.media_type = "application/octet-stream";
  fd.has_size = true;
  fd.size = (uint64_t)size;
  fd.hash = hash;
  place_call(&file, &fd);
  msrp_string_free(hash);
}

/* callee: an INVITE */
static void on_sip_incoming(const struct sip_msg *msg, void *arg) {
  (void)arg;
  call *c = chat.sip ? &file : &chat;
  if (c->sip || c->closed) {
    sip_treply(NULL, sip, msg, 486, "Busy Here");
    return;
  }
  msrp_sdp_media *theirs = peer_media(msg);
  if (!theirs) {
    sip_treply(NULL, sip, msg, 400, "Bad SDP");
    return;
  }
  msrp_sdp_file fd;
  bool is_file = msrp_sdp_media_file(theirs, &fd) == MSRP_RESULT_OK;
  if (is_file != (c == &file)) {
    /* this client takes a chat first, then one file */
    msrp_sdp_media_free(theirs);
    sip_treply(NULL, sip, msg, 488, "Not Acceptable Here");
    return;
  }
  if (is_file) {
    /* What to check before taking a file: that we asked for files at
     * all, a plain name (no directories), the size and the hash. */
    if (!opt.recv_dir || !fd.send || !fd.name || !fd.name[0] || fd.name[0] == '.' || strchr(fd.name, '/') ||
        !fd.hash || !fd.has_size) {
      printf("%s: refusing the file offer\n", opt.user);
      msrp_sdp_media_free(theirs);
      sip_treply(NULL, sip, msg, 488, "Not Acceptable Here");
      return;
    }
    snprintf(c->file_path, sizeof c->file_path, "%s/%s", opt.recv_dir, fd.name);
    snprintf(c->file_hash, sizeof c->file_hash, "%s", fd.hash);
    c->file_size = fd.size;
    printf("%s: offered file %s, %llu bytes, %s\n", opt.user, fd.name, (unsigned long long)fd.size, fd.hash);
  }
  /* Directly, we listen (answer passive); through a relay the offerer is
   * active and we wait on our relay connection. */
  if (!prepare_connector(c, MSRP_CONNECTOR_KIND_PASSIVE)) {
    msrp_sdp_media_free(theirs);
    return;
  }
  msrp_sdp_local l = local_media(c);
  msrp_sdp_media *answer = NULL;
  msrp_result r = msrp_sdp_answer(&l, theirs, &answer);
  if (r == MSRP_RESULT_SDP_NOT_NEGOTIABLE) {
    printf("%s: 488 for the offer: %s\n", opt.user, msrp_last_error_message());
    msrp_sdp_media_free(theirs);
    sip_treply(NULL, sip, msg, 488, "Not Acceptable Here");
    return;
  }
  if (!OK(r)) {
    msrp_sdp_media_free(theirs);
    return;
  }
  c->ours = answer;
  struct mbuf *body = sdp_body(c);
  int err = sipsess_accept(&c->sip, sess_sock, msg, 200, "OK", opt.user, "application/sdp", body, NULL, NULL, false,
                           on_sip_offer, on_sip_answer, on_sip_estab, NULL, NULL, on_sip_closed, c, NULL);
  mem_deref(body);
  if (err) {
    msrp_sdp_media_free(theirs);
    fail("answering the INVITE: %s", strerror(err));
    return;
  }
  start_msrp(c, theirs);
  msrp_sdp_media_free(theirs);
}

static void on_registered(int err, const struct sip_msg *msg, void *arg) {
  (void)arg;
  static bool once;
  if (err || !msg || msg->scode >= 300) {
    if (err)
      fail("REGISTER: %s", strerror(err));
    else if (msg)
      fail("REGISTER: %u %.*s", msg->scode, (int)msg->reason.l, msg->reason.p);
    return;
  }
  if (msg->scode < 200 || once) return;
  once = true;
  printf("%s: registered\n", opt.user);
  fflush(stdout);
  if (opt.peer) place_call(&chat, NULL);
}

/* ---- what happens next ---- */

static void maybe_next_step(void) {
  if (finishing) return;
  if (opt.peer) {
    /* caller: chat done both ways, then the file, then hang up */
    bool chat_done = received_lines >= opt.lines && acked_lines >= opt.lines;
    if (!chat_done) return;
    if (opt.send_file) {
      if (!file.sip && !file.closed) {
        place_file_call();
        return;
      }
      if (!file_reported) return;
    }
    finish(true);
    return;
  }
  /* callee: the caller hangs up when it is done */
  if (chat.closed && (!opt.expect_file || file.closed)) finish(true);
}

static void on_sip_exit(void *arg) {
  (void)arg;
  re_cancel();
}

static void free_call(call *c) {
  c->sip = mem_deref(c->sip); /* sends BYE when the call is up */
  msrp_session_free(c->session);
  c->session = NULL;
  msrp_negotiation_free(c->neg);
  c->neg = NULL;
  msrp_sdp_media_free(c->ours);
  c->ours = NULL;
  msrp_connector_free(c->conn);
  c->conn = NULL;
  msrp_string_free(c->local_path);
  c->local_path = NULL;
}

static void on_give_up(void *arg) {
  (void)arg;
  re_cancel();
}

static void finish(bool ok) {
  if (finishing) return;
  finishing = true;
  if (!ok) failed = true;
  if (opt.peer) {
    bool lines_ok = received_lines == opt.lines && acked_lines == opt.lines;
    bool file_ok = !opt.send_file || file_verified;
    if (!lines_ok || !file_ok) failed = true;
    printf("%s: %d of %d lines received, %d of %d acknowledged%s; hanging up\n", opt.user, received_lines, opt.lines,
           acked_lines, opt.lines, opt.send_file ? (file_verified ? ", file verified by the peer" : ", FILE NOT VERIFIED") : "");
  } else {
    if (received_lines != opt.lines || (opt.expect_file && !file_verified)) failed = true;
    printf("%s: %d of %d lines received%s\n", opt.user, received_lines, opt.lines,
           opt.expect_file ? (file_verified ? ", file verified" : ", FILE NOT VERIFIED") : "");
  }
  fflush(stdout);
  free_call(&file);
  free_call(&chat);
  reg = mem_deref(reg);
  /* Let the BYEs and the un-REGISTER finish, but not forever. */
  tmr_start(&deadline, 3000, on_give_up, NULL);
  sip_close(sip, false);
}

static void on_timeout(void *arg) {
  (void)arg;
  fail("timed out after %d s", opt.timeout_s);
}

/* ---- main ---- */

static int usage(void) {
  fprintf(stderr,
          "usage: sip_chat --user NAME --proxy HOST:PORT [--call PEER] [--mode direct|relay|msrps]\n"
          "                [--relay-port N] [--lines N] [--send-file PATH] [--recv-dir DIR] [--expect-file]\n"
          "                [--timeout S]\n");
  return 2;
}

int main(int argc, char **argv) {
  static char proxy[128];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--expect-file")) {
      opt.expect_file = true;
      continue;
    }
    if (!v) return usage();
    i++;
    if (!strcmp(a, "--user")) opt.user = v;
    else if (!strcmp(a, "--call")) opt.peer = v;
    else if (!strcmp(a, "--proxy")) snprintf(proxy, sizeof proxy, "%s", v);
    else if (!strcmp(a, "--relay-port")) opt.relay_port = (uint16_t)atoi(v);
    else if (!strcmp(a, "--lines")) opt.lines = atoi(v);
    else if (!strcmp(a, "--send-file")) opt.send_file = v;
    else if (!strcmp(a, "--recv-dir")) opt.recv_dir = v;
    else if (!strcmp(a, "--timeout")) opt.timeout_s = atoi(v);
    else if (!strcmp(a, "--mode")) {
      if (!strcmp(v, "direct")) opt.mode = MODE_DIRECT;
      else if (!strcmp(v, "relay")) opt.mode = MODE_RELAY;
      else if (!strcmp(v, "msrps")) opt.mode = MODE_MSRPS;
      else return usage();
    } else
      return usage();
  }
  char *colon = strrchr(proxy, ':');
  if (!opt.user || !colon || opt.lines < 0 || (opt.mode == MODE_RELAY && !opt.relay_port)) return usage();
  *colon = 0;
  opt.proxy_host = proxy;
  opt.proxy_port = (uint16_t)atoi(colon + 1);
  snprintf(sip_proxy_route, sizeof sip_proxy_route, "sip:%s:%u;lr", opt.proxy_host, opt.proxy_port);

  /* libmsrp: callbacks queued for the SIP loop's thread */
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.queued_callbacks = true;
  if (msrp_context_new(&co, &ctx) != MSRP_RESULT_OK) {
    fprintf(stderr, "msrp_context_new: %s\n", msrp_last_error_message());
    return 1;
  }
  if (opt.mode == MODE_MSRPS &&
      (msrp_tls_new(&tls) != MSRP_RESULT_OK || msrp_tls_generate_self_signed(tls, opt.user) != MSRP_RESULT_OK)) {
    fprintf(stderr, "TLS settings: %s\n", msrp_last_error_message());
    return 1;
  }
  int fd = -1;
  if (msrp_context_fd(ctx, &fd) != MSRP_RESULT_OK) return 1;

  /* libre: the SIP stack, its loop watching libmsrp's descriptor */
  int err = libre_init();
  struct sa laddr;
  sa_set_str(&laddr, "127.0.0.1", 0);
  if (!err) err = fd_listen(fd, FD_READ, on_msrp_fd, NULL);
  if (!err) err = sip_alloc(&sip, NULL, 32, 32, 32, "libmsrp-sip-chat", on_sip_exit, NULL);
  if (!err) err = sip_transp_add(sip, SIP_TRANSP_UDP, &laddr);
  if (!err) err = sipsess_listen(&sess_sock, sip, 32, on_sip_incoming, NULL);
  char registrar[160], aor[160];
  snprintf(registrar, sizeof registrar, "sip:%s:%u", opt.proxy_host, opt.proxy_port);
  snprintf(aor, sizeof aor, "sip:%s@libmsrp.test", opt.user);
  if (!err)
    err = sipreg_register(&reg, sip, registrar, aor, NULL, aor, 300, opt.user, NULL, 0, 0, NULL, NULL, false,
                          on_registered, NULL, NULL, NULL);
  if (err) {
    fprintf(stderr, "SIP setup: %s\n", strerror(err));
    return 1;
  }
  struct tmr timeout;
  tmr_init(&timeout);
  tmr_init(&deadline);
  tmr_start(&timeout, (uint64_t)opt.timeout_s * 1000, on_timeout, NULL);

  re_main(NULL);

  tmr_cancel(&timeout);
  tmr_cancel(&deadline);
  if (!finishing) failed = true;
  free_call(&file);
  free_call(&chat);
  mem_deref(sess_sock);
  mem_deref(sip);
  fd_close(fd);
  msrp_tls_free(tls);
  msrp_context_free(ctx); /* runs what is still queued */
  libre_close();
  printf("%s: %s\n", opt.user, failed ? "FAILED" : "done");
  return failed ? 1 : 0;
}
