#!/usr/bin/env bash
# The installed package, as a user of it sees it: installs the build to a
# temporary prefix, builds tests/package/consumer.c against it with
# find_package(msrp) (shared and static targets) and with pkg-config, runs
# the three programs, moves the prefix and does it again (nothing may point
# into the old place), checks the SONAME and that only msrp_* symbols are
# exported; then installs a second configuration with a multiarch library
# directory (lib/x86_64-linux-gnu) and builds against that too.
#
# usage: package_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "package_test: FAILED: $*" >&2; exit 1; }

consumers() { # prefix libdir label
  local prefix=$1 libdir=$2 label=$3
  local b="$tmp/consumer-$label"
  cmake -S "$src/tests/package" -B "$b" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "$label: configure with find_package(msrp)"; }
  cmake --build "$b" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "$label: build against msrp::msrp / msrp::msrp_static"; }
  "$b/consumer_shared" || fail "$label: the consumer linked with msrp::msrp"
  "$b/consumer_static" || fail "$label: the consumer linked with msrp::msrp_static"
  if ldd "$b/consumer_static" | grep -q libmsrp; then fail "$label: the static consumer needs libmsrp.so"; fi
  local pc="$prefix/$libdir/pkgconfig"
  [ -f "$pc/msrp.pc" ] || fail "$label: no $pc/msrp.pc"
  # shellcheck disable=SC2046
  cc -o "$b/consumer_pc" "$src/tests/package/consumer.c" $(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs msrp) \
    -Wl,-rpath,"$(PKG_CONFIG_PATH="$pc" pkg-config --variable=libdir msrp)" || fail "$label: build with pkg-config"
  "$b/consumer_pc" || fail "$label: the consumer built with pkg-config"
}

# 1. The build as configured (lib).
p1="$tmp/prefix"
cmake --install "$build" --prefix "$p1" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "cmake --install"; }
libdir=$(cd "$p1" && ls -d lib*/ | head -1 | tr -d /)
so=$(ls "$p1/$libdir"/libmsrp.so.*.*.* | head -1)
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libmsrp.so.0" ] || fail "the SONAME is '$soname', not libmsrp.so.0"
[ -L "$p1/$libdir/libmsrp.so.0" ] && [ -L "$p1/$libdir/libmsrp.so" ] || fail "the SONAME and dev links are missing"
others=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^msrp_' || true)
[ -z "$others" ] || fail "exported symbols without the msrp_ prefix: $(echo "$others" | head -5 | tr '\n' ' ')"
echo "package_test: SONAME $soname, $(nm -D --defined-only "$so" | wc -l) exported symbols, all msrp_*"
consumers "$p1" "$libdir" installed
# 2. The same tree moved: the package must find itself where it now is.
mv "$p1" "$tmp/moved"
consumers "$tmp/moved" "$libdir" moved
echo "package_test: find_package and pkg-config work from the installed prefix and after moving it"

# 3. A multiarch library directory, as Debian installs it.
b2="$tmp/build-multiarch"
cmake -S "$src" -B "$b2" -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu -DBUILD_TESTING=OFF \
  -DMSRP_TARGET_DIR="$(cmake -L -N "$build" | sed -n 's/^MSRP_TARGET_DIR:PATH=//p')" \
  -DCMAKE_BUILD_TYPE="$(cmake -L -N "$build" | sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p')" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "configure with a multiarch libdir"; }
cmake --build "$b2" --target msrp_cargo msrpcat >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "build with a multiarch libdir"; }
p2="$tmp/prefix-multiarch"
cmake --install "$b2" --prefix "$p2" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "install with a multiarch libdir"; }
[ -f "$p2/lib/x86_64-linux-gnu/cmake/msrp/msrpConfig.cmake" ] || fail "no msrpConfig.cmake under lib/x86_64-linux-gnu"
consumers "$p2" lib/x86_64-linux-gnu multiarch
echo "package_test: a multiarch libdir (lib/x86_64-linux-gnu) works too"
echo "package_test: ok"
