# Which CUDA LibTorch was built with, and whether the CUDA toolkit found beside it can work with it.
# Plain functions on paths and strings, so that tests/cmake/test_torch_cuda.cmake runs them with
# `cmake -P` on fake install trees.

# neftune_torch_cuda_version(<out> <torch_dir>)
# Sets <out> to the CUDA version LibTorch was built with ("13.0", "12.6"; only the major, "13", when it
# comes from a library name), or to "" for a LibTorch without CUDA. <torch_dir> is Torch_DIR, i.e.
# <prefix>/share/cmake/Torch. The first of these in <prefix> that says anything decides:
#   version.py            a pip wheel (prefix = site-packages/torch): `cuda: Optional[str] = '13.0'`
#                         (`cuda = '11.8'` in older wheels; None without CUDA)
#   build-version         a standalone libtorch zip: `2.11.0+cu130` (`+cpu` without CUDA)
#   lib/libtorch_cuda.so  the CUDA runtime it loads: libcudart.so.13 (the zip's own copy is named
#                         libcudart-<hash>.so.12); no such library: no CUDA
function(neftune_torch_cuda_version out torch_dir)
  get_filename_component(prefix "${torch_dir}/../../.." ABSOLUTE)
  set(version "")
  set(cudart_regex "libcudart(-[0-9a-f]+)?\\.so\\.([0-9]+)")
  if(EXISTS "${prefix}/version.py")
    file(STRINGS "${prefix}/version.py" line REGEX "^cuda[ :=]" LIMIT_COUNT 1)
  endif()
  if(EXISTS "${prefix}/build-version")
    file(STRINGS "${prefix}/build-version" build_version LIMIT_COUNT 1)
  endif()
  if(line)
    if(line MATCHES "['\"]([0-9]+\\.[0-9]+)")
      set(version "${CMAKE_MATCH_1}")
    endif()
  elseif(build_version)
    # cu130 -> 13.0, cu126 -> 12.6, cu118 -> 11.8: the last digit is the minor version.
    if(build_version MATCHES "\\+cu([0-9]+)([0-9])")
      set(version "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
    endif()
  elseif(EXISTS "${prefix}/lib/libtorch_cuda.so")
    # The NEEDED names sit in the dynamic string table near the start of the file: the first match
    # ends the scan.
    file(STRINGS "${prefix}/lib/libtorch_cuda.so" needed REGEX "${cudart_regex}" LIMIT_COUNT 1)
    if(needed MATCHES "${cudart_regex}")
      set(version "${CMAKE_MATCH_2}")
    endif()
  endif()
  set(${out} "${version}" PARENT_SCOPE)
endfunction()

# neftune_cuda_mismatch(<out> <torch_cuda> <toolkit_version> <toolkit_dir>)
# Sets <out> to an error message when LibTorch's CUDA (from neftune_torch_cuda_version) and the CUDA
# toolkit's version differ in their major version, else to "". Either one unknown ("") is no mismatch.
function(neftune_cuda_mismatch out torch_cuda toolkit_version toolkit_dir)
  set(msg "")
  if(torch_cuda AND toolkit_version)
    string(REGEX MATCH "^[0-9]+" torch_major "${torch_cuda}")
    string(REGEX MATCH "^[0-9]+" toolkit_major "${toolkit_version}")
    if(NOT torch_major STREQUAL toolkit_major)
      string(CONCAT msg "LibTorch was built with CUDA ${torch_cuda}, but the CUDA toolkit found is ${toolkit_version} "
              "(${toolkit_dir}). Two CUDA major versions cannot share one process: the NCCL backend and "
              "neftune's CUDA code would load CUDA ${toolkit_major}'s runtime beside LibTorch's CUDA "
              "${torch_major}, which needs a driver for both (a CUDA 13 runtime needs a newer driver than "
              "most GPU nodes have). Either point CMake at a CUDA ${torch_major}.x toolkit "
              "(-DCUDAToolkit_ROOT=/usr/local/cuda-${torch_major}.x) or use a LibTorch built for CUDA "
              "${toolkit_major} (a cu${toolkit_major}x wheel or zip).")
    endif()
  endif()
  set(${out} "${msg}" PARENT_SCOPE)
endfunction()
