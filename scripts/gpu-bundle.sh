#!/usr/bin/env bash
# Prepares .gpu/ for scripts/gpu-check.sh on a bare GPU machine (CUDA 13 and torch, none of
# this project's Debian libraries, no network), within the 64 MiB the tree may carry:
#   .gpu/deps.tar.xz  the Debian runtime and -dev packages of the libraries ovis links (apt-get
#                     download, dpkg -x into one prefix; documentation and static libraries
#                     other than GoogleTest's dropped), to run prebuilt binaries or build there
#   .gpu/bin.tar.xz   ovis and the device tests built here with -DOVIS_CUDA=ON for sm_90,
#                     portable x86-64 (-DOVIS_NATIVE=OFF); the CUDA libraries come from the GPU
#                     machine's toolkit and torch's wheels
# Usage: scripts/gpu-bundle.sh [extra cmake args]. Prints the sizes and fails above the limit.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIB=64
PKGS="libdnnl2 libdnnl-dev libicu72 libicu-dev libpng16-16 libpng-dev zlib1g-dev
      libjpeg62-turbo libjpeg62-turbo-dev libpcre2-8-0 libpcre2-dev nlohmann-json3-dev
      libcli11-dev libgtest-dev libgomp1"
mkdir -p .gpu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/debs" "$tmp/prefix"
(cd "$tmp/debs" && apt-get download $PKGS >/dev/null)
for f in "$tmp"/debs/*.deb; do dpkg -x "$f" "$tmp/prefix"; done
rm -rf "$tmp/prefix/usr/share/doc" "$tmp/prefix/usr/share/man" "$tmp/prefix/usr/share/lintian"
find "$tmp/prefix" -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete
tar -cJf .gpu/deps.tar.xz -C "$tmp" prefix
echo "deps: $(du -k "$tmp/debs" | cut -f1) KiB of .deb -> .gpu/deps.tar.xz $(du -k .gpu/deps.tar.xz | cut -f1) KiB"

LAUNCH=()
command -v ccache >/dev/null && LAUNCH=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DOVIS_CUDA=ON -DOVIS_CUDA_ARCHS=90 \
  -DOVIS_NATIVE=OFF "${LAUNCH[@]}" "$@" >/dev/null
ninja -C build-gpu device_checks
mkdir -p "$tmp/bin"
for b in ovis test_backend_ops test_cuda_goldens test_device_cli test_torch_randn test_decode_ops; do
  strip -o "$tmp/bin/$b" "build-gpu/$b"
done
tar -cJf .gpu/bin.tar.xz -C "$tmp/bin" .
echo "binaries: .gpu/bin.tar.xz $(du -k .gpu/bin.tar.xz | cut -f1) KiB"

tree_kib=$(git ls-files -z | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
gpu_kib=$(du -ck .gpu/deps.tar.xz .gpu/bin.tar.xz | tail -1 | cut -f1)
total=$(((tree_kib + gpu_kib) / 1024))
echo "tree ${tree_kib} KiB + .gpu ${gpu_kib} KiB = ${total} MiB (limit ${LIMIT_MIB} MiB)"
[ "$total" -le "$LIMIT_MIB" ] || { echo "error: over the ${LIMIT_MIB} MiB the tree may carry" >&2; exit 1; }
