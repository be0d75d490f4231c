// Fused gated depth-wise feed-forward block (Restormer's GDFN) for the CPU, inference only.
//
// Registered as torch.ops.inpaintstudio_scan.{gated_dconv_ffn,spatial_gated_dconv_ffn}; built with scan_cpu.cpp by
// scan_cpu.py, used through layers/fused.py.
//
// The block is: hidden = 1x1 conv D -> 2F of the input, a 3x3 depth-wise conv (zero padding 1) of hidden, then
// GELU(first F channels) * (last F channels), then a 1x1 conv F -> D. Done op by op, every step writes and reads a
// B x 2F x H x W tensor, several times larger than the input, and the chain is bound by memory traffic. The spatial
// variant (SEM-Net's SEFN) replaces the first half a, before the gate, by dwconv2(fusion(concat(a, indicator))): a
// 1x1 conv (F + D) -> F of a and a given indicator map, then a second depth-wise 3x3.
//
// Here the image is walked row by row. Each task owns a contiguous band of rows of one or more images and keeps a
// small ring of hidden rows (each W x 2F, pixel-major: the channels of a pixel are adjacent). For every few output
// rows it computes the hidden rows they need that are not in the ring yet (one matrix product: input rows times the
// transposed 1x1 weight), then, per output row, the depth-wise 3x3 over the ring's rows above, at and below it
// (vectorised over channels, a sliding 3x3 window in registers) and GELU(a) * b into a small gate buffer, and
// finally multiplies the gate rows by the transposed output weight straight into the output. The spatial variant
// keeps a second ring, of fusion rows (computed from the hidden ring and the indicator rows the same way), whose
// depth-wise conv gives a. Only the halo rows at each band's edge are computed twice. Input and output are
// channels-last, B x H x W x D contiguous.

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

#include "vec_exp2.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace {

using Vec = at::vec::Vectorized<float>;
using inpaintstudio_vec::exp2_inline;
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

// Depth-wise 3 x 3 taps, tap-major (9 x stride) and padded by one vector, as the kernels read them.
struct Taps {
  std::vector<float> w, bias;  // bias: zeros when there is none
  int64_t stride = 0;
};

Taps make_taps(const at::Tensor& weight, const std::optional<at::Tensor>& bias, int64_t channels) {
  Taps t;
  t.stride = channels + W;
  t.w.assign(9 * t.stride, 0.0f);
  t.bias.assign(t.stride, 0.0f);
  const at::Tensor w = weight.detach().contiguous();
  const float* wd = w.data_ptr<float>();
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t k = 0; k < 9; ++k) t.w[k * t.stride + c] = wd[c * 9 + k];
  }
  if (bias.has_value()) std::copy_n(bias->detach().contiguous().data_ptr<float>(), channels, t.bias.begin());
  return t;
}

struct Problem {
  int64_t batch, height, width, dim, hidden, hidden2;
  int64_t gate_stride;  // floats per pixel of the gate buffer and the fusion ring: F rounded up to whole vectors
  int64_t concat_stride;  // floats per pixel of the fusion input buffer (depth-wise a, then the indicator)
  bool spatial = false;
  int64_t parts = 1;  // pointwise_depthwise: channel groups stored as separate tensors
  const float* x;
  const float* indicator = nullptr;
  Taps dw, dw2;  // dwconv (2F channels); the spatial variant's dwconv_afterfusion (F channels)
  at::Tensor w_in_t, w_out_t, w_fusion_t;  // D x 2F, F x D, (F + D) x F
  std::optional<at::Tensor> b_in, b_out, b_fusion;
  float* out;
};

enum class Mode { STORE, GELU, MUL };

// One channel vector (channels c .. c + W - 1) of a depth-wise 3 x 3 along pixels [x0, x1) of one output row, with a
// sliding window of the 3 x 3 input vectors and the 9 taps in registers. rows: the input rows above, at and below
// the output row, `stride` floats per pixel (a missing row, outside the image, is replaced by the middle one with
// zero taps). STORE: write the result to dst; GELU: write GELU(result); MUL: multiply dst by the result. dst:
// `dst_stride` floats per pixel. Full vectors are read past the last channel (into the next channels or the
// buffers' zero padding); only padding lanes of dst receive them.
template <Mode M>
void dw_vector(const Taps& t, int64_t stride, int64_t width, const float* const* rows, const bool* present,
               int64_t c, int64_t x0, int64_t x1, float* dst, int64_t dst_stride) {
  Vec w[9];
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t k = 0; k < 3; ++k) {
      w[3 * r + k] = present[r] ? Vec::loadu(t.w.data() + (3 * r + k) * t.stride + c) : Vec(0.0f);
    }
  }
  const Vec bias = Vec::loadu(t.bias.data() + c);
  const float *h0 = rows[0] + c, *h1 = rows[1] + c, *h2 = rows[2] + c;
  Vec l0(0.0f), l1(0.0f), l2(0.0f);  // column x - 1
  if (x0 > 0) {
    const int64_t o = (x0 - 1) * stride;
    l0 = Vec::loadu(h0 + o), l1 = Vec::loadu(h1 + o), l2 = Vec::loadu(h2 + o);
  }
  const int64_t o0 = x0 * stride;
  Vec m0 = Vec::loadu(h0 + o0), m1 = Vec::loadu(h1 + o0), m2 = Vec::loadu(h2 + o0);  // column x
  for (int64_t x = x0; x < x1; ++x) {
    Vec r0(0.0f), r1(0.0f), r2(0.0f);  // column x + 1
    if (x + 1 < width) {
      const int64_t o = (x + 1) * stride;
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
    float* d = dst + x * dst_stride;
    if (M == Mode::STORE) {
      acc.store(d);
    } else if (M == Mode::GELU) {
      gelu(acc).store(d);
    } else {
      (Vec::loadu(d) * acc).store(d);
    }
    l0 = m0, l1 = m1, l2 = m2;
    m0 = r0, m1 = r1, m2 = r2;
  }
}

// The three rows around an output row: a missing one is replaced by the middle one (its taps are zeroed).
struct Window {
  const float* rows[3];
  bool present[3];
  Window(const float* above, const float* at, const float* below) {
    present[0] = above != nullptr, present[1] = true, present[2] = below != nullptr;
    rows[0] = above ? above : at, rows[1] = at, rows[2] = below ? below : at;
  }
};

// One output row's gate, GELU(a) * b, into gate (W x gate_stride): a = the depth-wise conv of the hidden rows'
// first F channels (plain variant) or of the fusion rows (spatial variant), b = that of their last F channels.
// Pixel tiles of TILE_PIXELS, all channel vectors of one tile before the next: the tile's columns stay in L1.
void gate_row(const Problem& p, const Window& hidden, const Window* fused, float* gate) {
  const int64_t F = p.hidden, F2 = p.hidden2, gs = p.gate_stride;
  for (int64_t x0 = 0; x0 < p.width; x0 += TILE_PIXELS) {
    const int64_t x1 = std::min(p.width, x0 + TILE_PIXELS);
    for (int64_t f = 0; f < F; f += W) {
      if (fused) {
        dw_vector<Mode::GELU>(p.dw2, gs, p.width, fused->rows, fused->present, f, x0, x1, gate + f, gs);
      } else {
        dw_vector<Mode::GELU>(p.dw, F2, p.width, hidden.rows, hidden.present, f, x0, x1, gate + f, gs);
      }
      dw_vector<Mode::MUL>(p.dw, F2, p.width, hidden.rows, hidden.present, F + f, x0, x1, gate + f, gs);
    }
  }
}

// Spatial variant: the depth-wise conv of the hidden rows' first F channels for one row, into the fusion input
// buffer (W x concat_stride), followed by that row's indicator (D channels).
void fusion_input_row(const Problem& p, const Window& hidden, const float* indicator_row, float* dst) {
  const int64_t F = p.hidden, cs = p.concat_stride;
  for (int64_t x0 = 0; x0 < p.width; x0 += TILE_PIXELS) {
    const int64_t x1 = std::min(p.width, x0 + TILE_PIXELS);
    for (int64_t f = 0; f < F; f += W) {
      dw_vector<Mode::STORE>(p.dw, p.hidden2, p.width, hidden.rows, hidden.present, f, x0, x1, dst + f, cs);
    }
  }
  for (int64_t x = 0; x < p.width; ++x) std::copy_n(indicator_row + x * p.dim, p.dim, dst + x * cs + F);
}

// Output rows per step: as many as keep the ring (step + 2 hidden rows) within RING_BYTES, but at least enough for
// MIN_PIXELS pixels per matrix product (narrow images: the products' weight packing needs that many rows to pay
// off), at most MAX_ROWS.
int64_t rows_per_step(int64_t width, int64_t hidden2) {
  const int64_t fit = RING_BYTES / (width * hidden2 * static_cast<int64_t>(sizeof(float))) - 2;
  return std::clamp<int64_t>(std::max(fit, (MIN_PIXELS + width - 1) / width), 1, MAX_ROWS);
}

// A task's buffers, kept by each thread between calls (no page faults on every call). Rings are read one vector
// past their end (zero padding, never written).
struct Buffers {
  std::vector<float> ring, fused_ring, concat, gate;
  static float* get(std::vector<float>& v, size_t n) {
    if (v.size() < n + W) v.assign(n + W, 0.0f);
    std::fill(v.begin() + n, v.begin() + n + W, 0.0f);
    return v.data();
  }
};

// Output rows [y0, y1) of image b, `step` rows at a time. The hidden rows (x times w_in) live in a ring of
// step + 2 rows (plain) or step + 4 (spatial: a fusion row needs the hidden rows around it, an output row the
// fusion rows around it); the spatial variant's fusion rows in a second ring of step + 2.
void run_band(const Problem& p, int64_t b, int64_t y0, int64_t y1, int64_t step, Buffers& buf) {
  const int64_t H = p.height, Wd = p.width, D = p.dim, F = p.hidden, F2 = p.hidden2, gs = p.gate_stride;
  const int64_t halo = p.spatial ? 2 : 1, slots = step + 2 * halo, fslots = step + 2;
  float* ring = Buffers::get(buf.ring, slots * Wd * F2);
  float* gate = Buffers::get(buf.gate, step * Wd * gs);
  float* fring = p.spatial ? Buffers::get(buf.fused_ring, fslots * Wd * gs) : nullptr;
  float* concat = p.spatial ? Buffers::get(buf.concat, fslots * Wd * p.concat_stride) : nullptr;
  auto slot = [&](int64_t y) { return ring + (y % slots) * Wd * F2; };
  auto fslot = [&](int64_t y) { return fring + (y % fslots) * Wd * gs; };
  auto hidden_window = [&](int64_t y) {
    return Window(y > 0 ? slot(y - 1) : nullptr, slot(y), y + 1 < H ? slot(y + 1) : nullptr);
  };
  int64_t next = std::max<int64_t>(y0 - halo, 0);  // first hidden row not computed yet
  int64_t fnext = std::max<int64_t>(y0 - 1, 0);  // first fusion row not computed yet
  for (int64_t y = y0; y < y1; y += step) {
    const int64_t ye = std::min(y + step, y1);
    const int64_t need = std::min(ye + halo, H);  // hidden rows [next, need) are needed now
    while (next < need) {  // contiguous ring slots, split where the ring wraps
      const int64_t count = std::min(need - next, slots - next % slots);
      matmul(slot(next), F2, p.x + ((b * H + next) * Wd) * D, D, count * Wd, D, p.w_in_t, p.b_in);
      next += count;
    }
    if (p.spatial) {
      const int64_t fneed = std::min(ye + 1, H), first = fnext;
      for (int64_t z = fnext; z < fneed; ++z) {
        fusion_input_row(p, hidden_window(z), p.indicator + ((b * H + z) * Wd) * D,
                         concat + (z - first) * Wd * p.concat_stride);
      }
      while (fnext < fneed) {
        const int64_t count = std::min(fneed - fnext, fslots - fnext % fslots);
        matmul(fslot(fnext), gs, concat + (fnext - first) * Wd * p.concat_stride, p.concat_stride, count * Wd,
               F + D, p.w_fusion_t, p.b_fusion);
        fnext += count;
      }
    }
    for (int64_t yy = y; yy < ye; ++yy) {
      float* g = gate + (yy - y) * Wd * gs;
      if (p.spatial) {
        const Window fused(yy > 0 ? fslot(yy - 1) : nullptr, fslot(yy), yy + 1 < H ? fslot(yy + 1) : nullptr);
        gate_row(p, hidden_window(yy), &fused, g);
      } else {
        gate_row(p, hidden_window(yy), nullptr, g);
      }
    }
    matmul(p.out + ((b * H + y) * Wd) * D, D, gate, gs, (ye - y) * Wd, F, p.w_out_t, p.b_out);
  }
}

// The 1x1 -> depth-wise 3x3 pair alone (attention's q, k, v projections): the same ring of 1x1 rows, and each output
// row's depth-wise result (C channels) written once, through a row buffer padded to whole vectors, split into
// `parts` equal channel groups stored as separate B x H x W x (C / parts) tensors (q, k and v each contiguous).
void run_band_pointwise_depthwise(const Problem& p, int64_t b, int64_t y0, int64_t y1, int64_t step, Buffers& buf) {
  const int64_t H = p.height, Wd = p.width, D = p.dim, C = p.hidden2, rs = p.gate_stride;
  const int64_t slots = step + 2;
  float* ring = Buffers::get(buf.ring, slots * Wd * C);
  float* row = Buffers::get(buf.gate, Wd * rs);
  auto slot = [&](int64_t y) { return ring + (y % slots) * Wd * C; };
  int64_t next = std::max<int64_t>(y0 - 1, 0);
  for (int64_t y = y0; y < y1; y += step) {
    const int64_t ye = std::min(y + step, y1), need = std::min(ye + 1, H);
    while (next < need) {
      const int64_t count = std::min(need - next, slots - next % slots);
      matmul(slot(next), C, p.x + ((b * H + next) * Wd) * D, D, count * Wd, D, p.w_in_t, p.b_in);
      next += count;
    }
    for (int64_t yy = y; yy < ye; ++yy) {
      const Window w(yy > 0 ? slot(yy - 1) : nullptr, slot(yy), yy + 1 < H ? slot(yy + 1) : nullptr);
      for (int64_t x0 = 0; x0 < Wd; x0 += TILE_PIXELS) {
        const int64_t x1 = std::min(Wd, x0 + TILE_PIXELS);
        for (int64_t c = 0; c < C; c += W) {
          dw_vector<Mode::STORE>(p.dw, C, Wd, w.rows, w.present, c, x0, x1, row + c, rs);
        }
      }
      const int64_t group = C / p.parts;
      for (int64_t part = 0; part < p.parts; ++part) {
        float* dst = p.out + part * p.batch * H * Wd * group + ((b * H + yy) * Wd) * group;
        for (int64_t x = 0; x < Wd; ++x) std::copy_n(row + x * rs + part * group, group, dst + x * group);
      }
    }
  }
}

void check_weight(const at::Tensor& w, int64_t n, const char* name, const char* shape) {
  TORCH_CHECK(w.scalar_type() == at::kFloat && w.numel() == n, "gated_dconv_ffn: ", name, " must be a float32 ",
              shape, " tensor");
}

void check_bias(const std::optional<at::Tensor>& bias, int64_t n, const char* name) {
  TORCH_CHECK(!bias.has_value() || (bias->scalar_type() == at::kFloat && bias->numel() == n),
              "gated_dconv_ffn: ", name, " must be a float32 tensor with ", n, " entries");
}

std::optional<at::Tensor> detached(const std::optional<at::Tensor>& t) {
  return t.has_value() ? std::optional<at::Tensor>(t->detach().contiguous()) : std::nullopt;
}

// Shared by both variants: checks, the plain variant's weights, the threads.
at::Tensor run(Problem& p, const at::Tensor& x, const at::Tensor& w_in, const std::optional<at::Tensor>& b_in,
               const at::Tensor& w_dw, const std::optional<at::Tensor>& b_dw, const at::Tensor& w_out,
               const std::optional<at::Tensor>& b_out) {
  const int64_t batch = x.size(0), H = x.size(1), Wd = x.size(2), D = x.size(3);
  const int64_t F2 = p.hidden2, F = p.hidden;
  check_weight(w_dw, F2 * 9, "w_dw", "2F x 3 x 3");
  check_weight(w_out, D * F, "w_out", "D x F");
  check_bias(b_in, F2, "b_in");
  check_bias(b_dw, F2, "b_dw");
  check_bias(b_out, D, "b_out");
  at::Tensor out = at::empty({batch, H, Wd, D}, x.options());
  if (out.numel() == 0) return out;
  p.batch = batch, p.height = H, p.width = Wd, p.dim = D;
  p.gate_stride = round_up(F, W);
  p.x = x.data_ptr<float>();
  p.dw = make_taps(w_dw, b_dw, F2);
  // Transposed copies (the products run faster on a row-major right-hand side than on a transposed view), detached:
  // the products run in worker threads, whose grad mode is not the caller's.
  p.w_in_t = w_in.detach().reshape({F2, D}).t().contiguous();
  p.w_out_t = w_out.detach().reshape({D, F}).t().contiguous();
  p.b_in = detached(b_in);
  p.b_out = detached(b_out);
  p.out = out.data_ptr<float>();

  const int64_t step = rows_per_step(Wd, F2);
  // Each thread takes one contiguous band of the B*H rows; bands of at least 8 rows keep the recomputed halo small.
  at::parallel_for(0, batch * H, 8, [&](int64_t row0, int64_t row1) {
    const c10::InferenceMode no_autograd;  // the products on buffer views need no autograd bookkeeping
    thread_local Buffers buf;
    for (int64_t row = row0; row < row1;) {
      const int64_t b = row / H, y0 = row % H, y1 = std::min(H, y0 + (row1 - row));
      run_band(p, b, y0, y1, step, buf);
      row += y1 - y0;
    }
  });
  return out;
}

void check_input(const at::Tensor& x, const at::Tensor& w_in) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous() && x.scalar_type() == at::kFloat,
              "gated_dconv_ffn: x must be a contiguous float32 B x H x W x D tensor");
  const int64_t D = x.size(3);
  TORCH_CHECK(w_in.scalar_type() == at::kFloat && D > 0 && w_in.numel() % (2 * D) == 0,
              "gated_dconv_ffn: w_in must be a float32 2F x D tensor");
}

}  // namespace

// out = project_out(GELU(a) * b), (a, b) = the two channel halves of dwconv3x3(project_in(x)). x: B x H x W x D
// contiguous float32 (channels-last pixels); w_in: 2F x D (or 2F x D x 1 x 1); w_dw: 2F x 3 x 3; w_out: D x F.
// Returns B x H x W x D.
at::Tensor gated_dconv_ffn(const at::Tensor& x, const at::Tensor& w_in, const std::optional<at::Tensor>& b_in,
                           const at::Tensor& w_dw, const std::optional<at::Tensor>& b_dw, const at::Tensor& w_out,
                           const std::optional<at::Tensor>& b_out) {
  check_input(x, w_in);
  Problem p;
  p.hidden2 = w_in.numel() / x.size(3);
  p.hidden = p.hidden2 / 2;
  return run(p, x, w_in, b_in, w_dw, b_dw, w_out, b_out);
}

// The spatial variant (SEM-Net's SEFN): a is replaced by dwconv2(fusion(concat(a, indicator))) before the gate.
// indicator: B x H x W x D contiguous; w_fusion: F x (F + D) (input channels: a, then the indicator); w_dw2: F x 3 x 3.
at::Tensor spatial_gated_dconv_ffn(const at::Tensor& x, const at::Tensor& indicator, const at::Tensor& w_in,
                                   const std::optional<at::Tensor>& b_in, const at::Tensor& w_dw,
                                   const std::optional<at::Tensor>& b_dw, const at::Tensor& w_fusion,
                                   const std::optional<at::Tensor>& b_fusion, const at::Tensor& w_dw2,
                                   const std::optional<at::Tensor>& b_dw2, const at::Tensor& w_out,
                                   const std::optional<at::Tensor>& b_out) {
  check_input(x, w_in);
  TORCH_CHECK(indicator.sizes() == x.sizes() && indicator.is_contiguous() && indicator.scalar_type() == at::kFloat,
              "gated_dconv_ffn: indicator must be a contiguous float32 tensor shaped like x");
  const int64_t D = x.size(3);
  Problem p;
  p.hidden2 = w_in.numel() / D;
  const int64_t F = p.hidden = p.hidden2 / 2;
  check_weight(w_fusion, F * (F + D), "w_fusion", "F x (F + D)");
  check_weight(w_dw2, F * 9, "w_dw2", "F x 3 x 3");
  check_bias(b_fusion, F, "b_fusion");
  check_bias(b_dw2, F, "b_dw2");
  p.spatial = true;
  p.indicator = indicator.data_ptr<float>();
  p.concat_stride = round_up(F + D, W);
  p.dw2 = make_taps(w_dw2, b_dw2, F);
  p.w_fusion_t = w_fusion.detach().reshape({F, F + D}).t().contiguous();
  p.b_fusion = detached(b_fusion);
  return run(p, x, w_in, b_in, w_dw, b_dw, w_out, b_out);
}

// out = dwconv3x3(project_in(x)): x B x H x W x D contiguous float32; w_in: C x D (or C x D x 1 x 1); w_dw: C x 3 x 3.
// Returns parts x B x H x W x (C / parts): the output's channel groups, each contiguous.
at::Tensor pointwise_depthwise(const at::Tensor& x, const at::Tensor& w_in, const std::optional<at::Tensor>& b_in,
                               const at::Tensor& w_dw, const std::optional<at::Tensor>& b_dw, int64_t parts) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous() && x.scalar_type() == at::kFloat && x.size(3) > 0,
              "pointwise_depthwise: x must be a contiguous float32 B x H x W x D tensor");
  const int64_t batch = x.size(0), H = x.size(1), Wd = x.size(2), D = x.size(3);
  TORCH_CHECK(w_in.scalar_type() == at::kFloat && w_in.numel() % D == 0,
              "pointwise_depthwise: w_in must be a float32 C x D tensor");
  const int64_t C = w_in.numel() / D;
  check_weight(w_dw, C * 9, "w_dw", "C x 3 x 3");
  check_bias(b_in, C, "b_in");
  check_bias(b_dw, C, "b_dw");
  TORCH_CHECK(parts >= 1 && C % parts == 0, "pointwise_depthwise: parts must divide the output channels");
  at::Tensor out = at::empty({parts, batch, H, Wd, C / parts}, x.options());
  if (out.numel() == 0) return out;
  Problem p;
  p.parts = parts;
  p.batch = batch, p.height = H, p.width = Wd, p.dim = D, p.hidden2 = C, p.hidden = C;
  p.gate_stride = round_up(C, W);
  p.x = x.data_ptr<float>();
  p.dw = make_taps(w_dw, b_dw, C);
  p.w_in_t = w_in.detach().reshape({C, D}).t().contiguous();
  p.b_in = detached(b_in);
  p.out = out.data_ptr<float>();
  const int64_t step = rows_per_step(Wd, C);
  at::parallel_for(0, batch * H, 8, [&](int64_t row0, int64_t row1) {
    const c10::InferenceMode no_autograd;
    thread_local Buffers buf;
    for (int64_t row = row0; row < row1;) {
      const int64_t b = row / H, y0 = row % H, y1 = std::min(H, y0 + (row1 - row));
      run_band_pointwise_depthwise(p, b, y0, y1, step, buf);
      row += y1 - y0;
    }
  });
  return out;
}

// Declared here, implemented for the CPU key (not as a catch-all), so that dispatch modes such as
// torch.utils.flop_counter.FlopCounterMode see the op itself (fused.py registers its FLOP formula).
TORCH_LIBRARY_FRAGMENT(inpaintstudio_scan, m) {
  m.def("gated_dconv_ffn(Tensor x, Tensor w_in, Tensor? b_in, Tensor w_dw, Tensor? b_dw, Tensor w_out, "
        "Tensor? b_out) -> Tensor");
  m.def("spatial_gated_dconv_ffn(Tensor x, Tensor indicator, Tensor w_in, Tensor? b_in, Tensor w_dw, Tensor? b_dw, "
        "Tensor w_fusion, Tensor? b_fusion, Tensor w_dw2, Tensor? b_dw2, Tensor w_out, Tensor? b_out) -> Tensor");
  m.def("pointwise_depthwise(Tensor x, Tensor w_in, Tensor? b_in, Tensor w_dw, Tensor? b_dw, int parts) -> Tensor");
}

TORCH_LIBRARY_IMPL(inpaintstudio_scan, CPU, m) {
  m.impl("gated_dconv_ffn", &gated_dconv_ffn);
  m.impl("spatial_gated_dconv_ffn", &spatial_gated_dconv_ffn);
  m.impl("pointwise_depthwise", &pointwise_depthwise);
}
