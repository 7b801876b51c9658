/* libmsrp demo (wire core): parse the peer's path, build a SEND chunk,
 * encode it, decode it again byte by byte and print what arrived.
 * Uses only the public header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msrp.h"

#define TRY(expr)                                                                          \
  do {                                                                                     \
    msrp_result r_ = (expr);                                                               \
    if (r_ != MSRP_RESULT_OK) {                                                            \
      fprintf(stderr, "%s failed: %s (%s)\n", #expr, msrp_result_str(r_), msrp_last_error_message()); \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

int main(void) {
  const char *remote_path = "msrp://127.0.0.1:2855/bob-session;tcp";
  const char *local_path = "msrp://127.0.0.1:9999/alice-session;tcp";
  const char *text = "Hello from libmsrp";
  printf("libmsrp %s\n", msrp_version());

  msrp_uri *peer = NULL;
  TRY(msrp_path_get(remote_path, 0, &peer));
  char *session = NULL;
  TRY(msrp_uri_session_id(peer, &session));
  printf("peer session id: %s\n", session);
  msrp_string_free(session);
  msrp_uri_free(peer);

  msrp_chunk *send = NULL;
  TRY(msrp_chunk_new_request("SEND", &send));
  TRY(msrp_chunk_set_to_path(send, remote_path));
  TRY(msrp_chunk_set_from_path(send, local_path));
  TRY(msrp_chunk_set_message_id(send, NULL));
  TRY(msrp_chunk_set_byte_range(send, 1, strlen(text), strlen(text)));
  TRY(msrp_chunk_set_content_type(send, "text/plain"));
  TRY(msrp_chunk_set_data(send, (const uint8_t *)text, strlen(text)));

  size_t len = 0;
  msrp_result r = msrp_chunk_encode(send, NULL, 0, &len); /* ask for the size */
  if (r != MSRP_RESULT_BUFFER_TOO_SMALL) TRY(r);
  uint8_t *wire = malloc(len);
  if (wire == NULL) return 1;
  TRY(msrp_chunk_encode(send, wire, len, &len));
  printf("--- on the wire (%zu bytes) ---\n%.*s--- end ---\n", len, (int)len, (const char *)wire);

  msrp_decoder *dec = NULL;
  TRY(msrp_decoder_new(&dec));
  size_t events = 0, body = 0;
  for (size_t i = 0; i < len; i++) { /* one byte at a time, the worst segmentation */
    size_t pos = 0;
    while (pos < 1) {
      size_t used = 0;
      msrp_decoder_event ev;
      TRY(msrp_decoder_decode(dec, wire + i + pos, 1 - pos, &used, &ev));
      pos += used;
      if (ev.kind == MSRP_DECODER_EVENT_KIND_HEAD) {
        char *ct = NULL;
        TRY(msrp_chunk_content_type(ev.chunk, &ct));
        printf("decoded a chunk head, Content-Type %s\n", ct);
        msrp_string_free(ct);
        msrp_chunk_free(ev.chunk);
        events++;
      } else if (ev.kind == MSRP_DECODER_EVENT_KIND_DATA) {
        body += ev.data_len;
      } else if (ev.kind == MSRP_DECODER_EVENT_KIND_END) {
        printf("decoded the end-line, flag '%c', %zu body bytes\n", ev.flag, body);
        events++;
      }
    }
  }
  msrp_decoder_free(dec);
  free(wire);
  msrp_chunk_free(send);
  if (events != 2 || body != strlen(text)) {
    fprintf(stderr, "demo: round trip failed\n");
    return 1;
  }
  printf("demo: round trip OK\n");
  return 0;
}
