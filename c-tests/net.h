/* Helpers for the C tests that use real loopback connections: waiting for
 * callbacks across threads, and making a bound pair of transports. */
#ifndef MSRP_NET_H
#define MSRP_NET_H

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "check.h"

typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int done;
  msrp_result result;
  msrp_transport *transport;
  msrp_chunk *chunk;
  uint32_t segment;
  pthread_t thread;
  char message[512];
} completion;

static inline void completion_init(completion *c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->m, NULL);
  pthread_cond_init(&c->c, NULL);
}

static inline void completion_destroy(completion *c) {
  pthread_mutex_destroy(&c->m);
  pthread_cond_destroy(&c->c);
}

static inline void completion_set(completion *c, msrp_result r, const char *msg) {
  pthread_mutex_lock(&c->m);
  c->result = r;
  c->thread = pthread_self();
  snprintf(c->message, sizeof c->message, "%s", msg ? msg : "");
  c->done++;
  pthread_cond_broadcast(&c->c);
  pthread_mutex_unlock(&c->m);
}

/* msrp_complete_cb */
static inline void on_complete(void *ud, msrp_result r, msrp_transport *t, const char *msg) {
  completion *c = ud;
  c->transport = t;
  completion_set(c, r, msg);
}

/* msrp_read_cb */
static inline void on_read(void *ud, msrp_result r, msrp_chunk *chunk, uint32_t segment, const char *msg) {
  completion *c = ud;
  c->chunk = chunk;
  c->segment = segment;
  completion_set(c, r, msg);
}

/* Waits until the callback ran (1) or `ms` passed (0). */
static inline int completion_wait(completion *c, int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&c->m);
  int rc = 0;
  while (!c->done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&c->c, &c->m, &ts);
  int done = c->done;
  pthread_mutex_unlock(&c->m);
  return done;
}

/* A context with `threads` worker threads. */
static inline msrp_context *new_ctx_threads(uint32_t threads) {
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  o.worker_threads = threads;
  msrp_context *ctx = NULL;
  CHECK_OK(msrp_context_new(&o, &ctx));
  return ctx;
}

static inline double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Waits until *field (guarded by m; c is signalled when it changes, or
 * NULL to look every 10 ms) reaches at least `want`, at most `ms`. */
static inline int wait_int(pthread_mutex_t *m, pthread_cond_t *c, const int *field, int want, int ms) {
  double until = now_ms() + ms;
  pthread_mutex_lock(m);
  while (*field < want && now_ms() < until) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (c ? 20 : 10) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    if (c) {
      pthread_cond_timedwait(c, m, &ts);
    } else {
      pthread_mutex_unlock(m);
      nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
      pthread_mutex_lock(m);
    }
  }
  int ok = *field >= want;
  pthread_mutex_unlock(m);
  return ok;
}

/* Counts messages' outcomes (`on_done`): how many ended, how many with 200. */
typedef struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int done, ok;
} donebox;

static inline void donebox_init(donebox *d) {
  memset(d, 0, sizeof *d);
  pthread_mutex_init(&d->m, NULL);
  pthread_cond_init(&d->c, NULL);
}

static inline void donebox_destroy(donebox *d) {
  pthread_mutex_destroy(&d->m);
  pthread_cond_destroy(&d->c);
}

static inline void donebox_on_done(void *ud, uint64_t msg, const char *mid, uint16_t code, const char *comment) {
  donebox *d = ud;
  (void)msg, (void)mid, (void)comment;
  pthread_mutex_lock(&d->m);
  d->done++;
  if (code == 200) d->ok++;
  pthread_cond_broadcast(&d->c);
  pthread_mutex_unlock(&d->m);
}

/* Binds an active connector to a passive one (both direct) on loopback.
 * `passive_local` may be NULL (127.0.0.1, free port). With `dispatch`, the
 * context has queued callbacks: the passive side's completion is dispatched
 * here while waiting. */
static inline void make_pair_ex(msrp_context *ctx, bool sessmatch, const char *passive_local, bool dispatch,
                                msrp_transport **active, msrp_transport **passive) {
  msrp_connector *acc = NULL, *con = NULL;
  char *acc_path = NULL, *con_path = NULL;
  completion done;
  completion_init(&done);
  *active = *passive = NULL;
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_PASSIVE, sessmatch, NULL, &acc));
  CHECK_OK(msrp_connector_new(ctx, MSRP_CONNECTOR_KIND_ACTIVE, sessmatch, NULL, &con));
  CHECK_OK(msrp_connector_prepare(acc, passive_local, &acc_path));
  CHECK_OK(msrp_connector_prepare(con, NULL, &con_path));
  CHECK_OK(msrp_connector_complete_async(acc, con_path, 10000, on_complete, &done));
  CHECK_OK(msrp_connector_complete(con, acc_path, 10000, active));
  if (dispatch)
    for (int i = 0; i < 1000 && !completion_wait(&done, 10); i++) msrp_context_dispatch(ctx, 0, NULL);
  CHECK(completion_wait(&done, 10000));
  CHECK(done.result == MSRP_RESULT_OK);
  *passive = done.transport;
  msrp_string_free(acc_path);
  msrp_string_free(con_path);
  msrp_connector_free(acc);
  msrp_connector_free(con);
  completion_destroy(&done);
}

static inline void make_pair(msrp_context *ctx, bool sessmatch, const char *passive_local, msrp_transport **active,
                             msrp_transport **passive) {
  make_pair_ex(ctx, sessmatch, passive_local, false, active, passive);
}

#endif
