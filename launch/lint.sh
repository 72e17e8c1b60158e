#!/usr/bin/env bash
# The repository's formatting and lint rules, as CI checks them (CONTRIBUTING).
#   launch/lint.sh            clang-format on every C++ file, then clang-tidy on every translation unit
#   launch/lint.sh format     clang-format only (a few seconds)
#   launch/lint.sh tidy [FILE...]  clang-tidy only, on the given .cpp files (default: all)
# clang-tidy reads a compile database of a configure-only build without precompiled headers or unity
# batches (-DNEFTUNE_PCH=OFF -DNEFTUNE_UNITY_BUILD=OFF, in build-lint/): it cannot read GCC's .gch files,
# and each unit parsed on its own is what shows a missing #include that the build's precompiled headers
# and batches would hide. Nothing is
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
  out="$(mktemp)"
  # -quiet: only findings; warnings-as-errors makes any finding fail the file.
  printf '%s\n' "${units[@]}" |
    xargs -P "$(nproc)" -n 1 "$tidy" -p build-lint --quiet --warnings-as-errors='*' >"$out" 2>&1 || status=1
  grep -E '(warning|error): ' "$out" | sort -u >&2 || true
  if [ $status -eq 0 ]; then
    echo "lint: clang-tidy: ${#units[@]} translation units clean"
  else
    echo "lint: clang-tidy: $(grep -cE '(warning|error): ' "$out" || true) findings in ${#units[@]} translation units" >&2
  fi
  rm -f "$out"
fi
exit $status
