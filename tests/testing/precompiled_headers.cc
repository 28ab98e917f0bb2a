// The one translation unit of cadcanfs_test_headers: the target exists so that every test
// binary reuses its precompiled GoogleTest headers (tests/CMakeLists.txt).
