# POSIX conformance tests against ext4's behaviour (issue 12 item 17).
# Each scenario runs on an ext4 directory and on a real mount of the built binary, as
# root and as unprivileged users (the mount uses allow_other).
cadcanfs_test(issue12_conformance_test
  SOURCES regressions/issue12_item17_conformance_test.cc
  LIBS cadcanfs_fs)
target_compile_definitions(issue12_conformance_test PRIVATE CADCANFS_BINARY="$<TARGET_FILE:cadcanfs>")
add_dependencies(issue12_conformance_test cadcanfs)
