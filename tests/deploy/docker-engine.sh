# shellcheck shell=bash
# A private Docker engine for the real-Docker checks (docker.sh, docker-scale.sh): its own
# dockerd (no iptables, no bridge: host networking only) on a socket in a temporary folder, a
# data root cached between runs, and Debian base images made with debootstrap from the host's
# apt mirror (no registry is reachable).  Sourced, never run; needs root.
#
# engine_start NAME   sets TMP, DATA_ROOT, DOCKER_HOST, DOCKER_BIN, DEBIAN_MIRROR and
#                     DEBIAN_SECURITY_MIRROR, takes the data root's lock, starts dockerd
# engine_stop         removes every container, stops dockerd, unmounts, removes TMP
#                     (call it from the EXIT trap)
# engine_base_images  debian:bookworm and debian:bookworm-slim, made once a day
# engine_copy_tree D  a private copy of the repository (no .git, builds, node_modules, .env*)
#
# Environment: VB_DOCKER_CACHE (default /var/tmp/voice-broker-docker; "none" = a throwaway
# data root), VB_KEEP_WORK=1 keeps the temporary folder for inspection.

DOCKERD_PID=''

docker() { "$DOCKER_BIN" "$@"; }

engine_unmount_under() {
  local prefix="$1" target
  findmnt -rn -o TARGET 2>/dev/null | awk -v p="$prefix" 'index($0, p) == 1' | sort -r |
    while IFS= read -r target; do
      umount -R "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
    done
}

engine_start() {
  local name="$1"
  apt_ensure dockerd:docker.io debootstrap:debootstrap docker-compose:docker-compose \
    curl:curl ss:iproute2 flock:util-linux npm:npm
  # Debian's own client matches the daemon; /usr/local/bin/docker may be a newer one without buildx.
  DOCKER_BIN=/usr/bin/docker
  [[ -x "$DOCKER_BIN" ]] || DOCKER_BIN="$(command -v docker)"
  export DOCKER_BIN

  TMP="$(mktemp -d "/tmp/vb-${name}.XXXXXX")"
  CACHE="${VB_DOCKER_CACHE:-/var/tmp/voice-broker-docker}"
  if [[ "$CACHE" == none ]]; then
    DATA_ROOT="$TMP/data"
  else
    DATA_ROOT="$CACHE/data"
  fi
  mkdir -p "$DATA_ROOT" "$TMP/exec"
  SOCK="$TMP/docker.sock"
  export DOCKER_HOST="unix://$SOCK"

  # One run at a time per data root: dockerd owns it exclusively.
  if [[ "$CACHE" != none ]]; then
    mkdir -p "$CACHE"
    exec 9>"$CACHE/lock"
    flock -w 900 9 || {
      echo "Another docker check holds $CACHE/lock." >&2
      exit 2
    }
  fi

  echo "== dockerd on $SOCK (data root $DATA_ROOT)"
  dockerd --iptables=false --ip6tables=false --bridge=none \
    --data-root "$DATA_ROOT" --exec-root "$TMP/exec" --pidfile "$TMP/dockerd.pid" \
    -H "unix://$SOCK" >"$TMP/dockerd.log" 2>&1 9>&- &
  DOCKERD_PID=$!
  if ! wait_until 60 docker info; then
    tail -n 30 "$TMP/dockerd.log" >&2
    echo "dockerd did not come up within 60 s" >&2
    exit 1
  fi

  DEBIAN_MIRROR="$(engine_host_mirror bookworm)"
  DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  DEBIAN_SECURITY_MIRROR="$(engine_host_mirror bookworm-security)"
  DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
  export DEBIAN_MIRROR DEBIAN_SECURITY_MIRROR
}

engine_stop() {
  [[ -n "${TMP:-}" ]] || return 0
  if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    local ids=()
    mapfile -t ids < <(timeout 20 "$DOCKER_BIN" ps -aq 2>/dev/null)
    ((${#ids[@]} > 0)) && timeout 60 "$DOCKER_BIN" rm -f "${ids[@]}" >/dev/null 2>&1
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    local deadline=$((SECONDS + 30))
    while kill -0 "$DOCKERD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID" 2>/dev/null
  fi
  engine_unmount_under "$TMP"
  engine_unmount_under "$DATA_ROOT"
  if [[ "${VB_KEEP_WORK:-0}" == 1 ]]; then
    echo "Kept $TMP"
  else
    rm -rf "$TMP"
  fi
}

engine_host_mirror() {
  apt-cache policy 2>/dev/null | awk -v suite="$1/main" '$3 == suite { print $2; exit }'
}

engine_base_date() {
  docker image inspect -f '{{index .Config.Labels "voice-broker.base-date"}}' "$1" 2>/dev/null
}

engine_base_images() {
  local today t0
  today="$(date -u +%Y%m%d)"
  if [[ "$(engine_base_date debian:bookworm)" == "$today" && "$(engine_base_date debian:bookworm-slim)" == "$today" ]]; then
    echo "== base images from today found in the cache"
    return 0
  fi
  # A new day's base invalidates every cached layer: drop the old images first.
  docker image prune -af >/dev/null 2>&1 || true
  echo "== debootstrap bookworm from $DEBIAN_MIRROR"
  t0=$SECONDS
  debootstrap --variant=minbase bookworm "$TMP/rootfs" "$DEBIAN_MIRROR" >"$TMP/debootstrap.log" 2>&1 || {
    tail -n 20 "$TMP/debootstrap.log" >&2
    exit 1
  }
  # Trim it the way Debian's -slim images are trimmed.
  rm -rf "$TMP/rootfs"/var/lib/apt/lists/* "$TMP/rootfs"/var/cache/apt/* \
    "$TMP/rootfs"/usr/share/doc/* "$TMP/rootfs"/usr/share/man/* "$TMP/rootfs"/usr/share/info/* \
    "$TMP/rootfs"/usr/share/locale/* "$TMP/rootfs"/var/log/*.log
  cat >"$TMP/rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  tar -C "$TMP/rootfs" -c . | docker import \
    --change 'CMD ["bash"]' --change "LABEL voice-broker.base-date=$today" \
    - debian:bookworm >/dev/null
  docker tag debian:bookworm debian:bookworm-slim
  rm -rf "$TMP/rootfs"
  echo "   made in $((SECONDS - t0)) s"
}

engine_copy_tree() {
  local dest="$1"
  mkdir -p "$dest"
  tar -C "$ROOT" --exclude=./.git --exclude='./build' --exclude='./build-*' \
    --exclude='./cmake-build-*' --exclude='node_modules' --exclude='./.env' --exclude='./.env.local' \
    -cf - . | tar -C "$dest" -xf -
}
