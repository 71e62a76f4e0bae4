#!/usr/bin/env bash
# Make GOOS=windows test binaries runnable under Debian's Wine 8.0:
#   1. apt-get install wine, wine64 and the MinGW-w64 C compiler;
#   2. create the Wine prefix ($WINEPREFIX, default ~/.wine) without a display;
#   3. build bcryptprimitives.dll (ProcessPrng shim, processprng.c) and put it
#      in the prefix's system32, where Go's runtime looks for it;
#   4. prove it: a tiny GOOS=windows program reading crypto/rand must print OK.
# Idempotent: each step is skipped when already done. Afterwards:
#   WINEDEBUG=-all GOOS=windows go test -exec wine ./...
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

export WINEPREFIX="${WINEPREFIX:-$HOME/.wine}"
export WINEARCH=win64
export WINEDEBUG="${WINEDEBUG:--all}"
# No Wine Mono / Gecko install prompts (they would need a display and a download).
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
export DEBIAN_FRONTEND=noninteractive

now() { date +%s.%N; }
t_start=$(now)
step_t=
step() { step_t=$(now); echo "== wine setup: $*"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
done_step() { echo "   $1 ($(since "$step_t")s)"; }

# --- 1. packages -------------------------------------------------------------
step "packages"
pkgs=(wine wine64 gcc-mingw-w64-x86-64-win32)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  done_step "already installed: ${pkgs[*]}"
else
  apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
  need_update=0
  for p in "${missing[@]}"; do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then need_update=1; fi
  done
  if [ $need_update -eq 1 ]; then apt-get update -q; fi
  if ! apt-get install "${apt_opts[@]}" "${missing[@]}"; then
    # The lists may be stale (a package version no longer on the mirror).
    apt-get update -q
    apt-get install "${apt_opts[@]}" "${missing[@]}"
  fi
  done_step "installed: ${missing[*]}"
fi
wine --version

# --- 2. Wine prefix ----------------------------------------------------------
step "prefix $WINEPREFIX"
if [ -f "$WINEPREFIX/system.reg" ] && [ -d "$WINEPREFIX/drive_c/windows/system32" ]; then
  done_step "exists"
else
  # Console only: with no DISPLAY, wineboot logs that it cannot open windows
  # (silenced by WINEDEBUG=-all) and goes on.
  wine wineboot -i >/dev/null 2>&1 || true
  wineserver -w # wineboot returns before the prefix is written out
  [ -f "$WINEPREFIX/system.reg" ] || { echo "wineboot did not create $WINEPREFIX" >&2; exit 1; }
  done_step "created"
fi

# --- 3. ProcessPrng shim -----------------------------------------------------
step "bcryptprimitives.dll shim"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# -nostdlib: no C runtime, only kernel32 and advapi32. The build is made
# reproducible so that an unchanged DLL is recognised below: no timestamp, and
# no image base derived from the (temporary) output path; the DLL is
# relocatable anyway.
x86_64-w64-mingw32-gcc -O2 -s -shared -nostdlib -Wall -Wextra \
  -Wl,--entry=DllEntry -Wl,--no-insert-timestamp -Wl,--disable-auto-image-base \
  -o "$tmp/bcryptprimitives.dll" \
  "$here/processprng.c" "$here/bcryptprimitives.def" -lkernel32 -ladvapi32
dst="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if cmp -s "$tmp/bcryptprimitives.dll" "$dst"; then
  done_step "up to date in system32"
else
  install -m 0644 "$tmp/bcryptprimitives.dll" "$dst"
  done_step "installed $dst"
fi

# --- 4. proof ----------------------------------------------------------------
step "proof: a GOOS=windows program reading crypto/rand"
mkdir "$tmp/probe"
cat >"$tmp/probe/go.mod" <<'EOF'
module probe

go 1.22
EOF
cat >"$tmp/probe/main.go" <<'EOF'
package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
)

func main() {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		fmt.Println("crypto/rand:", err)
		os.Exit(1)
	}
	if bytes.Equal(b, make([]byte, len(b))) {
		fmt.Println("crypto/rand returned zeros")
		os.Exit(1)
	}
	fmt.Println("OK")
}
EOF
(cd "$tmp/probe" && env -u GOFLAGS GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -o probe.exe .)
out=$(wine "$tmp/probe/probe.exe" 2>&1 | tr -d '\r') || { echo "$out" >&2; echo "probe failed under wine" >&2; exit 1; }
wineserver -w # let the wineserver exit so no process outlives the script
[ "$out" = "OK" ] || { echo "probe printed: $out" >&2; exit 1; }
done_step "printed OK"

echo "== wine setup: done in $(since "$t_start")s (WINEPREFIX=$WINEPREFIX)"
