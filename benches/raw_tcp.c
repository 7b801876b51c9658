/* The two-process raw TCP baseline for benches/two_process.py: the same
 * bytes between two processes over loopback with nothing but TCP, read and
 * written in 256 KiB blocks (as libmsrp's sockets are).
 *
 *   raw_tcp listen OUT|-      prints its port, accepts one connection,
 *                             reads to the end, writes to OUT (- : discards)
 *   raw_tcp send PORT FILE    sends FILE's bytes and closes
 *   raw_tcp send PORT =N      sends N bytes of a fixed pattern and closes
 *   raw_tcp listen-msgs N SIZE  reads N messages of SIZE bytes, each into a
 *                             buffer of its own (as a receiver that keeps
 *                             whole messages in memory does)
 *   raw_tcp send-msgs PORT N SIZE  copies a SIZE-byte message into N buffers
 *                             of their own (as msrp_session_send_message
 *                             does), then sends them one after another
 *
 * `listen` and `send` take `scan` as a last argument: each block is then
 * searched for an end-line as MSRP requires of every body byte (RFC 4975
 * §7.1.1: the sender ensures the end-line is not in the body; the receiver
 * finds where the body ends), with nothing else of MSRP: the floor of what
 * any implementation can reach against the plain figures. (A match cut
 * between two blocks is not looked for: that costs a few bytes a block.)
 * `scan+respond` also has the receiver answer every 128 KiB (a chunk of
 * msrpcat's) with a 200 response of MSRP's size, written once per read
 * (RFC 4975 §7.2: a response for every chunk unless Failure-Report says
 * otherwise), which the sender reads as they come and to the end.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BLOCK = 256 * 1024 };

static int fail(const char *what) {
  perror(what);
  return 1;
}

/* What a sender must not send and a receiver looks for: the end-line of a
 * chunk with a 16-character transaction id, without its flag (the
 * receiver's begins with the CRLF that precedes it). */
static const char END_RX[] = "\r\n-------f3Kq9TzX2bW7pLmA";
static const char *const END_TX = END_RX + 2;
static unsigned long found;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* Bytes 0 and 8 of the needle tested 64 positions at a time (AVX2), as
 * fast substring searchers do; the rest compared where both match. */
__attribute__((target("avx2"))) static const char *find_avx2(const char *h, size_t n, const char *nd, size_t m) {
  if (n < m) return NULL;
  const __m256i a = _mm256_set1_epi8(nd[0]), b = _mm256_set1_epi8(nd[8]);
  size_t i = 0;
  const size_t last = n - m;
  for (; i + 64 <= last + 1; i += 64) {
    __m256i m0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(h + i)), a),
                                  _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(h + i + 8)), b));
    __m256i m1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(h + i + 32)), a),
                                  _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(h + i + 40)), b));
    __m256i any = _mm256_or_si256(m0, m1);
    if (_mm256_testz_si256(any, any)) continue;
    unsigned long long mask = (unsigned)_mm256_movemask_epi8(m0) | (unsigned long long)(unsigned)_mm256_movemask_epi8(m1) << 32;
    for (; mask; mask &= mask - 1) {
      size_t k = (size_t)__builtin_ctzll(mask);
      if (!memcmp(h + i + k, nd, m)) return h + i + k;
    }
  }
  return memmem(h + i, n - i, nd, m);
}
#endif

static const char *find(const char *h, size_t n, const char *nd, size_t m) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2")) return find_avx2(h, n, nd, m);
#endif
  return memmem(h, n, nd, m);
}

static void scan(int on, const char *h, size_t n, const char *nd) {
  if (on && find(h, n, nd, strlen(nd))) found++;
}

/* A 200 response as libmsrp writes one (transaction id, both paths). */
static const char RESPONSE[] =
    "MSRP f3Kq9TzX2bW7pLmA 200 OK\r\n"
    "To-Path: msrp://127.0.0.1:40000/s2Kd8wq3nZ;tcp\r\n"
    "From-Path: msrp://127.0.0.1:40001/a7Lp2xv9cQ;tcp\r\n"
    "-------f3Kq9TzX2bW7pLmA$\r\n";
enum { CHUNK = 128 * 1024, MAX_RESPONSES = BLOCK / CHUNK + 1 };

/* Answers the chunks that `n` more bytes completed, in one write. */
static int respond(int s, unsigned long long *since, size_t n) {
  static char out[MAX_RESPONSES * sizeof RESPONSE];
  size_t k = 0;
  for (*since += n; *since >= CHUNK && k < MAX_RESPONSES; *since -= CHUNK)
    memcpy(out + k++ * (sizeof RESPONSE - 1), RESPONSE, sizeof RESPONSE - 1);
  for (size_t off = 0, len = k * (sizeof RESPONSE - 1); off < len;) {
    ssize_t w = write(s, out + off, len - off);
    if (w <= 0) return fail("write"), -1;
    off += (size_t)w;
  }
  return 0;
}

/* Reads what the peer answered so far without waiting (`wait`: to its end). */
static int drain(int s, int wait) {
  static char sink[64 * 1024];
  for (;;) {
    ssize_t r = recv(s, sink, sizeof sink, wait ? 0 : MSG_DONTWAIT);
    if (r > 0) continue;
    if (r == 0 || (!wait && (errno == EAGAIN || errno == EWOULDBLOCK))) return 0;
    return fail("recv"), -1;
  }
}

/* Listens on a free loopback port, prints it, accepts one connection. */
static int accept_one(void) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0) return fail("listen"), -1;
  if (getsockname(l, (struct sockaddr *)&a, &al) != 0) return fail("getsockname"), -1;
  printf("%u\n", (unsigned)ntohs(a.sin_port));
  fflush(stdout);
  int s = accept(l, NULL, NULL);
  if (s < 0) fail("accept");
  return s;
}

/* Connects to a loopback port (Nagle off, as libmsrp's sockets). */
static int connect_to(const char *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) return fail("connect"), -1;
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static int do_listen(const char *out, int scanning, int responding) {
  int s = accept_one();
  if (s < 0) return 1;
  FILE *f = strcmp(out, "-") ? fopen(out, "wb") : NULL;
  if (strcmp(out, "-") && !f) return fail(out);
  static char buf[BLOCK];
  unsigned long long total = 0, since = 0;
  for (;;) {
    ssize_t n = read(s, buf, sizeof buf);
    if (n < 0) return fail("read");
    if (n == 0) break;
    scan(scanning, buf, (size_t)n, END_RX);
    if (responding && respond(s, &since, (size_t)n) != 0) return 1;
    if (f && fwrite(buf, 1, (size_t)n, f) != (size_t)n) return fail("write");
    total += (unsigned long long)n;
  }
  if (f) fclose(f);
  fprintf(stderr, "raw_tcp: received %llu bytes (end-lines found: %lu)\n", total, found);
  return 0;
}

static int do_send(const char *port, const char *what, int scanning, int responding) {
  int s = connect_to(port);
  if (s < 0) return 1;
  static char buf[BLOCK];
  FILE *f = NULL;
  unsigned long long left = 0;
  if (what[0] == '=') {
    left = strtoull(what + 1, NULL, 10);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)('a' + i % 26);
  } else if (!(f = fopen(what, "rb"))) {
    return fail(what);
  }
  for (;;) {
    size_t n = f ? fread(buf, 1, sizeof buf, f) : (size_t)(left < sizeof buf ? left : sizeof buf);
    if (n == 0) break;
    left -= f ? 0 : n;
    scan(scanning, buf, n, END_TX);
    for (size_t off = 0; off < n;) {
      ssize_t w = write(s, buf + off, n - off);
      if (w <= 0) return fail("write");
      off += (size_t)w;
    }
    if (responding && drain(s, 0) != 0) return 1;
  }
  if (f) fclose(f);
  /* The last responses come after the last byte: read them to the end. */
  if (responding && (shutdown(s, SHUT_WR) != 0 || drain(s, 1) != 0)) return 1;
  close(s);
  return 0;
}

static int do_listen_msgs(long n, size_t size) {
  int s = accept_one();
  if (s < 0) return 1;
  unsigned long check = 0;
  for (long i = 0; i < n; i++) {
    char *m = malloc(size);
    if (!m) return fail("malloc");
    for (size_t got = 0; got < size;) {
      size_t want = size - got < BLOCK ? size - got : BLOCK;
      ssize_t r = read(s, m + got, want);
      if (r <= 0) return fail("read");
      got += (size_t)r;
    }
    check += (unsigned char)m[size - 1];
    free(m);
  }
  fprintf(stderr, "raw_tcp: received %ld messages (%lu)\n", n, check);
  return 0;
}

static int do_send_msgs(const char *port, long n, size_t size) {
  int s = connect_to(port);
  if (s < 0) return 1;
  char *pattern = malloc(size);
  char **msgs = calloc((size_t)n, sizeof *msgs);
  if (!pattern || !msgs) return fail("malloc");
  for (size_t i = 0; i < size; i++) pattern[i] = (char)('a' + i % 26);
  for (long i = 0; i < n; i++) {
    if (!(msgs[i] = malloc(size))) return fail("malloc");
    memcpy(msgs[i], pattern, size);
  }
  for (long i = 0; i < n; i++) {
    for (size_t off = 0; off < size;) {
      size_t want = size - off < BLOCK ? size - off : BLOCK;
      ssize_t w = write(s, msgs[i] + off, want);
      if (w <= 0) return fail("write");
      off += (size_t)w;
    }
    free(msgs[i]);
  }
  free(msgs);
  free(pattern);
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "listen-msgs")) return do_listen_msgs(atol(argv[2]), (size_t)atol(argv[3]));
  if (argc == 5 && !strcmp(argv[1], "send-msgs")) return do_send_msgs(argv[2], atol(argv[3]), (size_t)atol(argv[4]));
  int responding = argc > 2 && !strcmp(argv[argc - 1], "scan+respond");
  int scanning = responding || (argc > 2 && !strcmp(argv[argc - 1], "scan"));
  if (argc == 3 + scanning && !strcmp(argv[1], "listen")) return do_listen(argv[2], scanning, responding);
  if (argc == 4 + scanning && !strcmp(argv[1], "send")) return do_send(argv[2], argv[3], scanning, responding);
  fprintf(stderr, "usage: raw_tcp listen OUT|- [scan|scan+respond] | raw_tcp send PORT FILE|=N [scan|scan+respond] |\n"
                  "       raw_tcp listen-msgs N SIZE |\n"
                  "       raw_tcp send-msgs PORT N SIZE\n");
  return 2;
}
