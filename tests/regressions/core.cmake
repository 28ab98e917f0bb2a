# Regression tests for the filesystem core (issue 12 items 1, 3, 9, 11-17).
cadcanfs_test(issue12_core_test
  SOURCES regressions/issue12_item03_crash_safe_resize_test.cc
          regressions/issue12_item11_one_open_file_test.cc
          regressions/issue12_item01_golden_v1_test.cc
  LIBS cadcanfs_fs)
target_compile_definitions(issue12_core_test PRIVATE CADCANFS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_test(NAME issue12_item03_kill9_append
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/regressions/issue12_item03_kill9_append.sh $<TARGET_FILE:cadcanfs>)
set_tests_properties(issue12_item03_kill9_append PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE
                     LABELS shell-e2e)
# Real FUSE mounts of the built binary.
cadcanfs_test(issue12_mount_test
  SOURCES regressions/issue12_mount_test.cc
  LIBS cadcanfs_fs)
target_compile_definitions(issue12_mount_test PRIVATE CADCANFS_BINARY="$<TARGET_FILE:cadcanfs>")
add_dependencies(issue12_mount_test cadcanfs)
