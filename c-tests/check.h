/* Tiny check helpers shared by the C tests: each failed check prints where
 * and why (with libmsrp's last error message) and the program exits non-zero. */
#ifndef MSRP_CHECK_H
#define MSRP_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msrp.h"

static int check_passed_;
static int check_failed_;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (cond) {                                                              \
      check_passed_++;                                                       \
    } else {                                                                 \
      check_failed_++;                                                       \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

#define CHECK_RES(expr, expected)                                              \
  do {                                                                         \
    msrp_result r_ = (expr);                                                   \
    if (r_ == (expected)) {                                                    \
      check_passed_++;                                                         \
    } else {                                                                   \
      check_failed_++;                                                         \
      fprintf(stderr, "%s:%d: %s gave %u (%s), expected %s; last error: %s\n", \
              __FILE__, __LINE__, #expr, (unsigned)r_, msrp_result_str(r_),    \
              #expected, msrp_last_error_message());                           \
    }                                                                          \
  } while (0)

#define CHECK_OK(expr) CHECK_RES(expr, MSRP_RESULT_OK)

/* Checks that a string returned by libmsrp equals `want`, then frees it. */
#define CHECK_STR(got, want)                                                      \
  do {                                                                            \
    char *g_ = (got);                                                             \
    if (g_ != NULL && strcmp(g_, (want)) == 0) {                                  \
      check_passed_++;                                                            \
    } else {                                                                      \
      check_failed_++;                                                            \
      fprintf(stderr, "%s:%d: got \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
              g_ ? g_ : "(null)", (want));                                        \
    }                                                                             \
    msrp_string_free(g_);                                                         \
  } while (0)

/* Checks that the last error message contains `needle`. */
#define CHECK_LAST_ERROR_HAS(needle) CHECK(strstr(msrp_last_error_message(), (needle)) != NULL)

static int check_summary(const char *name) {
  printf("%s: %d passed, %d failed\n", name, check_passed_, check_failed_);
  return check_failed_ == 0 ? 0 : 1;
}

#endif
