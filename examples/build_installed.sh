#!/bin/sh
# build_installed.sh BUILD_DIR SOURCE_DIR: installs the build into a temporary DESTDIR, compiles
# examples/lock_dict.cpp against that installed copy with `pkg-config --cflags --libs forklock`
# alone (no include path or library of the build tree), runs it, and checks the installed files
# a packager expects (soname, headers, man pages that name every --help flag).
set -eu
build=$1
source=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet

pc=$(find "$tmp/root" -name forklock.pc | head -n 1)
[ -n "$pc" ] || { echo "no forklock.pc installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
bindir=$(find "$tmp/root" -type f -name forklock -path '*/bin/*' -exec dirname {} \;)
mandir=$(find "$tmp/root" -type d -name man1 | head -n 1)

# The pkg-config file names the real prefix; the sysroot points its paths into DESTDIR.
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export LD_LIBRARY_PATH="$libdir"
${CXX:-c++} -std=c++20 -Wall -Wextra -Werror "$source/examples/lock_dict.cpp" \
    $(pkg-config --cflags --libs forklock) -o "$tmp/lock_dict"
"$tmp/lock_dict"

# The shared library carries a versioned soname.
readelf -d "$libdir"/libforklock.so | grep -q 'SONAME.*libforklock\.so\.0' ||
    { echo "libforklock.so has no soname libforklock.so.0" >&2; exit 1; }
# Every flag --help lists is in the binary's man page.
for prog in forklock forklock-demo; do
    [ -f "$mandir/$prog.1" ] || { echo "no man page $prog.1" >&2; exit 1; }
    for flag in $("$bindir/$prog" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        grep -q -- "$(echo "$flag" | sed 's/-/\\\\-/g')" "$mandir/$prog.1" ||
            { echo "$prog.1 does not mention $flag" >&2; exit 1; }
    done
done
echo "installed forklock: example built with pkg-config and ran; soname and man pages checked"
