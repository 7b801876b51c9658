/* Version, result texts, last error message, string freeing. */
#include "check.h"

int main(void) {
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", MSRP_VERSION_MAJOR, MSRP_VERSION_MINOR, MSRP_VERSION_PATCH);
  CHECK(strcmp(msrp_version(), want) == 0);

  const unsigned codes[] = {
      MSRP_RESULT_OK, MSRP_RESULT_NULL_ARGUMENT, MSRP_RESULT_INVALID_ARGUMENT, MSRP_RESULT_INVALID_UTF8,
      MSRP_RESULT_PANIC, MSRP_RESULT_NOT_FOUND, MSRP_RESULT_BUFFER_TOO_SMALL, MSRP_RESULT_WRONG_KIND,
      MSRP_RESULT_EMBEDDED_NUL, MSRP_RESULT_INVALID_URI, MSRP_RESULT_INVALID_HEADER,
      MSRP_RESULT_MISSING_HEADER, MSRP_RESULT_INVALID_METHOD, MSRP_RESULT_INVALID_TRANSACTION_ID,
      MSRP_RESULT_INVALID_CODE, MSRP_RESULT_END_LINE_IN_BODY, MSRP_RESULT_DECODE_BAD_START_LINE,
      MSRP_RESULT_DECODE_BARE_LINE_FEED, MSRP_RESULT_DECODE_LINE_TOO_LONG,
      MSRP_RESULT_DECODE_TOO_MANY_HEADERS, MSRP_RESULT_DECODE_HEAD_TOO_LARGE,
      MSRP_RESULT_DECODE_BAD_END_LINE, MSRP_RESULT_DECODE_FAILED, MSRP_RESULT_CLOSED, MSRP_RESULT_TIMEOUT,
      MSRP_RESULT_CONNECT_FAILED, MSRP_RESULT_LISTEN_FAILED, MSRP_RESULT_BIND_MISMATCH,
      MSRP_RESULT_BIND_REJECTED, MSRP_RESULT_PROTOCOL, MSRP_RESULT_IO, MSRP_RESULT_IN_CALLBACK,
      MSRP_RESULT_BAD_STATE, MSRP_RESULT_UNSUPPORTED};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *t = msrp_result_str(codes[i]);
    CHECK(t != NULL && strlen(t) > 3 && strcmp(t, "unknown result code") != 0);
    for (size_t j = 0; j < i; j++) CHECK(strcmp(t, msrp_result_str(codes[j])) != 0);
  }
  CHECK(strcmp(msrp_result_str(12345), "unknown result code") == 0);
  CHECK(strcmp(msrp_result_str(MSRP_RESULT_OK), "success") == 0);

  /* The last error message belongs to the calling thread and names the problem. */
  msrp_uri *u = NULL;
  CHECK_RES(msrp_uri_parse("msrp://[::1/s;tcp", &u), MSRP_RESULT_INVALID_URI);
  CHECK_LAST_ERROR_HAS("IPv6");
  CHECK_OK(msrp_uri_parse("msrp://[::1]/s;tcp", &u));
  CHECK_LAST_ERROR_HAS("IPv6"); /* successes leave it unchanged */
  msrp_uri_free(u);
  msrp_string_free(NULL);
  return check_summary("test_misc");
}
