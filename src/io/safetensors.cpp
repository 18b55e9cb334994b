#include "io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "io/json_field.hpp"
#include "io/json_limits.hpp"

namespace ovis {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // same limit as the reference implementation
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, ": truncated safetensors file (", size, " bytes, no header length)");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path, ": mmap failed: ", std::strerror(errno));

  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = map;
  f->size_ = size;
  f->self_ = f;

  uint64_t header_len = 0;
  std::memcpy(&header_len, map, 8);
  if (header_len > kMaxHeaderBytes)
    fail(path, ": safetensors header length ", header_len, " exceeds the 100 MiB limit");
  if (header_len > size - 8)
    fail(path, ": truncated safetensors file (header of ", header_len, " bytes, file has ", size,
         ")");
  f->data_offset_ = 8 + header_len;
  const char* hp = static_cast<const char*>(map) + 8;
  f->entries_ =
      parse_safetensors_header(std::string_view(hp, header_len), size - f->data_offset_, path);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, size_);
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, ": missing tensor '", name, "'");
  const SafetensorsEntry& e = it->second;
  const char* p = static_cast<const char*>(map_) + data_offset_ + e.begin;
  // Read-only: the mapping is the checkpoint file itself.
  return Tensor::host_view(p, e.shape, e.dtype, std::static_pointer_cast<const void>(self_.lock()));
}

TensorStore TensorStore::of_file(std::shared_ptr<const TensorFile> file) {
  TensorStore s;
  for (const auto& [name, e] : file->entries()) s.where_[name] = 0;
  s.origin_ = file->path();
  s.files_.push_back(std::move(file));
  return s;
}

TensorStore TensorStore::open_files(const std::vector<std::string>& paths) {
  TensorStore s;
  for (const auto& p : paths) {
    auto f = SafetensorsFile::open(p);
    for (const auto& [name, e] : f->entries()) {
      if (s.where_.count(name))
        fail(p, ": tensor ", quote_for_error(name), " also appears in ",
             s.files_[s.where_[name]]->path());
      s.where_[name] = s.files_.size();
    }
    s.files_.push_back(f);
  }
  s.origin_ = paths.empty() ? "" : std::filesystem::path(paths[0]).parent_path().string();
  return s;
}

TensorStore TensorStore::open_dir(const std::string& dir, const std::string& index_name,
                                  const std::string& single_name) {
  namespace fs = std::filesystem;
  fs::path index = fs::path(dir) / index_name;
  fs::path single = fs::path(dir) / single_name;
  if (fs::exists(index)) {
    const std::string index_path = index.string();
    const nlohmann::json j = read_json_file(index_path, kIndexJsonLimits);
    const JsonField weight_map = JsonField(j, index_path)["weight_map"];
    weight_map.object();
    std::vector<std::string> shards;
    std::set<std::string> seen;
    std::map<std::string, std::string> expected;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      const std::string& name = it.key();
      if (!it.value().is_string())
        fail(index_path, ": weight_map[", quote_for_error(name), "] is ", json_kind(it.value()),
             ", expected a shard file name");
      const std::string& shard = it.value().get_ref<const std::string&>();
      if (shard.empty() || shard.find('/') != std::string::npos ||
          shard.find("..") != std::string::npos)
        fail(index_path, ": weight_map[", quote_for_error(name), "] names an unsafe path ",
             quote_for_error(shard));
      expected[name] = shard;
      if (seen.insert(shard).second) {
        if (!fs::exists(fs::path(dir) / shard))
          fail((fs::path(dir) / shard).string(), ": missing shard named by ", index_path);
        shards.push_back(shard);
      }
    }
    std::vector<std::string> paths;
    for (const auto& s : shards) paths.push_back((fs::path(dir) / s).string());
    TensorStore st = open_files(paths);
    for (const auto& [name, shard] : expected) {
      if (!st.has(name))
        fail((fs::path(dir) / shard).string(), ": missing tensor ", quote_for_error(name),
             " listed in ", index_name);
    }
    st.origin_ = dir;
    return st;
  }
  if (fs::exists(single)) {
    TensorStore st = open_files({single.string()});
    st.origin_ = dir;
    return st;
  }
  fail(dir, ": no ", index_name, " or ", single_name, " found");
}

Tensor TensorStore::get(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(origin_, ": missing tensor '", name, "'");
  return files_[it->second]->tensor(name);
}

const SafetensorsEntry& TensorStore::entry(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(origin_, ": missing tensor '", name, "'");
  return files_[it->second]->entries().at(name);
}

std::string TensorStore::file_of(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? origin_ : files_[it->second]->path();
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> r;
  for (const auto& [n, i] : where_) r.push_back(n);
  return r;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  size_t off = 0;
  for (const auto& [name, t] : tensors) {
    h[name] = {{"dtype", dtype_name(t.dtype())},
               {"shape", t.shape()},
               {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string hs = h.dump();
  while (hs.size() % 8) hs.push_back(' ');
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail(path, ": cannot open for writing");
    uint64_t n = hs.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(hs.data(), std::streamsize(hs.size()));
    for (const auto& [name, t] : tensors)
      out.write(static_cast<const char*>(t.raw()), std::streamsize(t.nbytes()));
    if (!out) fail(path, ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace ovis
