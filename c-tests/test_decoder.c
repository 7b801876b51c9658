/* msrp_decoder_*: a multi-chunk stream decoded whole and one byte at a time
 * gives the same chunks; header errors are reported without losing sync;
 * fatal errors are distinct and sticky; limits; NULL arguments. */
#include "check.h"

static const char STREAM[] =
    "MSRP a786hjs2 SEND\r\n"
    "To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
    "From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
    "Message-ID: 87652491\r\n"
    "Byte-Range: 1-*/*\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "body with -------a786hjs2 and\r\n-------a786hjs2X\r\n inside\r\n"
    "-------a786hjs2+\r\n"
    "MSRP a786hjs2 200 OK\r\n"
    "To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
    "From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
    "-------a786hjs2$\r\n"
    "MSRP efgh1234 SEND\r\n"
    "To-Path: msrp://b:1/s;tcp\r\n"
    "From-Path: msrp://a:1/s;tcp\r\n"
    "Byte-Range: 1-0/0\r\n"
    "-------efgh1234$\r\n";

static const char BODY0[] = "body with -------a786hjs2 and\r\n-------a786hjs2X\r\n inside";

typedef struct {
  int heads, ends;
  char tids[3][40];
  uint8_t flags[3];
  char body[3][128];
  size_t body_len[3];
  uint16_t code1;
} summary;

/* Feeds `stream` in pieces of `step` bytes and records what came out. */
static void decode(const char *stream, size_t len, size_t step, summary *out) {
  msrp_decoder *d = NULL;
  memset(out, 0, sizeof *out);
  CHECK_OK(msrp_decoder_new(&d));
  CHECK(msrp_decoder_is_idle(d));
  for (size_t off = 0; off < len; off += step) {
    const uint8_t *piece = (const uint8_t *)stream + off;
    size_t n = len - off < step ? len - off : step;
    size_t pos = 0;
    while (pos < n) {
      size_t used = 0;
      msrp_decoder_event ev;
      msrp_result r = msrp_decoder_decode(d, piece + pos, n - pos, &used, &ev);
      CHECK_OK(r);
      if (r != MSRP_RESULT_OK) {
        msrp_decoder_free(d);
        return;
      }
      CHECK(used > 0 || ev.kind != MSRP_DECODER_EVENT_KIND_NONE);
      pos += used;
      int i = out->heads - 1;
      switch (ev.kind) {
        case MSRP_DECODER_EVENT_KIND_HEAD: {
          char *tid = NULL;
          CHECK(out->heads < 3);
          CHECK(ev.header_error == MSRP_RESULT_OK);
          CHECK_OK(msrp_chunk_transaction_id(ev.chunk, &tid));
          snprintf(out->tids[out->heads], sizeof out->tids[0], "%s", tid ? tid : "");
          msrp_string_free(tid);
          if (out->heads == 1) CHECK_OK(msrp_chunk_code(ev.chunk, &out->code1));
          msrp_chunk_free(ev.chunk);
          out->heads++;
          break;
        }
        case MSRP_DECODER_EVENT_KIND_DATA:
          CHECK(i >= 0 && out->body_len[i] + ev.data_len <= sizeof out->body[0]);
          if (i >= 0 && out->body_len[i] + ev.data_len <= sizeof out->body[0]) {
            memcpy(out->body[i] + out->body_len[i], ev.data, ev.data_len);
            out->body_len[i] += ev.data_len;
          }
          break;
        case MSRP_DECODER_EVENT_KIND_END:
          CHECK(i >= 0 && out->ends == i);
          if (i >= 0) out->flags[i] = ev.flag;
          out->ends++;
          break;
        default:
          break;
      }
    }
  }
  CHECK(msrp_decoder_is_idle(d));
  msrp_decoder_free(d);
}

static void test_stream_any_segmentation(void) {
  summary whole, bytewise, sevens;
  size_t len = sizeof STREAM - 1;
  decode(STREAM, len, len, &whole);
  decode(STREAM, len, 1, &bytewise);
  decode(STREAM, len, 7, &sevens);
  CHECK(whole.heads == 3 && whole.ends == 3);
  CHECK(strcmp(whole.tids[0], "a786hjs2") == 0 && strcmp(whole.tids[2], "efgh1234") == 0);
  CHECK(whole.flags[0] == '+' && whole.flags[1] == '$' && whole.flags[2] == '$');
  CHECK(whole.code1 == 200);
  CHECK(whole.body_len[0] == sizeof BODY0 - 1 && memcmp(whole.body[0], BODY0, whole.body_len[0]) == 0);
  CHECK(whole.body_len[1] == 0 && whole.body_len[2] == 0);
  CHECK(memcmp(&whole, &bytewise, sizeof whole) == 0);
  CHECK(memcmp(&whole, &sevens, sizeof whole) == 0);
}

static void test_header_error_keeps_sync(void) {
  static const char s[] =
      "MSRP abcd SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n"
      "Byte-Range: 0-1/1\r\nContent-Type: text/plain\r\n\r\nx\r\n-------abcd$\r\n"
      "MSRP efgh 200 OK\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n-------efgh$\r\n";
  msrp_decoder *d = NULL;
  msrp_decoder_event ev;
  size_t used = 0, pos = 0, len = sizeof s - 1;
  int heads = 0, bad = 0, ends = 0;
  CHECK_OK(msrp_decoder_new(&d));
  while (pos < len) {
    CHECK_OK(msrp_decoder_decode(d, (const uint8_t *)s + pos, len - pos, &used, &ev));
    pos += used;
    if (ev.kind == MSRP_DECODER_EVENT_KIND_HEAD) {
      heads++;
      if (ev.header_error == MSRP_RESULT_INVALID_HEADER) {
        bad++;
        CHECK_LAST_ERROR_HAS("Byte-Range");
      }
      msrp_chunk_free(ev.chunk);
    } else if (ev.kind == MSRP_DECODER_EVENT_KIND_END) {
      ends++;
    }
  }
  CHECK(heads == 2 && bad == 1 && ends == 2);
  msrp_decoder_free(d);
}

static void test_fatal_errors_and_limits(void) {
  msrp_decoder *d = NULL;
  msrp_decoder_event ev;
  size_t used = 99;
  CHECK_OK(msrp_decoder_new(&d));
  CHECK_RES(msrp_decoder_decode(d, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, &used, &ev),
            MSRP_RESULT_DECODE_BAD_START_LINE);
  CHECK(used == 99); /* not written on failure */
  CHECK(!msrp_decoder_is_idle(d));
  CHECK_RES(msrp_decoder_decode(d, (const uint8_t *)"MSRP abcd SEND\r\n", 16, &used, &ev),
            MSRP_RESULT_DECODE_FAILED);
  msrp_decoder_free(d);

  CHECK_OK(msrp_decoder_new(&d));
  CHECK_RES(msrp_decoder_set_limits(d, 10, 0, 0), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_decoder_set_limits(d, 0, 1, 0), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_decoder_set_limits(d, 0, 0, 100), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_OK(msrp_decoder_set_limits(d, 64, 2, 0));
  static const char many[] = "MSRP abcd SEND\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
  CHECK_RES(msrp_decoder_decode(d, (const uint8_t *)many, sizeof many - 1, &used, &ev),
            MSRP_RESULT_DECODE_TOO_MANY_HEADERS);
  msrp_decoder_free(d);

  CHECK_OK(msrp_decoder_new(&d));
  CHECK_OK(msrp_decoder_set_limits(d, 64, 0, 0));
  char longline[200];
  memset(longline, 'a', sizeof longline);
  memcpy(longline, "MSRP abcd SEND\r\nX-Long: ", 24);
  CHECK_RES(msrp_decoder_decode(d, (const uint8_t *)longline, sizeof longline, &used, &ev),
            MSRP_RESULT_DECODE_LINE_TOO_LONG);
  msrp_decoder_free(d);

  CHECK_OK(msrp_decoder_new(&d));
  CHECK_RES(msrp_decoder_decode(d, (const uint8_t *)"MSRP abcd SEND\n", 15, &used, &ev),
            MSRP_RESULT_DECODE_BARE_LINE_FEED);
  msrp_decoder_free(d);

  CHECK_OK(msrp_decoder_new(&d));
  static const char badend[] = "MSRP abcd SEND\r\nTo-Path: msrp://a:1/s;tcp\r\n-------abce$\r\n";
  size_t pos = 0;
  msrp_result r = MSRP_RESULT_OK;
  while (r == MSRP_RESULT_OK && pos < sizeof badend - 1) {
    r = msrp_decoder_decode(d, (const uint8_t *)badend + pos, sizeof badend - 1 - pos, &used, &ev);
    if (r == MSRP_RESULT_OK) pos += used;
  }
  CHECK(r == MSRP_RESULT_DECODE_BAD_END_LINE);
  msrp_decoder_free(d);
}

static void test_null_arguments(void) {
  msrp_decoder *d = NULL;
  msrp_decoder_event ev;
  size_t used = 0;
  CHECK_RES(msrp_decoder_new(NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_OK(msrp_decoder_new(&d));
  CHECK_RES(msrp_decoder_decode(NULL, (const uint8_t *)"x", 1, &used, &ev), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_decoder_decode(d, NULL, 1, &used, &ev), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_decoder_decode(d, (const uint8_t *)"x", 1, NULL, &ev), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_decoder_decode(d, (const uint8_t *)"x", 1, &used, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_OK(msrp_decoder_decode(d, NULL, 0, &used, &ev));
  CHECK(used == 0 && ev.kind == MSRP_DECODER_EVENT_KIND_NONE);
  CHECK_RES(msrp_decoder_set_limits(NULL, 0, 0, 0), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(!msrp_decoder_is_idle(NULL));
  msrp_decoder_free(d);
  msrp_decoder_free(NULL);
}

int main(void) {
  test_stream_any_segmentation();
  test_header_error_keeps_sync();
  test_fatal_errors_and_limits();
  test_null_arguments();
  return check_summary("test_decoder");
}
