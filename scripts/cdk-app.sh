#!/usr/bin/env bash
# The CDK CLI runs this as the app (cdk.json "app"). The pinned Node 24 in
# node_modules/.bin must come first on PATH: jsii starts `node` from PATH, and
# the machine's Node 20 is end-of-life (slower, and a banner on every run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
cd "$root"
exec go run ./app "$@"
