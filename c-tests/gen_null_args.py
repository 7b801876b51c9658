#!/usr/bin/env python3
"""Generates a C test that calls every function declared in msrp.h with NULL
in each of its pointer arguments in turn (the other arguments valid), so that
a new function is covered without anyone having to remember it.

Every call must return (no crash) and never MSRP_RESULT_PANIC. For a required
pointer the result must be MSRP_RESULT_NULL_ARGUMENT; the pointers that the
API documents as optional are listed in OPTIONAL below, and a new optional
pointer must be added there (the test then says which one it found).

Usage: gen_null_args.py include/msrp.h output.c
"""
import re
import sys

# (function, parameter) pairs where NULL is documented as allowed.
OPTIONAL = {
    ("msrp_context_shared_connections", "connections"),
    ("msrp_context_shared_connections", "sessions"),
    ("msrp_uri_set_user", "user"),
    ("msrp_uri_set_session_id", "session_id"),
    ("msrp_uri_set_param", "value"),
    ("msrp_chunk_new_response", "comment"),
    ("msrp_chunk_make_response", "comment"),
    ("msrp_chunk_set_message_id", "message_id"),
    ("msrp_chunk_byte_range", "start"),
    ("msrp_chunk_byte_range", "end"),
    ("msrp_chunk_byte_range", "total"),
    ("msrp_chunk_status", "comment"),
    ("msrp_chunk_set_status", "comment"),
    ("msrp_chunk_encode", "buf"),
    ("msrp_chunk_encode_start", "buf"),
    ("msrp_chunk_encode_end", "buf"),
    ("msrp_context_new", "options"),
    ("msrp_context_dispatch", "ran"),
    ("msrp_logger_set_default", "logger"),
    ("msrp_logger_new", "userdata_free"),
    ("msrp_connector_new", "logger"),
    ("msrp_connector_prepare", "local_uri"),
    ("msrp_connector_set_connect_address", "host"),
    ("msrp_negotiation_apply", "c"),
    ("msrp_negotiation_apply", "options"),
    ("msrp_server_new", "logger"),
    ("msrp_server_prepare", "local_uri"),
    ("msrp_transport_make_chunk", "params"),
    ("msrp_transport_write_response", "comment"),
    ("msrp_transport_read_chunk", "segment"),
    ("msrp_session_new", "options"),
    ("msrp_session_new", "callbacks"),
    ("msrp_session_new", "userdata_free"),
    ("msrp_session_make_chunk", "params"),
    ("msrp_session_send_chunk", "cb"),
    ("msrp_session_deliver_chunk", "code"),
    ("msrp_session_send_message", "options"),
    ("msrp_session_send_message", "callbacks"),
    ("msrp_session_send_message", "message"),
    ("msrp_session_send_message_nocopy", "release"),
    ("msrp_session_send_message_nocopy", "options"),
    ("msrp_session_send_message_nocopy", "callbacks"),
    ("msrp_session_send_message_nocopy", "message"),
    ("msrp_session_send_file", "options"),
    ("msrp_session_send_file", "callbacks"),
    ("msrp_session_send_file", "message"),
    ("msrp_tls_generate_self_signed", "name"),
    ("msrp_connector_new_relay", "logger"),
    ("msrp_session_send_report", "comment"),
    ("msrp_session_send_report", "sent"),
    ("msrp_connector_prepare_async", "local_uri"),
    ("msrp_tls_fingerprint", "hash"),
    ("msrp_connector_set_peer_fingerprint", "fingerprint"),
    ("msrp_server_set_peer_fingerprint", "fingerprint"),
    ("msrp_cpim_add_address", "display_name"),
    ("msrp_cpim_address", "display_name"),
    ("msrp_cpim_header", "ns"),
    ("msrp_cpim_encode", "buf"),
    ("msrp_session_send_cpim", "options"),
    ("msrp_session_send_cpim", "callbacks"),
    ("msrp_session_send_cpim", "message"),
    ("msrp_session_composing", "content_type"),
    ("msrp_session_nickname", "cb"),
    ("msrp_session_answer_nickname", "comment"),
}

# Functions that take over (free) a handle argument, by parameter name.
CONSUMES = {("msrp_session_new", "transport")}

STRINGS = {
    "text": "msrp://127.0.0.1:9/x;tcp", "local_uri": "msrp://127.0.0.1:0;tcp",
    "full_remote_path": "msrp://127.0.0.1:9/x;tcp", "path": "msrp://127.0.0.1:9/x;tcp",
    "host": "127.0.0.1", "method": "SEND", "transaction_id": "abcd1234", "comment": "OK",
    "name": "X-Test", "value": "v", "user": "u", "session_id": "s1", "transport": "tcp",
    "param": "realm", "content_type": "text/plain", "message_id": "abcd1234",
    "hash": "sha-256", "status": "delivered", "display_name": "A", "uri": "sip:a@b", "ns": "urn:x",
    "sdp": "v=0\\r\\ns=-\\r\\nt=0 0\\r\\nm=message 9 TCP/MSRP *\\r\\na=path:msrp://127.0.0.1:9/x;tcp\\r\\n",
    "fingerprint": "sha-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33",
}
SCALARS = {
    "code": "200", "port": "9", "flag": "'$'", "kind": "0", "which": "7", "report": "1",
    "timeout_ms": "1", "result": "0", "header": "0", "index": "0", "count": "1", "max": "0",
    "size": "SIZE_MAX", "len": "4", "data_len": "4", "cap": "256", "start": "1", "end": "1",
    "total": "4", "message": "1", "chain_len": "4", "key_len": "4",
}
HANDLES = ["uri", "chunk", "decoder", "logger", "connector", "server", "transport", "session", "tls",
           "context", "sdp_media", "negotiation", "cpim"]
STRUCT_VALUES = {
    "msrp_chunk_params": "{0}", "msrp_context_options": "{0}", "msrp_logger_callbacks": "{0}",
    "msrp_session_callbacks": "{0}", "msrp_message_callbacks": "{0}",
}


def prototypes(header):
    text = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    for ret, name, args in re.findall(r"\n([A-Za-z_][\w \*]*?)\b(msrp_\w+)\s*\(([^;{]*?)\)\s*;", text, flags=re.S):
        params = []
        for a in args.split(","):
            a = " ".join(a.split())
            if not a or a == "void":
                continue
            m = re.match(r"(.*?)(\w+)$", a)
            params.append((m.group(1).strip(), m.group(2)))
        yield " ".join(ret.split()), name, params


def is_pointer(ctype):
    return "*" in ctype or ctype.endswith("_cb") or ctype.endswith("_fn")


class Call:
    def __init__(self, fn, params, nulled):
        self.fn, self.params, self.nulled = fn, params, nulled
        self.decls, self.frees, self.args = [], [], []

    def arg(self, i, ctype, pname):
        v = f"a{i}"
        if i == self.nulled:
            self.args.append("NULL")
            return
        base = ctype.replace("const ", "").replace("struct ", "").strip()
        if "*const *" in ctype:
            base = base.replace("**", "*const *")
        if ctype.endswith("_cb") or ctype.endswith("_fn") or base == "void *":
            self.args.append("NULL")
        elif base == "char *" and "const" in ctype:
            self.args.append('"%s"' % STRINGS.get(pname, "x"))
        elif base == "char **":
            self.decls.append(f"char *{v} = NULL;")
            self.frees.append(f"msrp_string_free({v});")
            self.args.append(f"&{v}")
        elif base == "uint8_t *" and "const" in ctype:
            self.args.append('(const uint8_t *)"abcd"')
        elif base == "uint8_t *":
            self.decls.append(f"uint8_t {v}[256];")
            self.args.append(v)
        elif base == "uint8_t **":
            self.decls.append(f"const uint8_t *{v} = NULL;")
            self.args.append(f"&{v}")
        elif base in (f"msrp_{h} **" for h in HANDLES):
            h = base[len("msrp_"):-3]
            self.decls.append(f"msrp_{h} *{v} = NULL;")
            self.frees.append(f"msrp_{h}_free({v});")
            self.args.append(f"&{v}")
        elif base in (f"msrp_{h} *" for h in HANDLES):
            h = base[len("msrp_"):-2]
            if h == "context":
                self.args.append("CTX")
                return
            self.decls.append(f"msrp_{h} *{v} = mk_{h}();")
            if (self.fn, pname) not in CONSUMES and not (self.fn.endswith("_free")):
                self.frees.append(f"msrp_{h}_free({v});")
            self.args.append(v)
        elif base == "msrp_uri *const *":
            self.decls.append(f"const msrp_uri *{v}[1] = {{mk_uri()}};")
            self.frees.append(f"msrp_uri_free((msrp_uri *){v}[0]);")
            self.args.append(v)
        elif base == "msrp_decoder_event *":
            self.decls.append(f"msrp_decoder_event {v};")
            self.args.append(f"&{v}")
        elif base == "msrp_session_options *":
            self.decls.append(f"msrp_session_options {v} = msrp_session_options_default();")
            self.args.append(f"&{v}")
        elif base == "msrp_message_options *":
            self.decls.append(f"msrp_message_options {v} = msrp_message_options_default();")
            self.args.append(f"&{v}")
        elif base == "msrp_sdp_local *":
            self.decls.append(f"msrp_sdp_local {v} = msrp_sdp_local_default();")
            self.decls.append(f'{v}.full_local_path = "msrp://127.0.0.1:9/x;tcp";')
            self.args.append(f"&{v}")
        elif base == "msrp_outgoing_file *":
            self.decls.append(f"msrp_outgoing_file {v};")
            self.decls.append(f"memset(&{v}, 0, sizeof {v});")
            self.decls.append(f"{v}.fd = -1;")
            self.args.append(f"&{v}")
        elif base.endswith(" *") and base[:-2] in STRUCT_VALUES:
            self.decls.append(f"{base[:-2]} {v};")
            self.decls.append(f"memset(&{v}, 0, sizeof {v});")
            self.args.append(f"&{v}")
        elif base.endswith(" *"):
            scalar = base[:-2]
            self.decls.append(f"{scalar} {v};")
            self.decls.append(f"memset(&{v}, 0, sizeof {v});")
            self.args.append(f"&{v}")
        else:
            self.args.append(SCALARS.get(pname, "0"))

    def render(self, ret):
        for i, (ctype, pname) in enumerate(self.params):
            self.arg(i, ctype, pname)
        pname = self.params[self.nulled][1]
        call = f"{self.fn}({', '.join(self.args)})"
        out = ["  {"] + [f"    {d}" for d in self.decls]
        if ret == "msrp_result":
            out.append(f"    msrp_result r = {call};")
            out.append(f'    expect_not_panic(r, "{self.fn}", "{pname}");')
            if (self.fn, pname) not in OPTIONAL:
                out.append(f'    expect_null_argument(r, "{self.fn}", "{pname}");')
        else:
            out.append(f"    (void){call};")
        out += [f"    {f}" for f in self.frees] + ["    calls++;", "  }"]
        return "\n".join(out)


# Handles that exist only during a callback (`msrp_incoming`, given to
# `on_message_start`): a call that needs a valid one with another argument
# NULL is left to the test that has the callback (test_large_early).
CALLBACK_ONLY = ("msrp_incoming *",)


def needs_callback_handle(params, nulled):
    return any(i != nulled and ctype.replace("struct ", "").strip() in CALLBACK_ONLY
               for i, (ctype, _) in enumerate(params))


def main():
    header, output = sys.argv[1], sys.argv[2]
    blocks = []
    n = 0
    for ret, fn, params in prototypes(open(header).read()):
        for i, (ctype, pname) in enumerate(params):
            if not is_pointer(ctype) or ctype == "void *":
                continue
            if needs_callback_handle(params, i):
                continue
            if fn.endswith("_free") or fn == "msrp_string_free":
                blocks.append(f"  {fn}(NULL);\n  calls++;")
                continue
            blocks.append(Call(fn, params, i).render(ret))
            n += 1
    body = "\n".join(blocks)
    with open(output, "w") as f:
        f.write(TEMPLATE.replace("@CALLS@", body))
    print(f"gen_null_args: {n} calls generated")


TEMPLATE = r"""/* Generated by c-tests/gen_null_args.py from include/msrp.h: do not edit.
 * Every exported function, with NULL in each pointer argument in turn. */
#include "net.h"

static msrp_context *CTX;
static int calls;

static void expect_not_panic(msrp_result r, const char *fn, const char *param) {
  if (r == MSRP_RESULT_PANIC) {
    check_failed_++;
    fprintf(stderr, "%s with NULL %s: MSRP_RESULT_PANIC (%s)\n", fn, param, msrp_last_error_message());
  } else {
    check_passed_++;
  }
}

static void expect_null_argument(msrp_result r, const char *fn, const char *param) {
  if (r == MSRP_RESULT_NULL_ARGUMENT) {
    check_passed_++;
  } else {
    check_failed_++;
    fprintf(stderr,
            "%s with NULL %s gave %u (%s), not MSRP_RESULT_NULL_ARGUMENT; if NULL is allowed there, "
            "add it to OPTIONAL in c-tests/gen_null_args.py\n",
            fn, param, (unsigned)r, msrp_result_str(r));
  }
}

static msrp_uri *mk_uri(void) {
  msrp_uri *u = NULL;
  msrp_uri_parse("msrp://127.0.0.1:9/x;tcp", &u);
  return u;
}

static msrp_chunk *mk_chunk(void) {
  msrp_chunk *c = NULL;
  msrp_chunk_new_request("SEND", &c);
  msrp_chunk_set_to_path(c, "msrp://127.0.0.1:9/x;tcp");
  msrp_chunk_set_from_path(c, "msrp://127.0.0.1:9/y;tcp");
  return c;
}

static msrp_decoder *mk_decoder(void) {
  msrp_decoder *d = NULL;
  msrp_decoder_new(&d);
  return d;
}

static msrp_logger *mk_logger(void) {
  msrp_logger_callbacks cbs;
  memset(&cbs, 0, sizeof cbs);
  msrp_logger *l = NULL;
  msrp_logger_new(&cbs, NULL, NULL, &l);
  return l;
}

static msrp_connector *mk_connector(void) {
  msrp_connector *c = NULL;
  char *p = NULL;
  msrp_connector_new(CTX, MSRP_CONNECTOR_KIND_ACTIVE, false, NULL, &c);
  msrp_connector_prepare(c, NULL, &p);
  msrp_string_free(p);
  return c;
}

static msrp_server *mk_server(void) {
  msrp_server *s = NULL;
  msrp_server_new(CTX, false, NULL, &s);
  return s;
}

static msrp_transport *mk_transport(void) {
  msrp_transport *a = NULL, *b = NULL;
  make_pair(CTX, false, NULL, &a, &b);
  msrp_transport_free(b);
  return a;
}

static msrp_tls *mk_tls(void) {
  msrp_tls *t = NULL;
  msrp_tls_new(&t);
  return t;
}

static msrp_sdp_media *mk_sdp_media(void) {
  msrp_sdp_local l = msrp_sdp_local_default();
  l.full_local_path = "msrp://127.0.0.1:9/x;tcp";
  msrp_sdp_media *m = NULL;
  msrp_sdp_offer(&l, &m);
  return m;
}

static msrp_negotiation *mk_negotiation(void) {
  msrp_sdp_media *a = mk_sdp_media(), *b = mk_sdp_media();
  msrp_negotiation *n = NULL;
  msrp_sdp_negotiate(a, b, true, &n);
  msrp_sdp_media_free(a);
  msrp_sdp_media_free(b);
  return n;
}

static msrp_cpim *mk_cpim(void) {
  msrp_cpim *m = NULL;
  msrp_cpim_new("text/plain", (const uint8_t *)"hi", 2, &m);
  msrp_cpim_add_address(m, "From", NULL, "sip:a@b");
  return m;
}

static msrp_session *mk_session(void) {
  msrp_session *s = NULL;
  msrp_session_new(mk_transport(), NULL, NULL, NULL, NULL, &s);
  return s;
}

int main(void) {
  msrp_context_options o;
  memset(&o, 0, sizeof o);
  CHECK_OK(msrp_context_new(&o, &CTX));
@CALLS@
  msrp_context_free(CTX);
  printf("%d calls with a NULL pointer argument\n", calls);
  return check_summary("test_null_args");
}
"""

if __name__ == "__main__":
    main()
