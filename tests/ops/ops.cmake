# Operations (issue 11): the systemd units, the service harness, the fstab helper,
# doctor, the key rotation drill, the Debian package and the operations guide run as a
# test. Real mounts, as root.
set(OPS_DIR ${CMAKE_CURRENT_SOURCE_DIR}/ops)
add_test(NAME ops_systemd_verify
  COMMAND ${OPS_DIR}/systemd_verify_test.sh $<TARGET_FILE:cadcanfs> ${PROJECT_SOURCE_DIR}/systemd)
add_test(NAME ops_systemd_notify
  COMMAND python3 ${OPS_DIR}/systemd_notify_test.py $<TARGET_FILE:cadcanfs>
          ${PROJECT_SOURCE_DIR}/systemd/cadcanfs@.service)
add_test(NAME ops_rekey_drill
  COMMAND python3 ${OPS_DIR}/rekey_drill_test.py $<TARGET_FILE:cadcanfs>
          ${PROJECT_SOURCE_DIR}/systemd/cadcanfs@.service)
add_test(NAME ops_fstab_helper COMMAND ${OPS_DIR}/fstab_helper_test.sh $<TARGET_FILE:cadcanfs>)
add_test(NAME ops_doctor COMMAND ${OPS_DIR}/doctor_test.sh $<TARGET_FILE:cadcanfs>)
add_test(NAME ops_package_deb
  COMMAND ${OPS_DIR}/package_deb_test.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
add_test(NAME ops_manpage
  COMMAND ${OPS_DIR}/manpage_test.sh ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/docs/cadcanfs.8)
# docs/operations.md run step by step (its `<!-- doc-test -->` blocks), installed with
# cmake --install into overlays of /usr, /etc, /var, /srv and /root in a private mount
# namespace, the units run by tests/ops/systemctl_shim.py. Needs the built binary and
# man page, which `cmake --install` copies.
add_test(NAME ops_operations_doc
  COMMAND ${OPS_DIR}/operations_doc_test.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(ops_systemd_notify ops_rekey_drill ops_fstab_helper ops_doctor
  ops_operations_doc PROPERTIES TIMEOUT 300 RUN_SERIAL TRUE)
set_tests_properties(ops_systemd_verify ops_package_deb ops_manpage PROPERTIES TIMEOUT 300)
# What the install tree, the package, the man page and the operations guide look like
# does not change with the sanitizers; scripts/test.sh runs these in the Release build only.
set_tests_properties(ops_systemd_verify ops_package_deb ops_manpage ops_operations_doc
  PROPERTIES LABELS packaging)
# The operational drills run the same binary through shell and Python harnesses (the
# service's life cycle, fstab, doctor, a 5,000-file key rotation): their C++ paths are
# covered under the sanitizers by the unit and mount tests, so scripts/test.sh runs
# them in the Release pass only, as the packaging checks.
set_tests_properties(ops_systemd_notify ops_rekey_drill ops_fstab_helper ops_doctor
  PROPERTIES LABELS ops-drill)
