// The header compiles alone as C++17 and its functions link with C linkage.
#include "msrp.h"

#include <cstring>
#include <memory>

int main() {
  msrp_uri *raw = nullptr;
  if (msrp_uri_parse("msrp://[::1]:2855/s;tcp", &raw) != MSRP_RESULT_OK) return 1;
  std::unique_ptr<msrp_uri, decltype(&msrp_uri_free)> uri(raw, &msrp_uri_free);
  char *text = nullptr;
  if (msrp_uri_format(uri.get(), &text) != MSRP_RESULT_OK) return 1;
  const bool same = std::strcmp(text, "msrp://[::1]:2855/s;tcp") == 0;
  msrp_string_free(text);
  msrp_decoder_event ev{};
  ev.kind = MSRP_DECODER_EVENT_KIND_NONE;
  return same && ev.kind == MSRP_DECODER_EVENT_KIND_NONE ? 0 : 1;
}
