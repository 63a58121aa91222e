#!/bin/sh
# install-deps.sh - the Debian packages qshim builds and tests with (README "Dependencies").
set -eu
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
    build-essential libssl-dev libconfig-dev libcmocka-dev zlib1g-dev \
    openssl ca-certificates curl valgrind \
    python3 python3-requests python3-httpx python3-aiohttp \
    librsvg2-bin
