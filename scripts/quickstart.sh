#!/usr/bin/env bash
# Installs what is missing, builds cadcanfs, and runs the main job on a demo vault:
# make a key, init a vault, encrypt sample files into it, and show the ciphertext
# beside the plaintext. Everything lives in ./demo (recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
BIN=$PWD/build/cadcanfs

DEMO=$PWD/demo
rm -rf "$DEMO"
mkdir -p "$DEMO/samples/Doe, Jane (1970-01-01)/intraoral" "$DEMO/samples/Doe, Jane (1970-01-01)/cbct"
# Sample "patient" files: an ASCII STL, a small binary volume and a note.
{
  echo "solid lower_jaw"
  for i in $(seq 1 200); do
    echo "  facet normal 0 0 1"; echo "    outer loop"
    echo "      vertex $i 0 0"; echo "      vertex $i 1 0"; echo "      vertex $i 0 1"
    echo "    endloop"; echo "  endfacet"
  done
  echo "endsolid lower_jaw"
} >"$DEMO/samples/Doe, Jane (1970-01-01)/intraoral/lower jaw.stl"
head -c 2000000 /dev/urandom >"$DEMO/samples/Doe, Jane (1970-01-01)/cbct/volume.raw"
echo "Crown #36, shade A2. Patient: Jane Doe." >"$DEMO/samples/Doe, Jane (1970-01-01)/notes.txt"

echo "== 1. a new master key (kept outside the vault, mode 0600)"
"$BIN" keygen "$DEMO/master.key"
echo "== 2. a new vault"
"$BIN" init "$DEMO/vault" --key-file "$DEMO/master.key"
"$BIN" info "$DEMO/vault"
echo "== 3. encrypt the samples into it"
"$BIN" encrypt "$DEMO/vault" "$DEMO/samples/" --key-file "$DEMO/master.key"
echo "== 4. plaintext (left) and what the vault and its backups hold (right)"
(cd "$DEMO/samples" && find . | sort) >"$DEMO/.plain.txt"
(cd "$DEMO/vault" && find . | sort) >"$DEMO/.cipher.txt"
paste "$DEMO/.plain.txt" "$DEMO/.cipher.txt" | awk -F'\t' '{printf "%-52s %s\n", $1, $2}' | cut -c1-150
echo
echo "first bytes of notes.txt, in plaintext and in the vault:"
head -c 48 "$DEMO/samples/Doe, Jane (1970-01-01)/notes.txt" | od -A d -c | head -3
cipher=$("$BIN" map "$DEMO/vault" "Doe, Jane (1970-01-01)/notes.txt" --key-file "$DEMO/master.key" |
  sed 's/^ciphertext: //')
head -c 48 "$DEMO/vault/$cipher" | od -A d -t x1 | head -3
echo "== 5. check every byte and restore it"
"$BIN" fsck "$DEMO/vault" --key-file "$DEMO/master.key"
"$BIN" decrypt "$DEMO/vault" "$DEMO/restored" --key-file "$DEMO/master.key"
diff -r "$DEMO/samples" "$DEMO/restored" && echo "restored tree is identical"
echo "== 6. mount the vault: an ordinary directory for CAD software"
mkdir -p "$DEMO/mnt"
"$BIN" unmount "$DEMO/mnt" >/dev/null 2>&1 || true
"$BIN" mount "$DEMO/vault" "$DEMO/mnt" --key-file "$DEMO/master.key"
ls -l "$DEMO/mnt/Doe, Jane (1970-01-01)"
echo "Designer note: margin checked, ready to mill." >"$DEMO/mnt/Doe, Jane (1970-01-01)/design note.txt"
echo "written through the mount:"
cat "$DEMO/mnt/Doe, Jane (1970-01-01)/design note.txt"
cipher=$("$BIN" map "$DEMO/vault" "Doe, Jane (1970-01-01)/design note.txt" --key-file "$DEMO/master.key" |
  sed 's/^ciphertext: //')
echo "its ciphertext in the vault ($cipher):"
head -c 64 "$DEMO/vault/$cipher" | od -A d -t x1 | head -4
"$BIN" unmount "$DEMO/mnt"
echo "unmounted; the vault holds only ciphertext"
