// 2^x on Vectorized<float> lanes, inline, for the library's kernels (scan_cpu.cpp, ffn_cpu.cpp).
//
// 2^round(x) from the exponent bits times a degree-6 minimax polynomial for 2^f, |f| <= 1/2 (relative error 1.1e-7,
// as Sleef's expf). Vectorized<float>::exp() is an out-of-line Sleef call that forces a kernel's register-resident
// state (the scan's states, the depth-wise window) out of registers at every call; this stays inline.
#pragma once

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

namespace inpaintstudio_vec {

using Vec = at::vec::Vectorized<float>;

#define VEC_EXP2_INLINE inline __attribute__((always_inline))

// The polynomial's coefficients, highest degree first.
constexpr float EXP2_POLY[7] = {1.535336188319500e-4f, 1.339887440266574e-3f, 9.618437357674640e-3f,
                                5.550332471162809e-2f, 2.402264791363012e-1f, 6.931472028550421e-1f, 1.0f};

// 2^x of G vectors already clamped to the exponent range, in lock step: every instruction is issued for all G
// before the next, so G independent chains hide each other's latency.
template <int G>
VEC_EXP2_INLINE void exp2_in_range(Vec* x) {
  Vec whole[G], f[G], q[G];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) whole[g] = x[g].round();
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) f[g] = x[g] - whole[g];
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) q[g] = at::vec::fmadd(Vec(EXP2_POLY[0]), f[g], Vec(EXP2_POLY[1]));
#pragma GCC unroll 8
  for (int k = 2; k < 7; ++k) {
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) q[g] = at::vec::fmadd(q[g], f[g], Vec(EXP2_POLY[k]));
  }
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
#if defined(CPU_CAPABILITY_AVX512)
    x[g] = Vec(_mm512_scalef_ps(q[g], whole[g]));
#else
    using VecInt = at::vec::Vectorized<int32_t>;
    const VecInt bits = (at::vec::convert_to_int_of_same_size(whole[g]) + VecInt(127)) << VecInt(23);
    x[g] = q[g] * at::vec::cast<float>(bits);
#endif
  }
}

// 2^x; results stay finite: x is clamped to [-125, 127] (AVX-512, where scalef keeps every result normal) or
// [-127, 127], so below the range the result is (nearly) 0.
VEC_EXP2_INLINE Vec exp2_inline(Vec x) {
#if defined(CPU_CAPABILITY_AVX512)
  x = at::vec::clamp(x, Vec(-125.0f), Vec(127.0f));
#else
  x = at::vec::clamp(x, Vec(-127.0f), Vec(127.0f));
#endif
  exp2_in_range<1>(&x);
  return x;
}

// exp2_inline of G vectors in lock step (the scan's decays). On AVX-512 only the lower clamp: scalef gives +inf
// above 127 by itself.
template <int G>
VEC_EXP2_INLINE void exp2_group(Vec* x) {
#pragma GCC unroll 8
  for (int g = 0; g < G; ++g) {
#if defined(CPU_CAPABILITY_AVX512)
    x[g] = at::vec::maximum(x[g], Vec(-125.0f));
#else
    x[g] = at::vec::clamp(x[g], Vec(-127.0f), Vec(127.0f));
#endif
  }
  exp2_in_range<G>(x);
}

}  // namespace inpaintstudio_vec
