#!/bin/sh
# gen-man.sh HERALD TEMPLATE OUT: write the man page OUT from TEMPLATE, with
# @HERALD_SERVE_OPTIONS@ replaced by one .TP entry per option line of
# `HERALD serve --help` ("  --name REST"), so the page and --help agree.
set -eu
herald=$1 template=$2 out=$3
opts=$(mktemp)
trap 'rm -f "$opts"' EXIT
"$herald" serve --help | sed -n 's/^  \(--[a-z0-9-]*\) *\(.*\)$/\1 \2/p' |
	while read -r name rest; do
		printf '.TP\n.B %s\n%s\n' "$(printf '%s' "$name" | sed 's/-/\\-/g')" \
			"$(printf '%s' "$rest" | sed 's/\\/\\e/g; s/-/\\-/g; s/  */ /g; s/^\./\\\&./')"
	done >"$opts"
[ -s "$opts" ] || { echo "gen-man.sh: no options in '$herald serve --help'" >&2; exit 1; }
sed -e "/^@HERALD_SERVE_OPTIONS@\$/{r $opts" -e 'd}' "$template" >"$out.tmp"
mv "$out.tmp" "$out"
