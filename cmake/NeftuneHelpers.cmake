# Precompiled LibTorch headers: a LibTorch include costs ~7 s per translation unit on a 2-core machine.
# NEFTUNE_PCH=OFF builds without them (clang-tidy cannot read GCC's precompiled headers: launch/lint.sh).
function(neftune_torch_pch target)
  if(NOT NEFTUNE_PCH)
    return()
  endif()
  target_precompile_headers(${target} PRIVATE
    <ATen/ATen.h>
    <torch/csrc/autograd/autograd.h>
    <torch/csrc/autograd/generated/variable_factories.h>)
endfunction()

# neftune_add_test(NAME name SOURCES a.cpp ... LABELS unit [RANKS n] [LIBS ...] [TIMEOUT s])
# Registers a GoogleTest executable; with RANKS it runs under mpirun with that many ranks.
function(neftune_add_test)
  cmake_parse_arguments(T "" "NAME;RANKS;TIMEOUT" "SOURCES;LABELS;LIBS;ARGS" ${ARGN})
  if(NOT TARGET ${T_NAME})
    add_executable(${T_NAME} ${T_SOURCES})
    target_link_libraries(${T_NAME} PRIVATE neftune_test_main ${T_LIBS})
    set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  endif()
  if(T_RANKS)
    set(test_name ${T_NAME}_np${T_RANKS})
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_RANKS} ${NEFTUNE_MPIEXEC_FLAGS}
                     $<TARGET_FILE:${T_NAME}> ${T_ARGS})
  else()
    set(test_name ${T_NAME})
    add_test(NAME ${test_name} COMMAND $<TARGET_FILE:${T_NAME}> ${T_ARGS})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  # A binary in which a test skipped for a missing reference fixture, and none failed, exits 77
  # (tests/test_main.cpp) and counts as skipped.
  set_tests_properties(${test_name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "NEFTUNE_SHARED=${NEFTUNE_SHARED_DIR};NEFTUNE_BIN=$<TARGET_FILE:neftune>;OMP_NUM_THREADS=1")
endfunction()
