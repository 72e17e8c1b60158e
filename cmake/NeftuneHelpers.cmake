# neftune_add_test(NAME name SOURCES a.cpp ... LABELS unit [RANKS n] [LIBS ...] [TIMEOUT s])
# Registers a GoogleTest executable; with RANKS it runs under mpirun with that many ranks.
function(neftune_add_test)
  cmake_parse_arguments(T "" "NAME;RANKS;TIMEOUT" "SOURCES;LABELS;LIBS;ARGS" ${ARGN})
  if(NOT TARGET ${T_NAME})
    add_executable(${T_NAME} ${T_SOURCES})
    target_link_libraries(${T_NAME} PRIVATE neftune_test_main ${T_LIBS})
    neftune_pch(${T_NAME} test PROGRAM)
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
  # (tests/test_main.cpp) and counts as skipped. ctest runs two tests at once, so two mpirun jobs often
  # share the cores: Open MPI's ranks then yield while they wait instead of spinning (a rank spinning on
  # a core another job needs doubled the time of the multi-rank tests).
  set_tests_properties(${test_name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "NEFTUNE_SHARED=${NEFTUNE_SHARED_DIR};NEFTUNE_BIN=$<TARGET_FILE:neftune>;OMP_NUM_THREADS=1;OMPI_MCA_mpi_yield_when_idle=1")
endfunction()
