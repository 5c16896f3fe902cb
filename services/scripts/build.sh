#!/bin/sh
# Builds one service as a static binary. The Makefile and every Dockerfile run
# this same script, so the Go part of an image is what the tests build.
#   scripts/build.sh <service> <out-dir>     (GOOS/GOARCH from the environment)
set -eu
svc=$1
out=$2
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$out/$svc" "./cmd/$svc"
