#!/usr/bin/env bash
# Prepares .gpu/ (ignored by git) for scripts/gpu-check.sh on a bare GPU machine (CUDA 13 and a
# python3 with torch, none of this project's Debian libraries, no network); name `.gpu` in the
# device tool's `carry`. Tree + .gpu must stay within the 64 MiB such a machine may receive.
#   .gpu/bin.tar.xz   bin/: ovis and the device tests, built here with -DOVIS_CUDA=ON for sm_90,
#                     portable x86-64 (-DOVIS_NATIVE=OFF), stripped; lib/: every shared library
#                     they load that a GPU machine is not sure to have (the ldd closure minus
#                     glibc, libstdc++/libgcc and the CUDA libraries, which come from the GPU
#                     machine's toolkit and torch's wheels)
#   .gpu/deps.tar.xz  prefix/: headers, CMake and pkg-config files and link symlinks of the -dev
#                     packages (apt-get download + dpkg -x; runtime libraries are bin's lib/), to
#                     build on the GPU machine when the prebuilt binaries do not run there
#   .gpu/SOURCES      the source hash the binaries were built from (scripts/gpu-source-hash.sh);
#                     gpu-check.sh builds on the machine instead when the tree differs
# Usage: scripts/gpu-bundle.sh [extra cmake args]. Prints the sizes; fails above the limit.
# Environment: OVIS_GPU_BUNDLE_BUILD (default build-gpu) is the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIB=64
BUILD=${OVIS_GPU_BUNDLE_BUILD:-build-gpu}
BINS="ovis test_backend_ops test_cuda_goldens test_device_cli test_torch_randn test_decode_ops"
# What CMakeLists.txt finds (configure needs them all, the tests included), as -dev packages,
# and pkgconf for a machine without pkg-config.
DEV_PKGS="libdnnl-dev ocl-icd-opencl-dev opencl-c-headers nlohmann-json3-dev libcli11-dev
          libpng-dev zlib1g-dev libjpeg62-turbo-dev libicu-dev libpcre2-dev libcurl4-openssl-dev
          libssl-dev libcpp-httplib-dev libbrotli-dev libgtest-dev pkgconf-bin libpkgconf3"
# Never bundled: the C library, the compiler's runtime and CUDA (the GPU machine's own).
SYSTEM_LIBS='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libgcc_s|libstdc\+\+|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libnvrtc[a-z_.-]*|libnvJitLink)\.so'
export XZ_OPT=${XZ_OPT:--9 -T0}  # a 64 MiB dictionary: the binaries' shared code packs once

mkdir -p .gpu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- binaries ----
LAUNCH=()
command -v ccache >/dev/null &&
  LAUNCH=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOVIS_CUDA=ON -DOVIS_CUDA_ARCHS=90 \
  -DOVIS_NATIVE=OFF "${LAUNCH[@]}" "$@" >/dev/null
ninja -C "$BUILD" device_checks
mkdir -p "$tmp/pkg/bin" "$tmp/pkg/lib"
for b in $BINS; do strip -o "$tmp/pkg/bin/$b" "$BUILD/$b"; done
# shellcheck disable=SC2086
(cd "$BUILD" && ldd $BINS) | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r name path; do
    [[ $name =~ $SYSTEM_LIBS ]] || cp -L "$path" "$tmp/pkg/lib/$name"
  done
if (cd "$BUILD" && ldd ovis) | grep -q 'not found'; then
  echo "error: $BUILD/ovis has unresolved libraries here" >&2
  exit 1
fi
tar -cJf .gpu/bin.tar.xz -C "$tmp/pkg" bin lib
echo "libraries: $(find "$tmp/pkg/lib" -type f -printf "%f ")"
echo "binaries + libraries: $(du -sk "$tmp/pkg" | cut -f1) KiB -> .gpu/bin.tar.xz" \
  "$(du -k .gpu/bin.tar.xz | cut -f1) KiB"
bash scripts/gpu-source-hash.sh >.gpu/SOURCES

# ---- -dev packages for a build on the GPU machine ----
mkdir -p "$tmp/debs" "$tmp/prefix"
# shellcheck disable=SC2086
(cd "$tmp/debs" && apt-get download $DEV_PKGS >/dev/null)
for f in "$tmp"/debs/*.deb; do dpkg -x "$f" "$tmp/prefix"; done
rm -rf "$tmp/prefix/usr/share/doc" "$tmp/prefix/usr/share/man" "$tmp/prefix/usr/share/lintian" \
  "$tmp/prefix/usr/src"
find "$tmp/prefix" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete
# The -dev link names (libicuuc.so -> libicuuc.so.72.1, libz.so -> /lib/...) are repointed at the
# SONAME file names that bin's lib/ (or the prefix itself) holds, so they resolve there.
LIBDIR=$tmp/prefix/usr/lib/x86_64-linux-gnu
for link in "$LIBDIR"/*.so; do
  [ -L "$link" ] || continue
  name=$(basename "$link")
  target=$(find "$tmp/pkg/lib" "$LIBDIR" -maxdepth 1 -name "$name.[0-9]*" -printf '%f\n' |
    awk '{print length($0), $0}' | sort -n | head -1 | cut -d' ' -f2)
  [ -n "$target" ] && ln -sfn "$target" "$link"
done
tar -cJf .gpu/deps.tar.xz -C "$tmp" prefix
echo "deps: $(du -sk "$tmp/debs" | cut -f1) KiB of .deb -> .gpu/deps.tar.xz" \
  "$(du -k .gpu/deps.tar.xz | cut -f1) KiB"

# ---- what the device tool would send: tracked + untracked-not-ignored files, and .gpu ----
tree_b=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null |
  awk '{s += $1} END {print s + 0}')
gpu_b=$(find .gpu -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
total_mib=$(((tree_b + gpu_b + 1048575) / 1048576))
echo "tree $((tree_b / 1024)) KiB + .gpu $((gpu_b / 1024)) KiB = ${total_mib} MiB" \
  "(limit ${LIMIT_MIB} MiB)"
if [ "$total_mib" -gt "$LIMIT_MIB" ]; then
  echo "error: over the ${LIMIT_MIB} MiB the device tool carries" >&2
  exit 1
fi
