// A chat in C++17 on include/msrp.hpp, the header-only wrapper: move-only
// owners, std::function callbacks that the wrapper keeps alive, errors as
// msrp::error exceptions. Bob listens, alice connects (the paths would go
// through SDP), they exchange CPIM-wrapped lines and alice learns that bob
// displayed each one (IMDN). Exit status 0 on success.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "msrp.hpp"

int main() {
  try {
    msrp::Context ctx;
    msrp::Connector bob_side(ctx, MSRP_CONNECTOR_KIND_PASSIVE), alice_side(ctx, MSRP_CONNECTOR_KIND_ACTIVE);
    std::string bob_path = bob_side.prepare("msrp://127.0.0.1:0;tcp");
    std::string alice_path = alice_side.prepare();
    std::optional<msrp::Transport> bob_t;
    std::thread accept([&] { bob_t.emplace(bob_side.complete(alice_path, 10000)); });
    msrp::Transport alice_t = alice_side.complete(bob_path, 10000);
    accept.join();

    std::mutex m;
    std::condition_variable c;
    int shown = 0, displayed = 0;
    msrp::Session *bob = nullptr;
    msrp::Session::Callbacks bcb;
    bcb.on_cpim = [&](const msrp::ChunkView &, const msrp_cpim *msg) {
      std::printf("bob sees from %s: %s\n", msrp::Cpim::header_of(msg, "From").value_or("?").c_str(),
                  std::string(msrp::Cpim::content_of(msg)).c_str());
      bob->send_imdn(msg, MSRP_IMDN_KIND_DISPLAY, "displayed");
      std::lock_guard<std::mutex> l(m);
      shown++;
      c.notify_all();
    };
    msrp::Session alice_s(std::move(alice_t), {});
    msrp::Session bob_s(std::move(*bob_t), std::move(bcb));
    bob = &bob_s;
    for (const char *line : {"hello bob", "tea at four?"}) {
      msrp::Cpim msg("text/plain", line);
      msg.add_address("From", "sip:alice@example.com", "Alice").add_address("To", "sip:bob@example.com");
      alice_s.send_cpim(msg, MSRP_IMDN_DISPLAY, [&](msrp_imdn_kind, std::string_view status) {
        std::printf("alice: %s\n", std::string(status).c_str());
        std::lock_guard<std::mutex> l(m);
        displayed++;
        c.notify_all();
      });
    }
    std::unique_lock<std::mutex> l(m);
    bool ok = c.wait_for(l, std::chrono::seconds(10), [&] { return shown == 2 && displayed == 2; });
    l.unlock();
    alice_s.shutdown(true, 5000);
    std::printf("%s\n", ok ? "C++ chat done" : "C++ chat FAILED");
    return ok ? 0 : 1;
  } catch (const msrp::error &e) {
    std::fprintf(stderr, "%s (result %d)\n", e.what(), static_cast<int>(e.code()));
    return 1;
  }
}
