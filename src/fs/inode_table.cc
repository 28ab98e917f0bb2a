#include "cadcanfs/fs/inode_table.h"

#include <algorithm>

namespace cadcanfs {

InodeTable::InodeTable()
    : root_(std::make_shared<Inode>(kRootInode, ObjectType::kDirectory, BackendKey{})) {
  root_->lookups = 1;  // the kernel never forgets the root
  by_number_.emplace(kRootInode, root_);
}

std::shared_ptr<Inode> InodeTable::Find(InodeNumber number) {
  std::lock_guard lock(mu_);
  auto it = by_number_.find(number);
  return it == by_number_.end() ? nullptr : it->second;
}

std::shared_ptr<Inode> InodeTable::FindByKey(const BackendKey& key) {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  auto inode = by_number_.find(it->second);
  return inode == by_number_.end() ? nullptr : inode->second;
}

std::shared_ptr<Inode> InodeTable::Record(const BackendKey& key, ObjectType type, InodeLink link) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard lock(mu_);
    auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      auto found = by_number_.find(it->second);
      // A different type means the store reused the id for a new object.
      if (found != by_number_.end() && found->second->type == type) inode = found->second;
    }
    if (!inode) {
      inode = std::make_shared<Inode>(next_number_++, type, key);
      by_number_.emplace(inode->number, inode);
      by_key_[key] = inode->number;
    }
    inode->lookups.fetch_add(1);
  }
  std::lock_guard lock(inode->mu);
  auto& links = inode->links;
  auto same = std::find_if(links.begin(), links.end(), [&](const InodeLink& l) {
    return l.parent == link.parent && l.stored == link.stored;
  });
  if (same != links.end()) links.erase(same);
  links.insert(links.begin(), std::move(link));
  return inode;
}

void InodeTable::Forget(InodeNumber number, uint64_t n) {
  if (number == kRootInode) return;
  std::lock_guard lock(mu_);
  auto it = by_number_.find(number);
  if (it == by_number_.end()) return;
  std::shared_ptr<Inode> inode = it->second;
  uint64_t before = inode->lookups.load();
  uint64_t after = before > n ? before - n : 0;
  inode->lookups.store(after);
  if (after > 0) return;
  by_number_.erase(it);
  auto key = by_key_.find(inode->key);
  if (key != by_key_.end() && key->second == number) by_key_.erase(key);
}

void InodeTable::Detach(const Inode& inode) {
  std::lock_guard lock(mu_);
  auto key = by_key_.find(inode.key);
  if (key != by_key_.end() && key->second == inode.number) by_key_.erase(key);
}

size_t InodeTable::size() {
  std::lock_guard lock(mu_);
  return by_number_.size();
}

}  // namespace cadcanfs
