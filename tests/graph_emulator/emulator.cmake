# The Graph emulator's own unit tests (Python standard library only): a bug in the
# emulator would hide a bug in the OneDrive client that is tested against it.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
add_test(NAME graph_emulator
         COMMAND ${Python3_EXECUTABLE} -B -m unittest -v test_graph_emulator
         WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
# It runs no C++ of ours, so the sanitizer pass skips it (label "emulator").
set_tests_properties(graph_emulator PROPERTIES TIMEOUT 120 LABELS emulator)
