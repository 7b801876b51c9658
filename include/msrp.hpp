/* libmsrp C++17 wrapper: header-only, over the C API in msrp.h.
 *
 * - Handles are move-only owners (msrp::Context, Tls, Connector, Transport,
 *   Session, Chunk, Uri); their destructors call the C `_free`.
 * - Strings go in as std::string_view and come out as std::string.
 * - Errors throw msrp::error, which carries the msrp_result and the
 *   library's message. Exceptions rather than an expected-like type because
 *   C++17 has no std::expected, the C++ SIP stacks this wrapper is for use
 *   exceptions, and every failure here is one the caller cannot ignore.
 *   Nothing throws across the C boundary: callbacks catch what a user
 *   function throws (and drop it; see Session::Callbacks).
 * - Callbacks are std::function; the wrapper keeps them alive for as long
 *   as libmsrp may call them (the session's until its userdata_free, a
 *   message's until its on_done) and frees them itself.
 * Threads and callback rules are those of the C API (see msrp.h and
 * docs/guide.md): callbacks run on a libmsrp thread, or on yours from
 * Context::dispatch() with queued callbacks.
 */
#ifndef MSRP_HPP
#define MSRP_HPP

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include <utility>

#include "msrp.h"

namespace msrp {

/// A failed libmsrp call: the result code and the library's message.
class error : public std::runtime_error {
 public:
  error(msrp_result code, const std::string &what) : std::runtime_error(what), code_(code) {}
  /// The C result code (`MSRP_RESULT_*`).
  msrp_result code() const noexcept { return code_; }

 private:
  msrp_result code_;
};

namespace detail {

inline void check(msrp_result r, const char *call) {
  if (r != MSRP_RESULT_OK) throw error(r, std::string(call) + ": " + msrp_last_error_message());
}

/// A string libmsrp allocated, copied and freed.
inline std::string take(char *s) {
  std::string out = s ? s : "";
  msrp_string_free(s);
  return out;
}

/// A NUL-terminated copy (C strings in).
inline std::string z(std::string_view v) { return std::string(v); }

template <class T, void (*Free)(T *)>
struct deleter {
  void operator()(T *p) const noexcept { Free(p); }
};
template <class T, void (*Free)(T *)>
using owned = std::unique_ptr<T, deleter<T, Free>>;

/// Runs a user callback from a C callback: nothing may unwind into C.
template <class F>
void guarded(F &&f) noexcept {
  try {
    f();
  } catch (...) {
  }
}

}  // namespace detail

/// A borrowed view of a chunk (valid during a callback), or the base of Chunk.
class ChunkView {
 public:
  explicit ChunkView(const msrp_chunk *c) noexcept : c_(c) {}
  const msrp_chunk *get() const noexcept { return c_; }
  /// The body (valid as long as the chunk).
  std::string_view data() const {
    const uint8_t *d = nullptr;
    size_t n = 0;
    detail::check(msrp_chunk_data(c_, &d, &n), "msrp_chunk_data");
    return {reinterpret_cast<const char *>(d), n};
  }
  /// A header's value by name (any case), or nothing.
  std::optional<std::string> header(std::string_view name) const {
    char *v = nullptr;
    msrp_result r = msrp_chunk_header(c_, detail::z(name).c_str(), &v);
    if (r == MSRP_RESULT_NOT_FOUND) return std::nullopt;
    detail::check(r, "msrp_chunk_header");
    return detail::take(v);
  }
  std::string message_id() const {
    char *v = nullptr;
    detail::check(msrp_chunk_message_id(c_, &v), "msrp_chunk_message_id");
    return detail::take(v);
  }
  std::string content_type() const {
    char *v = nullptr;
    detail::check(msrp_chunk_content_type(c_, &v), "msrp_chunk_content_type");
    return detail::take(v);
  }

 protected:
  const msrp_chunk *c_;
};

/// An owned chunk (reference MSRPData).
class Chunk : public ChunkView {
 public:
  /// Takes over a chunk libmsrp handed out.
  explicit Chunk(msrp_chunk *c) noexcept : ChunkView(c), own_(c) {}
  /// A new request (`SEND`, `REPORT`, …) with a random transaction id.
  static Chunk request(std::string_view method) {
    msrp_chunk *c = nullptr;
    detail::check(msrp_chunk_new_request(detail::z(method).c_str(), &c), "msrp_chunk_new_request");
    return Chunk(c);
  }
  Chunk copy() const {
    msrp_chunk *c = nullptr;
    detail::check(msrp_chunk_copy(c_, &c), "msrp_chunk_copy");
    return Chunk(c);
  }
  void set_data(std::string_view d) {
    detail::check(msrp_chunk_set_data(own_.get(), reinterpret_cast<const uint8_t *>(d.data()), d.size()),
                  "msrp_chunk_set_data");
  }
  void set_content_type(std::string_view t) {
    detail::check(msrp_chunk_set_content_type(own_.get(), detail::z(t).c_str()), "msrp_chunk_set_content_type");
  }
  msrp_chunk *get_mut() noexcept { return own_.get(); }

 private:
  detail::owned<msrp_chunk, msrp_chunk_free> own_;
};

/// An MSRP URI (RFC 4975 §6).
class Uri {
 public:
  static Uri parse(std::string_view text) {
    msrp_uri *u = nullptr;
    detail::check(msrp_uri_parse(detail::z(text).c_str(), &u), "msrp_uri_parse");
    return Uri(u);
  }
  std::string to_string() const {
    char *s = nullptr;
    detail::check(msrp_uri_format(u_.get(), &s), "msrp_uri_format");
    return detail::take(s);
  }
  std::string host() const {
    char *s = nullptr;
    detail::check(msrp_uri_host(u_.get(), &s), "msrp_uri_host");
    return detail::take(s);
  }
  uint16_t port() const {
    uint16_t p = 0;
    detail::check(msrp_uri_port(u_.get(), &p), "msrp_uri_port");
    return p;
  }
  std::string session_id() const {
    char *s = nullptr;
    detail::check(msrp_uri_session_id(u_.get(), &s), "msrp_uri_session_id");
    return detail::take(s);
  }
  bool use_tls() const noexcept { return msrp_uri_use_tls(u_.get()); }
  /// RFC 4975 §6.1 comparison.
  bool operator==(const Uri &o) const noexcept { return msrp_uri_equal(u_.get(), o.u_.get()); }
  const msrp_uri *get() const noexcept { return u_.get(); }

 private:
  explicit Uri(msrp_uri *u) noexcept : u_(u) {}
  detail::owned<msrp_uri, msrp_uri_free> u_;
};

/// A logger (reference Logger): `std::function`s for the messages and the
/// traffic, kept alive by the wrapper until the library lets the logger go.
/// Give it to connectors and servers, or make it the default.
class Logger {
 public:
  struct Callbacks {
    /// debug, info, warn, error, fatal: one function for all, with the level.
    std::function<void(const char *level, std::string_view message)> on_message;
    /// The first bytes of each chunk received (`in`) or sent, by connection id.
    std::function<void(bool in, uint64_t transport_id, std::string_view head)> on_chunk;
  };
  explicit Logger(Callbacks cbs) {
    auto *held = new Callbacks(std::move(cbs));
    msrp_logger_callbacks c{};
    if (held->on_message) {
      c.debug = &Logger::c_debug;
      c.info = &Logger::c_info;
      c.warn = &Logger::c_warn;
      c.error = &Logger::c_error;
      c.fatal = &Logger::c_fatal;
    }
    if (held->on_chunk) {
      c.received_new_chunk = &Logger::c_received;
      c.sent_new_chunk = &Logger::c_sent;
    }
    msrp_logger *l = nullptr;
    msrp_result r = msrp_logger_new(&c, held, &Logger::c_free, &l);
    if (r != MSRP_RESULT_OK) {
      delete held;  // a logger that was not made never calls c_free
      detail::check(r, "msrp_logger_new");
    }
    l_.reset(l);
  }
  /// Objects made without a logger use this one from now on.
  void make_default() const { detail::check(msrp_logger_set_default(l_.get()), "msrp_logger_set_default"); }
  const msrp_logger *get() const noexcept { return l_.get(); }

 private:
  static void say(void *ud, const char *level, const char *m) {
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_message(level, m); });
  }
  static void c_debug(void *ud, const char *m) { say(ud, "debug", m); }
  static void c_info(void *ud, const char *m) { say(ud, "info", m); }
  static void c_warn(void *ud, const char *m) { say(ud, "warn", m); }
  static void c_error(void *ud, const char *m) { say(ud, "error", m); }
  static void c_fatal(void *ud, const char *m) { say(ud, "fatal", m); }
  static void chunk(void *ud, bool in, uint64_t id, const uint8_t *data, size_t len) {
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_chunk(in, id, std::string_view(reinterpret_cast<const char *>(data), len)); });
  }
  static void c_received(void *ud, uint64_t id, const uint8_t *data, size_t len, const msrp_chunk *) {
    chunk(ud, true, id, data, len);
  }
  static void c_sent(void *ud, uint64_t id, const uint8_t *data, size_t len, const msrp_chunk *) {
    chunk(ud, false, id, data, len);
  }
  static void c_free(void *ud) { delete static_cast<Callbacks *>(ud); }

  detail::owned<msrp_logger, msrp_logger_free> l_;
};

/// The streaming decoder: feed it bytes, get chunk heads, body data and ends.
class Decoder {
 public:
  /// One event: a head (`chunk`, yours), body `data` (valid until the next
  /// call), or the `end` of a chunk with its flag.
  struct Event {
    msrp_decoder_event_kind kind = MSRP_DECODER_EVENT_KIND_NONE;
    std::optional<Chunk> chunk;
    std::string_view data;
    uint8_t flag = 0;
  };
  Decoder() {
    msrp_decoder *d = nullptr;
    detail::check(msrp_decoder_new(&d), "msrp_decoder_new");
    d_.reset(d);
  }
  /// Decodes from `in`: at most one event; `consumed` says how many bytes
  /// were used (call again with the rest). A fatal framing error throws.
  Event decode(std::string_view in, size_t &consumed) {
    msrp_decoder_event e{};
    detail::check(msrp_decoder_decode(d_.get(), reinterpret_cast<const uint8_t *>(in.data()), in.size(), &consumed, &e),
                  "msrp_decoder_decode");
    Event out;
    out.kind = e.kind;
    if (e.chunk) out.chunk.emplace(e.chunk);
    out.data = std::string_view(reinterpret_cast<const char *>(e.data), e.data_len);
    out.flag = e.flag;
    return out;
  }

 private:
  detail::owned<msrp_decoder, msrp_decoder_free> d_;
};

/// A message/cpim message (RFC 3862).
class Cpim {
 public:
  Cpim(std::string_view content_type, std::string_view content) {
    msrp_cpim *m = nullptr;
    detail::check(msrp_cpim_new(detail::z(content_type).c_str(), reinterpret_cast<const uint8_t *>(content.data()),
                                content.size(), &m),
                  "msrp_cpim_new");
    m_.reset(m);
  }
  static Cpim parse(std::string_view body) {
    msrp_cpim *m = nullptr;
    detail::check(msrp_cpim_parse(reinterpret_cast<const uint8_t *>(body.data()), body.size(), &m), "msrp_cpim_parse");
    return Cpim(m);
  }
  /// From, To or cc.
  Cpim &add_address(std::string_view header, std::string_view uri, std::string_view display_name = {}) {
    std::string d(display_name);
    detail::check(msrp_cpim_add_address(m_.get(), detail::z(header).c_str(), d.empty() ? nullptr : d.c_str(),
                                        detail::z(uri).c_str()),
                  "msrp_cpim_add_address");
    return *this;
  }
  Cpim &add_header(std::string_view name, std::string_view value) {
    detail::check(msrp_cpim_add_header(m_.get(), detail::z(name).c_str(), detail::z(value).c_str()),
                  "msrp_cpim_add_header");
    return *this;
  }
  /// A header by name in namespace `ns` (empty: the core headers); nullopt when absent.
  std::optional<std::string> header(std::string_view name, std::string_view ns = {}) const {
    return header_of(m_.get(), name, ns);
  }
  std::string content() const { return std::string(content_of(m_.get())); }
  std::string encode() const {
    size_t len = 0;
    (void)msrp_cpim_encode(m_.get(), nullptr, 0, &len);
    std::string out(len, '\0');
    detail::check(msrp_cpim_encode(m_.get(), reinterpret_cast<uint8_t *>(out.data()), len, &len), "msrp_cpim_encode");
    return out;
  }
  const msrp_cpim *get() const noexcept { return m_.get(); }

  /// For a message the library lends (on_cpim): the same reads, no ownership.
  static std::optional<std::string> header_of(const msrp_cpim *m, std::string_view name, std::string_view ns = {}) {
    std::string n(ns);
    char *v = nullptr;
    msrp_result r = msrp_cpim_header(m, n.empty() ? nullptr : n.c_str(), detail::z(name).c_str(), &v);
    if (r == MSRP_RESULT_NOT_FOUND) return std::nullopt;
    detail::check(r, "msrp_cpim_header");
    return detail::take(v);
  }
  static std::string_view content_of(const msrp_cpim *m) {
    const uint8_t *d = nullptr;
    size_t len = 0;
    detail::check(msrp_cpim_content(m, &d, &len), "msrp_cpim_content");
    return std::string_view(reinterpret_cast<const char *>(d), len);
  }

 private:
  explicit Cpim(msrp_cpim *m) noexcept : m_(m) {}
  detail::owned<msrp_cpim, msrp_cpim_free> m_;
};

/// The runtime: one per application; destroy it last (see msrp_context_free).
class Context {
 public:
  explicit Context(const msrp_context_options *options = nullptr) {
    msrp_context *c = nullptr;
    detail::check(msrp_context_new(options, &c), "msrp_context_new");
    ctx_.reset(c);
  }
  /// Queued callbacks: the descriptor to poll for reading.
  int fd() const {
    int fd = -1;
    detail::check(msrp_context_fd(ctx_.get(), &fd), "msrp_context_fd");
    return fd;
  }
  /// Queued callbacks: runs up to `max` (0: all) on this thread; returns how many ran.
  size_t dispatch(size_t max = 0) {
    size_t ran = 0;
    detail::check(msrp_context_dispatch(ctx_.get(), max, &ran), "msrp_context_dispatch");
    return ran;
  }
  msrp_context *get() const noexcept { return ctx_.get(); }

 private:
  detail::owned<msrp_context, msrp_context_free> ctx_;
};

/// TLS settings (certificate, CA roots) for msrps.
class Tls {
 public:
  Tls() {
    msrp_tls *t = nullptr;
    detail::check(msrp_tls_new(&t), "msrp_tls_new");
    t_.reset(t);
  }
  void generate_self_signed(std::string_view name) {
    detail::check(msrp_tls_generate_self_signed(t_.get(), detail::z(name).c_str()), "msrp_tls_generate_self_signed");
  }
  /// Our certificate's fingerprint, as for SDP a=fingerprint ("sha-256 AB:…").
  std::string fingerprint() const {
    char *s = nullptr;
    detail::check(msrp_tls_fingerprint(t_.get(), nullptr, &s), "msrp_tls_fingerprint");
    return detail::take(s);
  }
  const msrp_tls *get() const noexcept { return t_.get(); }

 private:
  detail::owned<msrp_tls, msrp_tls_free> t_;
};

/// A bound connection (reference MSRPTransport).
class Transport {
 public:
  explicit Transport(msrp_transport *t) noexcept : t_(t) {}
  /// A SEND on this connection's paths carrying `body`.
  Chunk make_chunk(std::string_view body) const {
    msrp_chunk_params p{};
    p.data = reinterpret_cast<const uint8_t *>(body.data());
    p.data_len = body.size();
    msrp_chunk *c = nullptr;
    detail::check(msrp_transport_make_chunk(t_.get(), &p, &c), "msrp_transport_make_chunk");
    return Chunk(c);
  }
  void write_chunk(const ChunkView &c, uint32_t timeout_ms = 0) const {
    detail::check(msrp_transport_write_chunk(t_.get(), c.get(), timeout_ms), "msrp_transport_write_chunk");
  }
  Chunk read_chunk(uint32_t timeout_ms = 0) const {
    msrp_chunk *c = nullptr;
    detail::check(msrp_transport_read_chunk(t_.get(), SIZE_MAX, timeout_ms, &c, nullptr), "msrp_transport_read_chunk");
    return Chunk(c);
  }
  /// Gives the handle up (msrp_session_new takes it over).
  msrp_transport *release() noexcept { return t_.release(); }

 private:
  detail::owned<msrp_transport, msrp_transport_free> t_;
};

/// A direct connector (ConnectorDirect / AcceptorDirect).
class Connector {
 public:
  Connector(const Context &ctx, msrp_connector_kind kind, bool sessmatch = false, const Logger *logger = nullptr) {
    msrp_connector *c = nullptr;
    detail::check(msrp_connector_new(ctx.get(), kind, sessmatch, logger ? logger->get() : nullptr, &c),
                  "msrp_connector_new");
    c_.reset(c);
  }
  void set_tls(const Tls &tls) { detail::check(msrp_connector_set_tls(c_.get(), tls.get()), "msrp_connector_set_tls"); }
  void set_peer_fingerprint(std::string_view fp) {
    detail::check(msrp_connector_set_peer_fingerprint(c_.get(), detail::z(fp).c_str()),
                  "msrp_connector_set_peer_fingerprint");
  }
  /// Active: share a connection with other sessions to the same peer (RFC 4975 §5.4).
  void set_share_connection(bool share) {
    detail::check(msrp_connector_set_share_connection(c_.get(), share), "msrp_connector_set_share_connection");
  }
  /// Our full path, for SDP a=path (`local`: empty for the default).
  std::string prepare(std::string_view local = {}) {
    std::string l(local);
    char *path = nullptr;
    detail::check(msrp_connector_prepare(c_.get(), l.empty() ? nullptr : l.c_str(), &path), "msrp_connector_prepare");
    return detail::take(path);
  }
  /// Connects and binds, or accepts until the peer with `remote_path` binds.
  Transport complete(std::string_view remote_path, uint32_t timeout_ms = 0) {
    msrp_transport *t = nullptr;
    detail::check(msrp_connector_complete(c_.get(), detail::z(remote_path).c_str(), timeout_ms, &t),
                  "msrp_connector_complete");
    return Transport(t);
  }

 private:
  detail::owned<msrp_connector, msrp_connector_free> c_;
};

/// A shared-port server (reference MSRPServer): many sessions on one port,
/// bindings told apart by their paths.
class Server {
 public:
  explicit Server(const Context &ctx, bool sessmatch = false, const Logger *logger = nullptr) {
    msrp_server *s = nullptr;
    detail::check(msrp_server_new(ctx.get(), sessmatch, logger ? logger->get() : nullptr, &s), "msrp_server_new");
    s_.reset(s);
  }
  void set_tls(const Tls &tls) { detail::check(msrp_server_set_tls(s_.get(), tls.get()), "msrp_server_set_tls"); }
  /// Take several sessions per accepted connection (RFC 4975 §5.4).
  void set_share_connections(bool share) {
    detail::check(msrp_server_set_share_connections(s_.get(), share), "msrp_server_set_share_connections");
  }
  /// Our full path for one session (`local`: empty for the default).
  std::string prepare(std::string_view local = {}) {
    std::string l(local);
    char *path = nullptr;
    detail::check(msrp_server_prepare(s_.get(), l.empty() ? nullptr : l.c_str(), &path), "msrp_server_prepare");
    return detail::take(path);
  }
  /// Waits until the peer with `remote_path` binds to one of our paths.
  Transport complete(std::string_view remote_path, uint32_t timeout_ms = 0) {
    msrp_transport *t = nullptr;
    detail::check(msrp_server_complete(s_.get(), detail::z(remote_path).c_str(), timeout_ms, &t),
                  "msrp_server_complete");
    return Transport(t);
  }

 private:
  detail::owned<msrp_server, msrp_server_free> s_;
};

/// Where an incoming message goes, chosen in on_message_start (borrowed).
class Incoming {
 public:
  explicit Incoming(msrp_incoming *in) noexcept : in_(in) {}
  void to_path(std::string_view path) {
    detail::check(msrp_incoming_to_path(in_, detail::z(path).c_str()), "msrp_incoming_to_path");
  }
  void to_fd(int fd) { detail::check(msrp_incoming_to_fd(in_, fd), "msrp_incoming_to_fd"); }
  void refuse() { detail::check(msrp_incoming_refuse(in_), "msrp_incoming_refuse"); }

 private:
  msrp_incoming *in_;
};

/// A running session (reference MSRPSession).
class Session {
 public:
  /// The session's callbacks; any may be empty. They run where the C
  /// API's run; an exception a callback throws is caught and dropped (it
  /// cannot cross into C): handle errors inside.
  struct Callbacks {
    /// A whole message: the head of its first chunk, and its bytes.
    std::function<void(const ChunkView &head, std::string_view data)> on_message;
    /// An incoming REPORT (the session's; yours to keep).
    std::function<void(Chunk report)> on_report;
    /// An incoming message that will not complete (see on_incomplete in msrp.h).
    std::function<void(std::string_view message_id, uint64_t received, msrp_result reason, std::string_view why)>
        on_incomplete;
    /// The session ended; called once, last.
    std::function<void(msrp_result reason, std::string_view message)> on_closed;
    /// A message in several chunks starts: choose where its bytes go with
    /// `in` (to_path, to_fd, refuse); left alone, it is collected in memory.
    std::function<void(const ChunkView &head, std::string_view message_id, uint64_t total, Incoming &in)>
        on_message_start;
    /// A message sent to a file or descriptor is complete.
    std::function<void(std::string_view message_id, uint64_t size)> on_message_saved;
    /// A message/cpim message, read (`message` valid during the call; see Cpim::header_of).
    std::function<void(const ChunkView &head, const msrp_cpim *message)> on_cpim;
  };

  /// An IMDN about a message sent with send_cpim: its kind and status.
  using Notified = std::function<void(msrp_imdn_kind kind, std::string_view status)>;

  /// The outcome of one sent message: code 200 when every chunk was accepted.
  using Done = std::function<void(std::string_view message_id, uint16_t code, std::string_view comment)>;

  /// Starts a session on `t` (taken over) with `options` (nullptr: defaults).
  Session(Transport &&t, Callbacks cbs, const msrp_session_options *options = nullptr) {
    auto *held = new Callbacks(std::move(cbs));
    msrp_session_callbacks c{};
    if (held->on_message) c.on_message = &Session::c_message;
    if (held->on_report) c.on_report = &Session::c_report;
    if (held->on_incomplete) c.on_incomplete = &Session::c_incomplete;
    if (held->on_closed) c.on_closed = &Session::c_closed;
    if (held->on_message_start) c.on_message_start = &Session::c_start;
    if (held->on_message_saved) c.on_message_saved = &Session::c_saved;
    if (held->on_cpim) c.on_cpim = &Session::c_cpim;
    msrp_session *s = nullptr;
    // The C call frees the transport on failure too, and runs
    // c_free_callbacks once whatever happens.
    detail::check(msrp_session_new(t.release(), options, &c, held, &Session::c_free_callbacks, &s), "msrp_session_new");
    s_.reset(s);
  }

  /// Queues a message (copied); `done` (may be empty) gets its outcome.
  /// Returns the message's handle.
  uint64_t send_message(std::string_view data, std::string_view content_type, Done done = {}) {
    msrp_message_callbacks mc{};
    Done *held = nullptr;
    if (done) {
      held = new Done(std::move(done));
      mc.on_done = &Session::c_done;
    }
    uint64_t id = 0;
    msrp_result r = msrp_session_send_message(s_.get(), reinterpret_cast<const uint8_t *>(data.data()), data.size(),
                                              detail::z(content_type).c_str(), nullptr, held ? &mc : nullptr, held,
                                              &id);
    if (r != MSRP_RESULT_OK) {
      delete held;  // a call that fails never calls back
      detail::check(r, "msrp_session_send_message");
    }
    return id;
  }
  /// Queues a message without copying it (msrp_session_send_message_nocopy):
  /// libmsrp reads the `len` bytes at `data` while it sends them; `owner`
  /// keeps them alive and unchanged (e.g. a std::shared_ptr to the buffer)
  /// and is let go once libmsrp no longer reads them, on a libmsrp thread
  /// (at once when the call throws). Returns the message's handle.
  uint64_t send_message_nocopy(std::shared_ptr<const void> owner, const void *data, size_t len,
                               std::string_view content_type, Done done = {}) {
    std::string ct = detail::z(content_type);
    msrp_message_callbacks mc{};
    std::unique_ptr<Done> held;
    if (done) {
      held = std::make_unique<Done>(std::move(done));
      mc.on_done = &Session::c_done;
    }
    auto *keep = new std::shared_ptr<const void>(std::move(owner));
    uint64_t id = 0;
    // The C call lets go of `keep` exactly once, whatever it returns.
    msrp_result r = msrp_session_send_message_nocopy(s_.get(), static_cast<const uint8_t *>(data), len,
                                                     &Session::c_unshare, keep, ct.c_str(), nullptr,
                                                     held ? &mc : nullptr, held.get(), &id);
    detail::check(r, "msrp_session_send_message_nocopy");  // a call that fails never calls back
    held.release();                                       // c_done owns it now
    return id;
  }
  /// Queues a CPIM message (copied) asking for the notifications in `imdn`
  /// (MSRP_IMDN_* flags); `notified` (may be empty) gets each one. It is kept
  /// until the session's end (notifications may come any time after the
  /// message was sent). Returns the message's handle.
  uint64_t send_cpim(const Cpim &m, uint32_t imdn = 0, Notified notified = {}) {
    msrp_message_callbacks mc{};
    Notified *held = nullptr;
    if (notified) {
      held = new Notified(std::move(notified));
      mc.on_notification = &Session::c_notified;
      kept_.emplace_back(held);
    }
    uint64_t id = 0;
    detail::check(msrp_session_send_cpim(s_.get(), m.get(), imdn, nullptr, held ? &mc : nullptr, held, &id),
                  "msrp_session_send_cpim");
    return id;
  }
  /// Answers a received CPIM message (from on_cpim) with a notification.
  void send_imdn(const msrp_cpim *im, msrp_imdn_kind kind, std::string_view status) {
    detail::check(msrp_session_send_imdn(s_.get(), im, kind, detail::z(status).c_str()), "msrp_session_send_imdn");
  }
  /// The Message-ID of a message being sent.
  std::string message_id(uint64_t message) const {
    char *s = nullptr;
    detail::check(msrp_session_message_id(s_.get(), message, &s), "msrp_session_message_id");
    return detail::take(s);
  }
  /// Sends what is queued, then closes (`sync`), or closes now.
  void shutdown(bool sync = true, uint32_t timeout_ms = 0) {
    detail::check(msrp_session_shutdown(s_.get(), sync, timeout_ms), "msrp_session_shutdown");
  }
  bool is_closed() const noexcept { return msrp_session_is_closed(s_.get()); }
  msrp_session *get() const noexcept { return s_.get(); }

 private:
  static void c_message(void *ud, const msrp_chunk *head, const uint8_t *data, size_t len) {
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_message(ChunkView(head), std::string_view(reinterpret_cast<const char *>(data), len)); });
  }
  static void c_report(void *ud, msrp_chunk *report) {
    Chunk owned(report);
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_report(std::move(owned)); });
  }
  static void c_incomplete(void *ud, const msrp_chunk *, const char *mid, uint64_t received, uint64_t,
                           msrp_result reason, const char *why) {
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_incomplete(mid, received, reason, why); });
  }
  static void c_closed(void *ud, msrp_result reason, const char *message) {
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_closed(reason, message); });
  }
  static void c_free_callbacks(void *ud) { delete static_cast<Callbacks *>(ud); }
  static void c_start(void *ud, const msrp_chunk *head, const char *mid, uint64_t total, msrp_incoming *in) {
    auto *cb = static_cast<Callbacks *>(ud);
    Incoming view(in);
    detail::guarded([&] { cb->on_message_start(ChunkView(head), mid, total, view); });
  }
  static void c_saved(void *ud, const msrp_chunk *, const char *mid, uint64_t size) {
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_message_saved(mid, size); });
  }
  static void c_cpim(void *ud, const msrp_chunk *head, const msrp_cpim *m) {
    auto *cb = static_cast<Callbacks *>(ud);
    detail::guarded([&] { cb->on_cpim(ChunkView(head), m); });
  }
  static void c_notified(void *ud, uint64_t, const char *, msrp_imdn_kind kind, const char *status) {
    auto *n = static_cast<Notified *>(ud);
    detail::guarded([&] { (*n)(kind, status); });
  }
  static void c_unshare(void *ud) { delete static_cast<std::shared_ptr<const void> *>(ud); }
  static void c_done(void *ud, uint64_t, const char *mid, uint16_t code, const char *comment) {
    std::unique_ptr<Done> done(static_cast<Done *>(ud));  // called exactly once
    detail::guarded([&] { (*done)(mid, code, comment); });
  }

  // Freed after the session (members are destroyed in reverse order): no
  // notification can come once msrp_session_free returned... except from
  // callbacks already queued; those run before msrp_context_free returns.
  std::vector<std::unique_ptr<Notified>> kept_;
  detail::owned<msrp_session, msrp_session_free> s_;
};

}  // namespace msrp

#endif
