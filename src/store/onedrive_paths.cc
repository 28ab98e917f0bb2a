#include "onedrive_paths.h"

#include <algorithm>

#include "cadcanfs/store/store.h"

namespace cadcanfs {

std::string FoldStorePath(std::string_view path) {
  std::string folded(path);
  std::transform(folded.begin(), folded.end(), folded.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return folded;
}

namespace {

// `key` is `prefix` itself or a path below it.
bool IsAtOrBelow(const std::string& key, const std::string& prefix) {
  if (prefix.empty()) return true;
  return key.size() >= prefix.size() && key.compare(0, prefix.size(), prefix) == 0 &&
         (key.size() == prefix.size() || key[prefix.size()] == '/');
}

}  // namespace

OneDrivePathTable::OneDrivePathTable(graph::DriveItem root) {
  entries_.emplace("", Entry{std::move(root), Clock::now()});
}

std::optional<OneDrivePathTable::Entry> OneDrivePathTable::Find(std::string_view path) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(FoldStorePath(path));
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void OneDrivePathTable::Remember(std::string_view path, const graph::DriveItem& item) {
  std::lock_guard lock(mu_);
  entries_[FoldStorePath(path)] = Entry{item, Clock::now()};
}

bool OneDrivePathTable::Knows(std::string_view path) const {
  const std::string key = FoldStorePath(path);
  std::lock_guard lock(mu_);
  return entries_.contains(key);
}

void OneDrivePathTable::RememberFolderId(std::string_view path, const std::string& id) {
  const std::string key = FoldStorePath(path);
  std::lock_guard lock(mu_);
  Entry& entry = entries_[key];
  if (entry.item.id == id) return;  // known already, perhaps with its attributes
  entry.item = graph::DriveItem{};
  entry.item.id = id;
  entry.item.name = std::string(StoreBaseName(path));
  entry.item.is_folder = true;
  entry.filled = Clock::time_point();  // stale: Stat asks for the rest
}

bool OneDrivePathTable::Refresh(const graph::DriveItem& item) {
  std::lock_guard lock(mu_);
  bool found = false;
  for (auto& [path, entry] : entries_) {
    if (entry.item.id != item.id) continue;
    entry = Entry{item, Clock::now()};
    found = true;
  }
  return found;
}

void OneDrivePathTable::ForgetChildrenExcept(std::string_view dir,
                                             const std::unordered_set<std::string>& names) {
  const std::string prefix = FoldStorePath(dir);
  const size_t skip = prefix.empty() ? 0 : prefix.size() + 1;
  std::lock_guard lock(mu_);
  std::erase_if(entries_, [&](const auto& entry) {
    const std::string& key = entry.first;
    if (key.size() <= skip || key == prefix || !IsAtOrBelow(key, prefix)) return false;
    const std::string_view below = std::string_view(key).substr(skip);
    return !names.contains(std::string(below.substr(0, below.find('/'))));
  });
}

void OneDrivePathTable::Forget(std::string_view path) {
  const std::string prefix = FoldStorePath(path);
  std::lock_guard lock(mu_);
  std::erase_if(entries_, [&](const auto& entry) {
    return !entry.first.empty() && IsAtOrBelow(entry.first, prefix);
  });
}

void OneDrivePathTable::ForgetAll() { Forget(""); }

std::pair<std::string, OneDrivePathTable::Entry> OneDrivePathTable::DeepestKnown(
    std::string_view path) const {
  std::string prefix = FoldStorePath(path);
  std::lock_guard lock(mu_);
  while (true) {
    auto it = entries_.find(prefix);
    if (it != entries_.end()) return {prefix, it->second};
    prefix = std::string(StoreParent(prefix));
  }
}

void OneDriveTree::Reset(const std::string& root_id, const std::vector<graph::DriveItem>& items) {
  std::lock_guard lock(mu_);
  root_id_ = root_id;
  nodes_.clear();
  for (const graph::DriveItem& item : items) {
    if (!item.deleted && item.id != root_id_) Place(item);
  }
}

bool OneDriveTree::Place(const graph::DriveItem& item) {
  if (item.parent_id != root_id_ && !nodes_.contains(item.parent_id)) return false;
  nodes_[item.id] = Node{item.name, item.parent_id};
  return true;
}

std::optional<std::string> OneDriveTree::PathOf(const std::string& id) const {
  std::vector<const std::string*> names;
  std::string current = id;
  while (current != root_id_) {
    auto it = nodes_.find(current);
    if (it == nodes_.end() || names.size() > nodes_.size()) return std::nullopt;
    names.push_back(&it->second.name);
    current = it->second.parent_id;
  }
  std::string path;
  for (auto name = names.rbegin(); name != names.rend(); ++name) path = JoinStorePath(path, **name);
  return path;
}

std::vector<OneDriveTree::Change> OneDriveTree::Apply(
    const std::vector<graph::DriveItem>& changes) {
  std::lock_guard lock(mu_);
  std::vector<Change> out;
  // Where every changed item was, before any of them moves.
  std::unordered_map<std::string, std::optional<std::string>> before;
  for (const graph::DriveItem& item : changes) before[item.id] = PathOf(item.id);

  std::vector<const graph::DriveItem*> pending;
  for (const graph::DriveItem& item : changes) {
    if (item.id == root_id_) continue;
    if (item.deleted) {
      if (before[item.id]) out.push_back(Change{before[item.id], std::nullopt, &item});
      nodes_.erase(item.id);
      continue;
    }
    pending.push_back(&item);
  }
  // A new folder may come after its children: place what can be placed until nothing
  // more can.
  bool progress = true;
  while (progress && !pending.empty()) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      const graph::DriveItem& item = **it;
      auto known = nodes_.find(item.id);
      const bool unchanged_folder = item.is_folder && known != nodes_.end() &&
                                    known->second.name == item.name &&
                                    known->second.parent_id == item.parent_id;
      if (!Place(item)) {
        ++it;
        continue;
      }
      progress = true;
      if (!unchanged_folder) out.push_back(Change{before[item.id], PathOf(item.id), &item});
      it = pending.erase(it);
    }
  }
  // Left: items now outside the root (moved away, or never under it).
  for (const graph::DriveItem* item : pending) {
    if (before[item->id]) out.push_back(Change{before[item->id], std::nullopt, item});
    nodes_.erase(item->id);
  }
  return out;
}

}  // namespace cadcanfs
