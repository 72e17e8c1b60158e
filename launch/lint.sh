#!/usr/bin/env bash
# The repository's formatting and lint rules, as CI checks them (CONTRIBUTING).
#   launch/lint.sh            clang-format on every C++ file, then clang-tidy on every translation unit
#   launch/lint.sh format     clang-format only (a few seconds)
#   launch/lint.sh tidy [FILE...]  clang-tidy only, on the given .cpp files (default: all)
# clang-tidy reads a compile database of a configure-only build without precompiled headers or unity
# batches (-DNEFTUNE_PCH=OFF -DNEFTUNE_UNITY_BUILD=OFF, in build-lint/): it cannot read GCC's .gch files,
# and each unit parsed on its own is what shows a missing #include that the build's precompiled headers
# and batches would hide. The tests and benchmarks are the exception (build-lint-pch/, below). Nothing is
# compiled. It is clang-tidy 22 (Debian 12 ships it beside 14; $NEFTUNE_CLANG_TIDY picks another): unlike
# 14, it does not run its checks over the declarations of system headers (LibTorch, GoogleTest, the
# standard library), where 14 spent three quarters of its time.
# Exit status: 0 clean, 1 findings (each printed with file:line), 2 a tool missing.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
[ $# -gt 0 ] && shift

tidy=${NEFTUNE_CLANG_TIDY:-clang-tidy-22}
for tool in clang-format "$tidy"; do
  if ! command -v "$tool" >/dev/null; then
    echo "lint: $tool not found (bash launch/setup.sh --lint installs it)" >&2
    exit 2
  fi
done

status=0
if [ "$what" = all ] || [ "$what" = format ]; then
  mapfile -t files < <(git ls-files '*.cpp' '*.h' | grep -v '^tests/docker/\|^docker/')
  bad=()
  for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "lint: clang-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (run clang-format -i on them):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    status=1
  else
    echo "lint: clang-format: ${#files[@]} files clean"
  fi
fi

if [ "$what" = all ] || [ "$what" = tidy ]; then
  mkdir -p build-lint
  cmake -S . -B build-lint -G Ninja -DNEFTUNE_PCH=OFF -DNEFTUNE_UNITY_BUILD=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    >build-lint/configure.log 2>&1 ||
    { echo "lint: configuring build-lint failed (see build-lint/configure.log)" >&2; exit 2; }
  if [ $# -gt 0 ]; then
    units=("$@")
  else
    mapfile -t units < <(git ls-files '*.cpp' | grep -E '^(config|distributed|trainer|launch|tests|bench)/' |
      grep -v '^tests/docker/\|^tests/fuzz_')
  fi
  # The tests and benchmarks read a second database, build-lint-pch/: configured with clang 22 (the
  # compiler of this clang-tidy) and -DNEFTUNE_PCH_STRICT=ON, of which only the precompiled <ATen/ATen.h>
  # is built (seconds), so that they do not parse LibTorch's headers each (a third of their time). What
  # they include besides it the LibTorch 2.6 build checks, which compiles them with that same header alone.
  db_of() { case "$1" in tests/* | bench/*) echo build-lint-pch ;; *) echo build-lint ;; esac; }
  if printf '%s\n' "${units[@]}" | grep -qE '^(tests|bench)/'; then
    clangxx=${tidy/clang-tidy/clang++}
    mkdir -p build-lint-pch
    { cmake -S . -B build-lint-pch -G Ninja -DCMAKE_CXX_COMPILER="$clangxx" -DCMAKE_C_COMPILER="${clangxx/clang++/clang}" \
        -DNEFTUNE_PCH=ON -DNEFTUNE_PCH_STRICT=ON -DNEFTUNE_UNITY_BUILD=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON &&
      mapfile -t pchs < <(ninja -C build-lint-pch -t targets all | sed -n 's/^\([^:]*_strict\.dir\/cmake_pch\.hxx\.pch\): .*/\1/p') &&
      [ ${#pchs[@]} -gt 0 ] && ninja -C build-lint-pch "${pchs[@]}"; } >build-lint-pch/configure.log 2>&1 ||
      { echo "lint: the precompiled headers of build-lint-pch failed (see build-lint-pch/configure.log)" >&2; exit 2; }
  fi
  out="$(mktemp)"
  # -quiet: only findings; warnings-as-errors makes any finding fail the file.
  for u in "${units[@]}"; do printf '%s\n%s\n' "$(db_of "$u")" "$u"; done |
    xargs -P "$(nproc)" -n 2 sh -c '"$0" -p "$1" --quiet --warnings-as-errors="*" "$2"' "$tidy" >"$out" 2>&1 || status=1
  grep -E '(warning|error): ' "$out" | sort -u >&2 || true
  if [ $status -eq 0 ]; then
    echo "lint: clang-tidy: ${#units[@]} translation units clean"
  else
    echo "lint: clang-tidy: $(grep -cE '(warning|error): ' "$out" || true) findings in ${#units[@]} translation units" >&2
  fi
  rm -f "$out"
fi
exit $status
