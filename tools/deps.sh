#!/usr/bin/env bash
# deps.sh: installs the Debian packages gan-tools needs to build, test and run its demo.
# As root it runs apt-get; otherwise it prints the one command to run.
set -eu
PKGS="build-essential libopenblas-dev liblapacke-dev libpng-dev zlib1g-dev libcjson-dev
bats bats-assert bats-support python3-numpy python3-scipy python3-torch python3-pil dataset-fashion-mnist
clang imagemagick gnuplot-nox libopenmpi-dev openmpi-bin"
PKGS=$(echo $PKGS)
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing:$missing"
    echo "deps: run as root: apt-get install -y$missing"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || echo "deps: apt-get update failed; trying the cached package lists" >&2
apt-get install -y -q --no-install-recommends $missing
