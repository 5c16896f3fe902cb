#!/usr/bin/env bash
# Brings up the real servers the integration tests talk to, on loopback only:
# PostgreSQL 15 (installed but stopped on a new machine) and Redis (not
# installed on a new machine). Idempotent: safe to run before every test run.
#
# It prints the environment the tests read, so callers can `eval` it:
#   eval "$(scripts/test-deps.sh)"
set -euo pipefail

log() { echo "test-deps: $*" >&2; }

# The test role's password is a fixed, throwaway value for a loopback-only
# server that holds nothing but test databases; it is not a deployment secret.
PGROLE=${LADDER_TEST_PGROLE:-ladder_test}
PGPASS=${LADDER_TEST_PGPASSWORD:-ladder_test}

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo "$@" || { log "need root for: $*"; exit 1; }
  else
    "$@"
  fi
}

# --- Redis ---------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server"
  need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >&2
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting redis-server on 127.0.0.1:6379"
  # No persistence: tests own their keys and clean up; this is a throwaway server.
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no \
    --logfile /tmp/ladder-test-redis.log >&2
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { log "redis did not come up"; exit 1; }

# --- PostgreSQL ------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing postgresql"
  need_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
PGVER=$(pg_lsclusters -h | awk 'NR==1{print $1}')
PGCLUSTER=$(pg_lsclusters -h | awk 'NR==1{print $2}')
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  log "starting PostgreSQL cluster $PGVER/$PGCLUSTER"
  need_root pg_ctlcluster "$PGVER" "$PGCLUSTER" start >&2
  for _ in $(seq 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { log "postgresql did not come up"; exit 1; }

# Tests create and drop their own databases, so the role needs CREATEDB; the
# credential-rotation test makes a throwaway role, so it needs CREATEROLE; the
# chaos test terminates its own backends, which a role may do to itself.
need_root su postgres -c "psql -q -v ON_ERROR_STOP=1 -d postgres" >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PGROLE}') THEN
    CREATE ROLE ${PGROLE} LOGIN CREATEDB CREATEROLE PASSWORD '${PGPASS}';
  ELSE
    ALTER ROLE ${PGROLE} LOGIN CREATEDB CREATEROLE PASSWORD '${PGPASS}';
  END IF;
END
\$\$;
SQL

# Databases left by earlier runs (a test's drop can race autovacuum, which
# only the superuser may interrupt) are dropped here; one with a session is
# in use by a run in progress and is left alone.
need_root su postgres -c "psql -X -q -At -d postgres" >&2 <<'SQL'
SELECT format('DROP DATABASE IF EXISTS %I', d.datname) FROM pg_database d
WHERE d.datname ~ '^(t|bench)_[0-9a-f_]+$' AND NOT d.datistemplate
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname) \gexec
SQL

echo "export LADDER_TEST_DATABASE_URL='postgres://${PGROLE}:${PGPASS}@127.0.0.1:5432/postgres?sslmode=disable'"
echo "export LADDER_TEST_REDIS_URL='redis://127.0.0.1:6379/0'"
