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

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

FFN_INLINE Vec gelu(const Vec& v) {  // exact, erf-based, as F.gelu
  return v * Vec(0.5f) * (Vec(1.0f) + (v * Vec(static_cast<float>(M_SQRT1_2))).erf());
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

// C (rows x n, row stride ldc) = A (rows x k, row stride lda) @ B (k x n view), plus bias (n) on every row if given.
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

// Depth-wise 3x3 and GELU(a) * b for pixel x of one output row. rows: the hidden rows above, at and below it
// (nullptr outside the image). LEFT / RIGHT: whether the pixel has a neighbour on that side. Full vectors are read
// past the last channel (into the next channels or the buffers' zero padding); only the gate buffer's padding lanes
// receive them.
template <bool LEFT, bool RIGHT>
FFN_INLINE void dw_gate_pixel(const Problem& p, const float* const* rows, int64_t x, float* gate) {
  const int64_t F = p.hidden, F2 = p.hidden2, taps = F2 + W;
  for (int64_t f = 0; f < F; f += W) {
    Vec a = Vec::loadu(p.b_dw + f), v = Vec::loadu(p.b_dw + F + f);
    for (int64_t r = 0; r < 3; ++r) {
      if (rows[r] == nullptr) continue;
      const float* h = rows[r] + x * F2 + f;
      const float* w = p.w_dw + 3 * r * taps + f;
      if (LEFT) {
        a = at::vec::fmadd(Vec::loadu(h - F2), Vec::loadu(w), a);
        v = at::vec::fmadd(Vec::loadu(h - F2 + F), Vec::loadu(w + F), v);
      }
      a = at::vec::fmadd(Vec::loadu(h), Vec::loadu(w + taps), a);
      v = at::vec::fmadd(Vec::loadu(h + F), Vec::loadu(w + taps + F), v);
      if (RIGHT) {
        a = at::vec::fmadd(Vec::loadu(h + F2), Vec::loadu(w + 2 * taps), a);
        v = at::vec::fmadd(Vec::loadu(h + F2 + F), Vec::loadu(w + 2 * taps + F), v);
      }
    }
    (gelu(a) * v).store(gate + x * p.gate_stride + f);
  }
}

void dw_gate_row(const Problem& p, const float* const* rows, float* gate) {
  const int64_t n = p.width;
  if (n == 1) {
    dw_gate_pixel<false, false>(p, rows, 0, gate);
    return;
  }
  dw_gate_pixel<false, true>(p, rows, 0, gate);
  for (int64_t x = 1; x < n - 1; ++x) dw_gate_pixel<true, true>(p, rows, x, gate);
  dw_gate_pixel<true, false>(p, rows, n - 1, gate);
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
  // Detached: the products run in worker threads, whose grad mode is not the caller's.
  p.w_in_t = w_in.detach().reshape({F2, D}).t();
  p.w_out_t = w_out.detach().reshape({D, F}).t();
  if (b_in.has_value()) p.b_in = b_in->detach();
  if (b_out.has_value()) p.b_out = b_out->detach();
  p.out = out.data_ptr<float>();

  const int64_t step = rows_per_step(Wd, F2);
  // Each thread takes one contiguous band of the B*H rows; bands of at least 8 rows keep the recomputed halo small.
  at::parallel_for(0, batch * H, 8, [&](int64_t row0, int64_t row1) {
    const c10::InferenceMode no_autograd;  // the products on buffer views need no autograd bookkeeping
    // The ring is read one vector past its end (zero padding); the gate buffer holds padded rows.
    std::vector<float> ring((step + 2) * Wd * F2 + W, 0.0f);
    std::vector<float> gate(step * Wd * p.gate_stride, 0.0f);
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
