// Fused gated depth-wise feed-forward block (Restormer's GDFN) for the CPU, inference only.
//
// Registered as torch.ops.inpaintstudio_scan.gated_dconv_ffn; built with scan_cpu.cpp by scan_cpu.py.
//
// The block is: hidden = 1x1 conv D -> 2F of the input, a 3x3 depth-wise conv (zero padding 1) of hidden, then
// GELU(first F channels) * (last F channels), then a 1x1 conv F -> D. Done op by op, every step writes and reads a
// B x 2F x H x W tensor, several times larger than the input, and the chain is bound by memory traffic.
//
// Here the image is walked row by row. Each task owns a contiguous band of rows of one or more images and keeps a
// small ring of hidden rows (each W x 2F, pixel-major: the channels of a pixel are adjacent). For every few output
// rows it computes the hidden rows they need that are not in the ring yet (one matrix product, input rows times
// the transposed 1x1 weight), then, per output pixel, the depth-wise 3x3 over the ring's rows above, at and below
// (vectorised over channels) and GELU(a) * b into a small gate buffer, and finally multiplies the gate rows by the
// transposed output weight straight into the output. Only the two halo rows at each band's edge are computed twice.
// Input and output are channels-last, B x H x W x D contiguous.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <c10/core/InferenceMode.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t W = Vec::size();

#define FFN_INLINE inline __attribute__((always_inline))

// Bytes the hidden-row ring of one task may take (it should stay in the core's L2 cache).
constexpr int64_t RING_BYTES = 1 << 20;
// Fewest pixels and most output rows handled per step (rows per matrix product).
constexpr int64_t MIN_PIXELS = 256;
constexpr int64_t MAX_ROWS = 16;
// Pixels of one output row the depth-wise step takes at a time.
constexpr int64_t TILE_PIXELS = 16;

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// 2^x, inline: 2^round(x) from the exponent bits times a degree-6 minimax polynomial for 2^f, |f| <= 1/2 (relative
// error 1.1e-7, as Sleef's expf; the same as scan_cpu.cpp's). Vectorized<float>::exp() is an out-of-line call that
// forces the depth-wise window out of registers. Below 2^-127 the result is 0.
FFN_INLINE Vec exp2_inline(Vec x) {
#if defined(CPU_CAPABILITY_AVX512)
  x = at::vec::clamp(x, Vec(-125.0f), Vec(127.0f));
#else
  x = at::vec::clamp(x, Vec(-127.0f), Vec(127.0f));
#endif
  const Vec whole = x.round();
  const Vec f = x - whole;
  Vec p = at::vec::fmadd(Vec(1.535336188319500e-4f), f, Vec(1.339887440266574e-3f));
  p = at::vec::fmadd(p, f, Vec(9.618437357674640e-3f));
  p = at::vec::fmadd(p, f, Vec(5.550332471162809e-2f));
  p = at::vec::fmadd(p, f, Vec(2.402264791363012e-1f));
  p = at::vec::fmadd(p, f, Vec(6.931472028550421e-1f));
  p = at::vec::fmadd(p, f, Vec(1.0f));
#if defined(CPU_CAPABILITY_AVX512)
  return Vec(_mm512_scalef_ps(p, whole));
#else
  using VecInt = at::vec::Vectorized<int32_t>;
  const VecInt bits = (at::vec::convert_to_int_of_same_size(whole) + VecInt(127)) << VecInt(23);
  return p * at::vec::cast<float>(bits);
#endif
}

// GELU(v) = v / 2 * (1 + erf(v / sqrt 2)), with erf as Vectorized<float>::erf (the formula F.gelu's CPU kernel
// uses: Abramowitz-Stegun 7.1.26, absolute error 1.5e-7) but with the exponential inline.
FFN_INLINE Vec gelu(const Vec& v) {
  const Vec x = v * Vec(static_cast<float>(M_SQRT1_2));
  const Vec a = x.abs();
  const Vec t = Vec(1.0f) / at::vec::fmadd(Vec(0.3275911f), a, Vec(1.0f));
  Vec r = at::vec::fmadd(Vec(1.061405429f), t, Vec(-1.453152027f));
  r = at::vec::fmadd(r, t, Vec(1.421413741f));
  r = at::vec::fmadd(r, t, Vec(-0.284496736f));
  r = at::vec::fmadd(r, t, Vec(0.254829592f));
  const Vec e = exp2_inline(x * x * Vec(-1.44269504088896341f));
  const Vec erf_abs = Vec(1.0f) - r * t * e;  // erf(|x|)
  // v / 2 * (1 + sign(v) erf(|x|))
  const Vec erf = Vec::blendv(erf_abs, erf_abs.neg(), v < Vec(0.0f));
  return v * Vec(0.5f) * (Vec(1.0f) + erf);
}

struct Problem {
  int64_t batch, height, width, dim, hidden, hidden2, gate_stride;
  const float* x;
  const float* w_dw;  // 9 x (2F + W), tap-major, zero-padded
  const float* b_dw;  // 2F + W, zero-padded (zeros when there is no bias)
  at::Tensor w_in_t, w_out_t;  // D x 2F and F x D views
  std::optional<at::Tensor> b_in, b_out;
  float* out;
};

// C (rows x n, row stride ldc) = A (rows x k, row stride lda) @ B (contiguous k x n), plus bias (n) on every row if
// given. Inside at::parallel_for's tasks the product runs single-threaded.
void matmul(float* c, int64_t ldc, const float* a, int64_t lda, int64_t rows, int64_t k, const at::Tensor& b,
            const std::optional<at::Tensor>& bias) {
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  at::Tensor lhs = at::from_blob(const_cast<float*>(a), {rows, k}, {lda, 1}, opts);
  at::Tensor dst = at::from_blob(c, {rows, b.size(1)}, {ldc, 1}, opts);
  if (bias.has_value()) {
    at::addmm_out(dst, *bias, lhs, b);
  } else {
    at::mm_out(dst, lhs, b);
  }
}

// One channel vector (channels c .. c + W - 1 of the hidden rows) of the depth-wise 3x3 along pixels [x0, x1) of one
// output row, with a sliding window of the 3 x 3 input vectors and the 9 taps in registers. GATE: store GELU(result)
// into the gate buffer; else multiply the gate buffer by the result. rows: the hidden rows above, at and below the
// output row (a missing one, outside the image, is replaced by the middle row with zero taps). Full vectors are read
// past the last channel (into the next channels or the buffers' zero padding); only the gate buffer's padding lanes
// receive them.
template <bool GATE>
void dw_vector(const Problem& p, const float* const* rows, const bool* present, int64_t c, int64_t x0, int64_t x1,
               float* gate) {
  const int64_t F2 = p.hidden2, taps = F2 + W, n = p.width, gs = p.gate_stride;
  Vec w[9];
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t k = 0; k < 3; ++k) w[3 * r + k] = present[r] ? Vec::loadu(p.w_dw + (3 * r + k) * taps + c) : Vec(0.0f);
  }
  const Vec bias = Vec::loadu(p.b_dw + c);
  const float *h0 = rows[0] + c, *h1 = rows[1] + c, *h2 = rows[2] + c;
  Vec l0(0.0f), l1(0.0f), l2(0.0f);  // column x - 1
  if (x0 > 0) {
    const int64_t o = (x0 - 1) * F2;
    l0 = Vec::loadu(h0 + o), l1 = Vec::loadu(h1 + o), l2 = Vec::loadu(h2 + o);
  }
  const int64_t o0 = x0 * F2;
  Vec m0 = Vec::loadu(h0 + o0), m1 = Vec::loadu(h1 + o0), m2 = Vec::loadu(h2 + o0);  // column x
  for (int64_t x = x0; x < x1; ++x) {
    Vec r0(0.0f), r1(0.0f), r2(0.0f);  // column x + 1
    if (x + 1 < n) {
      const int64_t o = (x + 1) * F2;
      r0 = Vec::loadu(h0 + o), r1 = Vec::loadu(h1 + o), r2 = Vec::loadu(h2 + o);
    }
    Vec acc = at::vec::fmadd(w[0], l0, bias);
    acc = at::vec::fmadd(w[1], m0, acc);
    acc = at::vec::fmadd(w[2], r0, acc);
    acc = at::vec::fmadd(w[3], l1, acc);
    acc = at::vec::fmadd(w[4], m1, acc);
    acc = at::vec::fmadd(w[5], r1, acc);
    acc = at::vec::fmadd(w[6], l2, acc);
    acc = at::vec::fmadd(w[7], m2, acc);
    acc = at::vec::fmadd(w[8], r2, acc);
    float* g = gate + x * gs;
    if (GATE) {
      gelu(acc).store(g);
    } else {
      (Vec::loadu(g) * acc).store(g);
    }
    l0 = m0, l1 = m1, l2 = m2;
    m0 = r0, m1 = r1, m2 = r2;
  }
}

// Depth-wise 3x3 and GELU(a) * b along one output row, into its gate row (W x gate_stride). Pixel tiles of
// TILE_PIXELS, all channel vectors of one tile before the next: the tile's hidden columns stay in L1 and few pages.
void dw_gate_row(const Problem& p, const float* const* rows, float* gate) {
  const bool present[3] = {rows[0] != nullptr, true, rows[2] != nullptr};
  const float* full[3] = {present[0] ? rows[0] : rows[1], rows[1], present[2] ? rows[2] : rows[1]};
  for (int64_t x0 = 0; x0 < p.width; x0 += TILE_PIXELS) {
    const int64_t x1 = std::min(p.width, x0 + TILE_PIXELS);
    for (int64_t f = 0; f < p.hidden; f += W) {
      dw_vector<true>(p, full, present, f, x0, x1, gate + f);
      dw_vector<false>(p, full, present, p.hidden + f, x0, x1, gate + f);
    }
  }
}

// Output rows per step: as many as keep the ring (step + 2 hidden rows) within RING_BYTES, but at least enough for
// MIN_PIXELS pixels per matrix product (narrow images: the products' weight packing needs that many rows to pay
// off), at most MAX_ROWS.
int64_t rows_per_step(int64_t width, int64_t hidden2) {
  const int64_t fit = RING_BYTES / (width * hidden2 * static_cast<int64_t>(sizeof(float))) - 2;
  return std::clamp<int64_t>(std::max(fit, (MIN_PIXELS + width - 1) / width), 1, MAX_ROWS);
}

// Output rows [y0, y1) of image b.
void run_band(const Problem& p, int64_t b, int64_t y0, int64_t y1, int64_t step, float* ring, float* gate) {
  const int64_t H = p.height, Wd = p.width, D = p.dim, F2 = p.hidden2, slots = step + 2;
  const int64_t row_floats = Wd * F2;
  auto slot = [&](int64_t y) { return ring + (y % slots) * row_floats; };
  int64_t next = std::max<int64_t>(y0 - 1, 0);  // first hidden row not computed yet
  for (int64_t y = y0; y < y1; y += step) {
    const int64_t ye = std::min(y + step, y1);
    const int64_t need = std::min(ye + 1, H);  // hidden rows [next, need) are needed now
    while (next < need) {  // contiguous ring slots, split where the ring wraps
      const int64_t count = std::min(need - next, slots - next % slots);
      matmul(slot(next), F2, p.x + ((b * H + next) * Wd) * D, D, count * Wd, D, p.w_in_t, p.b_in);
      next += count;
    }
    for (int64_t yy = y; yy < ye; ++yy) {
      const float* rows[3] = {yy > 0 ? slot(yy - 1) : nullptr, slot(yy), yy + 1 < H ? slot(yy + 1) : nullptr};
      dw_gate_row(p, rows, gate + (yy - y) * Wd * p.gate_stride);
    }
    matmul(p.out + ((b * H + y) * Wd) * D, D, gate, p.gate_stride, (ye - y) * Wd, p.hidden, p.w_out_t, p.b_out);
  }
}

void check_bias(const std::optional<at::Tensor>& bias, int64_t n, const char* name) {
  TORCH_CHECK(!bias.has_value() || (bias->scalar_type() == at::kFloat && bias->is_contiguous() && bias->numel() == n),
              "gated_dconv_ffn: ", name, " must be a contiguous float32 tensor with ", n, " entries");
}

}  // namespace

// out = project_out(GELU(a) * b), (a, b) = the two channel halves of dwconv3x3(project_in(x)). x: B x H x W x D
// contiguous float32 (channels-last pixels); w_in: 2F x D; w_dw: 2F x 9 (or 2F x 1 x 3 x 3); w_out: D x F.
// Returns B x H x W x D.
at::Tensor gated_dconv_ffn(const at::Tensor& x, const at::Tensor& w_in, const std::optional<at::Tensor>& b_in,
                           const at::Tensor& w_dw, const std::optional<at::Tensor>& b_dw, const at::Tensor& w_out,
                           const std::optional<at::Tensor>& b_out) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous() && x.scalar_type() == at::kFloat,
              "gated_dconv_ffn: x must be a contiguous float32 B x H x W x D tensor");
  const int64_t batch = x.size(0), H = x.size(1), Wd = x.size(2), D = x.size(3);
  TORCH_CHECK(w_in.scalar_type() == at::kFloat && w_in.numel() % D == 0 && (w_in.numel() / D) % 2 == 0,
              "gated_dconv_ffn: w_in must be a float32 2F x D tensor");
  const int64_t F2 = w_in.numel() / D, F = F2 / 2;
  TORCH_CHECK(w_dw.scalar_type() == at::kFloat && w_dw.numel() == F2 * 9,
              "gated_dconv_ffn: w_dw must be a float32 2F x 3 x 3 tensor");
  TORCH_CHECK(w_out.scalar_type() == at::kFloat && w_out.numel() == D * F,
              "gated_dconv_ffn: w_out must be a float32 D x F tensor");
  check_bias(b_in, F2, "b_in");
  check_bias(b_dw, F2, "b_dw");
  check_bias(b_out, D, "b_out");
  at::Tensor out = at::empty({batch, H, Wd, D}, x.options());
  if (out.numel() == 0) return out;

  // Depth-wise taps, tap-major and padded by one vector (full-vector reads past the last channel).
  const int64_t taps = F2 + W;
  std::vector<float> w_dw_t(9 * taps, 0.0f), b_dw_pad(taps, 0.0f);
  const at::Tensor w_dw_c = w_dw.contiguous();
  const float* wd = w_dw_c.data_ptr<float>();
  for (int64_t c = 0; c < F2; ++c) {
    for (int64_t k = 0; k < 9; ++k) w_dw_t[k * taps + c] = wd[c * 9 + k];
  }
  if (b_dw.has_value()) std::copy_n(b_dw->data_ptr<float>(), F2, b_dw_pad.begin());

  Problem p;
  p.batch = batch;
  p.height = H;
  p.width = Wd;
  p.dim = D;
  p.hidden = F;
  p.hidden2 = F2;
  p.gate_stride = round_up(F, W);
  p.x = x.data_ptr<float>();
  p.w_dw = w_dw_t.data();
  p.b_dw = b_dw_pad.data();
  // Transposed copies (the products run faster on a row-major right-hand side than on a transposed view), detached:
  // the products run in worker threads, whose grad mode is not the caller's.
  p.w_in_t = w_in.detach().reshape({F2, D}).t().contiguous();
  p.w_out_t = w_out.detach().reshape({D, F}).t().contiguous();
  if (b_in.has_value()) p.b_in = b_in->detach();
  if (b_out.has_value()) p.b_out = b_out->detach();
  p.out = out.data_ptr<float>();

  const int64_t step = rows_per_step(Wd, F2);
  // Each thread takes one contiguous band of the B*H rows; bands of at least 8 rows keep the recomputed halo small.
  at::parallel_for(0, batch * H, 8, [&](int64_t row0, int64_t row1) {
    const c10::InferenceMode no_autograd;  // the products on buffer views need no autograd bookkeeping
    // Kept by each thread between calls (no page faults on every call). The ring is read one vector past its end
    // (zero padding, never written); the gate buffer holds padded rows.
    thread_local std::vector<float> ring, gate;
    const size_t ring_floats = (step + 2) * Wd * F2 + W, gate_floats = step * Wd * p.gate_stride;
    if (ring.size() < ring_floats) ring.assign(ring_floats, 0.0f);
    std::fill(ring.begin() + (ring_floats - W), ring.begin() + ring_floats, 0.0f);
    if (gate.size() < gate_floats) gate.assign(gate_floats, 0.0f);
    for (int64_t row = row0; row < row1;) {
      const int64_t b = row / H, y0 = row % H, y1 = std::min(H, y0 + (row1 - row));
      run_band(p, b, y0, y1, step, ring.data(), gate.data());
      row += y1 - y0;
    }
  });
  return out;
}

TORCH_LIBRARY_FRAGMENT(inpaintstudio_scan, m) {
  m.def("gated_dconv_ffn(Tensor x, Tensor w_in, Tensor? b_in, Tensor w_dw, Tensor? b_dw, Tensor w_out, "
        "Tensor? b_out) -> Tensor", &gated_dconv_ffn);
}
