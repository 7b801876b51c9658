/* msrpcat: netcat for MSRP, written on the public libmsrp C API only.
 *
 *   msrpcat listen  [options]   accept a session (acceptor, or --server)
 *   msrpcat connect [options]   connect to a peer (or through a relay)
 *   msrpcat demo    [--size MB] both ends in one process on loopback
 *
 * Path exchange works like SDP offer/answer: the first line on stdout is
 * our full local path; the peer's path comes from --remote or from the
 * first line of stdin. Run `msrpcat --help` for the options. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msrp.h"
#include "sha256.h"

#define MAX_TEXTS 64

typedef struct {
  const char *role;
  const char *local;
  const char *remote;
  bool server;
  /* relay */
  const char *relay_host, *relay_domain, *relay_user, *relay_password;
  int relay_port;
  bool relay_tls;
  bool relay_ws;
  /* TLS */
  const char *cert, *key, *ca, *fingerprint;
  bool self_signed, insecure;
  bool sessmatch;
  size_t chunk_size;
  unsigned window;
  const char *accept;
  int timeout_s;
  bool verbose;
  /* actions */
  const char *texts[MAX_TEXTS];
  int ntexts;
  const char *file, *content_type;
  long count;
  size_t size;
  bool echo;
  const char *recv_dir;
  bool success_report;
  long expect;
  double duration;
  double demo_mb;
  /* CPIM / IMDN */
  bool cpim, imdn_reply;
  bool event_loop; /* callbacks dispatched from our poll() loop */
  const char *from, *to;
  unsigned imdn;
} options;

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  const options *o;
  msrp_context *ctx;
  msrp_session *s;
  long queued, finished;
  long codes[1000];
  long other_codes;
  uint64_t bytes_sent, bytes_accepted, bytes_received;
  long received, reports;
  long unlisted; /* received messages neither text nor saved */
  long notes_expected, notes_received; /* IMDNs asked for and arrived */
  bool closed;
  char closed_msg[256];
  /* progress of the file being sent */
  uint64_t prog_acked, prog_total;
  bool file_active;
  double t0;
  /* demo: the digest of the received file */
  char received_sha[65];
  size_t received_file_len;
} app;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void vfail(int status, const char *fmt, va_list ap) {
  fputs("msrpcat: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  exit(status);
}

/* A failure at run time (binding refused, TLS, files): exit status 1. */
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(1, fmt, ap);
  va_end(ap);
}

/* A usage error (the command line): exit status 2. */
static void bad_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(2, fmt, ap);
  va_end(ap);
}

static void check(msrp_result r, const char *what) {
  if (r != MSRP_RESULT_OK) die("%s failed: %s: %s", what, msrp_result_str(r), msrp_last_error_message());
}

static void usage(FILE *f) {
  fputs(
      "usage: msrpcat listen|connect [options]\n"
      "       msrpcat demo [--size MB]\n"
      "\n"
      "The first line on stdout is our full local path (for SDP a=path); the\n"
      "peer's path comes from --remote or from the first line of stdin.\n"
      "\n"
      "connection:\n"
      "  --local URI            local URI (default msrp://127.0.0.1:0;tcp to listen,\n"
      "                         msrp://127.0.0.1:9;tcp to connect); msrps:// for TLS,\n"
      "                         ;ws for WebSocket (RFC 7977: listening, a ws server)\n"
      "  --remote 'URI [URI..]' the peer's full path\n"
      "  --server               listen with the shared-port server\n"
      "  --sessmatch            match bindings on session ids only\n"
      "  --timeout S            wait at most S seconds to bind (default 30)\n"
      "relay (RFC 4976):\n"
      "  --relay-host H --relay-port P --relay-domain D (SRV discovery without host)\n"
      "  --relay-user U --relay-password P --relay-tls\n"
      "  --relay-ws             reach the relay over WebSocket (RFC 7977; wss with --relay-tls)\n"
      "TLS:\n"
      "  --cert FILE --key FILE our certificate (PEM); --self-signed makes one\n"
      "  --ca FILE              CA bundle for checking the peer by name\n"
      "  --fingerprint FP       the peer's certificate fingerprint ('sha-256 AB:..')\n"
      "  --insecure             accept any peer certificate (tests only)\n"
      "session:\n"
      "  --chunk-size N         largest chunk body (default 128 KiB, 8 KiB via relay)\n"
      "  --window N             most requests awaiting a response (default 32)\n"
      "  --accept TYPES         acceptable types (default '*')\n"
      "  -v                     log traffic to stderr\n"
      "  --event-loop           run libmsrp's callbacks from this program's own poll()\n"
      "                         loop (queued_callbacks + msrp_context_fd), not its threads\n"
      "actions:\n"
      "  --send-text TEXT       send a text/plain message (repeatable)\n"
      "  --send-file FILE       send a file (--content-type T, else guessed)\n"
      "  --count N --size S     send N synthetic messages of S bytes\n"
      "  --echo                 send back every message that arrives\n"
      "  --recv-dir DIR         save received messages as files (else text to stdout)\n"
      "  --success-report       ask for success REPORTs\n"
      "  --cpim                 wrap --send-text messages in message/cpim (RFC 3862)\n"
      "  --from URI --to URI    the CPIM From and To addresses\n"
      "  --imdn LIST            with --cpim: ask for notifications (RFC 5438), a comma\n"
      "                         list of delivery, display; wait for them\n"
      "  --imdn-reply           answer notification requests: delivery at once,\n"
      "                         display when the message is printed\n"
      "  --expect N             stop after N received messages\n"
      "  --duration S           stop after S seconds\n"
      "Exit status 0 when every message sent got 200 and every expected one\n"
      "arrived; 1 otherwise, binding and TLS failures included (the reason is on\n"
      "stderr); 2 only for usage errors (the command line).\n",
      f);
}

static const char *need_arg(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) bad_usage("%s needs a value (see --help)", argv[*i]);
  return argv[++*i];
}

static void parse(options *o, int argc, char **argv) {
  memset(o, 0, sizeof *o);
  o->timeout_s = 30;
  o->demo_mb = 20;
  if (argc < 2) {
    usage(stderr);
    exit(2);
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    exit(0);
  }
  o->role = argv[1];
  if (strcmp(o->role, "listen") && strcmp(o->role, "connect") && strcmp(o->role, "demo"))
    bad_usage("unknown role '%s': use listen, connect or demo", o->role);
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--local")) o->local = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--remote")) o->remote = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--server")) o->server = true;
    else if (!strcmp(a, "--sessmatch")) o->sessmatch = true;
    else if (!strcmp(a, "--timeout")) o->timeout_s = atoi(need_arg(argc, argv, &i));
    else if (!strcmp(a, "--relay-host")) o->relay_host = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--relay-port")) o->relay_port = atoi(need_arg(argc, argv, &i));
    else if (!strcmp(a, "--relay-domain")) o->relay_domain = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--relay-user")) o->relay_user = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--relay-password")) o->relay_password = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--relay-tls")) o->relay_tls = true;
    else if (!strcmp(a, "--relay-ws")) o->relay_ws = true;
    else if (!strcmp(a, "--cert")) o->cert = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--key")) o->key = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--ca")) o->ca = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--fingerprint")) o->fingerprint = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--self-signed")) o->self_signed = true;
    else if (!strcmp(a, "--insecure")) o->insecure = true;
    else if (!strcmp(a, "--chunk-size")) o->chunk_size = (size_t)atol(need_arg(argc, argv, &i));
    else if (!strcmp(a, "--window")) o->window = (unsigned)atol(need_arg(argc, argv, &i));
    else if (!strcmp(a, "--accept")) o->accept = need_arg(argc, argv, &i);
    else if (!strcmp(a, "-v")) o->verbose = true;
    else if (!strcmp(a, "--send-text")) {
      if (o->ntexts == MAX_TEXTS) bad_usage("at most %d --send-text", MAX_TEXTS);
      o->texts[o->ntexts++] = need_arg(argc, argv, &i);
    } else if (!strcmp(a, "--send-file")) o->file = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--content-type")) o->content_type = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--count")) o->count = atol(need_arg(argc, argv, &i));
    else if (!strcmp(a, "--size")) {
      const char *v = need_arg(argc, argv, &i);
      o->size = (size_t)atol(v);
      o->demo_mb = atof(v);
    } else if (!strcmp(a, "--echo")) o->echo = true;
    else if (!strcmp(a, "--recv-dir")) o->recv_dir = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--success-report")) o->success_report = true;
    else if (!strcmp(a, "--cpim")) o->cpim = true;
    else if (!strcmp(a, "--event-loop")) o->event_loop = true;
    else if (!strcmp(a, "--from")) o->from = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--to")) o->to = need_arg(argc, argv, &i);
    else if (!strcmp(a, "--imdn-reply")) o->imdn_reply = true;
    else if (!strcmp(a, "--imdn")) {
      const char *v = need_arg(argc, argv, &i);
      if (strstr(v, "delivery")) o->imdn |= MSRP_IMDN_POSITIVE_DELIVERY;
      if (strstr(v, "display")) o->imdn |= MSRP_IMDN_DISPLAY;
      if (!o->imdn) bad_usage("--imdn takes delivery, display or both (comma-separated)");
    }
    else if (!strcmp(a, "--expect")) o->expect = atol(need_arg(argc, argv, &i));
    else if (!strcmp(a, "--duration")) o->duration = atof(need_arg(argc, argv, &i));
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      exit(0);
    } else bad_usage("unknown option '%s' (see --help)", a);
  }
  if (o->count > 0 && o->size == 0) o->size = 100;
  if ((o->cert == NULL) != (o->key == NULL)) bad_usage("--cert and --key go together");
  if (o->imdn && !o->cpim) bad_usage("--imdn needs --cpim (notifications are asked for in the CPIM envelope)");
}

/* ---- traffic log (-v) ---- */

static void log_first_line(const char *dir, uint64_t id, const uint8_t *data, size_t len) {
  size_t n = 0;
  while (n < len && data[n] != '\r' && data[n] != '\n') n++;
  fprintf(stderr, "[%llu] %s %.*s\n", (unsigned long long)id, dir, (int)n, (const char *)data);
}

static void log_recv(void *ud, uint64_t id, const uint8_t *d, size_t n, const msrp_chunk *c) {
  (void)ud;
  (void)c;
  log_first_line("<", id, d, n);
}

static void log_sent(void *ud, uint64_t id, const uint8_t *d, size_t n, const msrp_chunk *c) {
  (void)ud;
  (void)c;
  log_first_line(">", id, d, n);
}

static void log_msg(void *ud, const char *m) {
  (void)ud;
  fprintf(stderr, "msrpcat: libmsrp: %s\n", m);
}

/* ---- session callbacks ---- */

static void bump(app *a) { pthread_cond_broadcast(&a->c); }

/* Userdata of one sent message: its size counts as accepted on 200. */
typedef struct {
  app *a;
  uint64_t len;
  int notes; /* IMDNs still expected: freed after on_done and the last one */
  bool done;
} sent_msg;

static void on_done(void *ud, uint64_t msg, const char *mid, uint16_t code, const char *comment) {
  (void)mid;
  sent_msg *sm = ud;
  app *a = sm->a;
  (void)msg;
  pthread_mutex_lock(&a->m);
  if (code == 200) a->bytes_accepted += sm->len;
  sm->done = true;
  if (sm->notes <= 0 || code != 200) {
    a->notes_expected -= code != 200 ? sm->notes : 0; /* none will come */
    free(sm);
  }
  if (code < 1000) a->codes[code]++;
  else a->other_codes++;
  if (code != 200 && code != 0)
    fprintf(stderr, "msrpcat: a message got %u%s%s\n", code, comment && *comment ? " " : "", comment ? comment : "");
  if (code == 0) fprintf(stderr, "msrpcat: a message was not delivered: %s\n", comment ? comment : "closed");
  a->finished++;
  a->file_active = false;
  bump(a);
  pthread_mutex_unlock(&a->m);
}

static void on_progress(void *ud, uint64_t msg, uint64_t sent, uint64_t acked, uint64_t total) {
  app *a = ((sent_msg *)ud)->a;
  (void)msg;
  (void)sent;
  pthread_mutex_lock(&a->m);
  a->prog_acked = acked;
  a->prog_total = total;
  pthread_mutex_unlock(&a->m);
}

static void on_notification(void *ud, uint64_t msg, const char *imdn_id, msrp_imdn_kind kind, const char *status) {
  sent_msg *sm = ud;
  app *a = sm->a;
  (void)msg;
  fprintf(stderr, "msrpcat: imdn %s %s %s\n", imdn_id, kind == MSRP_IMDN_KIND_DISPLAY ? "display" : "delivery", status);
  pthread_mutex_lock(&a->m);
  a->notes_received++;
  if (--sm->notes <= 0 && sm->done) free(sm);
  bump(a);
  pthread_mutex_unlock(&a->m);
}

static const msrp_message_callbacks MSG_CBS = {
    .on_progress = on_progress, .on_done = on_done, .on_notification = on_notification};

/* --cpim: a text wrapped in message/cpim, with the notifications --imdn asks for. */
static void send_cpim(app *a, const char *text) {
  const options *o = a->o;
  msrp_cpim *m = NULL;
  check(msrp_cpim_new("text/plain", (const uint8_t *)text, strlen(text), &m), "--cpim");
  if (o->from) check(msrp_cpim_add_address(m, "From", NULL, o->from), "--from");
  if (o->to) check(msrp_cpim_add_address(m, "To", NULL, o->to), "--to");
  int notes = !!(o->imdn & MSRP_IMDN_POSITIVE_DELIVERY) + !!(o->imdn & MSRP_IMDN_DISPLAY);
  sent_msg *sm = calloc(1, sizeof *sm);
  if (!sm) die("out of memory");
  sm->a = a;
  sm->len = strlen(text);
  sm->notes = notes;
  pthread_mutex_lock(&a->m);
  a->queued++;
  a->bytes_sent += sm->len;
  a->notes_expected += notes;
  pthread_mutex_unlock(&a->m);
  msrp_message_options mo = msrp_message_options_default();
  mo.success_report = o->success_report;
  msrp_result r = msrp_session_send_cpim(a->s, m, o->imdn, &mo, &MSG_CBS, sm, NULL);
  msrp_cpim_free(m);
  if (r != MSRP_RESULT_OK) {
    free(sm);
    fprintf(stderr, "msrpcat: sending failed: %s: %s\n", msrp_result_str(r), msrp_last_error_message());
    pthread_mutex_lock(&a->m);
    a->queued--;
    a->notes_expected -= notes;
    a->other_codes++;
    bump(a);
    pthread_mutex_unlock(&a->m);
  }
}

/* One buffer lent to several messages (msrp_session_send_message_nocopy):
 * freed when the last of them gives it back. */
typedef struct {
  pthread_mutex_t m;
  long refs;
  uint8_t *data;
} lent_buf;

static void lent_release(void *ud) {
  lent_buf *b = ud;
  pthread_mutex_lock(&b->m);
  bool last = --b->refs == 0;
  pthread_mutex_unlock(&b->m);
  if (last) {
    pthread_mutex_destroy(&b->m);
    free(b->data);
    free(b);
  }
}

static void lent_hold(lent_buf *b) {
  pthread_mutex_lock(&b->m);
  b->refs++;
  pthread_mutex_unlock(&b->m);
}

/* Sends `data` (copied; or, with `lend`, read from there without a copy
 * while the message is sent, `lend` held until then). */
static void send_message_from(app *a, const uint8_t *data, size_t len, const char *ct, const char *disposition,
                              lent_buf *lend) {
  msrp_message_options mo = msrp_message_options_default();
  mo.success_report = a->o->success_report;
  mo.content_disposition = disposition;
  pthread_mutex_lock(&a->m);
  a->queued++;
  a->bytes_sent += len;
  pthread_mutex_unlock(&a->m);
  sent_msg *sm = calloc(1, sizeof *sm);
  if (!sm) die("out of memory");
  sm->a = a;
  sm->len = len;
  msrp_result r;
  if (lend) {
    lent_hold(lend);
    r = msrp_session_send_message_nocopy(a->s, data, len, lent_release, lend, ct, &mo, &MSG_CBS, sm, NULL);
  } else {
    r = msrp_session_send_message(a->s, data, len, ct, &mo, &MSG_CBS, sm, NULL);
  }
  if (r != MSRP_RESULT_OK) {
    free(sm);
    fprintf(stderr, "msrpcat: sending failed: %s: %s\n", msrp_result_str(r), msrp_last_error_message());
    pthread_mutex_lock(&a->m);
    a->queued--;
    a->other_codes++;
    bump(a);
    pthread_mutex_unlock(&a->m);
  }
}

static void send_message(app *a, const uint8_t *data, size_t len, const char *ct, const char *disposition) {
  send_message_from(a, data, len, ct, disposition, NULL);
}

/* The filename="..." of a Content-Disposition, reduced to a base name. */
static void disposition_name(const msrp_chunk *head, char *out, size_t cap) {
  out[0] = 0;
  char *v = NULL;
  if (msrp_chunk_header(head, "Content-Disposition", &v) != MSRP_RESULT_OK || !v) return;
  const char *p = strstr(v, "filename=");
  if (p) {
    p += 9;
    bool q = *p == '"';
    if (q) p++;
    size_t n = 0;
    while (p[n] && p[n] != (q ? '"' : ';') && n + 1 < cap) n++;
    memcpy(out, p, n);
    out[n] = 0;
    const char *slash = strrchr(out, '/');
    if (slash) memmove(out, slash + 1, strlen(slash + 1) + 1);
    if (!strcmp(out, ".") || !strcmp(out, "..")) out[0] = 0;
  }
  msrp_string_free(v);
}

static void on_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
  app *a = ud;
  char *ct = NULL;
  msrp_chunk_content_type(head, &ct);
  pthread_mutex_lock(&a->m);
  long n = ++a->received;
  a->bytes_received += len;
  /* Only the first message that is neither text nor saved is listed (a
   * line per message made a listener of many small ones spend more time
   * on stderr than on MSRP); the summary counts them all. */
  bool first_unlisted = strcmp(a->o->role, "demo") && !a->o->recv_dir && !(ct && !strncmp(ct, "text/", 5)) &&
                        !a->unlisted++;
  pthread_mutex_unlock(&a->m);
  if (!strcmp(a->o->role, "demo")) {
    if (len > 1024 * 1024) {
      sha256_ctx h;
      sha256_init(&h);
      sha256_update(&h, data, len);
      pthread_mutex_lock(&a->m);
      sha256_hex(&h, a->received_sha);
      a->received_file_len = len;
      pthread_mutex_unlock(&a->m);
    } else {
      printf("bob received (%s): %.*s\n", ct ? ct : "?", (int)len, (const char *)data);
      fflush(stdout);
    }
  } else if (a->o->recv_dir) {
    char name[256], path[1024];
    disposition_name(head, name, sizeof name);
    if (!name[0]) snprintf(name, sizeof name, "message-%ld.bin", n);
    snprintf(path, sizeof path, "%s/%s", a->o->recv_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) fprintf(stderr, "msrpcat: cannot write %s: %s\n", path, strerror(errno));
    if (f) fclose(f);
  } else if (ct && !strncmp(ct, "text/", 5)) {
    fwrite(data, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
  } else if (first_unlisted) {
    fprintf(stderr,
            "msrpcat: received %zu bytes of %s (use --recv-dir to keep them; further such messages are only counted)\n",
            len, ct ? ct : "?");
  }
  if (a->o->echo) send_message(a, data, len, ct ? ct : "application/octet-stream", NULL);
  msrp_string_free(ct);
  pthread_mutex_lock(&a->m);
  bump(a);
  pthread_mutex_unlock(&a->m);
}

/* A message/cpim message: its envelope on stderr, its content as any
 * message (text to stdout); with --imdn-reply a display notification once
 * it is printed, when one was asked for (delivery ones go out at once, by
 * the session's imdn_auto_delivery). */
static void on_cpim(void *ud, const msrp_chunk *head, const msrp_cpim *m) {
  app *a = ud;
  char *from = NULL, *to = NULL, *id = NULL, *disp = NULL, *ct = NULL;
  msrp_cpim_address(m, "From", NULL, &from);
  msrp_cpim_address(m, "To", NULL, &to);
  msrp_cpim_header(m, "urn:ietf:params:imdn", "Message-ID", &id);
  msrp_cpim_header(m, "urn:ietf:params:imdn", "Disposition-Notification", &disp);
  msrp_cpim_content_header(m, "Content-Type", &ct);
  fprintf(stderr, "msrpcat: cpim from %s to %s (%s)%s%s%s%s\n", from ? from : "-", to ? to : "-", ct ? ct : "?",
          id ? ", imdn id " : "", id ? id : "", disp ? ", asks for " : "", disp ? disp : "");
  const uint8_t *data = NULL;
  size_t len = 0;
  msrp_cpim_content(m, &data, &len);
  if (ct && !strncmp(ct, "text/", 5)) {
    fwrite(data, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
  } else {
    fprintf(stderr, "msrpcat: received %zu bytes of %s inside CPIM\n", len, ct ? ct : "?");
  }
  if (a->o->imdn_reply && disp && strstr(disp, "display")) {
    msrp_result r = msrp_session_send_imdn(a->s, m, MSRP_IMDN_KIND_DISPLAY, "displayed");
    if (r != MSRP_RESULT_OK) fprintf(stderr, "msrpcat: display notification: %s\n", msrp_last_error_message());
  }
  (void)head;
  msrp_string_free(from);
  msrp_string_free(to);
  msrp_string_free(id);
  msrp_string_free(disp);
  msrp_string_free(ct);
  /* Counted last: --expect may end the run as soon as it is counted, and
   * the display notification must be queued by then. */
  pthread_mutex_lock(&a->m);
  ++a->received;
  a->bytes_received += len;
  bump(a);
  pthread_mutex_unlock(&a->m);
}

/* --recv-dir: a message in several chunks is written to its file as it
 * arrives (any size), instead of being collected in memory first. */
static void on_message_start(void *ud, const msrp_chunk *head, const char *mid, uint64_t total, msrp_incoming *in) {
  app *a = ud;
  (void)total;
  char name[256], path[1024];
  disposition_name(head, name, sizeof name);
  if (!name[0]) snprintf(name, sizeof name, "message-%s.bin", mid);
  snprintf(path, sizeof path, "%s/%s", a->o->recv_dir, name);
  if (msrp_incoming_to_path(in, path) != MSRP_RESULT_OK) {
    fprintf(stderr, "msrpcat: %s; refusing the message\n", msrp_last_error_message());
    msrp_incoming_refuse(in);
  }
}

static void on_message_saved(void *ud, const msrp_chunk *head, const char *mid, uint64_t size) {
  app *a = ud;
  (void)head;
  if (a->o->verbose) fprintf(stderr, "msrpcat: message %s saved (%llu bytes)\n", mid, (unsigned long long)size);
  pthread_mutex_lock(&a->m);
  a->received++;
  a->bytes_received += size;
  bump(a);
  pthread_mutex_unlock(&a->m);
}

static void on_incomplete(void *ud, const msrp_chunk *head, const char *mid, uint64_t received, uint64_t total,
                          msrp_result reason, const char *why) {
  (void)ud;
  (void)head;
  (void)reason;
  if (total == MSRP_BYTE_RANGE_UNKNOWN)
    fprintf(stderr, "msrpcat: message %s is incomplete (%llu bytes arrived): %s\n", mid, (unsigned long long)received,
            why);
  else
    fprintf(stderr, "msrpcat: message %s is incomplete (%llu of %llu bytes arrived): %s\n", mid,
            (unsigned long long)received, (unsigned long long)total, why);
}

static void on_report(void *ud, msrp_chunk *r) {
  app *a = ud;
  uint16_t code = 0;
  msrp_chunk_status(r, &code, NULL);
  if (a->o->verbose) fprintf(stderr, "msrpcat: REPORT with status %u\n", code);
  pthread_mutex_lock(&a->m);
  a->reports++;
  bump(a);
  pthread_mutex_unlock(&a->m);
  msrp_chunk_free(r);
}

static void on_closed(void *ud, msrp_result why, const char *msg) {
  app *a = ud;
  pthread_mutex_lock(&a->m);
  a->closed = true;
  snprintf(a->closed_msg, sizeof a->closed_msg, "%s%s%s", msrp_result_str(why), msg && *msg ? ": " : "",
           msg ? msg : "");
  bump(a);
  pthread_mutex_unlock(&a->m);
}

/* ---- setup ---- */

static msrp_tls *make_tls(const options *o, bool want_cert) {
  if (!o->cert && !o->ca && !o->fingerprint && !o->self_signed && !o->insecure && !want_cert) return NULL;
  msrp_tls *t = NULL;
  check(msrp_tls_new(&t), "TLS settings");
  if (o->cert) check(msrp_tls_set_certificate_files(t, o->cert, o->key), "loading --cert/--key");
  else if (o->self_signed || want_cert) check(msrp_tls_generate_self_signed(t, "msrpcat"), "generating a certificate");
  if (o->ca) check(msrp_tls_add_ca_file(t, o->ca), "loading --ca");
  if (o->insecure) check(msrp_tls_set_insecure_skip_verify(t, true), "--insecure");
  char *fp = NULL;
  if (msrp_tls_fingerprint(t, NULL, &fp) == MSRP_RESULT_OK) {
    fprintf(stderr, "msrpcat: local fingerprint: %s\n", fp);
    msrp_string_free(fp);
  }
  return t;
}

static char *read_remote_line(void) {
  static char line[8192];
  if (!fgets(line, sizeof line, stdin)) die("no --remote and no peer path on stdin");
  line[strcspn(line, "\r\n")] = 0;
  if (!line[0]) die("the peer path on stdin is empty");
  return line;
}

static msrp_transport *bind_session(const options *o, msrp_context *ctx, msrp_logger *lg) {
  bool listen = !strcmp(o->role, "listen");
  bool relay = o->relay_host || o->relay_domain;
  const char *local = o->local ? o->local : (listen ? "msrp://127.0.0.1:0;tcp" : "msrp://127.0.0.1:9;tcp");
  bool secure = !strncmp(local, "msrps:", 6);
  msrp_tls *tls = make_tls(o, listen && secure && !relay);
  unsigned timeout_ms = (unsigned)(o->timeout_s > 0 ? o->timeout_s : 30) * 1000u;
  char *path = NULL;
  msrp_transport *t = NULL;
  msrp_connector *c = NULL;
  msrp_server *srv = NULL;
  if (relay) {
    msrp_relay_settings rs = msrp_relay_settings_default();
    rs.domain = o->relay_domain ? o->relay_domain : "";
    rs.host = o->relay_host;
    rs.port = (uint16_t)o->relay_port;
    rs.username = o->relay_user ? o->relay_user : "";
    rs.password = o->relay_password ? o->relay_password : "";
    rs.use_tls = o->relay_tls;
    rs.websocket = o->relay_ws;
    rs.tls = tls;
    rs.fingerprint = o->fingerprint;
    check(msrp_connector_new_relay(ctx, listen ? MSRP_CONNECTOR_KIND_PASSIVE : MSRP_CONNECTOR_KIND_ACTIVE,
                                   o->sessmatch, lg, &rs, &c),
          "relay settings");
    check(msrp_connector_prepare(c, o->local, &path), "relay AUTH");
  } else if (listen && o->server) {
    check(msrp_server_new(ctx, o->sessmatch, lg, &srv), "server");
    if (tls) check(msrp_server_set_tls(srv, tls), "server TLS");
    check(msrp_server_prepare(srv, local, &path), "listening");
  } else {
    check(msrp_connector_new(ctx, listen ? MSRP_CONNECTOR_KIND_PASSIVE : MSRP_CONNECTOR_KIND_ACTIVE, o->sessmatch,
                             lg, &c),
          "connector");
    if (tls) check(msrp_connector_set_tls(c, tls), "TLS");
    if (o->fingerprint) check(msrp_connector_set_peer_fingerprint(c, o->fingerprint), "--fingerprint");
    check(msrp_connector_prepare(c, local, &path), listen ? "listening" : "prepare");
  }
  printf("%s\n", path);
  fflush(stdout);
  const char *remote = o->remote ? o->remote : read_remote_line();
  if (srv) {
    if (o->fingerprint) check(msrp_server_set_peer_fingerprint(srv, path, o->fingerprint), "--fingerprint");
    check(msrp_server_complete(srv, remote, timeout_ms, &t), "binding");
  } else {
    check(msrp_connector_complete(c, remote, timeout_ms, &t), listen ? "accepting the peer" : "connecting");
  }
  if (o->verbose) fprintf(stderr, "msrpcat: bound with %s\n", remote);
  msrp_string_free(path);
  msrp_connector_free(c);
  msrp_server_free(srv);
  msrp_tls_free(tls);
  return t;
}

static const char *guess_type(const char *file) {
  const char *dot = strrchr(file, '.');
  if (!dot) return "application/octet-stream";
  static const char *map[][2] = {{".txt", "text/plain"},  {".html", "text/html"},      {".htm", "text/html"},
                                 {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},     {".png", "image/png"},
                                 {".gif", "image/gif"},   {".pdf", "application/pdf"}, {".json", "application/json"},
                                 {".mp3", "audio/mpeg"},  {".mp4", "video/mp4"},       {".zip", "application/zip"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcasecmp(dot, map[i][0])) return map[i][1];
  return "application/octet-stream";
}

static void send_file(app *a, const char *file, const char *ct) {
  struct stat st;
  if (stat(file, &st) != 0) die("cannot read %s: %s", file, strerror(errno));
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  char disp[512];
  snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", base);
  msrp_outgoing_file f;
  memset(&f, 0, sizeof f);
  f.path = file;
  f.fd = -1;
  f.content_type = ct ? ct : guess_type(file);
  msrp_message_options mo = msrp_message_options_default();
  mo.success_report = a->o->success_report;
  mo.content_disposition = disp;
  pthread_mutex_lock(&a->m);
  a->queued++;
  a->bytes_sent += (uint64_t)st.st_size;
  a->file_active = true;
  a->prog_total = (uint64_t)st.st_size;
  pthread_mutex_unlock(&a->m);
  sent_msg *sm = malloc(sizeof *sm);
  if (!sm) die("out of memory");
  sm->a = a;
  sm->len = (uint64_t)st.st_size;
  check(msrp_session_send_file(a->s, &f, &mo, &MSG_CBS, sm, NULL), "send_file");
}

static void progress_bar(app *a) {
  pthread_mutex_lock(&a->m);
  uint64_t done = a->prog_acked, total = a->prog_total;
  bool active = a->file_active;
  pthread_mutex_unlock(&a->m);
  if (!active || !total) return;
  double dt = now_s() - a->t0, rate = dt > 0 ? (double)done / dt : 0;
  int width = 30, fill = (int)((double)width * (double)done / (double)total);
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  double left = rate > 0 ? (double)(total - done) / rate : 0;
  fprintf(stderr, "\r[%s] %.1f/%.1f MB  %.1f MB/s  %02d:%02d left ", bar, (double)done / 1e6, (double)total / 1e6,
          rate / 1e6, (int)left / 60, (int)left % 60);
}

/* Ends the summary's transfer part: bytes that arrived (accepted by the
 * peer, or received here) over the real time the run took. */
static void summary(app *a) {
  double dt = now_s() - a->t0;
  pthread_mutex_lock(&a->m);
  uint64_t moved = a->bytes_accepted + a->bytes_received;
  fprintf(stderr, "msrpcat: sent %ld messages (%llu bytes), %ld accepted with 200 (%llu bytes), %ld refused or lost; "
          "received %ld (%llu bytes); in %.2f s",
          a->queued, (unsigned long long)a->bytes_sent, a->codes[200], (unsigned long long)a->bytes_accepted,
          a->queued - a->codes[200], a->received, (unsigned long long)a->bytes_received, dt);
  if (moved > 0 && dt >= 0.001) fprintf(stderr, ", %.1f MB/s", (double)moved / dt / 1e6);
  fputs("; responses:", stderr);
  bool any = false;
  for (int c = 0; c < 1000; c++)
    if (a->codes[c]) {
      fprintf(stderr, " %d x%ld", c, a->codes[c]);
      any = true;
    }
  if (a->other_codes) fprintf(stderr, " failed x%ld", a->other_codes);
  if (!any && !a->other_codes) fprintf(stderr, " none");
  fputc('\n', stderr);
  pthread_mutex_unlock(&a->m);
}

/* Waits until the work is done (or the peer closed, or time is up). */
static void wait_for_end(app *a) {
  const options *o = a->o;
  bool tty = isatty(2);
  double deadline = o->duration > 0 ? a->t0 + o->duration : 0;
  bool has_goal = o->expect > 0 || a->queued > 0 || o->ntexts || o->file || o->count;
  int fd = -1;
  if (o->event_loop) check(msrp_context_fd(a->ctx, &fd), "msrp_context_fd");
  pthread_mutex_lock(&a->m);
  for (;;) {
    if (o->event_loop) {
      /* The application's loop: wait for libmsrp's descriptor (a real
       * program adds its own descriptors here), then run the queued
       * callbacks on this thread. They take a->m, so it is released. */
      pthread_mutex_unlock(&a->m);
      struct pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 200) > 0) check(msrp_context_dispatch(a->ctx, 0, NULL), "msrp_context_dispatch");
      if (tty) progress_bar(a);
      pthread_mutex_lock(&a->m);
    }
    bool sends_done = a->finished >= a->queued && a->notes_received >= a->notes_expected;
    bool got_all = o->expect <= 0 || a->received >= o->expect;
    if (has_goal && sends_done && got_all && !(o->echo && o->duration > 0)) break;
    if (a->closed) break;
    if (deadline && now_s() >= deadline) break;
    if (o->event_loop) continue;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&a->c, &a->m, &ts);
    if (tty) {
      pthread_mutex_unlock(&a->m);
      progress_bar(a);
      pthread_mutex_lock(&a->m);
    }
  }
  pthread_mutex_unlock(&a->m);
  if (tty && o->file) fputc('\n', stderr);
}

static int verdict(app *a) {
  int rc = 0;
  pthread_mutex_lock(&a->m);
  long ok = a->codes[200];
  if (a->finished < a->queued) {
    fprintf(stderr, "msrpcat: %ld of %ld messages got no final response%s%s\n", a->queued - a->finished, a->queued,
            a->closed ? " before the session closed: " : "", a->closed ? a->closed_msg : "");
    rc = 1;
  } else if (ok != a->queued) {
    fprintf(stderr, "msrpcat: %ld of %ld messages were not accepted with 200\n", a->queued - ok, a->queued);
    rc = 1;
  }
  if (a->notes_received < a->notes_expected) {
    fprintf(stderr, "msrpcat: %ld of %ld notifications (IMDN) did not come\n", a->notes_expected - a->notes_received,
            a->notes_expected);
    rc = 1;
  }
  if (a->o->expect > 0 && a->received < a->o->expect) {
    fprintf(stderr, "msrpcat: expected %ld messages, received %ld%s%s\n", a->o->expect, a->received,
            a->closed ? "; the session closed: " : "", a->closed ? a->closed_msg : "");
    rc = 1;
  }
  pthread_mutex_unlock(&a->m);
  return rc;
}

static const msrp_session_callbacks SESSION_CBS = {.on_message = on_message,
                                                   .on_report = on_report,
                                                   .on_closed = on_closed,
                                                   .on_incomplete = on_incomplete,
                                                   .on_cpim = on_cpim};

static void app_init(app *a, const options *o) {
  memset(a, 0, sizeof *a);
  pthread_mutex_init(&a->m, NULL);
  pthread_cond_init(&a->c, NULL);
  a->o = o;
}

static msrp_session_options session_options(const options *o) {
  msrp_session_options so = msrp_session_options_default();
  so.accept_types = o->accept;
  so.chunk_size = o->chunk_size;
  if (o->window) so.window = o->window;
  so.use_sessmatch = o->sessmatch;
  so.imdn_auto_delivery = o->imdn_reply;
  return so;
}

static int run_peer(const options *o) {
  msrp_context *ctx = NULL;
  msrp_context_options co;
  memset(&co, 0, sizeof co);
  co.queued_callbacks = o->event_loop;
  check(msrp_context_new(&co, &ctx), "context");
  msrp_logger *lg = NULL;
  if (o->verbose) {
    msrp_logger_callbacks lc;
    memset(&lc, 0, sizeof lc);
    lc.received_new_chunk = log_recv;
    lc.sent_new_chunk = log_sent;
    lc.info = log_msg;
    lc.warn = log_msg;
    lc.error = log_msg;
    check(msrp_logger_new(&lc, NULL, NULL, &lg), "logger");
  }
  msrp_transport *t = bind_session(o, ctx, lg);
  app a;
  app_init(&a, o);
  a.ctx = ctx;
  msrp_session_options so = session_options(o);
  a.t0 = now_s();
  msrp_session_callbacks cbs = SESSION_CBS;
  if (o->recv_dir && !o->echo) {
    cbs.on_message_start = on_message_start;
    cbs.on_message_saved = on_message_saved;
  }
  check(msrp_session_new(t, &so, &cbs, &a, NULL, &a.s), "session");
  for (int i = 0; i < o->ntexts; i++) {
    if (o->cpim)
      send_cpim(&a, o->texts[i]);
    else
      send_message(&a, (const uint8_t *)o->texts[i], strlen(o->texts[i]), "text/plain", NULL);
  }
  if (o->count > 0) {
    /* One buffer for all of them, lent (not copied) to each message. */
    lent_buf *lb = calloc(1, sizeof *lb);
    if (!lb) die("out of memory");
    pthread_mutex_init(&lb->m, NULL);
    lb->refs = 1;
    lb->data = malloc(o->size ? o->size : 1);
    if (!lb->data) die("out of memory");
    /* 'a'..'z' over and over: one round written, then copied on in
     * doubling steps (a byte at a time took 50 ms for 50 MB). */
    size_t filled = o->size < 26 ? o->size : 26;
    for (size_t i = 0; i < filled; i++) lb->data[i] = (uint8_t)('a' + i);
    while (filled < o->size) {
      size_t n = filled < o->size - filled ? filled : o->size - filled;
      memcpy(lb->data + filled, lb->data, n);
      filled += n;
    }
    for (long i = 0; i < o->count; i++)
      send_message_from(&a, lb->data, o->size, "application/octet-stream", NULL, lb);
    lent_release(lb);
  }
  if (o->file) send_file(&a, o->file, o->content_type);
  wait_for_end(&a);
  msrp_session_shutdown(a.s, true, 5000);
  msrp_session_free(a.s);
  summary(&a);
  int rc = verdict(&a);
  msrp_logger_free(lg);
  msrp_context_free(ctx);
  return rc;
}

/* ---- demo: both ends in one process ---- */

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  bool done;
  msrp_result r;
  msrp_transport *t;
  char msg[256];
} bind_wait;

static void on_bound(void *ud, msrp_result r, msrp_transport *t, const char *msg) {
  bind_wait *w = ud;
  pthread_mutex_lock(&w->m);
  w->done = true;
  w->r = r;
  w->t = t;
  snprintf(w->msg, sizeof w->msg, "%s", msg ? msg : "");
  pthread_cond_broadcast(&w->c);
  pthread_mutex_unlock(&w->m);
}

/* A file of `len` bytes with pseudo-random content, and its digest. */
static void make_file(const char *path, size_t len, char sha[65]) {
  FILE *f = fopen(path, "wb");
  if (!f) die("cannot create %s: %s", path, strerror(errno));
  sha256_ctx h;
  sha256_init(&h);
  uint8_t buf[65536];
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t done = 0; done < len;) {
    size_t n = len - done < sizeof buf ? len - done : sizeof buf;
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = (uint8_t)x;
    }
    if (fwrite(buf, 1, n, f) != n) die("cannot write %s", path);
    sha256_update(&h, buf, n);
    done += n;
  }
  fclose(f);
  sha256_hex(&h, sha);
}

static int run_demo(options *o) {
  printf("libmsrp %s demo: alice and bob in one process, over loopback TCP\n", msrp_version());
  msrp_context *ctx = NULL;
  check(msrp_context_new(NULL, &ctx), "context");
  msrp_connector *acc = NULL, *con = NULL;
  check(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, false, NULL, &acc), "acceptor");
  check(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &con), "connector");
  char *bob_path = NULL, *alice_path = NULL;
  check(msrp_connector_prepare(acc, "msrp://127.0.0.1:0;tcp", &bob_path), "bob prepare");
  check(msrp_connector_prepare(con, "msrp://127.0.0.1:9;tcp", &alice_path), "alice prepare");
  printf("bob's a=path:   %s\nalice's a=path: %s\n", bob_path, alice_path);
  bind_wait w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.m, NULL);
  pthread_cond_init(&w.c, NULL);
  check(msrp_connector_complete_async(acc, alice_path, 10000, on_bound, &w), "bob accepts");
  msrp_transport *ta = NULL;
  check(msrp_connector_complete(con, bob_path, 10000, &ta), "alice connects");
  pthread_mutex_lock(&w.m);
  while (!w.done) pthread_cond_wait(&w.c, &w.m);
  pthread_mutex_unlock(&w.m);
  if (w.r != MSRP_RESULT_OK) die("bob could not accept: %s: %s", msrp_result_str(w.r), w.msg);
  printf("bound: alice -> bob\n");

  o->success_report = false;
  app alice, bob;
  app_init(&alice, o);
  app_init(&bob, o);
  msrp_session_options so = msrp_session_options_default();
  msrp_session_callbacks bob_cbs = {.on_message = on_message, .on_closed = on_closed};
  check(msrp_session_new(w.t, &so, &bob_cbs, &bob, NULL, &bob.s), "bob's session");
  check(msrp_session_new(ta, &so, &SESSION_CBS, &alice, NULL, &alice.s), "alice's session");
  size_t len = (size_t)(o->demo_mb * 1024 * 1024);
  char path[256], sent_sha[65];
  const char *tmp = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/msrpcat-demo-%d.bin", tmp && *tmp ? tmp : "/tmp", (int)getpid());
  make_file(path, len, sent_sha);
  alice.t0 = bob.t0 = now_s();
  const char *lines[] = {"Hi Bob!", "Here comes the file.", "Tell me when it is there."};
  for (int i = 0; i < 3; i++) send_message(&alice, (const uint8_t *)lines[i], strlen(lines[i]), "text/plain", NULL);

  printf("alice sends %s (%.1f MB, sha256 %.16s...)\n", path, (double)len / 1048576.0, sent_sha);
  fflush(stdout);
  o->file = path;
  send_file(&alice, path, "application/octet-stream");
  /* Wait for alice's final responses and for the file at bob's. */
  bool tty = isatty(2);
  double until = now_s() + 120;
  for (;;) {
    pthread_mutex_lock(&alice.m);
    bool sent = alice.finished >= alice.queued;
    pthread_mutex_unlock(&alice.m);
    pthread_mutex_lock(&bob.m);
    bool got = bob.received_file_len > 0;
    pthread_mutex_unlock(&bob.m);
    if ((sent && got) || now_s() > until) break;
    if (tty) progress_bar(&alice);
    usleep(100000);
  }
  if (tty) fputc('\n', stderr);
  unlink(path);
  int rc = 0;
  if (bob.received_file_len != len || strcmp(bob.received_sha, sent_sha) != 0) {
    fprintf(stderr, "msrpcat: demo FAILED: bob got %zu bytes with sha256 %s, alice sent %zu with %s\n",
            bob.received_file_len, bob.received_sha[0] ? bob.received_sha : "(none)", len, sent_sha);
    rc = 1;
  } else {
    printf("bob received the file: %zu bytes, sha256 matches (%s)\n", len, sent_sha);
  }
  msrp_session_shutdown(alice.s, true, 5000);
  msrp_session_free(alice.s);
  msrp_session_free(bob.s);
  fflush(stdout);
  summary(&alice);
  if (verdict(&alice) != 0) rc = 1;
  msrp_string_free(bob_path);
  msrp_string_free(alice_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  msrp_context_free(ctx);
  printf(rc == 0 ? "demo OK\n" : "demo FAILED\n");
  return rc;
}

int main(int argc, char **argv) {
  options o;
  parse(&o, argc, argv);
  if (!strcmp(o.role, "demo")) return run_demo(&o);
  return run_peer(&o);
}
