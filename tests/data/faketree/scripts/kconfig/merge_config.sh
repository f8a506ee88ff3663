#!/bin/sh
# merge_config.sh -m -O DIR BASE FRAGMENT...: concatenate; olddefconfig keeps the last value.
[ "$1" = "-m" ] && shift
[ "$1" = "-O" ] && out=$2 && shift 2
base=$1; shift
tmp=$(mktemp)
cat "$base" "$@" > "$tmp"
cp "$tmp" "$out/.config"
rm -f "$tmp"
