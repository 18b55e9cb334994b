// A thread-safe, bounded cache of compiled primitives by problem shape: beyond `capacity`
// entries the least recently used one is dropped (shapes vary with prompt and image sizes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

namespace ovis::ops::cpu {

template <class Key, class Plan>
class PlanCache {
 public:
  explicit PlanCache(size_t capacity) : capacity_(capacity) {}

  // The plan for `key`, made by make(key) on a miss.
  template <class Make>
  Plan get(const Key& key, Make make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) {
      it->second.second = ++clock_;
      return it->second.first;
    }
    if (plans_.size() >= capacity_) {
      auto oldest = plans_.begin();
      for (auto j = plans_.begin(); j != plans_.end(); ++j)
        if (j->second.second < oldest->second.second) oldest = j;
      plans_.erase(oldest);
    }
    return plans_.emplace(key, std::make_pair(make(key), ++clock_)).first->second.first;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return plans_.size();
  }

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::map<Key, std::pair<Plan, uint64_t>> plans_;
  uint64_t clock_ = 0;
};

}  // namespace ovis::ops::cpu
