# Regression tests for the vault lock and key rotation (issue 12 items 2, 10).
cadcanfs_test(issue12_item02_vault_lock_test
  SOURCES regressions/issue12_item02_vault_lock_test.cc
  LIBS cadcanfs_fs)
cadcanfs_test(issue12_item04_rekey_skipped_entry_test
  SOURCES regressions/issue12_item04_rekey_skipped_entry_test.cc
  LIBS cadcanfs_fs)
cadcanfs_test(issue12_item10_rekey_rerun_test
  SOURCES regressions/issue12_item10_rekey_rerun_test.cc
  LIBS cadcanfs_fs)
# Real mounts (root or fusermount3): a mounted vault refuses a second writer.
add_test(NAME issue12_item02_vault_lock_e2e
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/regressions/issue12_item02_vault_lock_e2e.sh
          $<TARGET_FILE:cadcanfs>)
set_tests_properties(issue12_item02_vault_lock_e2e PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE
                     LABELS shell-e2e)
