# All third-party dependencies come from the system's packages (launch/setup.sh); nothing is downloaded.
find_package(Torch REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# The Split pre-tokenizers of tokenizer.json (Unicode classes, lookahead): libpcre2-dev.
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

# LibTorch: an interface target carrying its libraries and flags, plus the LibTorch version macros.
add_library(neftune_torch INTERFACE)
target_link_libraries(neftune_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(neftune_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(neftune_torch INTERFACE ${_torch_flags})
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(NEFTUNE_TORCH_CUDA ON)
  target_compile_definitions(neftune_torch INTERFACE NEFTUNE_TORCH_CUDA=1)
else()
  set(NEFTUNE_TORCH_CUDA OFF)
endif()
include(NeftuneTorchCuda)
neftune_torch_cuda_version(NEFTUNE_TORCH_CUDA_VERSION "${Torch_DIR}")
# For the configure summary (CMakeLists.txt): "2.6.0 without CUDA", "2.11.0 with CUDA 13.0".
if(NOT NEFTUNE_TORCH_CUDA)
  set(NEFTUNE_TORCH_SUMMARY "${Torch_VERSION} without CUDA")
elseif(NEFTUNE_TORCH_CUDA_VERSION)
  set(NEFTUNE_TORCH_SUMMARY "${Torch_VERSION} with CUDA ${NEFTUNE_TORCH_CUDA_VERSION}")
else()
  set(NEFTUNE_TORCH_SUMMARY "${Torch_VERSION} with CUDA (version not found beside ${Torch_DIR})")
endif()

# NCCL backend: CUDA runtime + NCCL. Builds against a CPU LibTorch too (compile/link check); it can
# only run where LibTorch has CUDA.
set(NEFTUNE_HAVE_NCCL OFF)
if(NOT NEFTUNE_WITH_NCCL STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include ENV NCCL_HOME PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 ENV NCCL_HOME PATH_SUFFIXES lib lib64)
  if(CUDAToolkit_FOUND AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(NEFTUNE_HAVE_NCCL ON)
    add_library(neftune_nccl_deps INTERFACE)
    target_include_directories(neftune_nccl_deps SYSTEM INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(neftune_nccl_deps INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
    message(STATUS "neftune: NCCL ${NCCL_LIBRARY}, CUDA ${CUDAToolkit_VERSION}, LibTorch CUDA: ${NEFTUNE_TORCH_CUDA}")
  elseif(NEFTUNE_WITH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "NEFTUNE_WITH_NCCL=ON but CUDA toolkit or NCCL not found (set CUDAToolkit_ROOT / NCCL_HOME)")
  endif()
endif()
# A CUDA LibTorch beside a CUDA toolkit of another major version fails here, not on the GPU node.
if(NEFTUNE_TORCH_CUDA)
  find_package(CUDAToolkit QUIET)
  get_filename_component(_toolkit_dir "${CUDAToolkit_BIN_DIR}" DIRECTORY)
  neftune_cuda_mismatch(_msg "${NEFTUNE_TORCH_CUDA_VERSION}" "${CUDAToolkit_VERSION}" "${_toolkit_dir}")
  if(_msg)
    message(FATAL_ERROR "${_msg}")
  endif()
endif()

# The CUDA compile check: every translation unit of the CUDA flavour (NEFTUNE_TORCH_CUDA, the NCCL
# backend) compiled against a LibTorch without CUDA libraries, i.e. its headers plus the CUDA toolkit's.
# Build the object files only (`ninja $(ninja -t targets all | grep -o '^[^:]*\.o')`): nothing links.
if(NEFTUNE_CUDA_COMPILE_CHECK)
  if(NOT NEFTUNE_HAVE_NCCL)
    message(FATAL_ERROR "NEFTUNE_CUDA_COMPILE_CHECK=ON needs the CUDA toolkit and NCCL (set CUDAToolkit_ROOT / "
                        "NCCL_HOME) and NEFTUNE_WITH_NCCL other than OFF")
  endif()
  if(NOT NEFTUNE_TORCH_CUDA)
    # A distribution's LibTorch ships c10/cuda but not the file its build generates beside it
    # (c10/cuda/impl/cuda_cmake_macros.h, which only defines Windows export macros).
    target_compile_definitions(neftune_torch INTERFACE NEFTUNE_TORCH_CUDA=1 C10_CUDA_NO_CMAKE_CONFIGURE_FILE=1)
    target_include_directories(neftune_torch SYSTEM INTERFACE ${CUDAToolkit_INCLUDE_DIRS})
  endif()
  message(STATUS "neftune: CUDA compile check: the CUDA flavour compiles here (object files only, linking fails)")
endif()
