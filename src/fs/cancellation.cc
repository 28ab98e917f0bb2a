#include "cadcanfs/fs/cancellation.h"

namespace cadcanfs {

namespace {
thread_local CancelScope* current_scope = nullptr;
}  // namespace

CancelScope::CancelScope(std::function<bool()> cancelled)
    : cancelled_(std::move(cancelled)), outer_(current_scope) {
  current_scope = this;
}

CancelScope::~CancelScope() { current_scope = outer_; }

bool CancelScope::Cancelled() { return current_scope != nullptr && current_scope->cancelled_(); }

}  // namespace cadcanfs
