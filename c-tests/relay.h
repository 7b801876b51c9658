/* Starts a real Kamailio MSRP relay (tests/relay/kamailio.cfg) on a free
 * loopback port for a C test, and stops it; prints its log on request. */
#ifndef MSRP_TEST_RELAY_H
#define MSRP_TEST_RELAY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

typedef struct {
  pid_t pid;
  int port;
  char dir[256];
} test_relay;

static int relay_free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}

static int relay_can_connect(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
  close(s);
  return ok;
}

static void relay_show_log(const test_relay *r) {
  char path[300];
  snprintf(path, sizeof path, "%s/log", r->dir);
  FILE *f = fopen(path, "r");
  if (!f) return;
  fprintf(stderr, "---- kamailio log (port %d) ----\n", r->port);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stderr);
  fclose(f);
}

/* Returns 0 and fills `r` when the relay answers on its port. */
static int relay_start(test_relay *r, int min_expires, int max_expires) {
  const char *bin = access("/usr/sbin/kamailio", X_OK) == 0 ? "/usr/sbin/kamailio" : "/usr/local/sbin/kamailio";
  if (access(bin, X_OK) != 0) {
    fprintf(stderr, "kamailio is not installed: the relay tests need it (apt-get install -y kamailio)\n");
    return -1;
  }
  memset(r, 0, sizeof *r);
  r->port = relay_free_port();
  snprintf(r->dir, sizeof r->dir, "/tmp/msrp-c-kamailio-%d-%d", (int)getpid(), r->port);
  char run[300], pid[300], log[300], d_port[64], d_min[64], d_max[64];
  snprintf(run, sizeof run, "%s/run", r->dir);
  snprintf(pid, sizeof pid, "%s/kamailio.pid", r->dir);
  snprintf(log, sizeof log, "%s/log", r->dir);
  snprintf(d_port, sizeof d_port, "RELAY_PORT=%d", r->port);
  snprintf(d_min, sizeof d_min, "MIN_EXPIRES=%d", min_expires);
  snprintf(d_max, sizeof d_max, "MAX_EXPIRES=%d", max_expires);
  mkdir(r->dir, 0700);
  mkdir(run, 0700);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  char *argv[] = {(char *)bin, "-DD", "-E", "-f", MSRP_SOURCE_DIR "/tests/relay/kamailio.cfg", "-P", pid, "-Y", run,
                  "-w", r->dir, "-A", d_port, "-A", d_min, "-A", d_max, NULL};
  int rc = posix_spawn(&r->pid, bin, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  for (int i = 0; i < 200; i++) {
    int status;
    if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
      r->pid = 0;
      relay_show_log(r);
      return -1;
    }
    if (relay_can_connect(r->port)) return 0;
    usleep(50000);
  }
  relay_show_log(r);
  return -1;
}

static void relay_stop(test_relay *r, bool show_log) {
  if (r->pid > 0) {
    kill(r->pid, SIGTERM);
    int status;
    for (int i = 0; i < 100 && waitpid(r->pid, &status, WNOHANG) == 0; i++) usleep(50000);
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &status, 0);
    r->pid = 0;
  }
  if (show_log) relay_show_log(r);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", r->dir);
}

#endif
