/* The header compiles alone (nothing included before it) with
 * -Wall -Wextra -Wpedantic -Werror, and the library links. */
#include "msrp.h"

int main(void) {
  msrp_result r = MSRP_RESULT_OK;
  const char *v = msrp_version();
  return (r == MSRP_RESULT_OK && v != 0 && MSRP_VERSION_MAJOR >= 0) ? 0 : 1;
}
