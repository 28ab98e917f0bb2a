# Backup, restore and progress output (issue 11): shell tests of scripts/backup-vault.sh,
# scripts/restore-vault.sh and the progress/summary output of the long commands.
add_test(NAME backup_restore_drill
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ops/backup_restore_drill_test.sh $<TARGET_FILE:cadcanfs>
          ${PROJECT_SOURCE_DIR}/scripts)
set_tests_properties(backup_restore_drill PROPERTIES TIMEOUT 300 LABELS ops-drill)
add_test(NAME progress_output
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ops/progress_output_test.sh $<TARGET_FILE:cadcanfs>
          ${PROJECT_SOURCE_DIR}/scripts)
# An output check of the CLI (label ops-drill): the Release run covers it.
set_tests_properties(progress_output PROPERTIES TIMEOUT 300 LABELS ops-drill)
# Unit tests of the progress line (src/cli/progress.h).
cadcanfs_test(progress_test
  SOURCES cli/progress_test.cc
  LIBS cadcanfs_cli)
