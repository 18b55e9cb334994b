#include "support/golden.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "io/safetensors.hpp"

namespace ovis::test {

std::string fixture_dir() {
  const char* env = std::getenv("OVIS_FIXTURE_DIR");
  return env && *env ? env : OVIS_FIXTURE_DIR;
}

std::string fixture_path(const std::string& rel) {
  return fixture_dir() + "/" + rel;
}

const nlohmann::json& manifest() {
  static nlohmann::json j = [] {
    std::ifstream in(fixture_path("manifest.json"));
    if (!in) throw Error("cannot open " + fixture_path("manifest.json"));
    nlohmann::json m;
    in >> m;
    return m;
  }();
  return j;
}

const nlohmann::json& manifest_case(const std::string& name) {
  for (const auto& c : manifest()["cases"])
    if (c["name"] == name) return c;
  throw Error("manifest has no case '" + name + "'");
}

static const char* const kGoldenShards[] = {"goldens-00001-of-00002.safetensors",
                                            "goldens-00002-of-00002.safetensors"};

static const TensorStore& goldens() {
  static TensorStore s =
      TensorStore::open_files({fixture_path(kGoldenShards[0]), fixture_path(kGoldenShards[1])});
  return s;
}

std::string golden_file_arg(const std::string& name) {
  for (const char* shard : kGoldenShards) {
    if (SafetensorsFile::open(fixture_path(shard))->has(name))
      return fixture_path(shard) + ":" + name;
  }
  throw Error("no golden tensor '" + name + "' in the fixture");
}

Tensor golden(const std::string& name) {
  return goldens().get(name);
}
bool has_golden(const std::string& name) {
  return goldens().has(name);
}
HostTensor golden_host(const std::string& name) {
  const Tensor t = golden(name);
  return HostTensor{t.shape(), t.to_vector()};
}

std::string golden_tolerance(const std::string& name) {
  for (const auto& c : manifest()["cases"]) {
    if (!c.contains("goldens")) continue;
    for (const auto& g : c["goldens"])
      if (g["name"] == name) return g.value("tolerance", "");
  }
  return "";
}

std::string CompareResult::describe(const std::string& what) const {
  std::ostringstream os;
  os << what << ": max|a-b|=" << max_abs << " at flat index " << where << ", max|ref|=" << max_ref
     << ", mean|a-b|=" << mean_abs;
  return os.str();
}

CompareResult compare(const float* a, const float* b, int64_t n) {
  CompareResult r;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(a[i]) != std::isnan(b[i])) d = INFINITY;
    if (d > r.max_abs || (r.where < 0)) {
      if (d >= r.max_abs) {
        r.max_abs = d;
        r.where = i;
      }
    }
    r.max_ref = std::max(r.max_ref, std::fabs(double(b[i])));
    sum += d;
  }
  r.mean_abs = n ? sum / double(n) : 0;
  return r;
}

::testing::AssertionResult close_to(const Tensor& actual, const Tensor& expected, double rel,
                                    const std::string& what) {
  if (actual.numel() != expected.numel())
    return ::testing::AssertionFailure() << what << ": shape " << shape_str(actual.shape())
                                         << " vs golden " << shape_str(expected.shape());
  Tensor a = actual.to_f32(), b = expected.to_f32();
  CompareResult r = compare(a.f32(), b.f32(), a.numel());
  double tol = rel * std::max(1.0, r.max_ref);
  std::string msg = r.describe(what) + ", tol=" + std::to_string(tol);
  if (r.max_abs <= tol) return ::testing::AssertionSuccess() << msg;
  return ::testing::AssertionFailure() << msg;
}

::testing::AssertionResult close_rel(const Tensor& actual, const std::string& name, double rel) {
  if (!has_golden(name)) return ::testing::AssertionFailure() << "no golden '" << name << "'";
  return close_to(actual, golden(name), rel, name);
}

::testing::AssertionResult matches_golden(const Tensor& actual, const std::string& name) {
  std::string tol = golden_tolerance(name);
  if (tol.rfind("float32 forward", 0) == 0) return close_rel(actual, name, 1e-4);
  if (tol.rfind("float32 logits", 0) == 0) return close_rel(actual, name, 1e-3);
  if (tol.rfind("float32 after N Euler", 0) == 0) return close_rel(actual, name, 1e-3);
  if (tol.rfind("float32 schedule", 0) == 0 || tol.rfind("float32: max|a-b| <= 1e-6", 0) == 0) {
    // Absolute 1e-6 bound.
    if (!has_golden(name)) return ::testing::AssertionFailure() << "no golden '" << name << "'";
    Tensor g = golden(name).to_f32();
    if (actual.numel() != g.numel())
      return ::testing::AssertionFailure() << name << ": shape " << shape_str(actual.shape())
                                           << " vs golden " << shape_str(g.shape());
    Tensor a = actual.to_f32();
    CompareResult r = compare(a.f32(), g.f32(), a.numel());
    std::string msg = r.describe(name) + ", tol=1e-6";
    if (r.max_abs <= 1e-6) return ::testing::AssertionSuccess() << msg;
    return ::testing::AssertionFailure() << msg;
  }
  if (tol == "exact match") return close_rel(actual, name, 0.0);
  return ::testing::AssertionFailure() << name << ": unknown tolerance '" << tol << "'";
}

U8Diff diff_u8(const Tensor& a, const Tensor& b) {
  U8Diff r;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const int d = std::abs(int(a.data<uint8_t>()[i]) - int(b.data<uint8_t>()[i]));
    r.max_abs = std::max(r.max_abs, d);
    r.mean_abs += d;
  }
  r.mean_abs /= double(a.numel());
  return r;
}

::testing::AssertionResult matches_image_u8(const Tensor& actual, const std::string& name) {
  const std::string tol = golden_tolerance(name);
  if (tol.rfind("uint8 decoded image: max|a-b| <= 2 and mean|a-b| <= 0.02", 0) != 0)
    return ::testing::AssertionFailure() << name << ": unexpected tolerance '" << tol << "'";
  Tensor g = golden(name);
  if (actual.dtype() != DType::U8 || actual.shape() != g.shape())
    return ::testing::AssertionFailure()
           << name << ": got " << dtype_name(actual.dtype()) << " " << shape_str(actual.shape())
           << ", golden " << shape_str(g.shape());
  const U8Diff d = diff_u8(actual, g);
  auto r = (d.max_abs <= 2 && d.mean_abs <= 0.02) ? ::testing::AssertionSuccess()
                                                  : ::testing::AssertionFailure();
  return r << name << ": max|a-b|=" << d.max_abs << " mean|a-b|=" << d.mean_abs;
}

::testing::AssertionResult equals_golden_u8(const Tensor& actual, const std::string& name) {
  Tensor g = golden(name);
  if (actual.numel() != g.numel() || actual.dtype() != DType::U8)
    return ::testing::AssertionFailure()
           << name << ": shape/dtype mismatch " << shape_str(actual.shape()) << " vs "
           << shape_str(g.shape());
  const uint8_t* a = actual.data<uint8_t>();
  const uint8_t* b = g.data<uint8_t>();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < g.numel(); ++i)
    if (a[i] != b[i]) {
      if (first < 0) first = i;
      ++bad;
    }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << name << ": " << bad << " of " << g.numel() << " bytes differ, first at " << first
         << " (" << int(a[first]) << " vs " << int(b[first]) << ")";
}

}  // namespace ovis::test
