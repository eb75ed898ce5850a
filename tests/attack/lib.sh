# shellcheck shell=bash
# Shared by the attack scripts (testssl.sh, slowhttp.sh): the binary under test, a test CA and
# a certificate made now, voice-broker and nginx started on loopback by pid, and their stop.
# Sourced, never run.  Needs tests/deploy/lib.sh (pass/fail/summary, wait_until, apt_ensure).

ATTACK_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$ATTACK_HERE/../.." && pwd)"
# shellcheck source=tests/deploy/lib.sh
source "$ROOT/tests/deploy/lib.sh"

# The binary under test: VOICE_BROKER_BIN, else the usual build folders.  Sets BIN (absolute).
find_binary() {
  BIN="${VOICE_BROKER_BIN:-}"
  if [[ -z "$BIN" ]]; then
    local candidate
    for candidate in "$ROOT/build/release/voice-broker" "$ROOT/build/debug/voice-broker" "$ROOT/build/voice-broker"; do
      if [[ -x "$candidate" ]]; then
        BIN="$candidate"
        break
      fi
    done
  fi
  if [[ -z "$BIN" || ! -x "$BIN" ]]; then
    echo "No voice-broker binary${BIN:+ at $BIN}: build it (cmake --preset debug && cmake --build --preset debug) or set VOICE_BROKER_BIN." >&2
    exit 2
  fi
  BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
  echo "voice-broker under test: $BIN ($("$BIN" --version 2>&1 | head -n 1))"
}

# Everything a run makes lives in $WORK; every process it starts is in STARTED_PIDS and is
# stopped on exit, whatever happened.
WORK="$(mktemp -d /tmp/vb-attack.XXXXXX)"
chmod 755 "$WORK"
STARTED_PIDS=()

stop_pid() {
  local pid="$1" deadline
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

attack_cleanup() {
  local code=$? pid
  set +e
  for pid in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do stop_pid "$pid"; done
  if [[ "${VB_KEEP_WORK:-0}" == 1 ]]; then echo "Kept $WORK"; else rm -rf "$WORK"; fi
  exit "$code"
}
trap attack_cleanup EXIT
trap 'exit 130' INT TERM

# A test CA and a server certificate it signed, shaped like a Let's Encrypt one (ECDSA P-256,
# 90 days, SAN, serverAuth, a CRL distribution point) so that certificate checks judge the TLS
# set-up, not the test certificate.  The CRL address is never fetched (no --phone-out).
# Sets CA_PEM, CERT_PEM, KEY_PEM.
make_test_certificate() {
  local dir="$WORK/pki"
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/O=voice-broker tests/CN=voice-broker test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$dir/key.pem" -out "$dir/server.csr" >/dev/null 2>&1
  cat >"$dir/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
crlDistributionPoints = URI:http://127.0.0.1/voice-broker-test-ca.crl
EOF
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 90 \
    -sha256 -extfile "$dir/server.ext" -out "$dir/cert.pem" >/dev/null 2>&1
  chmod 644 "$dir/key.pem"  # nginx's worker and the test read it; it lives in a private temp folder
  # shellcheck disable=SC2034 # read by the scripts that source this file
  CA_PEM="$dir/ca.pem" CERT_PEM="$dir/cert.pem" KEY_PEM="$dir/key.pem"
}

# start_voice_broker NAME [VAR=value...]: runs the binary from a folder of its own (no stray
# .env.local) on 127.0.0.1 and a port it picks itself (PORT=0, read back from its log).
# Sets VB_PID and VB_PORT; the log is $WORK/NAME.log.
start_voice_broker() {
  local name="$1"
  shift
  mkdir -p "$WORK/$name"
  (
    cd "$WORK/$name" || exit 1
    exec env HOST=127.0.0.1 PORT=0 STATIC_DIR="$ROOT/static" LOG_FORMAT=text LOG_LEVEL=info OPENAI_API_KEY= \
      ADMIN_TOKEN= "$@" "$BIN"
  ) >"$WORK/$name.log" 2>&1 &
  VB_PID=$!
  STARTED_PIDS+=("$VB_PID")
  VB_PORT=''
  local line deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if line="$(grep -m1 -oE 'listening on https?://127\.0\.0\.1:[0-9]+' "$WORK/$name.log" 2>/dev/null)"; then
      # shellcheck disable=SC2034 # read by the scripts that source this file
      VB_PORT="${line##*:}"
      return 0
    fi
    kill -0 "$VB_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "voice-broker ($name) did not start:" >&2
  tail -n 20 "$WORK/$name.log" >&2
  return 1
}

port_listening() { ss -Htln "sport = :$1" | grep -q .; }

# start_nginx NAME SITE_FILE [WORKER_CONNECTIONS]: a private nginx (own prefix, pid and logs
# under $WORK/NAME, not the system service) that includes SITE_FILE in its http block, with
# NGINX_WORKERS worker processes (default 1).  Waits for every port in NGINX_PORTS.  Sets NGINX_PID.
start_nginx() {
  local name="$1" site="$2" connections="${3:-1024}" prefix="$WORK/$1" port
  mkdir -p "$prefix/logs"
  cat >"$prefix/nginx.conf" <<EOF
daemon off;
worker_processes ${NGINX_WORKERS:-1};
worker_rlimit_nofile $((connections * 2 + 64));
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log notice;
events { worker_connections $connections; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $prefix/logs/access.log;
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    include $site;
}
EOF
  "$(command -v nginx)" -t -q -p "$prefix" -c "$prefix/nginx.conf" || return 1
  "$(command -v nginx)" -p "$prefix" -c "$prefix/nginx.conf" >"$prefix/stdout.log" 2>&1 &
  NGINX_PID=$!
  STARTED_PIDS+=("$NGINX_PID")
  for port in "${NGINX_PORTS[@]}"; do
    if ! wait_until 20 port_listening "$port"; then
      echo "nginx ($name) did not start:" >&2
      cat "$prefix/stdout.log" "$prefix/logs/error.log" >&2 2>/dev/null
      return 1
    fi
  done
}

# nginx_example_site OUT HTTPS_PORT HTTP_PORT UPSTREAM_PORT: nginx.example.conf as shipped,
# with only the domain, certificate paths, ports and upstream replaced (each replacement must
# hit as often as expected, so a changed example is noticed).
nginx_example_site() {
  local out="$1" https_port="$2" http_port="$3" upstream_port="$4"
  cp "$ROOT/nginx.example.conf" "$out"
  replace_in_site "$out" "your_domain.com/fullchain.pem" "${CERT_PEM##*/}" 1 &&
    replace_in_site "$out" "your_domain.com/privkey.pem" "${KEY_PEM##*/}" 1 &&
    replace_in_site "$out" "/etc/letsencrypt/live/" "$(dirname "$CERT_PEM")/" 2 &&
    replace_in_site "$out" "your_domain.com" "localhost" 2 &&
    replace_in_site "$out" "root /var/www/certbot;" "root $WORK/certbot;" 1 &&
    replace_in_site "$out" "server 127.0.0.1:3000;" "server 127.0.0.1:$upstream_port;" 1 &&
    replace_in_site "$out" "listen 80;" "listen 127.0.0.1:$http_port;" 1 &&
    replace_in_site "$out" "listen 443 ssl http2;" "listen 127.0.0.1:$https_port ssl http2;" 1 &&
    replace_in_site "$out" "listen [::]:80;" "" 1 &&
    replace_in_site "$out" "listen [::]:443 ssl http2;" "" 1
}

replace_in_site() {
  local file="$1" from="$2" to="$3" want="$4" got
  got="$(grep -v '^[[:space:]]*#' "$file" | grep -cF -- "$from" || true)"
  if [[ "$got" != "$want" ]]; then
    echo "nginx.example.conf: expected $want line(s) with '$from', found $got" >&2
    return 1
  fi
  FROM="$from" TO="$to" perl -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g unless /^\s*#/' "$file"
}
