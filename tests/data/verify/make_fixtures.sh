#!/bin/sh
# Regenerates the real ELF fixtures in this folder (committed; a few KB each).
# Needs gcc, g++ and gcc-aarch64-linux-gnu (Debian 12: glibc 2.36 headers and libraries, so
# pthread_create links against its GLIBC_2.34 version and puts against the architecture's base).
set -eu
cd "$(dirname "$0")"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cat > "$src/puts.c" <<'C'
#include <stdio.h>
int crossdock_fixture(void) { return puts("crossdock fixture"); }
C
cat > "$src/thread.c" <<'C'
#include <pthread.h>
static void *run(void *arg) { return arg; }
int crossdock_fixture_thread(void) {
  pthread_t t;
  if (pthread_create(&t, 0, run, 0)) return 1;
  return pthread_join(t, 0);
}
C
cat > "$src/main.c" <<'C'
#include <stdio.h>
int main(void) { puts("hello from a crossdock fixture"); return 0; }
C
cat > "$src/cxx.cc" <<'C'
#include <string>
#include <sstream>
extern "C" int crossdock_fixture_cxx(int n) {
  std::ostringstream out; out << "n=" << n; return static_cast<int>(out.str().size());
}
C
# Small files: 4 KiB pages and no separate code segment padding.
small="-Os -s -Wl,-z,max-page-size=4096 -Wl,-z,noseparate-code -Wl,--build-id=none"
gcc $small -shared -fPIC -o x86_64-puts.so "$src/puts.c"
gcc $small -shared -fPIC -o x86_64-pthread.so "$src/thread.c"
gcc $small -o x86_64-hello "$src/main.c"
g++ $small -shared -fPIC -o x86_64-cxx.so "$src/cxx.cc"
aarch64-linux-gnu-gcc $small -shared -fPIC -o aarch64-puts.so "$src/puts.c"
aarch64-linux-gnu-gcc $small -shared -fPIC -o aarch64-pthread.so "$src/thread.c"
aarch64-linux-gnu-gcc $small -o aarch64-hello "$src/main.c"
ls -l
# The two foreign headers are the first 1024 bytes of real extension modules from PyPI:
#   macos-arm64-head.bin   markupsafe/_speedups.cpython-313-darwin.so from
#                          MarkupSafe-3.0.2-cp313-cp313-macosx_11_0_arm64.whl
#   win-amd64-pyd-head.bin markupsafe/_speedups.cp313-win_amd64.pyd from
#                          MarkupSafe-3.0.2-cp313-cp313-win_amd64.whl
# (pip download --no-deps --only-binary :all: --platform PLATFORM --python-version 3.13 ...;
#  unzip; head -c 1024)
