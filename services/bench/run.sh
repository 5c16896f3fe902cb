#!/usr/bin/env bash
# Services benchmark (make bench-services): vote, worker and result figures
# beside the raw Redis and PostgreSQL limits measured in the same run.
# Expects LADDER_TEST_DATABASE_URL and LADDER_TEST_REDIS_URL, as printed by
# scripts/test-deps.sh. Flags are passed on to the driver (see -h).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench "$@"
