#!/bin/sh
# Entrypoint of the voice-broker-redis image: starts Debian's redis-server or redis-sentinel in
# one of three roles, with the configuration mounted at /etc/voice-broker-redis and the data in
# /data.
#
#   voice-broker-redis server      one Redis (docker/compose.scale.yml): redis.conf as mounted,
#                                  read-only; edits apply at the next restart.
#   voice-broker-redis node        a master or a replica under Sentinel: /data/redis.conf, made
#                                  at the first start, includes the mounted redis.conf and is
#                                  writable, because Sentinel rewrites it at a failover (which
#                                  node is the master must survive a restart).
#   voice-broker-redis sentinel    a sentinel: /data/sentinel.conf, made at the first start from
#                                  the mounted sentinel.conf plus the master to monitor; Sentinel
#                                  keeps its state (the current master, the other sentinels) in it.
#
# Settings (environment):
#   REDIS_PORT                 the port of server and node (6379)
#   REDIS_REPLICAOF            node: "host port" of the master to replicate at the first start
#                              (empty: start as the master)
#   SENTINEL_PORT              the sentinel's port (26379)
#   SENTINEL_MASTER            the monitored master's name (mymaster; REDIS_SENTINEL_MASTER of
#                              the instances)
#   SENTINEL_MASTER_ADDRESS    "host port" of the master at the first start (127.0.0.1 6379)
#   SENTINEL_QUORUM            sentinels that must agree the master is down (2)
#   SENTINEL_DOWN_AFTER_MS     how long the master may be silent before it is judged down (5000)
#   SENTINEL_FAILOVER_TIMEOUT_MS  how long one failover attempt may take (60000)
#   SENTINEL_AUTH_PASS         the master's password, when redis.conf sets requirepass
# Extra arguments are passed to redis-server / redis-sentinel (they override the files).
set -eu

CONF_DIR=/etc/voice-broker-redis
DATA_DIR=/data
role="${1:-server}"
[ "$#" -gt 0 ] && shift

case "$role" in
  server)
    exec redis-server "$CONF_DIR/redis.conf" --port "${REDIS_PORT:-6379}" "$@"
    ;;
  node)
    conf="$DATA_DIR/redis.conf"
    if [ ! -s "$conf" ]; then
      # The include comes first: what Sentinel rewrites later (replicaof) is written below it
      # and wins.
      {
        echo "include $CONF_DIR/redis.conf"
        echo "port ${REDIS_PORT:-6379}"
        if [ -n "${REDIS_REPLICAOF:-}" ]; then echo "replicaof $REDIS_REPLICAOF"; fi
      } >"$conf.tmp"
      mv "$conf.tmp" "$conf"
    fi
    exec redis-server "$conf" --port "${REDIS_PORT:-6379}" "$@"
    ;;
  sentinel)
    conf="$DATA_DIR/sentinel.conf"
    master="${SENTINEL_MASTER:-mymaster}"
    if [ ! -s "$conf" ]; then
      {
        cat "$CONF_DIR/sentinel.conf"
        echo
        echo "# Added at the first start by voice-broker-redis; Sentinel rewrites what follows."
        echo "sentinel monitor $master ${SENTINEL_MASTER_ADDRESS:-127.0.0.1 6379} ${SENTINEL_QUORUM:-2}"
        echo "sentinel down-after-milliseconds $master ${SENTINEL_DOWN_AFTER_MS:-5000}"
        echo "sentinel failover-timeout $master ${SENTINEL_FAILOVER_TIMEOUT_MS:-60000}"
        echo "sentinel parallel-syncs $master 1"
        if [ -n "${SENTINEL_AUTH_PASS:-}" ]; then echo "sentinel auth-pass $master $SENTINEL_AUTH_PASS"; fi
      } >"$conf.tmp"
      mv "$conf.tmp" "$conf"
    fi
    exec redis-sentinel "$conf" --port "${SENTINEL_PORT:-26379}" "$@"
    ;;
  *)
    echo "voice-broker-redis: unknown role '$role' (server, node or sentinel)" >&2
    exit 2
    ;;
esac
