#!/bin/sh
# Measures certops against HAProxy, nginx and a plain Go crypto/tls server
# on loopback (see bench/peers/main.go). Not part of the test suite.
#
#   bench/peers.sh [-n 10000] [-rounds 4] [-handshakes 1000] [-rotations 3] [-valid 2160h] [-baseline certops-main] [-only REGEXP]
set -eu
cd "$(dirname "$0")/.."
missing=""
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
command -v nginx >/dev/null 2>&1 || missing="$missing nginx"
if [ -n "$missing" ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
go build -o "${TMPDIR:-/tmp}/certops-peers" ./bench/peers
exec "${TMPDIR:-/tmp}/certops-peers" "$@"
