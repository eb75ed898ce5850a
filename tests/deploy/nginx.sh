#!/usr/bin/env bash
# Runs nginx.example.conf for real: a private nginx (own prefix, pid and logs in a temp folder,
# not the system service) in front of a real voice-broker, with a certificate made at test time.
# Checks `nginx -t`, HTTPS to the page and the API, a WebSocket push through the proxy, the
# client's address reaching the server's access log through X-Forwarded-For, the HTTP->HTTPS
# redirect and the ACME webroot.  Everything listens on 127.0.0.1.
#
#   VOICE_BROKER_BIN=build/voice-broker tests/deploy/nginx.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/deploy/lib.sh
source "$HERE/lib.sh"

# The binary under test: VOICE_BROKER_BIN, else the usual build folders.
BIN="${VOICE_BROKER_BIN:-}"
if [[ -z "$BIN" ]]; then
  for candidate in "$ROOT/build/voice-broker" "$ROOT/build/release/voice-broker" "$ROOT/build/debug/voice-broker"; do
    if [[ -x "$candidate" ]]; then
      BIN="$candidate"
      break
    fi
  done
fi
if [[ -z "$BIN" || ! -x "$BIN" ]]; then
  echo "No voice-broker binary${BIN:+ at $BIN}: build it (cmake -S . -B build && cmake --build build) or set VOICE_BROKER_BIN." >&2
  exit 2
fi
echo "voice-broker under test: $BIN ($("$BIN" --version 2>&1 | head -n 1))"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

apt_ensure nginx:nginx openssl:openssl curl:curl ss:iproute2 node:nodejs npm:npm perl:perl
NGINX="$(command -v nginx)"
if [[ ! -d "$HERE/node_modules/ws" ]]; then
  (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

DOMAIN=vb.test
CLIENT_IP=127.0.0.2 # a second loopback address, so the client is told apart from nginx
T="$(mktemp -d /tmp/vb-nginx.XXXXXX)"
chmod 755 "$T"
NGINX_PID='' APP_PID=''

stop_pid() {
  local pid="$1" deadline
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    return 1
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local code=$?
  set +e
  stop_pid "$NGINX_PID"
  stop_pid "$APP_PID"
  if [[ "${VB_KEEP_WORK:-0}" == 1 ]]; then echo "Kept $T"; else rm -rf "$T"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HTTP_PORT=18080 HTTPS_PORT=18443
ss -Htln "sport = :$HTTP_PORT" | grep -q . && HTTP_PORT="$(free_port)"
ss -Htln "sport = :$HTTPS_PORT" | grep -q . && HTTPS_PORT="$(free_port)"

# --- a certificate made now, where certbot would put it -----------------------------------
LIVE="$T/letsencrypt/live/$DOMAIN"
mkdir -p "$LIVE"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
  -keyout "$LIVE/privkey.pem" -out "$LIVE/fullchain.pem" >/dev/null 2>&1
chmod 600 "$LIVE/privkey.pem"

WEBROOT="$T/certbot-webroot"
CHALLENGE_TOKEN="test-token-$RANDOM$RANDOM"
mkdir -p "$WEBROOT/.well-known/acme-challenge"
printf '%s.key-authorization\n' "$CHALLENGE_TOKEN" >"$WEBROOT/.well-known/acme-challenge/$CHALLENGE_TOKEN"
chmod -R a+rX "$WEBROOT"

# --- voice-broker, from a folder of its own (no stray .env.local), on 127.0.0.1 -----------
# PORT=0: the server picks a free port and logs it, so no other program can race for it.
ADMIN_TOKEN="nginx-test-admin-token-$RANDOM$RANDOM"
mkdir -p "$T/app"
(
  cd "$T/app"
  exec env HOST=127.0.0.1 PORT=0 STATIC_DIR="$ROOT/static" TRUSTED_PROXIES=127.0.0.1 \
    LOG_FORMAT=text LOG_LEVEL=info ADMIN_TOKEN="$ADMIN_TOKEN" OPENAI_API_KEY= THREADS=2 \
    "$BIN"
) >"$T/app.log" 2>&1 &
APP_PID=$!
APP_PORT=''
listening_port() {
  local line
  line="$(grep -m1 -oE 'listening on https?://127\.0\.0\.1:[0-9]+' "$T/app.log")" || return 1
  APP_PORT="${line##*:}"
}
if ! wait_until 20 listening_port || ! listening_port ||
  ! wait_until 10 curl -fsS --max-time 2 "http://127.0.0.1:$APP_PORT/api/health"; then
  fail "voice-broker starts on 127.0.0.1 (PORT=0)" "$(tail -n 20 "$T/app.log")"
  summary
  exit 1
fi
pass "voice-broker starts on 127.0.0.1:$APP_PORT (PORT=0)"

# --- the site file: the example with test domain, ports and paths -------------------------
# Each substitution must hit exactly as many (non-comment) lines as expected, so a changed
# example cannot slip past the test untested.
SITE="$T/nginx/site.conf"
mkdir -p "$T/nginx/logs"
cp "$ROOT/nginx.example.conf" "$SITE"
substitute() {
  local name="$1" from="$2" to="$3" want="$4" got
  got="$(grep -v '^[[:space:]]*#' "$SITE" | grep -cF -- "$from" || true)"
  if [[ "$got" != "$want" ]]; then
    fail "nginx.example.conf has $want line(s) with '$from' ($name)" "found $got"
    return 0
  fi
  FROM="$from" TO="$to" perl -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g unless /^\s*#/' "$SITE"
}
substitute "domain" "your_domain.com" "$DOMAIN" 4
substitute "certificate folder" "/etc/letsencrypt/live/$DOMAIN" "$LIVE" 2
substitute "certbot webroot" "root /var/www/certbot;" "root $WEBROOT;" 1
substitute "upstream" "server 127.0.0.1:3000;" "server 127.0.0.1:$APP_PORT;" 1
substitute "port 80" "listen 80;" "listen 127.0.0.1:$HTTP_PORT;" 1
substitute "port 443" "listen 443 ssl http2;" "listen 127.0.0.1:$HTTPS_PORT ssl http2;" 1
substitute "access log" "access_log /var/log/nginx/voice-broker.access.log voice_broker;" "access_log $T/nginx/logs/site-access.log voice_broker;" 2
substitute "IPv6 port 80" "listen [::]:80;" "" 1
substitute "IPv6 port 443" "listen [::]:443 ssl http2;" "" 1
if grep -n 'listen' "$SITE" | grep -v "127.0.0.1:" | grep -q 'listen .*[0-9]'; then
  fail "every listen directive of the test site is on 127.0.0.1" "$(grep -n listen "$SITE")"
fi

write_main_conf() {
  cat >"$1" <<EOF
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log notice;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $T/nginx/logs/access.log;
    client_body_temp_path $T/nginx/client_body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    include $2;
}
EOF
}
write_main_conf "$T/nginx/nginx.conf" "$SITE"

# The live channel stays open for a whole wait plus a whole session: its read timeout must be
# far above the 60 s default (and above the server's ping interval).
ws_read_timeout="$(awk '/location = \/api\/session\/ws/ { inside = 1 } inside && /proxy_read_timeout/ { gsub(/;/, "", $2); print $2; exit } inside && /^    }/ { inside = 0 }' "$SITE")"
case "$ws_read_timeout" in
  *h | *d) pass "the WebSocket location has a long proxy_read_timeout ($ws_read_timeout)" ;;
  *m) if ((${ws_read_timeout%m} >= 10)); then pass "the WebSocket location has a long proxy_read_timeout ($ws_read_timeout)"; else fail "the WebSocket location has a long proxy_read_timeout" "$ws_read_timeout"; fi ;;
  *) fail "the WebSocket location has a long proxy_read_timeout" "found '${ws_read_timeout}'" ;;
esac

check "nginx -t accepts the example (with certificates)" "$NGINX" -t -p "$T/nginx" -c "$T/nginx/nginx.conf"

# Before the first certificate exists only the part above the HTTPS server is installed.
sed '/^# --- HTTPS server/,$d' "$SITE" >"$T/nginx/bootstrap.conf"
write_main_conf "$T/nginx/nginx-bootstrap.conf" "$T/nginx/bootstrap.conf"
if grep -q 'ssl_certificate' "$T/nginx/bootstrap.conf"; then
  fail "the bootstrap part (before the first certificate) has no TLS"
else
  check "nginx -t accepts the bootstrap part alone (no certificate yet)" \
    "$NGINX" -t -p "$T/nginx" -c "$T/nginx/nginx-bootstrap.conf"
fi

"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" >"$T/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
port_open() { ss -Htln "sport = :$1" | grep -q .; }
if ! wait_until 20 port_open "$HTTPS_PORT" || ! wait_until 5 port_open "$HTTP_PORT"; then
  fail "nginx starts" "$(cat "$T/nginx/stdout.log" "$T/nginx/logs/error.log" 2>/dev/null | tail -n 20)"
  summary
  exit 1
fi
pass "nginx starts on 127.0.0.1:$HTTP_PORT and 127.0.0.1:$HTTPS_PORT"
listening_on_loopback_only() {
  local port address
  for port in "$HTTP_PORT" "$HTTPS_PORT" "$APP_PORT"; do
    for address in $(ss -Htln "sport = :$port" | awk '{print $4}'); do
      [[ "$address" == "127.0.0.1:$port" ]] || return 1
    done
  done
}
check "nginx and voice-broker listen on 127.0.0.1 only" listening_on_loopback_only

HTTPS="https://$DOMAIN:$HTTPS_PORT"
HTTP="http://$DOMAIN:$HTTP_PORT"
# Requests as a browser on another address would make them: verified TLS, SNI, 127.0.0.2.
tls_curl() {
  curl -sS --max-time 10 --interface "$CLIENT_IP" --cacert "$LIVE/fullchain.pem" \
    --resolve "$DOMAIN:$HTTPS_PORT:127.0.0.1" "$@"
}
http_curl() {
  curl -sS --max-time 10 --interface "$CLIENT_IP" --resolve "$DOMAIN:$HTTP_PORT:127.0.0.1" "$@"
}

# --- HTTPS: page, API, headers ------------------------------------------------------------
page="$(tls_curl -w '\n%{http_code} %{http_version}' "$HTTPS/" 2>&1 || true)"
expect_output "HTTPS / answers 200 over HTTP/2" "200 2" "$(tail -n 1 <<<"$page")"
expect_output "HTTPS / serves the page" "<html" "$page"

health="$(tls_curl "$HTTPS/api/health" 2>&1 || true)"
expect_output "HTTPS /api/health answers status ok" '"status":"ok"' "$health"

headers="$(tls_curl -D - -o /dev/null "$HTTPS/api/health" 2>&1 || true)"
expect_output "X-Forwarded-Proto reaches the server (it sends HSTS over https)" \
  "strict-transport-security" "${headers,,}"

check "TLS 1.3 is accepted" tls_curl -o /dev/null --tlsv1.3 "$HTTPS/api/health"
check "TLS 1.2 is accepted" tls_curl -o /dev/null --tlsv1.2 --tls-max 1.2 "$HTTPS/api/health"
# Debian's OpenSSL refuses TLS 1.0/1.1 whatever nginx says, so a live probe could not fail:
# the configuration itself must allow 1.2 and 1.3 only.
protocols="$(grep -E '^[[:space:]]*ssl_protocols' "$SITE" | sed 's/^[[:space:]]*//')"
check "ssl_protocols allows TLS 1.2 and 1.3 only" test "$protocols" = "ssl_protocols TLSv1.2 TLSv1.3;"

gz_headers="$(tls_curl -D - -o /dev/null -H 'Accept-Encoding: gzip' "$HTTPS/app.js" 2>&1 || true)"
expect_output "text is served gzip-compressed" "content-encoding: gzip" "${gz_headers,,}"

big_body="$(head -c 100000 /dev/zero | tr '\0' 'a')"
code="$(tls_curl -o /dev/null -w '%{http_code}' -X POST --data-binary "$big_body" \
  "$HTTPS/api/session?action=join" 2>&1 || true)"
expect_output "client_max_body_size refuses a 100 KB body with 413" "413" "$code"

code="$(tls_curl -o /dev/null -w '%{http_code}' "$HTTPS/metrics" 2>&1 || true)"
expect_output "/metrics is not exposed through nginx" "404" "$code"

# --- WebSocket through nginx ----------------------------------------------------------------
join="$(tls_curl -D "$T/join.headers" -X POST "$HTTPS/api/session?action=join" 2>&1 || true)"
ticket=''
if [[ "$join" =~ \"ticket\"[[:space:]]*:[[:space:]]*\"([A-Za-z0-9_-]+)\" ]]; then
  ticket="${BASH_REMATCH[1]}"
  pass "POST /api/session?action=join through nginx hands out a ticket"
else
  fail "POST /api/session?action=join through nginx hands out a ticket" "$join"
fi
cookie="$(grep -i '^set-cookie:' "$T/join.headers" || true)"
expect_output "the ticket cookie is Secure behind https (X-Forwarded-Proto)" "secure" "${cookie,,}"

ws_output="$(node "$HERE/ws-client.js" "wss://$DOMAIN:$HTTPS_PORT/api/session/ws?ticket=$ticket" \
  --resolve-to 127.0.0.1 --ca "$LIVE/fullchain.pem" --origin "$HTTPS" --local-address "$CLIENT_IP" \
  --expect-type status --timeout-ms 10000 2>&1)" && code=0 || code=$?
expect_code "a WebSocket through nginx to /api/session/ws receives a status push" 0 "$code" "$ws_output"
expect_output "the pushed status is the visitor's" '"type":"status"' "$ws_output"

# --- tickets never reach nginx's logs (the WebSocket URL carries one in ?ticket=) -------------
if grep -rqF -- "$ticket" "$T/nginx/logs/"; then
  fail "no ticket in nginx's logs (log_format voice_broker logs \$uri, not \$request)" "$(grep -rlF -- "$ticket" "$T/nginx/logs/")"
elif grep -qF "/api/session/ws" "$T/nginx/logs/site-access.log"; then
  pass "nginx logs the live channel's path without its ?ticket= query"
else
  fail "nginx logs the live channel's path without its ?ticket= query" "$(tail -n 5 "$T/nginx/logs/site-access.log")"
fi

# --- the client's address in the server's access log ----------------------------------------
marker="/xff-probe-$RANDOM$RANDOM"
tls_curl -o /dev/null "$HTTPS$marker" || true
spoof_marker="/xff-spoof-$RANDOM$RANDOM"
tls_curl -o /dev/null -H 'X-Forwarded-For: 198.51.100.23' "$HTTPS$spoof_marker" || true
logged() { grep -F -- "$1" "$T/app.log"; }
if wait_until 5 logged "$spoof_marker"; then :; fi
expect_output "the server logs the client's address (X-Forwarded-For), not nginx's" \
  "$CLIENT_IP GET $marker" "$(logged "$marker" || true)"
expect_output "a forged X-Forwarded-For from the client is not believed" \
  "$CLIENT_IP GET $spoof_marker" "$(logged "$spoof_marker" || true)"
expect_output "the WebSocket upgrade is logged with the client's address" \
  "$CLIENT_IP GET /api/session/ws" "$(logged "/api/session/ws" || true)"

# --- port 80: redirect, except the ACME challenge --------------------------------------------
redirect="$(http_curl -o /dev/null -w '%{http_code} %{redirect_url}' "$HTTP/some/page?x=1" 2>&1 || true)"
expect_output "port 80 redirects to https with the same path" "301 https://$DOMAIN/some/page?x=1" "$redirect"
challenge="$(http_curl -w '\n%{http_code} %{content_type}' "$HTTP/.well-known/acme-challenge/$CHALLENGE_TOKEN" 2>&1 || true)"
expect_output "the ACME challenge is served from the webroot over plain HTTP" "$CHALLENGE_TOKEN.key-authorization" "$challenge"
expect_output "the ACME challenge is 200 text/plain" "200 text/plain" "$(tail -n 1 <<<"$challenge")"
code="$(http_curl -o /dev/null -w '%{http_code}' "$HTTP/.well-known/acme-challenge/missing" 2>&1 || true)"
expect_output "an unknown challenge is 404, not a redirect" "404" "$code"

# --- logs and shutdown -------------------------------------------------------------------------
# The 413 above is logged on purpose; anything else is a fault.
errors="$(grep -E '\[(error|crit|alert|emerg)\]' "$T/nginx/logs/error.log" | grep -v 'client intended to send too large body' || true)"
if [[ -z "$errors" ]]; then pass "nginx's error log has no errors"; else fail "nginx's error log has no errors" "$errors"; fi
if grep -qF "$ADMIN_TOKEN" "$T/app.log" || { [[ -n "$ticket" ]] && grep -qF "$ticket" "$T/app.log"; }; then
  fail "the server's log holds no admin token or ticket"
else
  pass "the server's log holds no admin token or ticket"
fi

t0=$SECONDS
if stop_pid "$APP_PID"; then
  pass "voice-broker stops on SIGTERM ($((SECONDS - t0)) s)"
else
  fail "voice-broker stops on SIGTERM" "$(tail -n 10 "$T/app.log")"
fi
APP_PID=''

summary
