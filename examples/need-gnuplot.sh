#!/bin/sh
# need-gnuplot.sh: make sure gnuplot is there for `make plot` / `make gates`, installing Debian's
# gnuplot-nox (apt-get, through sudo when not root) the first time, as the top Makefile does for its
# own packages.
command -v gnuplot > /dev/null && exit 0
echo "make: installing missing Debian package: gnuplot-nox" >&2
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gnuplot-nox > /dev/null
