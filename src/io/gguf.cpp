#include "io/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.hpp"

namespace ovis {

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kVersion = 3;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kMaxDim = uint64_t(1) << 40;
constexpr uint32_t kMaxAlignment = 1u << 20;

// Little-endian reads from the file bytes; every read is bounds-checked first.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& origin)
      : p_(data), size_(size), origin_(origin) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  template <class... Ctx>
  void need(uint64_t n, const Ctx&... ctx) const {
    if (n > left())
      fail(origin_, ": truncated GGUF header (", ctx..., " needs ", n, " bytes, ", left(),
           " left)");
  }
  template <class T, class... Ctx>
  T read(const Ctx&... ctx) {
    need(sizeof(T), ctx...);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  template <class... Ctx>
  std::string read_string(const Ctx&... ctx) {
    const uint64_t n = read<uint64_t>(ctx...);
    need(n, ctx...);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }
  template <class... Ctx>
  void skip(uint64_t n, const Ctx&... ctx) {
    need(n, ctx...);
    pos_ += size_t(n);
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& origin_;
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::Bool:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    default:
      return 0;
  }
}

bool known_type(uint32_t t) {
  return t <= uint32_t(GgufType::F64);
}

void read_scalar(Cursor& c, GgufType t, GgufValue& v, const std::string& key) {
  switch (t) {
    case GgufType::U8:
      v.u = c.read<uint8_t>("key '", key, "'");
      break;
    case GgufType::I8:
      v.i = c.read<int8_t>("key '", key, "'");
      break;
    case GgufType::U16:
      v.u = c.read<uint16_t>("key '", key, "'");
      break;
    case GgufType::I16:
      v.i = c.read<int16_t>("key '", key, "'");
      break;
    case GgufType::U32:
      v.u = c.read<uint32_t>("key '", key, "'");
      break;
    case GgufType::I32:
      v.i = c.read<int32_t>("key '", key, "'");
      break;
    case GgufType::F32:
      v.f = c.read<float>("key '", key, "'");
      break;
    case GgufType::Bool:
      v.u = c.read<uint8_t>("key '", key, "'");
      break;
    case GgufType::U64:
      v.u = c.read<uint64_t>("key '", key, "'");
      break;
    case GgufType::I64:
      v.i = c.read<int64_t>("key '", key, "'");
      break;
    case GgufType::F64:
      v.f = c.read<double>("key '", key, "'");
      break;
    default:
      break;
  }
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& origin, const std::string& key) {
  GgufValue v;
  v.type = t;
  if (t == GgufType::String) {
    v.str = c.read_string("key '", key, "'");
  } else if (t == GgufType::Array) {
    const uint32_t et = c.read<uint32_t>("key '", key, "'");
    if (!known_type(et)) fail(origin, ": key '", key, "' is an array of unknown type ", et);
    if (GgufType(et) == GgufType::Array)
      fail(origin, ": key '", key, "' is an array of arrays (not supported)");
    v.array_type = GgufType(et);
    v.array_size = c.read<uint64_t>("key '", key, "'");
    if (v.array_type == GgufType::String) {
      // Each element takes at least its 8-byte length.
      if (v.array_size > c.left() / 8)
        fail(origin, ": key '", key, "' claims ", v.array_size,
             " strings, more than the file holds");
      for (uint64_t k = 0; k < v.array_size; ++k) {
        const uint64_t n = c.read<uint64_t>("key '", key, "'");
        c.skip(n, "key '", key, "'");
      }
    } else {
      const size_t es = scalar_size(v.array_type);
      if (v.array_size > c.left() / es)
        fail(origin, ": key '", key, "' claims ", v.array_size,
             " elements, more than the file holds");
      c.skip(v.array_size * es, "key '", key, "'");
    }
  } else {
    read_scalar(c, t, v, key);
  }
  return v;
}

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

}  // namespace

bool ggml_type_of(DType t, uint32_t* id) {
  switch (t) {
    case DType::F32:
      *id = 0;
      return true;
    case DType::F16:
      *id = 1;
      return true;
    case DType::Q8_0:
      *id = 8;
      return true;
    case DType::Q4_K:
      *id = 12;
      return true;
    case DType::I32:
      *id = 26;
      return true;
    case DType::I64:
      *id = 27;
      return true;
    case DType::F64:
      *id = 28;
      return true;
    case DType::BF16:
      *id = 30;
      return true;
    default:
      return false;
  }
}

bool dtype_of_ggml_type(uint32_t id, DType* t) {
  for (DType d : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_K, DType::I32, DType::I64,
                  DType::F64, DType::BF16}) {
    uint32_t i;
    if (ggml_type_of(d, &i) && i == id) {
      *t = d;
      return true;
    }
  }
  return false;
}

GgufHeader parse_gguf_header(const uint8_t* data, size_t size, const std::string& origin) {
  Cursor c(data, size, origin);
  GgufHeader h;
  char magic[4];
  c.need(4, "the magic");
  std::memcpy(magic, data, 4);
  if (std::memcmp(magic, kMagic, 4) != 0) fail(origin, ": not a GGUF file (bad magic)");
  c.skip(4);
  h.version = c.read<uint32_t>("the version");
  if (h.version != kVersion)
    fail(origin, ": unsupported GGUF version ", h.version, " (ovis.cpp reads version 3)");
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // A key/value takes at least 12 bytes (key length, type), a tensor info at least 24.
  if (n_kv > c.left() / 12)
    fail(origin, ": metadata count ", n_kv, " is more than the file can hold");
  if (n_tensors > c.left() / 24)
    fail(origin, ": tensor count ", n_tensors, " is more than the file can hold");

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("metadata key ", k);
    if (key.empty()) fail(origin, ": metadata key ", k, " is empty");
    const uint32_t t = c.read<uint32_t>("key '", key, "'");
    if (!known_type(t)) fail(origin, ": key '", key, "' has unknown value type ", t);
    GgufValue v = read_value(c, GgufType(t), origin, key);
    if (h.metadata.count(key)) fail(origin, ": duplicate metadata key '", key, "'");
    h.metadata.emplace(std::move(key), std::move(v));
  }
  if (auto it = h.metadata.find("general.alignment"); it != h.metadata.end()) {
    if (it->second.type != GgufType::U32)
      fail(origin, ": key 'general.alignment' must be a uint32");
    const uint64_t a = it->second.u;
    if (a == 0 || (a & (a - 1)) != 0 || a > kMaxAlignment)
      fail(origin, ": key 'general.alignment' is ", a, " (need a power of two up to ",
           kMaxAlignment, ")");
    h.alignment = uint32_t(a);
  }

  struct Raw {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t offset, bytes;
  };
  std::vector<Raw> raws;
  raws.reserve(size_t(n_tensors));
  std::set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    Raw r;
    r.name = c.read_string("tensor info ", k);
    if (r.name.empty()) fail(origin, ": tensor ", k, " has an empty name");
    if (!names.insert(r.name).second) fail(origin, ": duplicate tensor '", r.name, "'");
    const uint32_t nd = c.read<uint32_t>("tensor '", r.name, "'");
    if (nd == 0 || nd > kMaxDims)
      fail(origin, ": tensor '", r.name, "' has ", nd, " dimensions (need 1 to ", kMaxDims, ")");
    std::vector<uint64_t> ne(nd);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      ne[d] = c.read<uint64_t>("tensor '", r.name, "'");
      if (ne[d] > kMaxDim || (ne[d] && numel > kMaxDim / ne[d]))
        fail(origin, ": tensor '", r.name, "' has an impossible shape");
      numel *= ne[d];
    }
    const uint32_t type = c.read<uint32_t>("tensor '", r.name, "'");
    if (!dtype_of_ggml_type(type, &r.dtype))
      fail(origin, ": tensor '", r.name, "' has ggml type ", type,
           ", which ovis.cpp does not read (F32, F16, BF16, Q8_0, Q4_K, I32, I64, F64)");
    const int64_t block = dtype_block_elems(r.dtype);
    if (int64_t(ne[0]) % block != 0)
      fail(origin, ": tensor '", r.name, "' of type ", dtype_name(r.dtype), " has rows of ", ne[0],
           " elements, not a multiple of its block of ", block);
    r.offset = c.read<uint64_t>("tensor '", r.name, "'");
    if (r.offset % h.alignment != 0)
      fail(origin, ": tensor '", r.name, "' data offset ", r.offset, " is not aligned to ",
           h.alignment);
    for (uint32_t d = nd; d-- > 0;) r.shape.push_back(int64_t(ne[d]));
    r.bytes = dtype_bytes(r.dtype, int64_t(numel));
    raws.push_back(std::move(r));
  }
  h.data_offset = size_t(align_up(c.pos(), h.alignment));
  if (h.data_offset > size)
    fail(origin, ": truncated GGUF file (the tensor data section would start at byte ",
         h.data_offset, ", the file has ", size, ")");
  const uint64_t data_size = size - h.data_offset;
  for (auto& r : raws) {
    if (r.offset > data_size || r.bytes > data_size - r.offset)
      fail(origin, ": tensor '", r.name, "' data [", r.offset, ", +", r.bytes,
           ") lies outside the file's data section (", data_size, " bytes; truncated file?)");
    h.tensor_order.push_back(r.name);
    h.tensors.emplace(r.name,
                      TensorEntry{r.dtype, r.shape, size_t(r.offset), size_t(r.offset + r.bytes)});
  }
  return h;
}

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  const size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, ": truncated GGUF file (", size, " bytes)");
  }
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) fail(path, ": mmap failed: ", std::strerror(errno));
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->map_ = map;
  f->size_ = size;
  f->self_ = f;
  f->header_ = parse_gguf_header(static_cast<const uint8_t*>(map), size, path);
  return f;
}

GgufFile::~GgufFile() {
  if (map_) munmap(map_, size_);
}

Tensor GgufFile::tensor(const std::string& name) const {
  auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) fail(path_, ": missing tensor '", name, "'");
  const TensorEntry& e = it->second;
  const char* p = static_cast<const char*>(map_) + header_.data_offset + e.begin;
  return Tensor::host_view(p, e.shape, e.dtype, std::static_pointer_cast<const void>(self_.lock()));
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  auto it = header_.metadata.find(key);
  if (it == header_.metadata.end()) return std::nullopt;
  if (it->second.type != GgufType::String)
    fail(path_, ": metadata key '", key, "' is not a string");
  return it->second.str;
}

bool is_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[4] = {};
  const size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(m, kMagic, 4) == 0;
}

// ---- writer ----

GgufWriter::GgufWriter(std::string path, uint32_t alignment)
    : path_(std::move(path)), alignment_(alignment) {
  OVIS_ASSERT(alignment_ > 0 && (alignment_ & (alignment_ - 1)) == 0);
  std::error_code ec;
  // Caught here, not at the final rename, after the whole file has been written.
  if (std::filesystem::is_directory(path_, ec))
    fail(path_, ": is a folder; give the path of the .gguf file to write");
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  set_u32("general.alignment", alignment_);
}

GgufWriter::~GgufWriter() {
  if (out_) std::fclose(out_);
  if (!finished_ && header_done_) std::remove(tmp_.c_str());
}

void GgufWriter::set_string(const std::string& key, const std::string& value) {
  OVIS_ASSERT(!header_done_);
  kvs_.push_back({key, GgufType::String, value});
}

void GgufWriter::set_u32(const std::string& key, uint32_t value) {
  OVIS_ASSERT(!header_done_);
  Kv kv{key, GgufType::U32, {}};
  kv.u = value;
  kvs_.push_back(kv);
}

void GgufWriter::set_f32(const std::string& key, float value) {
  OVIS_ASSERT(!header_done_);
  Kv kv{key, GgufType::F32, {}};
  kv.f = value;
  kvs_.push_back(kv);
}

void GgufWriter::add_tensor(const std::string& name, const Shape& shape, DType dtype) {
  OVIS_ASSERT(!header_done_);
  uint32_t id;
  if (!ggml_type_of(dtype, &id))
    fail(path_, ": tensor '", name, "': no GGUF type for ", dtype_name(dtype));
  if (shape.empty() || shape.size() > kMaxDims)
    fail(path_, ": tensor '", name, "' has ", shape.size(), " dimensions (GGUF takes 1 to 4)");
  if (shape.back() % dtype_block_elems(dtype) != 0)
    fail(path_, ": tensor '", name, "' of type ", dtype_name(dtype), " needs rows of whole blocks");
  Info info{name, shape, dtype, dtype_bytes(dtype, shape_numel(shape)), 0};
  info.offset = data_bytes_;
  data_bytes_ = size_t(align_up(data_bytes_ + info.bytes, alignment_));
  infos_.push_back(std::move(info));
}

void GgufWriter::put(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, out_) != n) fail(path_, ": write failed: ", std::strerror(errno));
  written_ += n;
}

void GgufWriter::pad_to(size_t a) {
  static const char zeros[64] = {};
  size_t pad = size_t(align_up(written_, a)) - written_;
  while (pad) {
    const size_t n = std::min(pad, sizeof(zeros));
    put(zeros, n);
    pad -= n;
  }
}

void GgufWriter::write_header() {
  out_ = std::fopen(tmp_.c_str(), "wb");
  if (!out_) fail(path_, ": cannot open for writing: ", std::strerror(errno));
  header_done_ = true;
  auto put_u32 = [&](uint32_t v) { put(&v, 4); };
  auto put_u64 = [&](uint64_t v) { put(&v, 8); };
  auto put_str = [&](const std::string& s) {
    put_u64(s.size());
    put(s.data(), s.size());
  };
  put(kMagic, 4);
  put_u32(kVersion);
  put_u64(infos_.size());
  put_u64(kvs_.size());
  for (const Kv& kv : kvs_) {
    put_str(kv.key);
    put_u32(uint32_t(kv.type));
    if (kv.type == GgufType::String)
      put_str(kv.str);
    else if (kv.type == GgufType::U32)
      put_u32(uint32_t(kv.u));
    else
      put(&kv.f, 4);
  }
  for (const Info& t : infos_) {
    put_str(t.name);
    put_u32(uint32_t(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) put_u64(uint64_t(t.shape[d]));
    uint32_t id = 0;
    ggml_type_of(t.dtype, &id);
    put_u32(id);
    put_u64(t.offset);
  }
  pad_to(alignment_);
}

void GgufWriter::write_tensor_data(const void* data, size_t bytes) {
  if (!header_done_) write_header();
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    OVIS_ASSERT(next_ < infos_.size());
    const Info& t = infos_[next_];
    const size_t n = std::min(bytes, t.bytes - cur_);
    put(p, n);
    p += n;
    bytes -= n;
    cur_ += n;
    if (cur_ == t.bytes) {
      pad_to(alignment_);
      ++next_;
      cur_ = 0;
    }
  }
}

void GgufWriter::finish() {
  if (!header_done_) write_header();
  while (next_ < infos_.size() && infos_[next_].bytes == 0) ++next_;
  if (next_ != infos_.size())
    fail("internal error: ", path_, ": ", infos_.size() - next_, " tensors were not written");
  if (std::fflush(out_) != 0 || fsync(fileno(out_)) != 0)
    fail(path_, ": write failed: ", std::strerror(errno));
  std::fclose(out_);
  out_ = nullptr;
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    std::remove(tmp_.c_str());
    fail(path_, ": cannot rename the finished file into place: ", ec.message());
  }
  finished_ = true;
}

}  // namespace ovis
