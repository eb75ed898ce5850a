#!/usr/bin/env bash
# Debian's testssl.sh against voice-broker's own TLS and, with the same certificate, against nginx
# set up from nginx.example.conf (in front of a second voice-broker, as deployed).  Both on
# 127.0.0.1; the certificate is made now by a throwaway test CA that testssl is told to trust.
#
# Passes when voice-broker has no finding of severity MEDIUM or higher (one exception, checked
# below: BREACH on the static page).  Prints both servers' findings side by side.
#
# What runs: protocols (-p), cipher categories (-s), forward secrecy (-f), server preferences
# and per-protocol cipher order (-P), server defaults and certificate (-S), HTTP headers (-h),
# every vulnerability check (-U: Heartbleed, CCS, Ticketbleed, ROBOT, secure and client-initiated
# renegotiation, CRIME, BREACH, POODLE, TLS_FALLBACK_SCSV, SWEET32, FREAK, DROWN, LOGJAM, BEAST,
# LUCKY13, RC4) and implementation bugs (-g: GREASE, ClientHello size limits).
# What is skipped, and why: testssl's default "each cipher" run (-e, 370 handshakes: the suites a
# server offers are already listed completely by -P and -f) and client simulation (-c: reports
# which browser would pick what, information only, no severity); DNS look-ups (--nodns none) and
# any CRL/OCSP fetch (no --phone-out), since nothing may leave this machine.  About 70 s.
#
#   VOICE_BROKER_BIN=build/debug/voice-broker tests/attack/testssl.sh
set -euo pipefail

# shellcheck source=tests/attack/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

find_binary
apt_ensure testssl:testssl.sh nginx:nginx openssl:openssl jq:jq curl:curl ss:iproute2 perl:perl

make_test_certificate

# voice-broker serving TLS itself.
start_voice_broker direct TLS_CERT_FILE="$CERT_PEM" TLS_KEY_FILE="$KEY_PEM"
DIRECT_PORT="$VB_PORT"

# nginx.example.conf in front of a plain voice-broker, with the same certificate.
start_voice_broker upstream TRUSTED_PROXIES=127.0.0.1
UPSTREAM_PORT="$VB_PORT"
NGINX_HTTPS_PORT="$(free_port)"
NGINX_HTTP_PORT="$(free_port)"
while [[ "$NGINX_HTTP_PORT" == "$NGINX_HTTPS_PORT" ]]; do NGINX_HTTP_PORT="$(free_port)"; done
mkdir -p "$WORK/certbot"
nginx_example_site "$WORK/site.conf" "$NGINX_HTTPS_PORT" "$NGINX_HTTP_PORT" "$UPSTREAM_PORT"
NGINX_PORTS=("$NGINX_HTTPS_PORT" "$NGINX_HTTP_PORT")
start_nginx nginx "$WORK/site.conf"

# Both scans at once: testssl spends most of its time waiting on its own subprocesses.
scan() {
  local name="$1" port="$2"
  testssl --quiet --color 0 --warnings off --nodns none --add-ca "$CA_PEM" --connect-timeout 10 --openssl-timeout 10 \
    -p -s -f -P -S -h -U -g --jsonfile "$WORK/$name.json" "127.0.0.1:$port" >"$WORK/$name.txt" 2>&1 || true
}
started=$SECONDS
scan voice-broker "$DIRECT_PORT" &
scan_pids=($!)
scan nginx "$NGINX_HTTPS_PORT" &
scan_pids+=($!)
STARTED_PIDS+=("${scan_pids[@]}")
wait "${scan_pids[@]}" || true
echo "testssl scans took $((SECONDS - started)) s"

for name in voice-broker nginx; do
  if ! jq -e 'length > 20' "$WORK/$name.json" >/dev/null 2>&1; then
    fail "testssl scanned $name" "$(tail -n 20 "$WORK/$name.txt")"
    summary
    exit 1
  fi
done

# ---- side by side --------------------------------------------------------------------------------
rank() { jq -r '.[] | "\(.id)\t\(.severity)\t\(.finding)"' "$1"; }
rank "$WORK/voice-broker.json" | sort -t$'\t' -k1,1 -u >"$WORK/vb.tsv"
rank "$WORK/nginx.json" | sort -t$'\t' -k1,1 -u >"$WORK/ng.tsv"
join -t$'\t' -a1 -a2 -e '-' -o 0,1.2,1.3,2.2,2.3 "$WORK/vb.tsv" "$WORK/ng.tsv" >"$WORK/both.tsv"

echo
echo "Findings other than OK/INFO on either server (severity, then testssl's words):"
printf '%-28s | %-9s %-45s | %-9s %-45s\n' "check" "v-broker" "" "nginx" ""
printf -- '-----------------------------+-----------------------------------------------------------+----------------------------------------------------------\n'
awk -F'\t' '($2 != "OK" && $2 != "INFO" && $2 != "-") || ($4 != "OK" && $4 != "INFO" && $4 != "-") {
  printf "%-28s | %-9s %-45.45s | %-9s %-45.45s\n", $1, $2, $3, $4, $5 }' "$WORK/both.tsv"
echo
echo "Where the two differ (OK/INFO included):"
awk -F'\t' '$2 != $4 || $3 != $5 {
  if ($1 ~ /^(cert_serialNumber|cert_fingerprint|cert_notBefore|cert_notAfter|cert_expirationStatus|cert_validityPeriod|TLS_timestamp|HTTP_clock_skew|HTTP_headerTime|service|pre_128cipher|scanTime|overall_grade|SSL_sessionID_support|sessionresumption)/) next
  printf "%-28s | %-9s %-45.45s | %-9s %-45.45s\n", $1, $2, $3, $4, $5 }' "$WORK/both.tsv"
echo
for name in voice-broker nginx; do
  printf '%-13s severities: %s\n' "$name" "$(jq -r '[.[].severity] | group_by(.) | map("\(.[0]) \(length)") | join(", ")' "$WORK/$name.json")"
done
echo

# ---- verdict (voice-broker only) ----------------------------------------------------------------
# BREACH needs a secret and attacker-chosen text in the same compressed answer.  testssl can only
# GET "/", the static page, which voice-broker serves gzip-compressed and which holds neither.
# The answers that do hold a secret (the ticket in join's body) must never be compressed: that is
# checked here, and only then is BREACH on "/" accepted.
join_headers="$(curl -sS --max-time 10 --cacert "$CA_PEM" -D - -o "$WORK/join.body" -H 'Accept-Encoding: gzip, deflate, br' \
  -X POST "https://localhost:$DIRECT_PORT/api/session?action=join" --resolve "localhost:$DIRECT_PORT:127.0.0.1" 2>&1 || true)"
secret_answers_uncompressed=false
if grep -q '"ticket"' "$WORK/join.body" 2>/dev/null && ! grep -qi '^content-encoding:' <<<"$join_headers"; then
  secret_answers_uncompressed=true
  pass "the answer that carries a ticket (join) is not compressed, even when the client asks for gzip"
else
  fail "the answer that carries a ticket (join) is not compressed, even when the client asks for gzip" "$join_headers"
fi

while IFS=$'\t' read -r id severity finding; do
  case "$severity" in MEDIUM | HIGH | CRITICAL) ;; *) continue ;; esac
  if [[ "$id" == BREACH && "$secret_answers_uncompressed" == true && "$finding" == *"only supplied '/' tested"* ]]; then
    pass "BREACH ($severity) on the static page '/' accepted: no secret in it, and secret-bearing answers are never compressed"
    continue
  fi
  fail "voice-broker: $id is $severity" "$finding"
done <"$WORK/vb.tsv"

# The checks the issue names must have run and be clean.
for id in secure_renego secure_client_renego heartbleed CCS ticketbleed ROBOT CRIME_TLS POODLE_SSL fallback_SCSV SWEET32 FREAK \
  DROWN LOGJAM BEAST LUCKY13 RC4 SSLv2 SSLv3 TLS1 TLS1_1 TLS1_2 TLS1_3 HSTS_time; do
  severity="$(awk -F'\t' -v id="$id" '$1 == id { print $2 }' "$WORK/vb.tsv")"
  case "$severity" in
    OK | INFO | LOW) pass "voice-broker: $id ran ($severity: $(awk -F'\t' -v id="$id" '$1 == id { print $3 }' "$WORK/vb.tsv"))" ;;
    '') fail "voice-broker: testssl's $id check ran" "no such finding in the JSON" ;;
    *) : ;;  # reported above
  esac
done
echo "(testssl.sh run took $SECONDS s)"
summary
