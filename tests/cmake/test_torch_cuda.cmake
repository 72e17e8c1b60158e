# ctest cmake_torch_cuda (label unit): cmake/NeftuneTorchCuda.cmake on fake LibTorch install trees, each
# laid out the way a pip wheel, a standalone libtorch zip or a bare library directory is.
#   cmake -DMODULE_DIR=<repo>/cmake -DWORK=<empty scratch dir> -P test_torch_cuda.cmake
cmake_minimum_required(VERSION 3.18)
include(${MODULE_DIR}/NeftuneTorchCuda.cmake)
file(REMOVE_RECURSE "${WORK}")

# A failed check is reported and counted; the script fails at the end, after every check has run.
function(check_that what ok detail)
  if(ok)
    message(STATUS "ok   ${what}")
  else()
    message(SEND_ERROR "FAIL ${what}: ${detail}")
    set_property(GLOBAL APPEND PROPERTY failures "${what}")
  endif()
endfunction()
function(expect what got want)
  string(COMPARE EQUAL "${got}" "${want}" ok)
  check_that("${what} = '${want}'" ${ok} "got '${got}'")
endfunction()
function(expect_has what text part)
  string(FIND "${text}" "${part}" at)
  string(COMPARE NOTEQUAL "${at}" "-1" ok)
  check_that("${what}" ${ok} "'${part}' is not in '${text}'")
endfunction()

# fake(<name> [FILE <relative path> <content>]...): a LibTorch prefix holding these files; returns its
# Torch_DIR in torch_dir.
function(fake name)
  set(prefix "${WORK}/${name}")
  file(MAKE_DIRECTORY "${prefix}/share/cmake/Torch")
  set(args ${ARGN})
  while(args)
    list(GET args 1 path)
    list(GET args 2 content)
    list(REMOVE_AT args 0 1 2)
    file(WRITE "${prefix}/${path}" "${content}")
  endwhile()
  set(torch_dir "${prefix}/share/cmake/Torch" PARENT_SCOPE)
endfunction()

macro(check name want)
  fake(${name} ${ARGN})
  neftune_torch_cuda_version(got "${torch_dir}")
  expect("${name}" "${got}" "${want}")
endmacro()

# pip wheels: torch/version.py beside torch/share/cmake (torch.utils.cmake_prefix_path).
check(wheel_cu130 "13.0" FILE version.py
  "__version__ = '2.9.0+cu130'\ndebug = False\ncuda: Optional[str] = '13.0'\ngit_version = 'abc'\nhip: Optional[str] = None\n")
check(wheel_cu118_old_syntax "11.8" FILE version.py "__version__ = '2.0.1+cu118'\ncuda = '11.8'\n")
check(wheel_cpu "" FILE version.py "__version__ = '2.6.0+cpu'\ncuda: Optional[str] = None\n")
# version.py decides even where a library would say otherwise.
check(wheel_before_library "12.6" FILE version.py "cuda: Optional[str] = '12.6'\n"
  FILE lib/libtorch_cuda.so "libcudart.so.13\n")
# Standalone libtorch zips: build-version.
check(zip_cu130 "13.0" FILE build-version "2.11.0+cu130\n")
check(zip_cu126 "12.6" FILE build-version "2.6.0+cu126\n")
check(zip_cu118 "11.8" FILE build-version "2.0.1+cu118\n")
check(zip_cpu "" FILE build-version "2.6.0+cpu\n")
# Only the libraries: the CUDA runtime libtorch_cuda.so loads.
check(lib_cudart13 "13" FILE lib/libtorch_cuda.so "junk\nlibc10_cuda.so\nlibcudart.so.13\nlibc.so.6\n")
check(lib_bundled_cudart12 "12" FILE lib/libtorch_cuda.so "libnvToolsExt-847d78f2.so.1\nlibcudart-9335f6a2.so.12\n")
check(lib_without_cudart "" FILE lib/libtorch_cuda.so "libc10.so\nlibc.so.6\n")
# Nothing to read (a distribution's CPU LibTorch): no CUDA.
check(nothing "" FILE lib/libtorch_cpu.so "libc10.so\n")

# The toolkit check: the major versions must agree; anything unknown passes.
neftune_cuda_mismatch(msg "13.0" "13.0.88" /cuda)
expect("same major" "${msg}" "")
neftune_cuda_mismatch(msg "13" "13.1.2" /cuda)
expect("major only from the library" "${msg}" "")
neftune_cuda_mismatch(msg "" "13.0.88" /cuda)
expect("LibTorch without CUDA" "${msg}" "")
neftune_cuda_mismatch(msg "12.6" "" /cuda)
expect("no toolkit" "${msg}" "")
neftune_cuda_mismatch(msg "12.6" "13.0.88" /usr/local/cuda-13.0)
expect_has("cu126 LibTorch beside a CUDA 13 toolkit: names both" "${msg}"
  "built with CUDA 12.6, but the CUDA toolkit found is 13.0.88 (/usr/local/cuda-13.0)")
expect_has("cu126 LibTorch beside a CUDA 13 toolkit: says which toolkit fits" "${msg}"
  "-DCUDAToolkit_ROOT=/usr/local/cuda-12.x")
neftune_cuda_mismatch(msg "13.0" "12.8.1" /cuda)
expect_has("cu130 LibTorch beside a CUDA 12 toolkit" "${msg}" "built with CUDA 13.0, but the CUDA toolkit found is 12.8.1")

file(REMOVE_RECURSE "${WORK}")
get_property(failures GLOBAL PROPERTY failures)
list(LENGTH failures n)
if(n GREATER 0)
  message(FATAL_ERROR "${n} check(s) failed: ${failures}")
endif()
message(STATUS "all checks passed")
