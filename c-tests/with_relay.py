#!/usr/bin/env python3
"""Runs a program with a real Kamailio MSRP relay (tests/relay/kamailio.cfg)
on a free loopback port: `with_relay.py SOURCE_DIR PROGRAM [ARGS...]` runs
PROGRAM ARGS... 127.0.0.1 PORT and exits with its status (the relay's log is
printed when the program fails)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import free_port, kamailio  # noqa: E402

src, cmd = sys.argv[1], sys.argv[2:]
port = free_port()
with kamailio(src, port) as log:
    try:
        rc = subprocess.run(cmd + ["127.0.0.1", str(port)], timeout=120).returncode
    except subprocess.TimeoutExpired:
        rc = 1
        print("with_relay: the program ran past 120 s")
    if rc != 0:
        print("---- kamailio log ----\n" + open(log).read()[-10000:])
sys.exit(rc)
