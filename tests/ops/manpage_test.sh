#!/usr/bin/env bash
# cadcanfs(8) is generated from docs/cli.md at build time: the built page matches a
# fresh generation, renders without groff warnings, and carries every command heading
# and every exit code that docs/cli.md documents.
set -u
# shellcheck source=../testing/e2e_lib.sh
source "$(dirname "$(realpath "$0")")/../testing/e2e_lib.sh"
SOURCE=$(realpath "${1:?usage: manpage_test.sh SOURCE_DIR BUILT_PAGE}")
PAGE=$(realpath "${2:?usage: manpage_test.sh SOURCE_DIR BUILT_PAGE}")
WORK=$(mktemp -d /tmp/cadcanfs-man-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
version=$(sed -n 's/^\.TH CADCANFS 8 "" "cadcanfs \([^"]*\)".*/\1/p' "$PAGE")
python3 "$SOURCE/scripts/gen-manpage.py" "$SOURCE/docs/cli.md" "$version" fresh.8
cmp -s fresh.8 "$PAGE"; check "the built page is current with docs/cli.md" 0 $?
groff -man -Tutf8 -ww -z "$PAGE" 2>warnings; check "groff renders it" 0 $?
check "no groff warnings" 0 "$(wc -l <warnings)"
MANWIDTH=200 man -l "$PAGE" 2>/dev/null | sed 's/\xe2\x80\x90//g' >rendered
while IFS= read -r heading; do
  command=${heading#'### `'}
  command=$(cut -d' ' -f1-2 <<<"${command%%\`*}")
  check "the page documents $command" yes "$(grep -qF "$command" rendered && echo yes || echo no)"
done < <(grep '^### `cadcanfs ' "$SOURCE/docs/cli.md")
while IFS= read -r code; do
  check "the page lists exit code $code" yes "$(grep -qE "^ {7}$code( |\$)" rendered && echo yes || echo no)"
done < <(sed -n 's/^| \([0-9][0-9]*\) |.*/\1/p' "$SOURCE/docs/cli.md")
report "man page"
