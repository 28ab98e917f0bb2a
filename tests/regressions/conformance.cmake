# POSIX conformance tests against ext4's behaviour (issue 12 item 17).
