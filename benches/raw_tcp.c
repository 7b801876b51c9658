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
 */
#include <arpa/inet.h>
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

static int do_listen(const char *out) {
  int s = accept_one();
  if (s < 0) return 1;
  FILE *f = strcmp(out, "-") ? fopen(out, "wb") : NULL;
  if (strcmp(out, "-") && !f) return fail(out);
  static char buf[BLOCK];
  unsigned long long total = 0;
  for (;;) {
    ssize_t n = read(s, buf, sizeof buf);
    if (n < 0) return fail("read");
    if (n == 0) break;
    if (f && fwrite(buf, 1, (size_t)n, f) != (size_t)n) return fail("write");
    total += (unsigned long long)n;
  }
  if (f) fclose(f);
  fprintf(stderr, "raw_tcp: received %llu bytes\n", total);
  return 0;
}

static int do_send(const char *port, const char *what) {
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
    for (size_t off = 0; off < n;) {
      ssize_t w = write(s, buf + off, n - off);
      if (w <= 0) return fail("write");
      off += (size_t)w;
    }
  }
  if (f) fclose(f);
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
  if (argc == 3 && !strcmp(argv[1], "listen")) return do_listen(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "send")) return do_send(argv[2], argv[3]);
  fprintf(stderr, "usage: raw_tcp listen OUT|- | raw_tcp send PORT FILE|=N | raw_tcp listen-msgs N SIZE |\n"
                  "       raw_tcp send-msgs PORT N SIZE\n");
  return 2;
}
