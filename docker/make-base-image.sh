#!/usr/bin/env bash
# Makes the local base image `debian:SUITE` (docker.io/library/debian:SUITE, default bookworm) with
# debootstrap from the host's own Debian apt mirror, for machines that can reach that mirror but no
# container registry. Does nothing when the image already exists: re-importing it would give it a new ID
# and invalidate every cached layer built on it (use --force to remake it anyway).
#
# Usage: docker/make-base-image.sh [--suite SUITE] [--force]
#   --suite SUITE  the Debian release to bootstrap: bookworm (default) or trixie (Debian 13, LibTorch 2.6)
#   NEFTUNE_DEBIAN_MIRROR / NEFTUNE_DEBIAN_SECURITY_MIRROR override the mirrors read from the host's
#   /etc/apt/sources.list{,.d/*}. A suite the host does not list uses the mirror of the suite it does
#   list (one Debian mirror serves every release); default when neither says: deb.debian.org /
#   security.debian.org.
#   NEFTUNE_CONTAINER_TOOL=buildah imports with buildah instead of podman.
# Exit codes: 0 done (or already there), 1 failure, 3 this machine cannot do it (not root, no
# debootstrap/podman, mirror unreachable): callers such as tests/docker treat 3 as "skip".
#
# The image's apt sources name the host's mirror. The rootfs lives only in a temporary directory and
# is deleted: never commit it, nor write the mirror's address into the repository.
set -euo pipefail

suite=bookworm
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suite=${2:?--suite needs a Debian release name}; shift 2 ;;
    --suite=*) suite=${1#--suite=}; shift ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "make-base-image.sh: unknown option '$1' (known: --suite SUITE, --force)" >&2; exit 2 ;;
  esac
done
case "$suite" in
  *[!a-z]*|'') echo "make-base-image.sh: --suite takes a Debian release name such as trixie, not '$suite'" >&2; exit 2 ;;
esac
image=docker.io/library/debian:$suite

cannot() { echo "make-base-image.sh: $*" >&2; exit 3; }
tool=${NEFTUNE_CONTAINER_TOOL:-podman}
[ "$(id -u)" -eq 0 ] || cannot "debootstrap and rootful $tool need root"
command -v "$tool" >/dev/null || cannot "$tool is not installed (bash launch/setup.sh --container)"

if [ "$force" -eq 0 ] && "$tool" image exists "$image" 2>/dev/null; then
  echo "[base-image] $image exists ($("$tool" image inspect --format '{{.Id}}' "$image" | cut -c1-12))"
  exit 0
fi
command -v debootstrap >/dev/null || cannot "debootstrap is not installed (bash launch/setup.sh --container)"

# The host's apt sources as "URI SUITE" pairs, from one-line (.list) and deb822 (.sources) files.
apt_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                       print $i, $(i + 1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no")
                              for (u in uris) for (s in suites) print u, s
                            types = ""; enabled = ""; delete uris; delete suites }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); next }
         { key = tolower($1); sub(/:$/, "", key)
           if (key == "types") { $1 = ""; types = $0 }
           else if (key == "enabled") enabled = tolower($2)
           else if (key == "uris") for (i = 2; i <= NF; i++) uris[$i] = 1
           else if (key == "suites") for (i = 2; i <= NF; i++) suites[$i] = 1 }
         END { flush() }' "$f"
  done
}
pick() { apt_sources | awk -v s="$1" '$2 == s { sub(/\/+$/, "", $1); print $1; exit }'; }
host_suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
mirror=${NEFTUNE_DEBIAN_MIRROR:-$(pick "$suite")}
[ -n "$mirror" ] || [ -z "$host_suite" ] || mirror=$(pick "$host_suite")
mirror=${mirror:-http://deb.debian.org/debian}
security=${NEFTUNE_DEBIAN_SECURITY_MIRROR:-$(pick "$suite-security")}
[ -n "$security" ] || [ -z "$host_suite" ] || security=$(pick "$host_suite-security")
security=${security:-http://security.debian.org/debian-security}

if command -v curl >/dev/null; then
  curl -fsS -o /dev/null --max-time 30 "$mirror/dists/$suite/Release" ||
    cannot "the Debian mirror from the host's apt sources is unreachable (set NEFTUNE_DEBIAN_MIRROR)"
fi

work=$(mktemp -d /var/tmp/neftune-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
t0=$SECONDS
echo "[base-image] debootstrap --variant=minbase $suite (about 30-60 s, 200 MB)"
debootstrap --variant=minbase --components=main "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "make-base-image.sh: debootstrap failed" >&2
  exit 1
}

# The same sources the host uses, so `apt-get update` inside RUN reaches the mirror that worked here.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Like the official image: no package lists, no .debs, an empty resolv.conf (the runtime supplies one).
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

echo "[base-image] importing as $image"
if [ "$tool" = buildah ]; then
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$rootfs" -cf - . | tar -C "$mnt" -xf -
  buildah umount "$ctr" >/dev/null
  buildah config --cmd /bin/bash "$ctr"
  buildah commit --format docker --rm "$ctr" "$image" >/dev/null
else
  tar -C "$rootfs" -cf - . | podman import --quiet --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
fi
echo "[base-image] $image made in $((SECONDS - t0)) s ($("$tool" image inspect --format '{{.Size}}' "$image" | awk '{printf "%d MB", $1 / 1e6}'))"
