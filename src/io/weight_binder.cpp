#include "io/weight_binder.hpp"

#include "core/error.hpp"

namespace ovis {

Tensor WeightBinder::get(const std::string& name, const Shape& shape) {
  if (!store_.has(name)) fail(store_.origin(), ": missing tensor '", name, "'");
  const SafetensorsEntry& e = store_.entry(name);
  if (e.dtype != DType::F32 && e.dtype != DType::BF16 && e.dtype != DType::F16)
    fail(store_.file_of(name), ": tensor '", name, "' has dtype ", dtype_name(e.dtype),
         ", expected BF16, F16 or F32");
  if (e.shape != shape)
    fail(store_.file_of(name), ": tensor '", name, "' has shape ", shape_str(e.shape), ", expected ",
         shape_str(shape));
  used_.insert(name);
  return store_.get(name);
}

void WeightBinder::check_no_extra(const std::vector<std::string>& prefixes) const {
  for (const auto& n : store_.names()) {
    if (used_.count(n)) continue;
    for (const auto& p : prefixes)
      if (n.rfind(p, 0) == 0)
        fail(store_.file_of(n), ": unexpected tensor '", n, "' (not part of the Ovis-U1 architecture "
             "described by config.json)");
  }
}

}  // namespace ovis
