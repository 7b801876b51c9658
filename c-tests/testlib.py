"""Helpers of the Python tests (msrpcat_test.py, sip_test.py): free loopback
ports, a file's sha256, and the real Kamailio of the tests
(tests/relay/kamailio.cfg: the MSRP relay, and with WITH_SIP also the SIP
registrar and proxy) started on free ports and stopped."""
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def kamailio(src, relay_port, extra_defines=()):
    """Runs Kamailio with the relay on `relay_port` (and the -A defines in
    `extra_defines`) until the block ends; yields the log's path."""
    kam = shutil.which("kamailio") or "/usr/sbin/kamailio"
    if not os.path.exists(kam):
        raise RuntimeError("kamailio is not installed (apt-get install -y kamailio)")
    d = tempfile.mkdtemp()
    os.mkdir(os.path.join(d, "run"))
    log_path = os.path.join(d, "log")
    log = open(log_path, "w")
    args = [kam, "-DD", "-E", "-f", os.path.join(src, "tests/relay/kamailio.cfg"),
            "-P", os.path.join(d, "pid"), "-Y", os.path.join(d, "run"), "-w", d,
            "-A", f"RELAY_PORT={relay_port}", "-A", "MIN_EXPIRES=60", "-A", "MAX_EXPIRES=3600"]
    for define in extra_defines:
        args += ["-A", define]
    k = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", relay_port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or k.poll() is not None:
                    raise RuntimeError("kamailio did not start: " + open(log_path).read())
                time.sleep(0.05)
        yield log_path
    finally:
        k.send_signal(signal.SIGTERM)
        try:
            k.wait(timeout=10)
        except subprocess.TimeoutExpired:
            k.kill()
            k.wait()
        log.close()
        shutil.rmtree(d)
