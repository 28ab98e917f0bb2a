#include "cadcanfs/fs/inode_table.h"

#include <algorithm>

namespace cadcanfs {

InodeTable::InodeTable()
    : root_(std::make_shared<Inode>(kRootInode, ObjectType::kDirectory, ObjectId{})) {
  root_->lookups = 1;  // the kernel never forgets the root
  by_number_.emplace(kRootInode, root_);
}

std::shared_ptr<Inode> InodeTable::Find(InodeNumber number) {
  std::lock_guard lock(mu_);
  auto it = by_number_.find(number);
  return it == by_number_.end() ? nullptr : it->second;
}

std::shared_ptr<Inode> InodeTable::FindByKey(const ObjectId& key) {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  auto inode = by_number_.find(it->second);
  return inode == by_number_.end() ? nullptr : inode->second;
}

std::shared_ptr<Inode> InodeTable::Record(const ObjectId& key, ObjectType type, InodeLink link) {
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
    UnretireLocked(inode->number);
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

std::shared_ptr<Inode> InodeTable::Revive(InodeNumber number) {
  std::lock_guard lock(mu_);
  auto it = by_number_.find(number);
  if (it == by_number_.end()) return nullptr;
  UnretireLocked(number);
  it->second->lookups.fetch_add(1);
  return it->second;
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
  bool named;
  {
    std::lock_guard inode_lock(inode->mu);
    named = !inode->links.empty();
  }
  if (!named) {
    DropLocked(*inode);
    return;
  }
  retired_at_[number] = retired_.insert(retired_.end(), number);
  if (retired_.size() <= kMaxRetired) return;
  const InodeNumber oldest = retired_.front();
  UnretireLocked(oldest);
  if (auto found = by_number_.find(oldest); found != by_number_.end()) {
    std::shared_ptr<Inode> dropped = found->second;  // outlives its map entries
    DropLocked(*dropped);
  }
}

void InodeTable::Detach(const Inode& inode) {
  std::lock_guard lock(mu_);
  auto key = by_key_.find(inode.key);
  if (key != by_key_.end() && key->second == inode.number) by_key_.erase(key);
  // Retired and now nameless: no handle can reach it any more.
  const InodeNumber number = inode.number;
  if (retired_at_.count(number) != 0) {
    UnretireLocked(number);
    by_number_.erase(number);
  }
}

void InodeTable::UnretireLocked(InodeNumber number) {
  auto it = retired_at_.find(number);
  if (it == retired_at_.end()) return;
  retired_.erase(it->second);
  retired_at_.erase(it);
}

void InodeTable::DropLocked(const Inode& inode) {
  const InodeNumber number = inode.number;
  auto key = by_key_.find(inode.key);
  if (key != by_key_.end() && key->second == number) by_key_.erase(key);
  by_number_.erase(number);
}

size_t InodeTable::size() {
  std::lock_guard lock(mu_);
  return by_number_.size();
}

}  // namespace cadcanfs
