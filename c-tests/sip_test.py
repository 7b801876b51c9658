#!/usr/bin/env python3
"""The SIP example (examples/sip_chat.c, on libre) against a real Kamailio
that is the SIP registrar and proxy and the MSRP relay: bob registers and
waits, alice registers and calls him, they chat both ways, alice offers a
file (RFC 5547) whose hash bob checks, and alice hangs up. Three modes:
direct (alice offers a=setup:actpass and ends up connecting, RFC 6135
§4.2.2), relay (both through the Kamailio MSRP relay, RFC 4976) and msrps
(TLS, certificates checked against a=fingerprint, RFC 4975 §14.2 and RFC
8122).

usage: sip_test.py /path/to/example_sip_chat /path/to/source-dir"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import free_port, kamailio, sha256_of  # noqa: E402

SIP_CHAT, SRC = sys.argv[1], sys.argv[2]
LINES = 5
failures = []

if not os.path.exists(SIP_CHAT):
    print("sip_test: the SIP example was not built: it needs libre (apt-get install -y libre-dev), "
          "then run cmake again")
    sys.exit(1)


class Agent:
    """One sip_chat process; stdout lines are collected as they come."""

    def __init__(self, args):
        self.args = args
        self.p = subprocess.Popen([SIP_CHAT] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out, self.err = [], []
        self.t = [threading.Thread(target=self._pump, args=(s, l), daemon=True)
                  for s, l in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.t:
            t.start()

    @staticmethod
    def _pump(stream, lines):
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_line(self, needle, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(needle in l for l in self.out):
                return True
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        return any(needle in l for l in self.out)

    def wait(self, timeout=90):
        try:
            self.rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.rc = self.p.wait()
        for t in self.t:
            t.join(5)
        return self.rc

    def text(self):
        return "\n".join(self.out)

    def show(self, name):
        return f"---- {name} (exit {getattr(self, 'rc', None)}) ----\n" + "\n".join(self.out + self.err)


def run_mode(mode, sip_port, relay_port, size):
    d = tempfile.mkdtemp()
    try:
        src = os.path.join(d, "holiday photos.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        recv = os.path.join(d, "received")
        os.mkdir(recv)
        common = ["--proxy", f"127.0.0.1:{sip_port}", "--mode", mode, "--lines", str(LINES),
                  "--relay-port", str(relay_port), "--timeout", "60"]
        bob = Agent(["--user", "bob", "--recv-dir", recv, "--expect-file"] + common)
        if not bob.wait_line("bob: registered"):
            bob.wait(5)
            return [f"bob did not register\n{bob.show('bob')}"]
        alice = Agent(["--user", "alice", "--call", "bob", "--send-file", src] + common)
        alice.wait()
        bob.wait()
        a, b = alice.text(), bob.text()
        problems = []

        def expect(cond, what):
            if not cond:
                problems.append(what)

        expect(alice.rc == 0 and bob.rc == 0, "both exit 0")
        for i in range(1, LINES + 1):
            expect(f"bob got: line {i} from alice" in b, f"bob got alice's line {i}")
            expect(f"alice got: line {i} from bob" in a, f"alice got bob's line {i}")
        copy = os.path.join(recv, "holiday photos.bin")
        expect(os.path.exists(copy) and sha256_of(copy) == sha256_of(src), "the received file equals the sent one")
        expect("hash ok" in a and "file verified" in b, "bob checked the file-selector hash and told alice")
        expect("the chat call ended by the peer (BYE)" in b, "alice hung up with BYE")
        if mode == "direct":
            expect("a=setup:actpass" in a, "alice offered actpass")
            expect("a=setup:passive" in b, "bob answered passive")
            expect("alice: chat call settled: we are active" in a, "the actpass offerer ended up connecting")
        if mode == "relay":
            expect(f"a=path:msrp://127.0.0.1:{relay_port}/" in a and f"a=path:msrp://127.0.0.1:{relay_port}/" in b,
                   "both paths start with the relay")
        if mode == "msrps":
            expect("m=message" in a and "TCP/TLS/MSRP" in a and "a=fingerprint:sha-256 " in a
                   and "a=fingerprint:sha-256 " in b, "msrps media with fingerprints")
        if problems:
            return problems + [alice.show("alice"), bob.show("bob")]
        return []
    finally:
        shutil.rmtree(d)


def main():
    sip_port = free_port(socket.SOCK_DGRAM)
    relay_port = free_port()
    with kamailio(SRC, relay_port, ["WITH_SIP", f"SIP_PORT={sip_port}"]) as log:
        # Through the relay, chunks are 8 KiB (Kamailio's frame limit): a
        # smaller file keeps that case short.
        for mode, size in (("direct", 3_000_000), ("relay", 600_000), ("msrps", 3_000_000)):
            t0 = time.time()
            problems = run_mode(mode, sip_port, relay_port, size)
            status = "ok" if not problems else "FAILED"
            print(f"sip_test: {mode}: {status} ({time.time() - t0:.1f} s)")
            if problems:
                failures.append(mode)
                print("\n".join(problems))
        if failures:
            print("---- kamailio log ----\n" + open(log).read()[-20000:])
    print(f"sip_test: {3 - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
