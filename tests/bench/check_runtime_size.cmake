# ctest runtime_size.within_budget: strips a copy of the runtime size probe
# (-DPROBE) with -DSTRIP and fails when it is larger than -DBUDGET bytes.
foreach(_var IN ITEMS PROBE STRIP BUDGET)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "check_runtime_size.cmake: -D${_var}= is required")
  endif()
endforeach()
get_filename_component(_name "${PROBE}" NAME)
set(_stripped "${CMAKE_CURRENT_BINARY_DIR}/${_name}.stripped")
execute_process(COMMAND "${STRIP}" -o "${_stripped}" "${PROBE}"
  RESULT_VARIABLE _rc ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "${STRIP} -o ${_stripped} ${PROBE} failed (${_rc}): ${_err}")
endif()
file(SIZE "${_stripped}" _size)
file(REMOVE "${_stripped}")
if(_size GREATER BUDGET)
  math(EXPR _over "${_size} - ${BUDGET}")
  message(FATAL_ERROR "stripped runtime is ${_size} bytes, ${_over} over its budget of "
                      "${BUDGET} (KILN_RUNTIME_SIZE_BUDGET)")
endif()
message(STATUS "stripped runtime: ${_size} bytes, budget ${BUDGET}")
