// The C++17 wrapper (include/msrp.hpp): every wrapped handle used as a C++
// SIP stack would, under ASan in the test command (asan_test_cpp): errors
// as exceptions with their code, move-only owners, callbacks kept alive by
// the wrapper and freed by it (a counter checks each is destroyed once).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

#include "msrp.hpp"

static int passed, failed;
#define EXPECT(cond)                                                   \
  do {                                                                 \
    if (cond) {                                                        \
      passed++;                                                        \
    } else {                                                           \
      failed++;                                                        \
      std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                  \
  } while (0)

// Counts live callback objects: the wrapper must destroy every one it keeps.
static std::atomic<int> alive{0};
struct Tracked {
  Tracked() { alive++; }
  Tracked(const Tracked &) { alive++; }
  ~Tracked() { alive--; }
};

struct Box {
  std::mutex m;
  std::condition_variable c;
  std::string last;
  std::string head_type;
  int messages = 0, closed = 0, done = 0, reports = 0;
  uint16_t done_code = 0;
  std::string done_mid;
  template <class F>
  bool wait(F pred, int ms = 10000) {
    std::unique_lock<std::mutex> l(m);
    return c.wait_for(l, std::chrono::milliseconds(ms), pred);
  }
};

static void test_uri_and_chunk() {
  msrp::Uri u = msrp::Uri::parse("msrp://Bob.Example.com:8888/9di4ea;tcp");
  EXPECT(u.host() == "bob.example.com" || u.host() == "Bob.Example.com");
  EXPECT(u.port() == 8888);
  EXPECT(u.session_id() == "9di4ea");
  EXPECT(!u.use_tls());
  EXPECT(u == msrp::Uri::parse("msrp://bob.example.com:8888/9di4ea;tcp"));
  EXPECT(u.to_string().find("9di4ea") != std::string::npos);
  try {
    (void)msrp::Uri::parse("not a uri");
    EXPECT(false);
  } catch (const msrp::error &e) {
    EXPECT(e.code() == MSRP_RESULT_INVALID_URI);
    EXPECT(std::string(e.what()).find("msrp_uri_parse") != std::string::npos);
  }
  msrp::Chunk c = msrp::Chunk::request("SEND");
  c.set_data("hello");
  c.set_content_type("text/plain");
  msrp::Chunk d = c.copy();
  msrp::Chunk moved = std::move(d);  // move-only owner
  EXPECT(moved.data() == "hello");
  EXPECT(moved.content_type() == "text/plain");
  EXPECT(moved.header("Content-Type").value_or("") == "text/plain");
  EXPECT(!moved.header("X-Nothing").has_value());
}

// Binds over msrps checked by fingerprint, exchanges a chunk on the
// transports, then runs sessions with callbacks.
static void test_connection_and_session(bool queued) {
  msrp_context_options o{};
  o.queued_callbacks = queued;
  msrp::Context ctx(&o);
  if (queued) EXPECT(ctx.fd() >= 0);
  msrp::Tls bob_tls, alice_tls;
  bob_tls.generate_self_signed("bob.example");
  alice_tls.generate_self_signed("alice.example");
  msrp::Connector acc(ctx, MSRP_CONNECTOR_KIND_PASSIVE), con(ctx, MSRP_CONNECTOR_KIND_ACTIVE);
  acc.set_tls(bob_tls);
  con.set_tls(alice_tls);
  acc.set_peer_fingerprint(alice_tls.fingerprint());
  con.set_peer_fingerprint(bob_tls.fingerprint());
  std::string bob_path = acc.prepare("msrps://127.0.0.1:0;tcp");
  std::string alice_path = con.prepare("msrps://127.0.0.1:9;tcp");
  msrp::Transport *bob_t = nullptr;
  std::thread accepting([&] {
    try {
      bob_t = new msrp::Transport(acc.complete(alice_path, 10000));
    } catch (const msrp::error &e) {
      std::fprintf(stderr, "accepting: %s\n", e.what());
    }
  });
  msrp::Transport alice_t = con.complete(bob_path, 10000);
  accepting.join();
  EXPECT(bob_t != nullptr);
  if (!bob_t) return;

  msrp::Chunk c = alice_t.make_chunk("over the transport");
  c.set_content_type("text/plain");
  alice_t.write_chunk(c, 5000);
  msrp::Chunk got = bob_t->read_chunk(5000);
  EXPECT(got.data() == "over the transport");

  Box a, b;
  Tracked keep_a, keep_b;
  msrp::Session::Callbacks bcb;
  bcb.on_message = [&b, keep_b](const msrp::ChunkView &head, std::string_view data) {
    std::lock_guard<std::mutex> l(b.m);
    b.last = std::string(data);
    b.head_type = head.content_type();
    b.messages++;
    b.c.notify_all();
  };
  bcb.on_closed = [&b](msrp_result, std::string_view) {
    std::lock_guard<std::mutex> l(b.m);
    b.closed++;
    b.c.notify_all();
  };
  msrp::Session::Callbacks acb;
  acb.on_report = [&a, keep_a](msrp::Chunk report) {
    std::lock_guard<std::mutex> l(a.m);
    a.reports += report.header("Status").has_value() ? 1 : 0;
    a.c.notify_all();
  };
  acb.on_closed = [&a](msrp_result, std::string_view) {
    std::lock_guard<std::mutex> l(a.m);
    a.closed++;
    a.c.notify_all();
    throw std::runtime_error("thrown in a callback: must not reach C");
  };
  EXPECT(alive == 4);  // two kept here, two copies in the callbacks
  {
    msrp::Session alice(std::move(alice_t), std::move(acb));
    msrp::Session bob(std::move(*bob_t), std::move(bcb));
    delete bob_t;
    uint64_t id = alice.send_message("hi bob", "text/plain", [&a](std::string_view mid, uint16_t code, std::string_view) {
      std::lock_guard<std::mutex> l(a.m);
      a.done++;
      a.done_code = code;
      a.done_mid = std::string(mid);
      a.c.notify_all();
    });
    std::string mid;
    try {
      mid = alice.message_id(id);  // while it is sent (or NOT_FOUND once done)
    } catch (const msrp::error &e) {
      EXPECT(e.code() == MSRP_RESULT_NOT_FOUND);
    }
    auto pump = [&](Box &x, auto pred) {
      for (int i = 0; i < 1000; i++) {
        if (queued) ctx.dispatch();
        if (x.wait(pred, 10)) return true;
      }
      return false;
    };
    EXPECT(pump(b, [&] { return b.messages == 1; }));
    EXPECT(pump(a, [&] { return a.done == 1; }));
    EXPECT(b.last == "hi bob" && b.head_type == "text/plain");
    EXPECT(a.done_code == 200);
    EXPECT(mid.empty() || mid == a.done_mid);
    try {
      alice.send_message("x", "not a media type");
      EXPECT(false);
    } catch (const msrp::error &e) {
      EXPECT(e.code() != MSRP_RESULT_OK);
    }
    {
      // Lent, not copied: the owner is let go once the message is sent.
      auto text = std::make_shared<const std::string>("lent, not copied");
      std::weak_ptr<const std::string> watch = text;
      alice.send_message_nocopy(text, text->data(), text->size(), "text/plain");
      text.reset();
      EXPECT(pump(b, [&] { return b.messages == 2; }));
      EXPECT(b.last == "lent, not copied");
      bool gone = false;
      for (int i = 0; i < 500 && !gone; i++) {
        if (queued) ctx.dispatch();
        gone = watch.expired();
        if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      EXPECT(gone);
      auto kept = std::make_shared<const std::string>("x");
      try {
        alice.send_message_nocopy(kept, kept->data(), kept->size(), "not a media type");
        EXPECT(false);
      } catch (const msrp::error &e) {
        EXPECT(e.code() != MSRP_RESULT_OK);
      }
      EXPECT(kept.use_count() == 1);  // let go at once when the call fails
    }
    alice.shutdown(true, 5000);
    EXPECT(alice.is_closed());
  }
  // The sessions are gone; their callbacks are freed once they ran (at the
  // latest when the context goes).
  if (queued) ctx.dispatch();
  EXPECT(b.wait([&] { return b.closed == 1; }, 5000) || queued);
}

// The wrappers for the logger, the shared-port server, the decoder, CPIM
// with notifications, and incoming messages sent to a file (sinks).
static void test_server_logger_cpim_sinks_decoder() {
  msrp::Context ctx;
  Box logs;
  Tracked keep_log;
  msrp::Logger::Callbacks lcb;
  lcb.on_chunk = [&logs, keep_log](bool in, uint64_t, std::string_view head) {
    std::lock_guard<std::mutex> l(logs.m);
    if (in && head.rfind("MSRP ", 0) == 0) logs.messages++;
  };
  lcb.on_message = [](const char *, std::string_view) {};
  msrp::Logger logger(std::move(lcb));
  msrp::Server server(ctx, false, &logger);
  msrp::Connector con(ctx, MSRP_CONNECTOR_KIND_ACTIVE, false, &logger);
  // Over a shared connection (the session must not notice).
  server.set_share_connections(true);
  con.set_share_connection(true);
  std::string bob_path = server.prepare("msrp://127.0.0.1:0;tcp");
  std::string alice_path = con.prepare();
  msrp::Transport *bob_t = nullptr;
  std::thread accepting([&] {
    try {
      bob_t = new msrp::Transport(server.complete(alice_path, 10000));
    } catch (const msrp::error &e) {
      std::fprintf(stderr, "server: %s\n", e.what());
    }
  });
  msrp::Transport alice_t = con.complete(bob_path, 10000);
  accepting.join();
  EXPECT(bob_t != nullptr);
  if (!bob_t) return;

  Box a, b;
  std::string file = "/tmp/msrp-test-cpp-" + std::to_string(::getpid());
  msrp::Session *bob_ptr = nullptr;
  std::string from;
  msrp::Session::Callbacks bcb;
  bcb.on_cpim = [&](const msrp::ChunkView &, const msrp_cpim *m) {
    std::lock_guard<std::mutex> l(b.m);
    from = msrp::Cpim::header_of(m, "From").value_or("");
    b.last = std::string(msrp::Cpim::content_of(m));
    b.messages++;
    bob_ptr->send_imdn(m, MSRP_IMDN_KIND_DISPLAY, "displayed");
    b.c.notify_all();
  };
  bcb.on_message_start = [&](const msrp::ChunkView &, std::string_view, uint64_t total, msrp::Incoming &in) {
    EXPECT(total == 300000);
    in.to_path(file);
  };
  bcb.on_message_saved = [&](std::string_view, uint64_t size) {
    std::lock_guard<std::mutex> l(b.m);
    b.done = static_cast<int>(size);
    b.c.notify_all();
  };
  {
    msrp::Session alice(std::move(alice_t), {});
    msrp::Session bob(std::move(*bob_t), std::move(bcb));
    bob_ptr = &bob;
    delete bob_t;
    msrp::Cpim m("text/plain", "hello in CPIM");
    m.add_address("From", "sip:alice@example.com", "Alice").add_address("To", "sip:bob@example.com");
    EXPECT(msrp::Cpim::parse(m.encode()).header("From").value_or("") == "Alice <sip:alice@example.com>");
    Tracked keep_note;
    alice.send_cpim(m, MSRP_IMDN_DISPLAY, [&a, keep_note](msrp_imdn_kind kind, std::string_view status) {
      std::lock_guard<std::mutex> l(a.m);
      if (kind == MSRP_IMDN_KIND_DISPLAY && status == "displayed") a.reports++;
      a.c.notify_all();
    });
    EXPECT(b.wait([&] { return b.messages == 1; }));
    EXPECT(a.wait([&] { return a.reports == 1; }));
    EXPECT(b.last == "hello in CPIM" && from == "Alice <sip:alice@example.com>");
    alice.send_message(std::string(300000, 'z'), "application/octet-stream");
    EXPECT(b.wait([&] { return b.done == 300000; }));
    alice.shutdown(true, 5000);
  }
  std::remove(file.c_str());
  {
    std::lock_guard<std::mutex> l(logs.m);
    EXPECT(logs.messages >= 3);  // the logger saw the traffic
  }

  msrp::Decoder dec;
  std::string wire = "MSRP a786hjs2 SEND\r\nTo-Path: msrp://b.example.com:8888/9di4ea;tcp\r\n"
                     "From-Path: msrp://a.example.com:7777/iau39;tcp\r\nMessage-ID: 87652\r\n"
                     "Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------a786hjs2$\r\n";
  std::string_view rest = wire;
  std::string body;
  int heads = 0, ends = 0;
  for (int i = 0; i < 10 && !rest.empty(); i++) {
    size_t used = 0;
    msrp::Decoder::Event e = dec.decode(rest, used);
    if (e.kind == MSRP_DECODER_EVENT_KIND_HEAD && e.chunk) heads += e.chunk->content_type() == "text/plain";
    if (e.kind == MSRP_DECODER_EVENT_KIND_DATA) body += std::string(e.data);
    if (e.kind == MSRP_DECODER_EVENT_KIND_END) ends += e.flag == '$';
    rest.remove_prefix(used);
  }
  EXPECT(heads == 1 && body == "hello" && ends == 1);
  try {
    size_t used = 0;
    (void)dec.decode("garbage\r\n", used);
    EXPECT(false);
  } catch (const msrp::error &e) {
    EXPECT(e.code() != MSRP_RESULT_OK);
  }
}

int main() {
  test_uri_and_chunk();
  test_connection_and_session(false);
  test_connection_and_session(true);
  test_server_logger_cpim_sinks_decoder();
  EXPECT(alive == 0);
  std::printf("test_cpp: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
