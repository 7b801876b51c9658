/* msrp_uri_* and msrp_path_*: parsing, formatting, accessors, setters,
 * RFC 4975 §6.1 equality, and every NULL / invalid argument. */
#include "check.h"

static msrp_uri *parse(const char *s) {
  msrp_uri *u = NULL;
  CHECK_OK(msrp_uri_parse(s, &u));
  return u;
}

static void test_parse_and_accessors(void) {
  msrp_uri *u = parse("MSRPS://alice@Example.COM:2855/sess-1;tcp;foo=bar;flag");
  char *s = NULL;
  uint16_t port = 0;
  CHECK(msrp_uri_use_tls(u));
  CHECK_OK(msrp_uri_format(u, &s));
  CHECK_STR(s, "msrps://alice@Example.COM:2855/sess-1;tcp;foo=bar;flag");
  CHECK_OK(msrp_uri_host(u, &s));
  CHECK_STR(s, "Example.COM");
  CHECK_OK(msrp_uri_port(u, &port));
  CHECK(port == 2855);
  CHECK_OK(msrp_uri_user(u, &s));
  CHECK_STR(s, "alice");
  CHECK_OK(msrp_uri_session_id(u, &s));
  CHECK_STR(s, "sess-1");
  CHECK_OK(msrp_uri_transport(u, &s));
  CHECK_STR(s, "tcp");
  CHECK_OK(msrp_uri_param(u, "FOO", &s));
  CHECK_STR(s, "bar");
  s = (char *)"untouched";
  CHECK_OK(msrp_uri_param(u, "flag", &s));
  CHECK(s == NULL);
  s = (char *)"untouched";
  CHECK_RES(msrp_uri_param(u, "nope", &s), MSRP_RESULT_NOT_FOUND);
  CHECK(strcmp(s, "untouched") == 0); /* out-params are written only on success */
  msrp_uri_free(u);

  u = parse("msrp://[::1]:0;tcp");
  CHECK(!msrp_uri_use_tls(u));
  CHECK_OK(msrp_uri_host(u, &s));
  CHECK_STR(s, "::1");
  CHECK_OK(msrp_uri_port(u, &port));
  CHECK(port == 0);
  CHECK_RES(msrp_uri_session_id(u, &s), MSRP_RESULT_NOT_FOUND);
  CHECK_RES(msrp_uri_user(u, &s), MSRP_RESULT_NOT_FOUND);
  msrp_uri_free(u);
}

static void test_parse_errors(void) {
  msrp_uri *u = NULL;
  CHECK_RES(msrp_uri_parse("msrp://h:1/s", &u), MSRP_RESULT_INVALID_URI);
  CHECK_LAST_ERROR_HAS("at byte 12");
  CHECK_LAST_ERROR_HAS("transport");
  CHECK(u == NULL);
  CHECK_RES(msrp_uri_parse("http://h;tcp", &u), MSRP_RESULT_INVALID_URI);
  CHECK_LAST_ERROR_HAS("scheme");
  CHECK_RES(msrp_uri_parse("msrp://h:70000/s;tcp", &u), MSRP_RESULT_INVALID_URI);
  CHECK_LAST_ERROR_HAS("port");
  CHECK_RES(msrp_uri_parse("", &u), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_parse("msrp://h\xff:1/s;tcp", &u), MSRP_RESULT_INVALID_UTF8);
  CHECK_RES(msrp_uri_parse(NULL, &u), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_LAST_ERROR_HAS("'text'");
  CHECK_RES(msrp_uri_parse("msrp://h;tcp", NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(u == NULL);
}

static void test_new_and_setters(void) {
  msrp_uri *u = NULL;
  char *s = NULL;
  uint16_t port = 7;
  CHECK_OK(msrp_uri_new("::1", false, &u));
  CHECK_OK(msrp_uri_format(u, &s));
  CHECK_STR(s, "msrp://[::1];tcp");
  CHECK_OK(msrp_uri_set_port(u, 2855));
  CHECK_OK(msrp_uri_set_session_id(u, "abc"));
  CHECK_OK(msrp_uri_set_user(u, "bob"));
  CHECK_OK(msrp_uri_set_use_tls(u, true));
  CHECK_OK(msrp_uri_set_param(u, "k", "v"));
  CHECK_OK(msrp_uri_set_param(u, "K", "w")); /* same name, any case: replaced */
  CHECK_OK(msrp_uri_set_param(u, "bare", NULL));
  CHECK_OK(msrp_uri_format(u, &s));
  CHECK_STR(s, "msrps://bob@[::1]:2855/abc;tcp;K=w;bare");
  CHECK_OK(msrp_uri_remove_param(u, "k"));
  CHECK_RES(msrp_uri_remove_param(u, "k"), MSRP_RESULT_NOT_FOUND);
  CHECK_OK(msrp_uri_set_host(u, "relay.example"));
  CHECK_OK(msrp_uri_set_transport(u, "ws"));
  CHECK_OK(msrp_uri_set_user(u, NULL));
  CHECK_OK(msrp_uri_set_session_id(u, NULL));
  CHECK_OK(msrp_uri_set_port(u, -1));
  CHECK_RES(msrp_uri_port(u, &port), MSRP_RESULT_NOT_FOUND);
  CHECK(port == 7);
  CHECK_OK(msrp_uri_format(u, &s));
  CHECK_STR(s, "msrps://relay.example;ws;bare");

  /* Invalid values leave the URI unchanged. */
  CHECK_RES(msrp_uri_set_port(u, 65536), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_uri_set_port(u, -2), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_uri_set_session_id(u, "a;b"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_session_id(u, ""), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_user(u, "a@b"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_host(u, "a b"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_host(u, "h:1"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_transport(u, "t c"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_transport(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_param(u, "a=b", "c"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_param(u, "a", "c d"), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_set_param(u, NULL, "c"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_OK(msrp_uri_format(u, &s));
  CHECK_STR(s, "msrps://relay.example;ws;bare");

  msrp_uri *c = NULL;
  CHECK_OK(msrp_uri_clone(u, &c));
  CHECK_OK(msrp_uri_set_host(c, "other.example"));
  CHECK_OK(msrp_uri_host(u, &s));
  CHECK_STR(s, "relay.example"); /* the clone is independent */
  msrp_uri_free(c);
  msrp_uri_free(u);

  u = NULL;
  CHECK_RES(msrp_uri_new("", false, &u), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_new("u@h", false, &u), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_uri_new(NULL, false, &u), MSRP_RESULT_NULL_ARGUMENT);
  CHECK(u == NULL);
  CHECK_OK(msrp_uri_new("10.1.2.3", true, &u));
  CHECK_OK(msrp_uri_format(u, &s));
  CHECK_STR(s, "msrps://10.1.2.3;tcp");
  msrp_uri_free(u);
}

static void test_equality(void) {
  msrp_uri *a = parse("msrp://alice@EXAMPLE.com:2855/sess;tcp");
  msrp_uri *b = parse("MSRP://bob@example.COM:2855/sess;TCP;x=y");
  msrp_uri *c = parse("msrp://example.com:2855/SESS;tcp");
  msrp_uri *d = parse("msrp://example.com/sess;tcp");
  msrp_uri *e = parse("msrp://[::1]:1/s;tcp");
  msrp_uri *f = parse("msrp://[0:0:0:0:0:0:0:1]:1/s;tcp");
  CHECK(msrp_uri_equal(a, b));
  CHECK(msrp_uri_equal(b, a));
  CHECK(!msrp_uri_equal(a, c)); /* session id is case-sensitive */
  CHECK(!msrp_uri_equal(a, d)); /* explicit port vs none */
  CHECK(msrp_uri_equal(e, f));
  CHECK(!msrp_uri_equal(a, NULL));
  CHECK(!msrp_uri_equal(NULL, NULL));
  msrp_uri_free(a);
  msrp_uri_free(b);
  msrp_uri_free(c);
  msrp_uri_free(d);
  msrp_uri_free(e);
  msrp_uri_free(f);
}

static void test_paths(void) {
  const char *path = "msrp://relay.example:2855/r1;tcp msrp://127.0.0.1:9000/b;tcp";
  size_t n = 0;
  msrp_uri *u = NULL;
  char *s = NULL;
  CHECK_OK(msrp_path_count(path, &n));
  CHECK(n == 2);
  CHECK_OK(msrp_path_get(path, 1, &u));
  CHECK_OK(msrp_uri_session_id(u, &s));
  CHECK_STR(s, "b");
  msrp_uri *v = NULL;
  CHECK_RES(msrp_path_get(path, 2, &v), MSRP_RESULT_NOT_FOUND);
  CHECK(v == NULL);
  CHECK_OK(msrp_path_get(path, 0, &v));
  const msrp_uri *both[2] = {v, u};
  CHECK_OK(msrp_path_join(both, 2, &s));
  CHECK_STR(s, path);
  const msrp_uri *with_null[2] = {v, NULL};
  CHECK_RES(msrp_path_join(with_null, 2, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_LAST_ERROR_HAS("uris[1]");
  CHECK_RES(msrp_path_join(both, 0, &s), MSRP_RESULT_INVALID_ARGUMENT);
  CHECK_RES(msrp_path_join(NULL, 1, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_path_count("msrp://a:1/x;tcp msrp://b", &n), MSRP_RESULT_INVALID_URI);
  CHECK_LAST_ERROR_HAS("at byte 25");
  CHECK_RES(msrp_path_count("   ", &n), MSRP_RESULT_INVALID_URI);
  CHECK_RES(msrp_path_count(NULL, &n), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_path_count(path, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_path_get(path, 0, NULL), MSRP_RESULT_NULL_ARGUMENT);
  msrp_uri_free(u);
  msrp_uri_free(v);
}

static void test_null_handles(void) {
  char *s = NULL;
  uint16_t p = 0;
  msrp_uri *out = NULL;
  msrp_uri *u = parse("msrp://h:1/s;tcp");
  CHECK_RES(msrp_uri_format(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_format(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_clone(NULL, &out), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_clone(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_host(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_host(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_port(NULL, &p), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_port(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_user(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_session_id(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_transport(NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_param(NULL, "a", &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_param(u, NULL, &s), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_param(u, "a", NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_use_tls(NULL, true), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_host(NULL, "h"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_host(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_port(NULL, 1), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_user(NULL, "u"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_session_id(NULL, "s"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_transport(NULL, "tcp"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_param(NULL, "a", "b"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_remove_param(NULL, "a"), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_remove_param(u, NULL), MSRP_RESULT_NULL_ARGUMENT);
  CHECK_RES(msrp_uri_set_host(u, "h\xc3"), MSRP_RESULT_INVALID_UTF8);
  CHECK(!msrp_uri_use_tls(NULL));
  msrp_uri_free(NULL);
  msrp_uri_free(u);
}

int main(void) {
  test_parse_and_accessors();
  test_parse_errors();
  test_new_and_setters();
  test_equality();
  test_paths();
  test_null_handles();
  return check_summary("test_uri");
}
