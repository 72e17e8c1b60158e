# Precompiled headers (NEFTUNE_PCH, on by default): parsing LibTorch's headers costs ~4 s per translation
# unit, nlohmann/json and GoogleTest about a second each. Each variant below is compiled once, by a donor
# target made only for it, and every target that uses it reuses that one file (REUSE_FROM): `lib` for the
# libraries that use LibTorch, neftune and the benchmarks, `test` (the same plus GoogleTest and
# GoogleMock) for the tests. A consumer must compile with the donor's flags, or GCC ignores the file:
# CMake passes -Winvalid-pch, so a mismatch shows as a warning (an error with NEFTUNE_WERROR) rather than
# as a slow build; the donor therefore links the same interface targets as its consumers. CLI11 stays
# out: its headers define objects that every unit including them compiles (~3 s at -O3), so a unit pays
# for it only where it includes it.
# The headers a file uses are still included by the file itself: clang-tidy (launch/lint.sh) parses every
# unit without precompiled headers, so a missing #include fails the lint.
set(NEFTUNE_PCH_LIB_HEADERS
    <ATen/ATen.h> <ATen/Parallel.h> <torch/csrc/autograd/autograd.h>
    <torch/csrc/autograd/generated/variable_factories.h> <nlohmann/json.hpp> <spdlog/spdlog.h>
    <algorithm> <chrono> <filesystem> <fstream> <functional> <map> <memory> <optional> <sstream> <string>
    <vector>)

# neftune_pch_donor(VARIANT HEADERS... LIBS...): the donor targets of VARIANT (lib or test):
# neftune_pch_VARIANT with HEADERS, and neftune_pch_VARIANT_strict with <ATen/ATen.h> alone (see
# NEFTUNE_PCH_STRICT), both linking LIBS.
function(neftune_pch_donor variant)
  cmake_parse_arguments(P "" "" "HEADERS;LIBS" ${ARGN})
  if(NOT NEFTUNE_PCH)
    return()
  endif()
  # Out of `all`: a donor is built when a target that reuses it is (the strict build leaves one unused).
  add_library(neftune_pch_${variant} OBJECT EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/cmake/pch_donor.cpp)
  target_link_libraries(neftune_pch_${variant} PRIVATE ${P_LIBS})
  target_precompile_headers(neftune_pch_${variant} PRIVATE ${P_HEADERS})
  if(NEFTUNE_PCH_STRICT)
    add_library(neftune_pch_${variant}_strict OBJECT EXCLUDE_FROM_ALL ${PROJECT_SOURCE_DIR}/cmake/pch_donor.cpp)
    target_link_libraries(neftune_pch_${variant}_strict PRIVATE ${P_LIBS})
    target_precompile_headers(neftune_pch_${variant}_strict PRIVATE <ATen/ATen.h>)
  endif()
endfunction()

# neftune_pch(TARGET VARIANT [PROGRAM]): TARGET compiles with the precompiled headers of VARIANT. A
# PROGRAM (a test or a benchmark) takes the strict ones under NEFTUNE_PCH_STRICT: LibTorch 2.x's ATen.h
# includes less than 1.13's (at::NoGradGuard, for one, is no longer among it), and a file that relied on
# it must fail the LibTorch 2.6 build in CI, not hide behind the other precompiled headers or the other
# files of a unity batch.
function(neftune_pch target variant)
  if(NOT NEFTUNE_PCH)
    return()
  endif()
  if(NEFTUNE_PCH_STRICT AND "${ARGN}" STREQUAL "PROGRAM")
    target_precompile_headers(${target} REUSE_FROM neftune_pch_${variant}_strict)
    # One unit per file too: in a unity batch a file sees the includes of the files before it.
    set_target_properties(${target} PROPERTIES UNITY_BUILD OFF)
  else()
    target_precompile_headers(${target} REUSE_FROM neftune_pch_${variant})
  endif()
endfunction()
