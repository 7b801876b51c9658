/* msrp_chunk_*: building requests and responses, typed and raw headers,
 * body, flag, the three encode forms, and every NULL / invalid argument. */
#include "check.h"

static const char *TO = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";
static const char *FROM = "msrp://alicepc.example.com:7777/iau39soe2843z;tcp";

static msrp_chunk *rfc_send(void) {
  msrp_chunk *c = NULL;
  CHECK_OK(msrp_chunk_new_request("SEND", &c));
  CHECK_OK(msrp_chunk_set_transaction_id(c, "a786hjs2"));
  CHECK_OK(msrp_chunk_set_content_type(c, "text/plain")); /* added first, written last */
  CHECK_OK(msrp_chunk_set_from_path(c, FROM));
  CHECK_OK(msrp_chunk_set_to_path(c, TO));
  CHECK_OK(msrp_chunk_set_message_id(c, "87652491"));
  CHECK_OK(msrp_chunk_set_byte_range(c, 1, 23, 23));
  CHECK_OK(msrp_chunk_set_data(c, (const uint8_t *)"Hey Bob, are you there?", 23));
  return c;
}

static void test_encode_forms(void) {
  static const char want[] =
      "MSRP a786hjs2 SEND\r\n"
      "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
      "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
      "Message-ID: 87652491\r\n"
      "Byte-Range: 1-23/23\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "Hey Bob, are you there?\r\n"
      "-------a786hjs2$\r\n";
  msrp_chunk *c = rfc_send();
  size_t len = 0;
  uint8_t buf[512];
  CHECK_RES(msrp_chunk_encode(c, NULL, 0, &len), MSRP_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == sizeof want - 1);
  CHECK_RES(msrp_chunk_encode(c, buf, 10, &len), MSRP_RESULT_BUFFER_TOO_SMALL);
  CHECK_LAST_ERROR_HAS("bytes are needed");
  CHECK_OK(msrp_chunk_encode(c, buf, sizeof buf, &len));
  CHECK(len == sizeof want - 1 && memcmp(buf, want, len) == 0);

  size_t start_len = 0, end_len = 0;
  CHECK_OK(msrp_chunk_encode_start(c, buf, sizeof buf, &start_len));
  CHECK(start_len == strlen(want) - 23 - 20);
  CHECK(memcmp(buf, want, start_len) == 0);
  CHECK_OK(msrp_chunk_encode_end(c, MSRP_FLAG_MORE, buf, sizeof buf, &end_len));
  CHECK(end_len == 20 && memcmp(buf, "\r\n-------a786hjs2+\r\n", 20) == 0);
  CHECK_RES(msrp_chunk_encode_end(c, 'x', buf, sizeof buf, &end_len), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_chunk_encode(NULL, buf, sizeof buf, &len), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_encode(c, buf, sizeof buf, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_encode_start(c, buf, sizeof buf, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_encode_end(NULL, '$', buf, sizeof buf, &len), MSRP_RESULT_NULL_ARGUMENT);

  /* A body holding its own end-line is refused until the id changes. */
  static const char evil[] = "x\r\n-------a786hjs2$\r\ny";
  bool changed = false;
  CHECK_OK(msrp_chunk_set_data(c, (const uint8_t *)evil, sizeof evil - 1));
  CHECK_RES(msrp_chunk_encode(c, buf, sizeof buf, &len), MSRP_RESULT_END_LINE_IN_BODY);
  CHECK_OK(msrp_chunk_ensure_unique_transaction_id(c, &changed));
  CHECK(changed);
  CHECK_OK(msrp_chunk_encode(c, buf, sizeof buf, &len));
  CHECK_OK(msrp_chunk_ensure_unique_transaction_id(c, &changed));
  CHECK(!changed);
  CHECK_RES(msrp_chunk_ensure_unique_transaction_id(c, NULL), MSRP_RESULT_NULL_ARGUMENT);
  msrp_chunk_free(c);
}

static void test_empty_send(void) {
  msrp_chunk *c = NULL;
  uint8_t buf[256];
  size_t len = 0;
  static const char want[] =
      "MSRP abcd SEND\r\nTo-Path: msrp://b:1/s;tcp\r\nFrom-Path: msrp://a:1/s;tcp\r\n"
      "Byte-Range: 1-0/0\r\n-------abcd$\r\n";
  CHECK_OK(msrp_chunk_new_request("SEND", &c));
  CHECK_OK(msrp_chunk_set_transaction_id(c, "abcd"));
  CHECK_OK(msrp_chunk_set_from_path(c, "msrp://a:1/s;tcp"));
  CHECK_OK(msrp_chunk_set_to_path(c, "msrp://b:1/s;tcp"));
  CHECK_OK(msrp_chunk_set_byte_range(c, 1, 0, 0));
  CHECK_OK(msrp_chunk_encode(c, buf, sizeof buf, &len));
  CHECK(len == sizeof want - 1 && memcmp(buf, want, len) == 0);
  msrp_chunk_free(c);
}

static void test_request_and_response(void) {
  msrp_chunk *c = rfc_send();
  msrp_chunk *r = NULL;
  char *s = NULL;
  uint16_t code = 0;
  CHECK(msrp_chunk_is_request(c));
  CHECK_OK(msrp_chunk_method(c, &s));
  CHECK_STR(s, "SEND");
  CHECK_RES(msrp_chunk_code(c, &code), MSRP_RESULT_WRONG_KIND);
  CHECK_RES(msrp_chunk_comment(c, &s), MSRP_RESULT_WRONG_KIND);

  CHECK_OK(msrp_chunk_make_response(c, 200, "OK", &r));
  CHECK(!msrp_chunk_is_request(r));
  CHECK_OK(msrp_chunk_code(r, &code));
  CHECK(code == 200);
  CHECK_OK(msrp_chunk_comment(r, &s));
  CHECK_STR(s, "OK");
  CHECK_OK(msrp_chunk_transaction_id(r, &s));
  CHECK_STR(s, "a786hjs2");
  CHECK_OK(msrp_chunk_header(r, "to-path", &s));
  CHECK_STR(s, FROM);
  CHECK_OK(msrp_chunk_header(r, "From-Path", &s));
  CHECK_STR(s, TO);
  CHECK_RES(msrp_chunk_method(r, &s), MSRP_RESULT_WRONG_KIND);
  msrp_chunk *rr = NULL;
  CHECK_RES(msrp_chunk_make_response(r, 200, NULL, &rr), MSRP_RESULT_WRONG_KIND);
  msrp_chunk_free(r);

  CHECK_OK(msrp_chunk_new_response("abcd", 481, NULL, &r));
  CHECK_RES(msrp_chunk_comment(r, &s), MSRP_RESULT_NOT_FOUND);
  msrp_chunk_free(r);

  r = NULL;
  CHECK_RES(msrp_chunk_new_response("abcd", 99, NULL, &r), MSRP_RESULT_INVALID_CODE);
  CHECK_RES(msrp_chunk_new_response("abcd", 1000, NULL, &r), MSRP_RESULT_INVALID_CODE);
  CHECK_RES(msrp_chunk_new_response("ab", 200, NULL, &r), MSRP_RESULT_INVALID_TRANSACTION_ID);
  CHECK_RES(msrp_chunk_new_response("abcd", 200, "a\r\nb", &r), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_chunk_new_response(NULL, 200, NULL, &r), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_new_response("abcd", 200, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_new_request("send", &r), MSRP_RESULT_INVALID_METHOD);
  CHECK_RES(msrp_chunk_new_request("", &r), MSRP_RESULT_INVALID_METHOD);
  CHECK_RES(msrp_chunk_new_request(NULL, &r), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_new_request("SEND", NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_make_response(NULL, 200, NULL, &r), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(r == NULL);

  /* Random transaction ids: 16 characters, different each time. */
  msrp_chunk *a = NULL, *b = NULL;
  char *ta = NULL, *tb = NULL;
  CHECK_OK(msrp_chunk_new_request("NICKNAME", &a));
  CHECK_OK(msrp_chunk_new_request("NICKNAME", &b));
  CHECK_OK(msrp_chunk_transaction_id(a, &ta));
  CHECK_OK(msrp_chunk_transaction_id(b, &tb));
  CHECK(strlen(ta) == 16 && strcmp(ta, tb) != 0);
  msrp_string_free(ta);
  msrp_string_free(tb);
  CHECK_RES(msrp_chunk_set_transaction_id(a, "bad id"), MSRP_RESULT_INVALID_TRANSACTION_ID);
  CHECK_RES(msrp_chunk_set_transaction_id(a, NULL), MSRP_RESULT_NULL_ARGUMENT);
  msrp_chunk_free(a);
  msrp_chunk_free(b);
  msrp_chunk_free(c);
}

static void test_typed_headers(void) {
  msrp_chunk *c = rfc_send();
  char *s = NULL;
  uint64_t start = 0, end = 0, total = 0;
  uint16_t code = 0;
  msrp_report rep = MSRP_REPORT_PARTIAL;
  uint32_t secs = 0;

  CHECK_OK(msrp_chunk_message_id(c, &s));
  CHECK_STR(s, "87652491");
  CHECK_OK(msrp_chunk_set_message_id(c, NULL)); /* a fresh random one */
  CHECK_OK(msrp_chunk_message_id(c, &s));
  CHECK(s != NULL && strlen(s) == 16);
  msrp_string_free(s);
  CHECK_RES(msrp_chunk_set_message_id(c, "x"), MSRP_RESULT_INVALID_HEADER);

  CHECK_OK(msrp_chunk_byte_range(c, &start, &end, &total));
  CHECK(start == 1 && end == 23 && total == 23);
  CHECK_OK(msrp_chunk_set_byte_range(c, 11, MSRP_BYTE_RANGE_UNKNOWN, MSRP_BYTE_RANGE_UNKNOWN));
  CHECK_OK(msrp_chunk_header(c, "Byte-Range", &s));
  CHECK_STR(s, "11-*/*");
  CHECK_OK(msrp_chunk_byte_range(c, &start, NULL, &total)); /* unwanted outs may be NULL */
  CHECK(start == 11 && total == MSRP_BYTE_RANGE_UNKNOWN);
  CHECK_RES(msrp_chunk_set_byte_range(c, 0, 1, 1), MSRP_RESULT_INVALID_HEADER);
  CHECK_LAST_ERROR_HAS("1-based");
  CHECK_RES(msrp_chunk_set_byte_range(c, 1, 9, 5), MSRP_RESULT_INVALID_HEADER);
  CHECK_RES(msrp_chunk_set_byte_range(c, 1, 2, (uint64_t)1 << 63), MSRP_RESULT_INVALID_HEADER);
  CHECK_OK(msrp_chunk_remove_header(c, "byte-range"));
  CHECK_RES(msrp_chunk_byte_range(c, &start, &end, &total), MSRP_RESULT_NOT_FOUND);

  CHECK_RES(msrp_chunk_status(c, &code, &s), MSRP_RESULT_NOT_FOUND);
  CHECK_OK(msrp_chunk_set_status(c, 413, "Too big"));
  CHECK_OK(msrp_chunk_header(c, "Status", &s));
  CHECK_STR(s, "000 413 Too big");
  s = NULL;
  CHECK_OK(msrp_chunk_status(c, &code, &s));
  CHECK(code == 413);
  CHECK_STR(s, "Too big");
  CHECK_OK(msrp_chunk_set_status(c, 200, NULL));
  CHECK_OK(msrp_chunk_status(c, &code, NULL));
  CHECK(code == 200);
  CHECK_RES(msrp_chunk_set_status(c, 20, NULL), MSRP_RESULT_INVALID_CODE);

  CHECK_OK(msrp_chunk_failure_report(c, &rep));
  CHECK(rep == MSRP_REPORT_YES); /* implied default */
  CHECK_OK(msrp_chunk_success_report(c, &rep));
  CHECK(rep == MSRP_REPORT_NO); /* implied default */
  CHECK_OK(msrp_chunk_set_failure_report(c, MSRP_REPORT_PARTIAL));
  CHECK_OK(msrp_chunk_set_success_report(c, MSRP_REPORT_YES));
  CHECK_OK(msrp_chunk_failure_report(c, &rep));
  CHECK(rep == MSRP_REPORT_PARTIAL);
  CHECK_OK(msrp_chunk_success_report(c, &rep));
  CHECK(rep == MSRP_REPORT_YES);
  CHECK_RES(msrp_chunk_set_success_report(c, MSRP_REPORT_PARTIAL), MSRP_RESULT_INVALID_HEADER);
  CHECK_RES(msrp_chunk_set_failure_report(c, 7), MSRP_RESULT_INVALID_ARGUMENT);

  CHECK_OK(msrp_chunk_content_type(c, &s));
  CHECK_STR(s, "text/plain");
  CHECK_RES(msrp_chunk_set_content_type(c, "text"), MSRP_RESULT_INVALID_HEADER);

  CHECK_RES(msrp_chunk_expires(c, MSRP_HEADER_EXPIRES, &secs), MSRP_RESULT_NOT_FOUND);
  CHECK_OK(msrp_chunk_add_header(c, "Expires", "600"));
  CHECK_OK(msrp_chunk_add_header(c, "Min-Expires", "60"));
  CHECK_OK(msrp_chunk_expires(c, MSRP_HEADER_EXPIRES, &secs));
  CHECK(secs == 600);
  CHECK_OK(msrp_chunk_expires(c, MSRP_HEADER_MIN_EXPIRES, &secs));
  CHECK(secs == 60);
  CHECK_RES(msrp_chunk_expires(c, MSRP_HEADER_TO_PATH, &secs), MSRP_RESULT_WRONG_KIND);
  CHECK_RES(msrp_chunk_expires(c, 99, &secs), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_chunk_add_header(c, "Expires", "-5"), MSRP_RESULT_INVALID_HEADER);

  CHECK_OK(msrp_chunk_add_header(c, "WWW-Authenticate",
                                 "Digest realm=\"relay.example\", nonce=\"n1\", qop=\"auth\""));
  CHECK_OK(msrp_chunk_digest_param(c, MSRP_HEADER_WWW_AUTHENTICATE, "REALM", &s));
  CHECK_STR(s, "relay.example");
  CHECK_RES(msrp_chunk_digest_param(c, MSRP_HEADER_WWW_AUTHENTICATE, "opaque", &s), MSRP_RESULT_NOT_FOUND);
  CHECK_RES(msrp_chunk_digest_param(c, MSRP_HEADER_AUTHORIZATION, "realm", &s), MSRP_RESULT_NOT_FOUND);
  CHECK_RES(msrp_chunk_digest_param(c, MSRP_HEADER_STATUS, "realm", &s), MSRP_RESULT_WRONG_KIND);
  CHECK_RES(msrp_chunk_add_header(c, "Authorization", "Digest realm"), MSRP_RESULT_INVALID_HEADER);

  CHECK_OK(msrp_chunk_set_use_path(c, TO));
  CHECK_OK(msrp_chunk_header(c, "Use-Path", &s));
  CHECK_STR(s, TO);
  CHECK_RES(msrp_chunk_set_to_path(c, "msrp://x"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_chunk_set_from_path(c, ""), MSRP_RESULT_INVALID_URI);
  CHECK(strcmp(msrp_header_name(MSRP_HEADER_MESSAGE_ID), "Message-ID") == 0);
  CHECK(strcmp(msrp_header_name(MSRP_HEADER_CONTENT_DISPOSITION), "Content-Disposition") == 0);
  CHECK(msrp_header_name(18) == NULL);
  msrp_chunk_free(c);
}

static void test_raw_headers(void) {
  msrp_chunk *c = rfc_send();
  char *name = NULL, *value = NULL, *s = NULL;
  size_t n = msrp_chunk_header_count(c);
  CHECK(n == 5);
  CHECK_OK(msrp_chunk_add_header(c, "X-Custom", "one"));
  CHECK_OK(msrp_chunk_add_header(c, "x-custom", "two")); /* replaced, any case */
  CHECK(msrp_chunk_header_count(c) == 6);
  CHECK_OK(msrp_chunk_header(c, "X-CUSTOM", &s));
  CHECK_STR(s, "two");
  CHECK_OK(msrp_chunk_header_at(c, 5, &name, &value));
  CHECK_STR(name, "X-Custom");
  CHECK_STR(value, "two");
  CHECK_OK(msrp_chunk_header_at(c, 0, &name, &value));
  CHECK_STR(name, "Content-Type"); /* stored order is insertion order */
  CHECK_STR(value, "text/plain");
  name = value = NULL;
  CHECK_RES(msrp_chunk_header_at(c, 6, &name, &value), MSRP_RESULT_NOT_FOUND);
  CHECK(name == NULL && value == NULL);
  CHECK_RES(msrp_chunk_add_header(c, "Bad Name", "v"), MSRP_RESULT_INVALID_HEADER);
  CHECK_RES(msrp_chunk_add_header(c, "X-Inject", "v\r\nTo-Path: evil"), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_chunk_add_header(c, "X-A", NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_add_header(c, NULL, "v"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_add_header(c, "X-A", "\xff"), MSRP_RESULT_INVALID_UTF8);
  CHECK_OK(msrp_chunk_remove_header(c, "X-CUSTOM"));
  CHECK_RES(msrp_chunk_remove_header(c, "X-Custom"), MSRP_RESULT_NOT_FOUND);
  CHECK_RES(msrp_chunk_header(c, "X-Custom", &s), MSRP_RESULT_NOT_FOUND);
  CHECK(msrp_chunk_header_count(NULL) == 0);

  CHECK_OK(msrp_chunk_verify_headers(c));
  CHECK_OK(msrp_chunk_remove_header(c, "To-Path"));
  CHECK_RES(msrp_chunk_verify_headers(c), MSRP_RESULT_MISSING_HEADER);
  CHECK_LAST_ERROR_HAS("To-Path");
  CHECK_RES(msrp_chunk_verify_headers(NULL), MSRP_RESULT_NULL_ARGUMENT);
  msrp_chunk_free(c);
}

static void test_body_flag_copy(void) {
  msrp_chunk *c = rfc_send();
  msrp_chunk *d = NULL;
  const uint8_t *data = NULL;
  size_t len = 0;
  CHECK(msrp_chunk_size(c) == 23);
  CHECK_OK(msrp_chunk_append_data(c, (const uint8_t *)"!!", 2));
  CHECK_OK(msrp_chunk_data(c, &data, &len));
  CHECK(len == 25 && memcmp(data, "Hey Bob, are you there?!!", 25) == 0);
  CHECK_OK(msrp_chunk_append_data(c, NULL, 0));
  CHECK_RES(msrp_chunk_append_data(c, NULL, 1), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_data(c, NULL, 3), MSRP_RESULT_NULL_ARGUMENT);

  CHECK(msrp_chunk_flag(c) == MSRP_FLAG_END);
  CHECK_OK(msrp_chunk_set_flag(c, MSRP_FLAG_ABORT));
  CHECK(msrp_chunk_flag(c) == '#');
  CHECK_RES(msrp_chunk_set_flag(c, 'x'), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK(msrp_chunk_flag(c) == '#');
  CHECK(msrp_chunk_flag(NULL) == 0);

  CHECK_OK(msrp_chunk_copy(c, &d));
  CHECK_OK(msrp_chunk_set_data(c, NULL, 0));
  CHECK_OK(msrp_chunk_data(c, &data, &len));
  CHECK(len == 0 && data == NULL);
  CHECK(msrp_chunk_size(d) == 25); /* the copy is independent */
  CHECK(msrp_chunk_flag(d) == '#');
  CHECK_RES(msrp_chunk_copy(NULL, &d), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_data(NULL, &data, &len), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_data(c, NULL, &len), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(msrp_chunk_size(NULL) == 0);
  msrp_chunk_free(d);
  msrp_chunk_free(c);
  msrp_chunk_free(NULL);
}

static void test_null_handles(void) {
  char *s = NULL;
  uint16_t code = 0;
  uint32_t secs = 0;
  msrp_report rep = MSRP_REPORT_NO;
  CHECK_RES(msrp_chunk_transaction_id(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_method(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_code(NULL, &code), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_comment(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_header(NULL, "To-Path", &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_header_at(NULL, 0, &s, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_to_path(NULL, TO), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_from_path(NULL, TO), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_use_path(NULL, TO), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_message_id(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_message_id(NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_byte_range(NULL, NULL, NULL, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_byte_range(NULL, 1, 1, 1), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_status(NULL, &code, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_status(NULL, 200, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_failure_report(NULL, &rep), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_success_report(NULL, &rep), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_failure_report(NULL, 1), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_success_report(NULL, 1), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_content_type(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_content_type(NULL, "a/b"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_expires(NULL, MSRP_HEADER_EXPIRES, &secs), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_digest_param(NULL, MSRP_HEADER_AUTHORIZATION, "a", &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_data(NULL, NULL, 0), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_append_data(NULL, NULL, 0), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_flag(NULL, '$'), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_set_transaction_id(NULL, "abcd"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_add_header(NULL, "a", "b"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_chunk_remove_header(NULL, "a"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(!msrp_chunk_is_request(NULL));
}

int main(void) {
  test_encode_forms();
  test_empty_send();
  test_request_and_response();
  test_typed_headers();
  test_raw_headers();
  test_body_flag_copy();
  test_null_handles();
  return check_summary("test_chunk");
}
