#!/usr/bin/env python3
"""A bounded multi-threaded workout for a ThreadSanitizer build of voice-broker (the tsan preset).

Starts the binary on loopback (port 0 picked by us, TLS self-signed, THREADS=4, short sessions),
then for SECONDS runs visitor threads (join, open the live channel over wss, read pushes,
heartbeat, leave or vanish), stats/health/metrics pollers, admin forceEndAll calls and a SIGHUP
reload every 2 s, so that pushes, reloads, the published stats copy and the TLS sockets cross
threads.  Stops the server (SIGTERM, by pid) and exits 1 if its stderr holds a TSan report.

Usage: tests/tsan/stress.py BINARY [SECONDS]
"""
import base64, json, os, random, signal, socket, ssl, subprocess, sys, tempfile, threading, time

binary = os.path.abspath(sys.argv[1])
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60
admin = "tsan-stress-admin-token-0123456789"

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

port = free_port()
work = tempfile.mkdtemp(prefix="vb-tsan-")
os.makedirs(os.path.join(work, "static"))
open(os.path.join(work, "static", "index.html"), "w").write("<!doctype html>" + "x" * 2000)
env = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(port), "THREADS": "4", "TLS_SELF_SIGNED": "1",
       "STATIC_DIR": os.path.join(work, "static"), "MAX_CONCURRENT_USERS": "3", "MAX_QUEUE_LENGTH": "500",
       "SESSION_DURATION_SECONDS": "4", "WARNING_SECONDS": "3,1", "HEARTBEAT_TIMEOUT_SECONDS": "3",
       "ADMISSION_GRACE_SECONDS": "2", "ADMIN_TOKEN": admin, "LOG_LEVEL": "warn",
       "TSAN_OPTIONS": os.environ.get("TSAN_OPTIONS", "")}
log = open(os.path.join(work, "server.log"), "wb")
server = subprocess.Popen([binary], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

def connect():
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

def read_http(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk: raise EOFError
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"): length = int(line.split(b":")[1])
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk: raise EOFError
        body += chunk
    return head, body[:length]

def request(s, method, target, headers=(), body=b""):
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"] + list(headers)
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return read_http(s)

def ws_frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

stop = time.monotonic() + seconds
counts = {"visits": 0, "pushes": 0, "errors": 0}
lock = threading.Lock()

def visitor(n):
    rnd = random.Random(n)
    while time.monotonic() < stop:
        try:
            s = connect()
            _, body = request(s, "POST", "/api/session?action=join")
            ticket = json.loads(body)["ticket"]
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET /api/session/ws?ticket={ticket} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            read_http(s)
            s.settimeout(0.5)
            for _ in range(rnd.randint(1, 8)):
                s.sendall(ws_frame(1, b'{"type":"heartbeat"}'))
                try:
                    got = s.recv(65536)
                    if not got: break
                    with lock: counts["pushes"] += 1
                except socket.timeout:
                    pass
            if rnd.random() < 0.5:  # leave properly, on a second connection; otherwise just vanish
                s2 = connect(); request(s2, "POST", "/api/session?action=leave", [f"X-Session-Ticket: {ticket}"]); s2.close()
            s.close()
            with lock: counts["visits"] += 1
        except Exception:
            with lock: counts["errors"] += 1
            time.sleep(0.05)

def poller(n):
    while time.monotonic() < stop:
        try:
            s = connect()
            for target in ["/api/session?action=stats", "/api/health", "/metrics", "/", "/api/session?action=stats"]:
                request(s, "GET", target)
            if n == 0:
                request(s, "POST", "/api/session?action=forceEndAll", [f"x-admin-token: {admin}"])
            s.close()
        except Exception:
            with lock: counts["errors"] += 1
            time.sleep(0.05)

try:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try: connect().close(); break
        except OSError: time.sleep(0.2)
    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(24)] + \
              [threading.Thread(target=poller, args=(i,)) for i in range(4)]
    for t in threads: t.start()
    while time.monotonic() < stop:
        time.sleep(2)
        server.send_signal(signal.SIGHUP)
    for t in threads: t.join(timeout=30)
finally:
    server.send_signal(signal.SIGTERM)
    try: server.wait(timeout=30)
    except subprocess.TimeoutExpired: server.kill(); server.wait()
text = open(os.path.join(work, "server.log"), "rb").read().decode(errors="replace")
reports = text.count("WARNING: ThreadSanitizer")
print(f"stress: {counts['visits']} visits, {counts['pushes']} pushes read, {counts['errors']} client errors; "
      f"server exit {server.returncode}; {reports} TSan report(s); log {work}/server.log")
sys.exit(1 if reports or server.returncode not in (0,) else 0)
