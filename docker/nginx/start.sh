#!/bin/sh
# Entrypoint of the voice-broker-nginx image.  Renders the mounted site
# (/etc/voice-broker-nginx/voice-broker-upstream.conf) into /tmp/voice-broker-nginx/ and runs
# nginx in the foreground.
#
#   voice-broker-nginx run       render, check, run nginx (the default)
#   voice-broker-nginx reload    render again, check, and reload nginx gracefully (open
#                                WebSockets stay with the old workers until they close)
#   voice-broker-nginx test      render and check only (nginx -t)
#
# Settings (environment), so the ports live in the compose file only:
#   VB_INSTANCES   the instances, "127.0.0.1:3001 127.0.0.1:3002 ...": written in place of the
#                  upstream's server lines, each with the first line's parameters (max_fails...)
#   VB_LISTEN      the listen address, e.g. 127.0.0.1:3000: written in place of the listen line
# Unset: the file is used as it is.
set -eu

SITE="${VB_NGINX_SITE:-/etc/voice-broker-nginx/voice-broker-upstream.conf}"
OUT_DIR=/tmp/voice-broker-nginx
OUT="$OUT_DIR/voice-broker.conf"

render() {
  [ -r "$SITE" ] || {
    echo "voice-broker-nginx: cannot read $SITE (mount docker/nginx there)" >&2
    exit 1
  }
  mkdir -p "$OUT_DIR"
  awk -v instances="${VB_INSTANCES:-}" -v listen="${VB_LISTEN:-}" '
    /^[[:space:]]*upstream[[:space:]]+voice_broker[[:space:]]*\{/ { in_upstream = 1 }
    in_upstream && /^[[:space:]]*}/ { in_upstream = 0 }
    in_upstream && instances != "" && $1 == "server" {
      if (!written) {
        params = $0
        sub(/^[[:space:]]*server[[:space:]]+[^[:space:];]+/, "", params)
        n = split(instances, list, /[[:space:],]+/)
        for (i = 1; i <= n; i++) if (list[i] != "") printf "    server %s%s\n", list[i], params
        written = 1
      }
      next
    }
    !in_upstream && listen != "" && $1 == "listen" { printf "    listen %s;\n", listen; next }
    { print }
  ' "$SITE" >"$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
}

case "${1:-run}" in
  run)
    render
    nginx -t -q
    exec nginx -g 'daemon off;'
    ;;
  reload)
    render
    nginx -t -q
    exec nginx -s reload
    ;;
  test)
    render
    exec nginx -t
    ;;
  *)
    echo "voice-broker-nginx: unknown command '$1' (run, reload or test)" >&2
    exit 2
    ;;
esac
