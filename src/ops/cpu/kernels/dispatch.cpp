// Run-time choice of the kernel variant (kernels.hpp). Compiled at the baseline ISA: nothing here
// may execute an instruction the running CPU lacks.
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include "core/error.hpp"
#include "ops/cpu/kernels/variant_table.hpp"

namespace ovis::ops::cpu::kernels {

namespace {

constexpr const char* kIsaNames[] = {"generic", "avx2", "avx512", "avx512bf16", "amx"};

uint64_t xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Linux hands out the 8 KiB AMX tile state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA).
bool amx_tile_data_granted() {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

Isa detect_isa() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Generic;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
             f16c = c & (1u << 29);
  if (!osxsave || !avx) return Isa::Generic;
  const uint64_t xcr = xcr0();
  if ((xcr & 0x6) != 0x6) return Isa::Generic;  // the OS saves XMM and YMM state
  unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    unsigned max_sub;
    __cpuid_count(7, 0, max_sub, b7, c7, d7);
    if (max_sub >= 1) {
      unsigned b71, c71, d71;
      __cpuid_count(7, 1, a71, b71, c71, d71);
    }
  }
  const bool avx2 = b7 & (1u << 5);
  if (!avx2 || !fma || !f16c) return Isa::Generic;
  const bool avx512 = (b7 & (1u << 16)) && (b7 & (1u << 17)) && (b7 & (1u << 30)) &&
                      (b7 & (1u << 31)) && (xcr & 0xe0) == 0xe0;  // F, DQ, BW, VL; ZMM state
  if (!avx512) return Isa::Avx2;
  // The avx512bf16 variant also runs VNNI (quantized weights): every AVX512-BF16 CPU has it.
  const bool bf16 = (a71 & (1u << 5)) && (c7 & (1u << 11));
  if (!bf16) return Isa::Avx512;
  const bool amx = (d7 & (1u << 24)) && (d7 & (1u << 22)) && (xcr & 0x60000) == 0x60000;
  return amx && amx_tile_data_granted() ? Isa::Amx : Isa::Avx512Bf16;
}

Isa min_isa(Isa x, Isa y) {
  return int(x) < int(y) ? x : y;
}

Isa initial_isa() {
  const Isa best = cpu_isa();
  const char* env = std::getenv("OVIS_CPU_ISA");
  if (!env || !*env) return best;
  Isa wanted;
  if (!parse_isa(env, &wanted))
    fail("OVIS_CPU_ISA must be generic, avx2, avx512, avx512bf16 or amx (got '", env, "')");
  return min_isa(wanted, best);
}

// The best compiled variant at or below `isa`. There is no AMX GEMM: AMX CPUs run the
// AVX512-BF16 kernels.
const VariantTable& table_for(Isa isa) {
  switch (isa) {
    case Isa::Amx:
    case Isa::Avx512Bf16:
#if defined(OVIS_KERNELS_HAVE_AVX512BF16)
      return avx512bf16::variant_table();
#endif
      [[fallthrough]];
    case Isa::Avx512:
#if defined(OVIS_KERNELS_HAVE_AVX512)
      return avx512::variant_table();
#endif
      [[fallthrough]];
    case Isa::Avx2:
#if defined(OVIS_KERNELS_HAVE_AVX2)
      return avx2::variant_table();
#endif
      [[fallthrough]];
    default:
      return generic::variant_table();
  }
}

struct Active {
  std::atomic<Isa> isa;
  std::atomic<const VariantTable*> table;
  Active() : isa(initial_isa()), table(&table_for(isa.load())) {}
};

Active& active() {
  static Active a;
  return a;
}

const VariantTable& table() {
  return *active().table.load(std::memory_order_acquire);
}

}  // namespace

const VariantTable& active_variant_table() {
  return table();
}

const char* isa_name(Isa isa) {
  return kIsaNames[int(isa)];
}

bool parse_isa(const char* name, Isa* out) {
  for (int i = 0; i < int(std::size(kIsaNames)); ++i)
    if (std::strcmp(name, kIsaNames[i]) == 0) {
      *out = Isa(i);
      return true;
    }
  return false;
}

Isa cpu_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

Isa active_isa() {
  return active().isa.load();
}

Isa set_active_isa(Isa isa) {
  isa = min_isa(isa, cpu_isa());
  Active& a = active();
  a.table.store(&table_for(isa), std::memory_order_release);
  return a.isa.exchange(isa);
}

const char* kernel_variant() {
  return table().name;
}

void gemm_bf16(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const uint16_t* w,
               int64_t ldw, WeightLayout layout, const float* bias, float* c, int64_t ldc,
               int threads) {
  table().gemm_bf16(M, N, K, a, lda, w, ldw, layout, bias, c, ldc, threads);
}

void gemv_bf16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w,
               const float* bias, float* y, int threads) {
  table().gemv_bf16(M, N, K, x, w, bias, y, threads);
}

void convert_f32_to_bf16(int64_t n, const float* src, uint16_t* dst, int threads) {
  table().convert_f32_to_bf16(n, src, dst, threads);
}

void gemv_w16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w, bool w_f16,
              const float* bias, float* y, int threads) {
  table().gemv_w16(M, N, K, x, w, w_f16, bias, y, threads);
}

void gemv_group_bf16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                     int threads) {
  table().gemv_group_bf16(M, K, x, outs, count, threads);
}

void gemv_group_w16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                    bool w_f16, int threads) {
  table().gemv_group_w16(M, K, x, outs, count, w_f16, threads);
}

int64_t packed_bf16_bytes(int64_t N, int64_t K) {
  return table().packed_bf16_bytes(N, K);
}

void pack_bf16(int64_t N, int64_t K, const uint16_t* w, void* dst, int threads) {
  table().pack_bf16(N, K, w, dst, threads);
}

void gemm_bf16_packed(int64_t M, int64_t N, int64_t K, const float* a, const void* wp,
                      const float* bias, float* c, int threads) {
  table().gemm_bf16_packed(M, N, K, a, wp, bias, c, threads);
}

void gemv_group_bf16_packed(int64_t M, int64_t K, const float* x, const PackedOut* outs, int count,
                            int threads) {
  table().gemv_group_bf16_packed(M, K, x, outs, count, threads);
}

void x_sigmoid(bool gelu_tanh, const float* x, const float* u, float* o, int64_t n) {
  table().rows().x_sigmoid(gelu_tanh, x, u, o, n);
}

void softmax_row(float* r, int64_t n) {
  table().rows().softmax_row(r, n);
}

float max_scaled(const float* s, int64_t n, float scale) {
  return table().rows().max_scaled(s, n, scale);
}

float exp_scaled(float* s, int64_t n, float scale, float mx, bool round_bf16) {
  return table().rows().exp_scaled(s, n, scale, mx, round_bf16);
}

void key_scores(const float* q, const int64_t* qoff, const float* k, const int64_t* col,
                const int64_t* end, int64_t j, int64_t rows, int64_t d, float* s, int64_t ld) {
  table().rows().key_scores(q, qoff, k, col, end, j, rows, d, s, ld);
}

void value_accumulate(const float* v, const int64_t* col, const int64_t* end, int64_t j,
                      int64_t rows, int64_t d, const float* s, int64_t ld, float* acc,
                      int64_t ld_acc) {
  table().rows().value_accumulate(v, col, end, j, rows, d, s, ld, acc, ld_acc);
}

void round_bf16(const float* src, int64_t n, float* dst) {
  table().rows().round_bf16(src, n, dst);
}

void widen_16(const uint16_t* src, bool f16, int64_t n, float* dst) {
  table().rows().widen_16(src, f16, n, dst);
}

}  // namespace ovis::ops::cpu::kernels
