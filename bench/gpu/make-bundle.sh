#!/usr/bin/env bash
# Makes the dependency bundle that bench/gpu/check.sh builds against on a GPU machine that has CUDA,
# a pip LibTorch, the pip NCCL, CMake and Ninja but none of neftune's other libraries and no network.
# Runs on a Debian 12 (bookworm) machine that reaches its apt mirror:
#
#   bench/gpu/make-bundle.sh [--out DIR] [--fixtures DIR] [--no-tar]
#     --out DIR       the bundle folder (default: gpu-bundle/ at the repository root, ignored by git);
#                     DIR.tar.gz is written beside it unless --no-tar
#     --fixtures DIR  where stories260K/ and instructions/ are (default: ../shared/fixtures, or
#                     $NEFTUNE_FIXTURES); the few files the check trains on are copied into the bundle
#
# What it holds (at most 60 MiB; bench/gpu/check.sh prints the figure):
#   root/      Debian 12 packages unpacked with `dpkg -x` (runtime + -dev: spdlog, fmt, yaml-cpp,
#              sentencepiece, nlohmann-json, CLI11, cpp-httplib, GoogleTest, Open MPI 4.1 + PMIx,
#              hwloc, libevent, munge, pkgconf). pkg-config files are rewritten relative to their own
#              folder (${pcfiledir}); the CMake package files already locate themselves.
#   fallback/  runtime libraries most systems have (OpenSSL 3, zlib, brotli, libudev, libstdc++ of
#              GCC 12): check.sh puts one of them on the library path only where `ldd` says the
#              target lacks it, so the target's own copies (newer, used by its Python and CMake) win.
#   fixtures/  stories260K (config.json, model.safetensors, tokenizer.model) and 200 Alpaca records.
#   env.sh     sourced by check.sh: OPAL_PREFIX and the paths that make Open MPI, PMIx, CMake and
#              pkg-config find everything under the bundle wherever it is unpacked.
#   packages.txt  package, version, installed size.
#
# Open MPI: Debian's build relocates through OPAL_PREFIX (and PMIx through PMIX_PREFIX). Its plugins
# for InfiniBand/Omni-Path/UCX/libfabric and OpenSHMEM/Fortran/Java are left out (their libraries are
# not in the bundle): the check runs one node, where MPI only carries host values over shared memory.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/gpu-bundle
fixtures=${NEFTUNE_FIXTURES:-$repo/../shared/fixtures}
tarball=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --fixtures) fixtures=${2:?--fixtures needs a folder}; shift 2 ;;
    --no-tar) tarball=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "make-bundle.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
  echo "make-bundle.sh: needs a Debian 12 machine (apt-get, dpkg)" >&2; exit 3; }
suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
[ "$suite" = bookworm ] || echo "make-bundle.sh: warning: this is '$suite', not Debian 12 (bookworm); the bundle is meant to hold bookworm's libraries" >&2
for f in stories260K/config.json stories260K/model.safetensors stories260K/tokenizer.model instructions/alpaca_data_200.json; do
  [ -f "$fixtures/$f" ] || { echo "make-bundle.sh: $fixtures/$f not found (--fixtures DIR)" >&2; exit 2; }
done

# Build and link: headers, CMake/pkg-config files, libraries. Open MPI's runtime closure: libmpi needs
# libopen-rte/libopen-pal (libopenmpi3), hwloc, libevent, PMIx; PMIx needs munge.
main_pkgs=(
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libyaml-cpp-dev libyaml-cpp0.7
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libcpp-httplib0.11
  libssl-dev zlib1g-dev libbrotli-dev
  libgtest-dev libgmock-dev
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libpmix2 libhwloc15
  libevent-core-2.1-7 libevent-pthreads-2.1-7 libmunge2
  pkgconf-bin libpkgconf3
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
)
# Runtime libraries nearly every Linux has; used only where the target lacks them.
fallback_pkgs=(libssl3 zlib1g libbrotli1 libudev1 libstdc++6)

work=$(mktemp -d /var/tmp/neftune-bundle.XXXXXX)
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
echo "[bundle] apt-get download: ${#main_pkgs[@]} + ${#fallback_pkgs[@]} packages"
mkdir -p "$work/debs/main" "$work/debs/fallback"
# apt-get download writes into the current folder, which its _apt sandbox user cannot.
(cd "$work/debs/main" && apt-get download -q -o APT::Sandbox::User=root "${main_pkgs[@]}" >/dev/null)
(cd "$work/debs/fallback" && apt-get download -q -o APT::Sandbox::User=root "${fallback_pkgs[@]}" >/dev/null)

rm -rf "$out"
mkdir -p "$out/root" "$out/fallback" "$out/fixtures/stories260K" "$out/fixtures/instructions"
: >"$out/packages.txt"
for kind in main fallback; do
  dest=$out/root
  [ "$kind" = main ] || dest=$out/fallback
  for deb in "$work/debs/$kind"/*.deb; do
    dpkg -x "$deb" "$dest"
    dpkg-deb -W --showformat='${Package} ${Version} ${Installed-Size}KiB '"$kind"'\n' "$deb" >>"$out/packages.txt"
  done
done

usr=$out/root/usr
arch=x86_64-linux-gnu
ompi=$usr/lib/$arch/openmpi
# Not needed to build or to run neftune: documentation, static archives (GoogleTest's excepted: it
# ships no shared library), Open MPI's Fortran/Java/OpenSHMEM parts and its high-speed-network
# plugins (UCX, libfabric, verbs, PSM: libraries the bundle does not carry).
rm -rf "$out"/root/usr/share/{doc,man,lintian,bug} "$out"/fallback/usr/share "$out"/fallback/etc \
       "$usr/lib/$arch/fortran" "$usr/share/openmpi/"*fort* "$usr/share/java"
find "$out/root" -name '*.a' ! -name 'libgtest*.a' ! -name 'libgmock*.a' -delete
find "$usr/lib/$arch" "$ompi/lib" -maxdepth 1 \( -name 'liboshmem*' -o -name 'libmpi_mpifh*' -o -name 'libmpi_usempi*' \
  -o -name 'libmpi_java*' -o -name 'libmca_common_ucx*' -o -name 'libmca_common_ofi*' -o -name 'libmca_common_verbs*' \) -delete
find "$ompi/lib/openmpi3" \( -name 'mca_*ucx*' -o -name 'mca_*ofi*' -o -name 'mca_*openib*' -o -name 'mca_*psm*' \
  -o -name 'mca_*verbs*' -o -name 'mca_spml_*' -o -name 'mca_sshmem_*' -o -name 'mca_atomic_*' -o -name 'mca_scoll_*' \
  -o -name 'mca_memheap_*' -o -name 'mca_reachable_netlink*' \) -delete
find "$usr/bin" \( -name '*fort*' -o -name 'mpif7*' -o -name 'mpif9*' -o -name 'osh*' -o -name 'shmem*' -o -name 'mpijava*' \) -delete
# Headers in the multiarch folder (OpenSSL's opensslconf.h, configuration.h) are found by Debian's own
# compiler only: merge them into include/.
if [ -d "$usr/include/$arch" ]; then
  cp -a "$usr/include/$arch/." "$usr/include/"
  rm -rf "${usr:?}/include/$arch"
fi
# A symbolic link whose target was removed or moved above.
find "$out/root" -xtype l -delete

# pkg-config files: /usr -> a path relative to the file's own folder, so the bundle works wherever it
# is unpacked (pkgconf expands ${pcfiledir}).
while IFS= read -r pc; do
  rel=$(realpath --relative-to="$(dirname "$pc")" "$usr")
  sed -i -E "s#(^[A-Za-z_]+=|-I|-L)/usr(/|\$)#\1\${pcfiledir}/$rel\2#g" "$pc"
done < <(find "$out/root" -name '*.pc')
if grep -rlE '(^[A-Za-z_]+=|-I|-L)/usr(/|$)' --include='*.pc' "$out/root" >/dev/null; then
  echo "make-bundle.sh: a .pc file still names /usr" >&2; exit 1
fi

# Anything a bundled library needs that neither the bundle nor glibc/libstdc++ provides is a mistake
# in the package lists above (the target's ldd check would report it).
missing=$(
  find "$out/root" "$out/fallback" \( -name '*.so*' -o -path '*/usr/bin/*' \) -type f | while read -r f; do
    readelf -d "$f" 2>/dev/null | awk '/\(NEEDED\)/ { gsub(/[][]/, "", $5); print $5 }'
  done | sort -u | while read -r so; do
    case "$so" in libc.so.6|libm.so.6|libdl.so.2|libpthread.so.0|librt.so.1|libgcc_s.so.1|ld-linux-*) continue ;; esac
    [ -n "$(find "$out/root" "$out/fallback" -name "$so" -print -quit)" ] || echo "$so"
  done
)
if [ -n "$missing" ]; then
  echo "make-bundle.sh: bundled files need libraries the bundle lacks: $(echo "$missing" | tr '\n' ' ')" >&2
  exit 1
fi

cp "$repo/bench/gpu/bundle-env.sh" "$out/env.sh"
# pkg-config for CMake: the bundle's pkgconf, reading only the bundle's .pc files.
mkdir -p "$out/bin"
cat >"$out/bin/pkg-config" <<'EOF'
#!/bin/sh
b=$(cd "$(dirname "$0")/.." && pwd)
l=$b/root/usr/lib/x86_64-linux-gnu
PKG_CONFIG_LIBDIR=$l/pkgconfig:$b/root/usr/share/pkgconfig:$l/openmpi/lib/pkgconfig \
LD_LIBRARY_PATH=$l${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec "$b/root/usr/bin/pkgconf" "$@"
EOF
chmod 755 "$out/bin/pkg-config"
cp "$fixtures"/stories260K/{config.json,model.safetensors,tokenizer.model} "$out/fixtures/stories260K/"
cp "$fixtures"/instructions/alpaca_data_200.json "$out/fixtures/instructions/"
[ ! -f "$fixtures/instructions/LICENSE-NOTE.txt" ] || cp "$fixtures/instructions/LICENSE-NOTE.txt" "$out/fixtures/instructions/"

size_mib() { du -sb "$1" | awk '{ printf "%.1f", $1 / 1048576 }'; }
echo "[bundle] $out: $(size_mib "$out") MiB unpacked, $(wc -l <"$out/packages.txt") packages ($((SECONDS - t0)) s)"
if [ "$tarball" -eq 1 ]; then
  tar -C "$(dirname "$out")" -czf "$out.tar.gz" "$(basename "$out")"
  echo "[bundle] $out.tar.gz: $(size_mib "$out.tar.gz") MiB"
fi
limit=$((60 * 1048576))
if [ "$(du -sb "$out" | cut -f1)" -gt "$limit" ]; then
  echo "make-bundle.sh: the bundle is over 60 MiB" >&2; exit 1
fi
