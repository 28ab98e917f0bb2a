# Regression tests for the offline commands (issue 12 items 4-8): owned by one change set.
cadcanfs_test(issue12_item04_test
  SOURCES regressions/issue12_item04_skipped_entries_test.cc
  LIBS cadcanfs_fs)
cadcanfs_test(issue12_item05_test
  SOURCES regressions/issue12_item05_forged_alias_test.cc
  LIBS cadcanfs_fs)
cadcanfs_test(issue12_item06_test
  SOURCES regressions/issue12_item06_fifo_in_vault_test.cc
  LIBS cadcanfs_fs)
cadcanfs_test(issue12_item07_test
  SOURCES regressions/issue12_item07_strict_config_test.cc
  LIBS cadcanfs_fs)
target_compile_definitions(issue12_item07_test
  PRIVATE CADCANFS_CONFIG_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/config")
# Item 8: the fsck unit's output (what reaches the journal) carries no plaintext name.
add_test(NAME issue12_item08_fsck_unit_output
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/regressions/issue12_item08_fsck_unit_output_test.sh
          $<TARGET_FILE:cadcanfs> ${PROJECT_SOURCE_DIR}/systemd/cadcanfs-fsck@.service)
set_tests_properties(issue12_item08_fsck_unit_output PROPERTIES TIMEOUT 300)
