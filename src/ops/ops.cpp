// The op front end: shape and device checks once for all backends, then dispatch.
#include "ops/ops.hpp"

#include <algorithm>
#include <initializer_list>

#include "core/error.hpp"
#include "ops/backend.hpp"

namespace ovis::ops {

namespace {

bool is_float(DType t) {
  return t == DType::F32 || t == DType::BF16 || t == DType::F16;
}

// A weight matrix the backends multiply by: a float type or a block-quantized one.
bool is_weight_type(DType t) {
  return is_float(t) || dtype_is_quantized(t);
}

// The context's backend, after checking that every given tensor lives on its device.
Backend& on(const Context& c, const char* op, std::initializer_list<const Tensor*> tensors) {
  if (!c.backend) fail("internal error: ops::", op, " called without a backend");
  const Device d = c.backend->device();
  for (const Tensor* t : tensors) {
    if (!t) continue;
    if (!t->defined()) fail("internal error: ops::", op, ": undefined tensor argument");
    if (t->device() != d)
      fail("ops::", op, ": a tensor on ", t->device().str(), " was given to the ", d.str(),
           " backend (tensors of one op must live on one device)");
  }
  c.backend->activate();
  return *c.backend;
}

void require(bool ok, const char* op, const std::string& what) {
  if (!ok) fail("internal error: ops::", op, ": ", what);
}

void require_act(const Tensor& x, const char* op) {
  require(x.dtype() == DType::F32 || x.dtype() == DType::BF16, op,
          std::string("activations must be F32 or BF16, got ") + dtype_name(x.dtype()));
}

int64_t rows_of(const Tensor& x) {
  return x.ndim() == 0 || x.dim(-1) == 0 ? 0 : x.numel() / x.dim(-1);
}

}  // namespace

Device Context::device() const {
  OVIS_ASSERT(backend);
  return backend->device();
}

DType Context::act_dtype() const {
  OVIS_ASSERT(backend);
  return backend->act_dtype(precision);
}

Tensor empty(const Context& c, const Shape& shape, DType dtype) {
  return Tensor::empty(shape, dtype, on(c, "empty", {}).device());
}

Tensor zeros(const Context& c, const Shape& shape, DType dtype) {
  return Tensor::zeros(shape, dtype, on(c, "zeros", {}).device());
}

Tensor fill(const Context& c, const Shape& shape, float value) {
  Tensor t = zeros(c, shape, c.act_dtype());
  if (value != 0.0f) affine_(c, t, 0.0f, value);
  return t;
}

Tensor upload(const Context& c, const Tensor& host, bool keep_dtype) {
  Backend& b = on(c, "upload", {});
  Tensor t = host.to(b.device());
  if (!keep_dtype && is_float(t.dtype()) && t.dtype() != c.act_dtype())
    t = cast(c, t, c.act_dtype());
  return t;
}

LinearWeights prepare_linear(const Context& c, const Tensor& w, const Tensor* b, bool sole_user) {
  require(w.ndim() == 2 && is_weight_type(w.dtype()), "prepare_linear",
          "weight must be a float or quantized matrix, got " + shape_str(w.shape()));
  require(!b || (b->numel() == w.dim(0) && is_float(b->dtype())), "prepare_linear",
          "bias does not match the weight");
  return on(c, "prepare_linear", {}).prepare_linear(c, w, b, sole_user);
}

ConvWeights prepare_conv(const Context& c, const Tensor& w, const Tensor* b) {
  require(w.ndim() == 4 && is_float(w.dtype()), "prepare_conv",
          "weight must be [O, C, KH, KW], got " + shape_str(w.shape()));
  require(!b || b->numel() == w.dim(0), "prepare_conv", "bias does not match the weight");
  return on(c, "prepare_conv", {}).prepare_conv(c, w, b);
}

Tensor prepare_f32(const Context& c, const Tensor& w) {
  require(is_float(w.dtype()), "prepare_f32", "not a float tensor");
  return on(c, "prepare_f32", {}).prepare_f32(w);
}

Tensor prepare_stored(const Context& c, const Tensor& w) {
  return on(c, "prepare_stored", {}).prepare_stored(w);
}

Tensor linear(const Context& c, const Tensor& x, const LinearWeights& w) {
  Backend& b = on(c, "linear", {&x, &w.w, w.b.defined() ? &w.b : nullptr});
  require_act(x, "linear");
  if (x.dim(-1) != w.in_features())
    fail("internal error: linear input width ", x.dim(-1), " vs weight ", shape_str(w.w.shape()));
  return b.linear(c, x, w);
}

std::vector<Tensor> linear_group(const Context& c, const Tensor& x,
                                 const std::vector<const LinearWeights*>& w) {
  Backend& b = on(c, "linear_group", {&x});
  require_act(x, "linear_group");
  for (const LinearWeights* lw : w) {
    require(lw != nullptr, "linear_group", "null weight");
    on(c, "linear_group", {&lw->w, lw->b.defined() ? &lw->b : nullptr});
    if (x.dim(-1) != lw->in_features())
      fail("internal error: linear input width ", x.dim(-1), " vs weight ",
           shape_str(lw->w.shape()));
  }
  return b.linear_group(c, x, w);
}

Tensor matmul(const Context& c, const Tensor& a, const Tensor& b) {
  Backend& be = on(c, "matmul", {&a, &b});
  require_act(a, "matmul");
  if (b.ndim() != 2 || a.dim(-1) != b.dim(0) || !is_weight_type(b.dtype()))
    fail("internal error: matmul inner dims ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  return be.matmul(c, a, b);
}

Tensor rms_norm(const Context& c, const Tensor& x, const Tensor* w, float eps) {
  Backend& b = on(c, "rms_norm", {&x, w});
  require_act(x, "rms_norm");
  require(!w || w->numel() == x.dim(-1), "rms_norm", "weight width differs from x");
  return b.rms_norm(c, x, w, eps);
}

Tensor layer_norm(const Context& c, const Tensor& x, const Tensor* w, const Tensor* bias,
                  float eps) {
  Backend& b = on(c, "layer_norm", {&x, w, bias});
  require_act(x, "layer_norm");
  require((!w || w->numel() == x.dim(-1)) && (!bias || bias->numel() == x.dim(-1)), "layer_norm",
          "affine parameters differ from x's width");
  return b.layer_norm(c, x, w, bias, eps);
}

Tensor group_norm(const Context& c, const Tensor& x, int groups, const Tensor& w,
                  const Tensor& bias, float eps) {
  Backend& b = on(c, "group_norm", {&x, &w, &bias});
  require(x.ndim() == 3 && groups > 0 && x.dim(0) % groups == 0 && w.numel() == x.dim(0) &&
              bias.numel() == x.dim(0),
          "group_norm", "x " + shape_str(x.shape()) + " vs groups/affine");
  return b.group_norm(c, x, groups, w, bias, eps);
}

Tensor group_norm_stats(const Context& c, const Tensor& x, int groups, float eps) {
  Backend& b = on(c, "group_norm_stats", {&x});
  require(x.ndim() == 3 && groups > 0 && x.dim(0) % groups == 0, "group_norm_stats",
          "x " + shape_str(x.shape()));
  return b.group_norm_stats(c, x, groups, eps);
}

void group_moments_add_(const Context& c, Tensor& acc, const Tensor& x, int groups, int64_t y0,
                        int64_t y1, int64_t x0, int64_t x1) {
  Backend& b = on(c, "group_moments_add_", {&acc, &x});
  require(x.ndim() == 3 && groups > 0 && x.dim(0) % groups == 0 && acc.dtype() == DType::F64 &&
              acc.numel() == 3 * int64_t(groups),
          "group_moments_add_", "x " + shape_str(x.shape()) + " / acc " + shape_str(acc.shape()));
  require(0 <= y0 && y0 <= y1 && y1 <= x.dim(1) && 0 <= x0 && x0 <= x1 && x1 <= x.dim(2),
          "group_moments_add_", "region outside x");
  b.group_moments_add_(c, acc, x, groups, y0, y1, x0, x1);
}

Tensor group_norm_stats_from_moments(const Context& c, const Tensor& acc, float eps) {
  Backend& b = on(c, "group_norm_stats_from_moments", {&acc});
  require(acc.dtype() == DType::F64 && acc.numel() % 3 == 0, "group_norm_stats_from_moments",
          "acc must be [groups, 3] F64");
  return b.group_norm_stats_from_moments(c, acc, eps);
}

void silu_(const Context& c, Tensor& x) {
  on(c, "silu_", {&x}).silu_(c, x);
}

void gelu_tanh_(const Context& c, Tensor& x) {
  on(c, "gelu_tanh_", {&x}).gelu_tanh_(c, x);
}

Tensor swiglu(const Context& c, const Tensor& gate, const Tensor& up) {
  Backend& b = on(c, "swiglu", {&gate, &up});
  require(gate.numel() == up.numel() && gate.dtype() == up.dtype(), "swiglu", "shape mismatch");
  return b.swiglu(c, gate, up);
}

void add_(const Context& c, Tensor& y, const Tensor& x) {
  Backend& b = on(c, "add_", {&y, &x});
  require(y.numel() == x.numel(), "add_", shape_str(y.shape()) + " += " + shape_str(x.shape()));
  b.add_(c, y, x);
}

void scale_(const Context& c, Tensor& y, float s) {
  on(c, "scale_", {&y}).affine_(c, y, s, 0.0f);
}

void affine_(const Context& c, Tensor& y, float scale, float shift) {
  on(c, "affine_", {&y}).affine_(c, y, scale, shift);
}

void clamp_(const Context& c, Tensor& y, float lo, float hi) {
  on(c, "clamp_", {&y}).clamp_(c, y, lo, hi);
}

Tensor modulate(const Context& c, const Tensor& x, const Tensor& shift, const Tensor& scale) {
  Backend& b = on(c, "modulate", {&x, &shift, &scale});
  require(shift.numel() == x.dim(-1) && scale.numel() == x.dim(-1), "modulate",
          "shift/scale width differs from x");
  return b.modulate(c, x, shift, scale);
}

void gated_add_(const Context& c, Tensor& y, const Tensor& x, const Tensor* gate) {
  Backend& b = on(c, "gated_add_", {&y, &x, gate});
  require(y.numel() == x.numel() && (!gate || gate->numel() == y.dim(-1)), "gated_add_",
          "shape mismatch");
  b.gated_add_(c, y, x, gate);
}

void softmax_(const Context& c, Tensor& x) {
  on(c, "softmax_", {&x}).softmax_(c, x);
}

void round_bf16_(const Context& c, Tensor& x) {
  Backend& b = on(c, "round_bf16_", {&x});
  if (x.dtype() == DType::F32) b.round_bf16_(c, x);
}

Tensor cast(const Context& c, const Tensor& x, DType dtype) {
  Backend& b = on(c, "cast", {&x});
  Tensor y = Tensor::empty(x.shape(), dtype, b.device());
  b.copy_(c, y, x);
  return y;
}

void copy_(const Context& c, Tensor& dst, const Tensor& src) {
  Backend& b = on(c, "copy_", {&dst, &src});
  require(dst.numel() == src.numel(), "copy_",
          shape_str(dst.shape()) + " <- " + shape_str(src.shape()));
  require(
      (is_float(dst.dtype()) && is_float(src.dtype())) || dst.dtype() == src.dtype(), "copy_",
      std::string("cannot convert ") + dtype_name(src.dtype()) + " to " + dtype_name(dst.dtype()));
  b.copy_(c, dst, src);
}

Tensor slice_cols(const Context& c, const Tensor& x, int64_t begin, int64_t end) {
  Backend& b = on(c, "slice_cols", {&x});
  require(0 <= begin && begin <= end && end <= x.dim(-1), "slice_cols", "columns out of range");
  return b.slice_cols(c, x, begin, end);
}

Tensor concat_cols(const Context& c, const std::vector<Tensor>& parts) {
  require(!parts.empty(), "concat_cols", "no parts");
  for (const Tensor& p : parts) {
    on(c, "concat_cols", {&p});
    require(rows_of(p) == rows_of(parts[0]) && p.dtype() == parts[0].dtype(), "concat_cols",
            "parts differ in rows or dtype");
  }
  return c.backend->concat_cols(c, parts);
}

Tensor concat_rows(const Context& c, const std::vector<Tensor>& parts) {
  require(!parts.empty(), "concat_rows", "no parts");
  const int64_t row = parts[0].dim(0) ? parts[0].numel() / parts[0].dim(0) : -1;
  for (const Tensor& p : parts) {
    on(c, "concat_rows", {&p});
    require(p.ndim() == parts[0].ndim() && p.dtype() == parts[0].dtype() &&
                (p.dim(0) == 0 || row < 0 || p.numel() / p.dim(0) == row),
            "concat_rows", "parts differ in row shape or dtype");
  }
  return c.backend->concat_rows(c, parts);
}

Tensor embedding(const Context& c, const Tensor& table, const std::vector<int64_t>& ids) {
  Backend& b = on(c, "embedding", {&table});
  require(table.ndim() == 2 && is_weight_type(table.dtype()), "embedding",
          "table must be a matrix");
  for (int64_t id : ids)
    if (id < 0 || id >= table.dim(0))
      fail("token id ", id, " outside the embedding table of ", table.dim(0), " rows");
  return b.embedding(c, table, ids);
}

Tensor embedding(const Context& c, const Tensor& table, const Tensor& ids) {
  Backend& b = on(c, "embedding", {&table, &ids});
  require(table.ndim() == 2 && is_weight_type(table.dtype()), "embedding",
          "table must be a matrix");
  require(ids.dtype() == DType::I32 && ids.ndim() == 1, "embedding", "ids must be I32 [n]");
  return b.embedding(c, table, ids);
}

Tensor argmax(const Context& c, const Tensor& x) {
  Backend& b = on(c, "argmax", {&x});
  require(is_float(x.dtype()) && x.ndim() >= 1 && x.dim(-1) > 0, "argmax",
          "x must be a float tensor with a non-empty last dimension");
  return b.argmax(c, x);
}

void upload_(const Context& c, Tensor& dst, const Tensor& host) {
  Backend& b = on(c, "upload_", {&dst});
  require(host.defined() && host.is_host() && host.dtype() == dst.dtype() &&
              host.numel() == dst.numel(),
          "upload_", "the host tensor must match dst's dtype and size");
  device_memory(b.device())
      .copy(dst.device_ptr(), b.device(), host.device_ptr(), Device::cpu(), host.nbytes());
}

Tensor mean_rows(const Context& c, const Tensor& x) {
  return on(c, "mean_rows", {&x}).mean_rows(c, x);
}

Tensor permute(const Context& c, const Tensor& x, const std::vector<int>& perm) {
  Backend& b = on(c, "permute", {&x});
  require(int(perm.size()) == x.ndim() && x.ndim() <= 6, "permute", "bad permutation rank");
  std::vector<bool> seen(perm.size(), false);
  for (int p : perm) {
    require(p >= 0 && p < x.ndim() && !seen[size_t(p)], "permute", "not a permutation");
    seen[size_t(p)] = true;
  }
  return b.permute(c, x, perm);
}

Tensor crop(const Context& c, const Tensor& x, int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  Backend& b = on(c, "crop", {&x});
  require(x.ndim() == 3 && 0 <= y0 && y0 <= y1 && y1 <= x.dim(1) && 0 <= x0 && x0 <= x1 &&
              x1 <= x.dim(2),
          "crop", "region outside " + shape_str(x.shape()));
  return b.crop(c, x, y0, y1, x0, x1);
}

void accumulate_tile_(const Context& c, Tensor& out, const Tensor& tile, int64_t y0, int64_t x0,
                      const std::vector<float>& wy, const std::vector<float>& wx) {
  Backend& b = on(c, "accumulate_tile_", {&out, &tile});
  require(out.ndim() == 3 && tile.ndim() == 3 && out.dim(0) == tile.dim(0) &&
              int64_t(wy.size()) == tile.dim(1) && int64_t(wx.size()) == tile.dim(2) && y0 >= 0 &&
              x0 >= 0 && y0 + tile.dim(1) <= out.dim(1) && x0 + tile.dim(2) <= out.dim(2),
          "accumulate_tile_", "tile outside the image");
  b.accumulate_tile_(c, out, tile, y0, x0, wy, wx);
}

Tensor upsample_nearest2x(const Context& c, const Tensor& x) {
  Backend& b = on(c, "upsample_nearest2x", {&x});
  require(x.ndim() == 3, "upsample_nearest2x", "x must be [C, H, W]");
  return b.upsample_nearest2x(c, x);
}

Tensor grid_positions(const Context& c, int64_t h, int64_t w, float t) {
  if (h <= 0 || w <= 0) fail("token grid ", h, "x", w, " must be positive");
  return on(c, "grid_positions", {}).grid_positions(c, h, w, t);
}

RopeTable rope_table(const Context& c, const Tensor& positions, const RopeFreqs& f) {
  Backend& b = on(c, "rope_table", {&positions});
  require(
      positions.ndim() == 2 && positions.dtype() == DType::F32 && f.axis.size() == f.omega.size(),
      "rope_table", "positions must be [L, axes] f32");
  for (int a : f.axis) require(a >= 0 && a < positions.dim(1), "rope_table", "axis out of range");
  return b.rope_table(c, positions, f);
}

RopeTable rope_table(const Context& c, int64_t start, int64_t L, const RopeFreqs& f) {
  Backend& b = on(c, "rope_table", {});
  require(start >= 0 && L >= 0 && f.axis.size() == f.omega.size(), "rope_table", "bad range");
  for (int a : f.axis) require(a == 0, "rope_table", "1-D positions have one axis");
  return b.rope_table(c, start, L, f);
}

void rope_(const Context& c, Tensor& x, int heads, const RopeTable& t, RopeLayout layout) {
  Backend& b = on(c, "rope_", {&x, &t.cos, &t.sin});
  const int64_t L = x.dim(0);
  require(heads > 0 && L > 0 && x.numel() % (L * heads) == 0, "rope_",
          "x does not split into heads");
  const int64_t D = x.numel() / L / heads;
  require(t.cos.dim(0) == L && t.sin.dim(0) == L && 2 * t.cos.dim(-1) <= D, "rope_",
          "table rows/width do not match x");
  b.rope_(c, x, heads, t, layout);
}

Tensor attention(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v, int q_heads,
                 int kv_heads, float scale, bool causal) {
  Backend& b = on(c, "attention", {&q, &k, &v});
  require(q_heads > 0 && kv_heads > 0 && q_heads % kv_heads == 0, "attention", "bad head counts");
  require(q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2 && k.dim(0) == v.dim(0) &&
              q.dim(1) % q_heads == 0 && k.dim(1) == v.dim(1) &&
              k.dim(1) * q_heads == q.dim(1) * kv_heads,
          "attention", "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()));
  return b.attention(c, q, k, v, q_heads, kv_heads, scale, causal);
}

namespace {

void require_position(const Tensor& pos, const char* op) {
  require(pos.dtype() == DType::F32 && pos.numel() == 1, op, "pos must be an F32 [1] tensor");
}

}  // namespace

RopeTable rope_table_at(const Context& c, const Tensor& pos, int64_t L, const RopeFreqs& f) {
  Backend& b = on(c, "rope_table_at", {&pos});
  require_position(pos, "rope_table_at");
  require(L >= 0 && f.axis.size() == f.omega.size(), "rope_table_at", "bad range");
  for (int a : f.axis) require(a == 0, "rope_table_at", "1-D positions have one axis");
  return b.rope_table_at(c, pos, L, f);
}

void copy_rows_at_(const Context& c, Tensor& dst, const Tensor& src, const Tensor& pos) {
  Backend& b = on(c, "copy_rows_at_", {&dst, &src, &pos});
  require_position(pos, "copy_rows_at_");
  require(dst.ndim() >= 1 && dst.dim(0) > 0 && src.numel() % (dst.numel() / dst.dim(0)) == 0 &&
              is_float(dst.dtype()) && is_float(src.dtype()),
          "copy_rows_at_",
          "src " + shape_str(src.shape()) + " is not rows of dst " + shape_str(dst.shape()));
  b.copy_rows_at_(c, dst, src, pos);
}

Tensor attention_at(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                    const Tensor& pos, int q_heads, int kv_heads, float scale) {
  Backend& b = on(c, "attention_at", {&q, &k, &v, &pos});
  require_position(pos, "attention_at");
  require(q_heads > 0 && kv_heads > 0 && q_heads % kv_heads == 0, "attention_at",
          "bad head counts");
  require(q.ndim() == 2 && k.ndim() == 2 && v.ndim() == 2 && k.dim(0) == v.dim(0) &&
              q.dim(1) % q_heads == 0 && k.dim(1) == v.dim(1) &&
              k.dim(1) * q_heads == q.dim(1) * kv_heads && q.dim(0) <= k.dim(0),
          "attention_at", "q " + shape_str(q.shape()) + ", k " + shape_str(k.shape()));
  return b.attention_at(c, q, k, v, pos, q_heads, kv_heads, scale);
}

Tensor conv2d(const Context& c, const Tensor& x, const ConvWeights& w, const Conv2dParams& p,
              const ConvPrologue& pro) {
  Backend& b = on(c, "conv2d",
                  {&x, &w.w, w.b.defined() ? &w.b : nullptr, pro.stats, pro.norm_w, pro.norm_b});
  require(x.ndim() == 3 && w.w.ndim() == 4 && x.dim(0) == w.w.dim(1), "conv2d",
          "x " + shape_str(x.shape()) + " vs weight " + shape_str(w.w.shape()));
  if (pro.kind == ConvPrologue::Kind::GroupNormSilu)
    require(pro.stats && pro.norm_w && pro.norm_b && x.dim(0) % pro.stats->dim(0) == 0 &&
                pro.norm_w->numel() == x.dim(0),
            "conv2d", "GroupNorm prologue parameters");
  if (pro.kind != ConvPrologue::Kind::None)
    require(p.stride == 1 && w.w.dim(2) == w.w.dim(3) && w.w.dim(2) % 2 == 1 &&
                p.pad_top == w.w.dim(2) / 2 && p.pad_bottom == p.pad_top &&
                p.pad_left == p.pad_top && p.pad_right == p.pad_top,
            "conv2d", "a prologue needs a stride-1 odd kernel with 'same' padding");
  return b.conv2d(c, x, w, p, pro);
}

Tensor timestep_embedding(const Context& c, float t, int dim, float max_period) {
  require(dim > 0 && dim % 2 == 0, "timestep_embedding", "dim must be even");
  return on(c, "timestep_embedding", {}).timestep_embedding(c, t, dim, max_period);
}

void guided_euler_step_(const Context& c, Tensor& img, const std::vector<Tensor>& v, Guidance g,
                        float s0, float s1, float dt, Tensor* guided) {
  Backend& b = on(c, "guided_euler_step_", {&img, guided});
  require(v.size() == (g == Guidance::T2I ? 2u : 3u), "guided_euler_step_",
          "wrong number of velocities");
  for (const Tensor& x : v) {
    on(c, "guided_euler_step_", {&x});
    if (x.numel() != img.numel() || x.dtype() != img.dtype())
      fail("internal error: velocities ", shape_str(x.shape()), " and latents ",
           shape_str(img.shape()), " differ");
  }
  require(!guided || (guided->numel() == img.numel() && guided->dtype() == img.dtype()),
          "guided_euler_step_", "output shape");
  b.guided_euler_step_(c, img, v, g, s0, s1, dt, guided);
}

Tensor image_to_u8(const Context& c, const Tensor& x) {
  Backend& b = on(c, "image_to_u8", {&x});
  require(x.ndim() == 3, "image_to_u8", "x must be [C, H, W]");
  return b.image_to_u8(c, x);
}

Tensor randn_torch_cuda(const Context& c, const Shape& shape, uint64_t seed) {
  for (int64_t d : shape)
    if (d < 0) fail("randn_torch_cuda: invalid shape ", shape_str(shape));
  return on(c, "randn_torch_cuda", {}).randn_torch_cuda(c, shape, seed);
}

namespace {

// No capture: the body runs at every replay.
class EagerGraph final : public OpGraph {
 public:
  explicit EagerGraph(std::function<void()> body) : body_(std::move(body)) {}
  void replay() override { body_(); }

 private:
  std::function<void()> body_;
};

}  // namespace

std::unique_ptr<OpGraph> Backend::capture(const Context&, std::function<void()> body) {
  return std::make_unique<EagerGraph>(std::move(body));
}

std::unique_ptr<OpGraph> capture(const Context& c, std::function<void()> body) {
  OVIS_ASSERT(body);
  return on(c, "capture", {}).capture(c, std::move(body));
}

}  // namespace ovis::ops
