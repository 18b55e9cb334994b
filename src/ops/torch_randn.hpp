// PyTorch's CUDA normal generator, as torch.randn(..., device="cuda", generator=g) runs it
// (ATen's distribution_nullary_kernel with curand_normal4, spec §9.6), computed on the host.
//
// The launch: blocks of 256 threads, grid = min(ceil(n / 256), SMs · (max threads per SM / 256)),
// so T = 256 · grid threads in all. Thread t initialises cuRAND's Philox4x32-10 state with
// (seed, subsequence t, offset): key = (seed lo, seed hi), counter = (offset/4 lo, offset/4 hi,
// t lo, t hi). Its r-th draw (r = 0, 1, ...) is the Philox output of counter + r, turned into
// four normals by cuRAND's Box–Muller (x = s·sin v, y = s·cos v from words 0,1; z, w likewise
// from words 2,3; u = w·2⁻³² + 2⁻³³, v = w·(2⁻³²·2π) + (2⁻³²·2π)/2, s = sqrt(−2 ln u)). Normal j
// of draw r of thread t is element (4r + j)·T + t. Each value is then cast to the tensor's dtype
// (bf16 for the reference's noise, round to nearest even).
//
// T depends on the GPU only when n > 256 · SMs · (threads per SM / 256) (270,336 elements on an
// H100 SXM or H200); every latent up to 2048x2048 (4 x 256 x 256 = 262,144) is below that.
//
// Exactness: on the GPU, cuRAND computes sin/cos with the __sincosf hardware approximation
// (absolute error up to ~2⁻²¹·⁴), which the host cannot reproduce bit for bit; the host uses
// correctly rounded sine/cosine, so an element can differ in its last bf16 bit when the float
// value lies within that error of a bf16 rounding boundary (about 1 element in 10⁴). The CUDA
// backend runs the same cuRAND code on its GPU and matches torch exactly.
#pragma once
#include <cstdint>

namespace ovis::ops {

// The reference GPU of the host computation: H100 SXM / H200, 132 SMs of 2048 threads.
constexpr int kTorchRandnSms = 132;
constexpr int kTorchRandnThreadsPerSm = 2048;

// Total threads of PyTorch's launch for n elements.
int64_t torch_randn_threads(int64_t n, int sms, int max_threads_per_sm);

// The two normals cuRAND's Box–Muller makes of the 32-bit words (a, b), host arithmetic.
void curand_box_muller_host(uint32_t a, uint32_t b, float* sin_part, float* cos_part);

// out[0..n) = the float normals (before the dtype cast) of torch.randn on a fresh generator
// seeded with `seed` whose Philox offset is `offset` (a multiple of 4; 0 for a fresh generator),
// launched with `threads` threads in all (torch_randn_threads).
void torch_randn_host(float* out, int64_t n, uint64_t seed, uint64_t offset, int64_t threads);

}  // namespace ovis::ops
