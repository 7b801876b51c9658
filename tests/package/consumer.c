/* A program built against an installed libmsrp (tests/package): parses a
 * URI and runs a context, so the header, the library and its SONAME are
 * all used. Exit status 0 on success. */
#include <stdio.h>
#include <string.h>

#include "msrp.h"

int main(void) {
  msrp_uri *u = NULL;
  if (msrp_uri_parse("msrp://127.0.0.1:2855/s1;tcp", &u) != MSRP_RESULT_OK) {
    fprintf(stderr, "consumer: msrp_uri_parse: %s\n", msrp_last_error_message());
    return 1;
  }
  char *text = NULL;
  int ok = msrp_uri_format(u, &text) == MSRP_RESULT_OK && strcmp(text, "msrp://127.0.0.1:2855/s1;tcp") == 0;
  msrp_string_free(text);
  msrp_uri_free(u);
  msrp_context *ctx = NULL;
  ok = ok && msrp_context_new(NULL, &ctx) == MSRP_RESULT_OK;
  msrp_context_free(ctx);
  printf("consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
