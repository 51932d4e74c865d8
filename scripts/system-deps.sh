#!/usr/bin/env bash
# The system packages `make setup` and `make test` need beyond Python, Node and Rust, installed where this machine
# lets us: apt-get as root or through sudo, Homebrew on macOS. Anywhere else it prints the one command to run and
# fails, so a fresh machine never stops on an error that does not say what to do.
#
#   scripts/system-deps.sh nasm           # assembles libjpeg-turbo's SIMD (the layer build)
#   scripts/system-deps.sh cmyk-profile   # Ghostscript's CMYK press profile, read by one colour test (AGPL: read
#                                         # where the OS has it, never shipped)
#   scripts/system-deps.sh bwrap          # bubblewrap, the sandbox `make rehearse` lays Lambda's filesystem out in
#                                         # (Linux only)
set -euo pipefail

# Where Ghostscript's profile lands: Debian's libgs-common, Homebrew on Apple silicon and on Intel.
cmyk_profiles=(/usr/share/color/icc/ghostscript/default_cmyk.icc
               /opt/homebrew/share/ghostscript/*/iccprofiles/default_cmyk.icc
               /usr/local/share/ghostscript/*/iccprofiles/default_cmyk.icc)

present() {
  case "$1" in
    nasm) command -v nasm >/dev/null ;;
    bwrap) command -v bwrap >/dev/null ;;
    cmyk-profile) for p in "${cmyk_profiles[@]}"; do [ -f "$p" ] && return 0; done; return 1 ;;
  esac
}

case "${1:-}" in
  nasm) apt=nasm brew=nasm why="nasm assembles libjpeg-turbo's SIMD for the layer build" ;;
  cmyk-profile) apt=libgs-common brew=ghostscript why="a colour test reads Ghostscript's CMYK press profile" ;;
  bwrap) apt=bubblewrap brew="" why="make rehearse lays out Lambda's filesystem with bubblewrap (Linux only)" ;;
  *) echo "usage: $0 nasm|cmyk-profile|bwrap" >&2; exit 2 ;;
esac
what=$1
present "$what" && exit 0

if [ "$(uname -s)" = Darwin ]; then
  if [ -z "$brew" ]; then
    echo "system-deps: $why; it needs a Linux machine (or a Linux VM)" >&2
    exit 1
  elif command -v brew >/dev/null; then
    echo "system-deps: $why: brew install $brew"
    brew install "$brew"
  else
    echo "system-deps: $why; install Homebrew (https://brew.sh), then run: brew install $brew" >&2
    exit 1
  fi
elif command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    sudo=(sudo)  # asks for a password only when a person is at the terminal to give it
  else
    echo "system-deps: $why; run: sudo apt-get install $apt" >&2
    exit 1
  fi
  echo "system-deps: $why: apt-get install $apt"
  # Waits for another apt (unattended-upgrades, a parallel install) instead of failing on its lock.
  lock=(-o DPkg::Lock::Timeout=300)
  "${sudo[@]}" apt-get "${lock[@]}" update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq "$apt" >/dev/null
else
  echo "system-deps: $why; install the package that provides it ($apt on Debian/Ubuntu, $brew in Homebrew)" >&2
  exit 1
fi

present "$what" || { echo "system-deps: installed $apt/$brew, but $what is still missing" >&2; exit 1; }
