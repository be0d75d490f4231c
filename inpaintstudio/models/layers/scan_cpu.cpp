// Fused selective scan (Mamba S6) for the CPU: forward and backward.
//
// Registered as torch.ops.inpaintstudio_scan.{forward,backward}; built on first use by scan_cpu.py.
//
// Layout: per-channel sequences (u, delta, z, the output gradient) are B x L x E views with any strides; outputs
// and their gradients are written sequence-major (B x L x E, channel stride 1, the storage Mamba produces). B and
// C are B x L x N with the state stride 1; A is given transposed, N x E. A "block" is W = Vectorized<float>::size()
// adjacent channels of one batch element; a task owns a range of blocks of one batch element and walks the sequence
// chunk by chunk, every block of the range in turn within a chunk (its N state vectors are kept between chunks), so
// the chunk's B and C rows and the u, delta, z cache lines are read from cache by all the blocks. u, delta, z are
// read in place when the channel stride is 1 (prefetched a chunk ahead), else gathered chunk by chunk into a small
// buffer, reading each channel's steps contiguously. The forward runs a chunk in three passes: bias, softplus and
// delta * u for every step; the sequential state recurrence (states in registers when N is 8 or 16); the D skip
// and SiLU(z) gate. Work is split over batch x channel ranges with at::parallel_for.
//
// The sequence is cut into chunks of `chunk` steps. With `save` the forward stores the state entering every
// chunk; the backward walks the chunks in reverse, recomputes each chunk's states from its entry state (as
// mamba-ssm's kernel does), and runs the adjoint recurrence dh_t = gy_t C_t + exp(delta_{t+1} A) dh_{t+1}.
// dB and dC are sums over channels: a task accumulates them lane-wise over its blocks for one chunk, then
// reduces the lanes; tasks that share a batch element write separate partial buffers, summed at the end.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "vec_exp2.h"

#include <xmmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

namespace {

using Vec = at::vec::Vectorized<float>;
using inpaintstudio_vec::exp2_group;
using inpaintstudio_vec::exp2_inline;
constexpr int64_t W = Vec::size();
constexpr int64_t ACCUMULATORS = 4;

#define SCAN_INLINE inline __attribute__((always_inline))

struct Strided {  // a B x L x X tensor
  const float* data = nullptr;
  int64_t sb = 0, st = 0, sx = 1;
  const float* at(int64_t b, int64_t t) const { return data + b * sb + t * st; }
};

Strided view(const at::Tensor& t, bool unit_last_stride) {
  TORCH_CHECK(t.dim() == 3 && t.scalar_type() == at::kFloat && (!unit_last_stride || t.stride(2) == 1),
              "scan kernel: expected a float32 B x L x X tensor", unit_last_stride ? " with unit last stride" : "");
  return {t.data_ptr<float>(), t.stride(0), t.stride(1), t.stride(2)};
}

// Rows of one chunk for one block: row s (W lanes) starts at ptr + s * stride.
struct Rows {
  const float* ptr;
  int64_t stride;
};

// In place when the channel stride is 1; otherwise copied into buf (steps x W), channel by channel.
Rows chunk_rows(const Strided& x, int64_t b, int64_t t0, int64_t steps, int64_t e0, int64_t count, float* buf) {
  const float* base = x.at(b, t0) + e0 * x.sx;
  if (x.sx == 1) return {base, x.st};
  for (int64_t c = 0; c < count; ++c) {
    const float* src = base + c * x.sx;
    for (int64_t s = 0; s < steps; ++s) buf[s * W + c] = src[s * x.st];
  }
  return {buf, W};
}

const float* optional_data(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->data_ptr<float>() : nullptr;
}

SCAN_INLINE Vec load(const float* p, int64_t count) { return count == W ? Vec::loadu(p) : Vec::loadu(p, count); }
SCAN_INLINE void store(const Vec& v, float* p, int64_t count) {
  if (count == W) v.store(p); else v.store(p, count);
}

constexpr float LOG2E = 1.44269504088896341f;

SCAN_INLINE Vec exp_inline(const Vec& x) { return exp2_inline(x * Vec(LOG2E)); }

SCAN_INLINE Vec sigmoid(const Vec& x) { return Vec(1.0f) / (Vec(1.0f) + exp_inline(x.neg())); }

// log(1 + y) for 0 <= y <= 1, inline: log(w) = k ln 2 + log(m), w = 1 + y = m 2^k with m in [sqrt(1/2), sqrt(2)),
// and a degree-9 polynomial for log(m) (the Cephes logf one, about 1 ulp); y - y^2/2 below 1e-4, where 1 + y
// would round.
SCAN_INLINE Vec log1p_unit(const Vec& y) {
  const Vec w = Vec(1.0f) + y;
  const Vec high = w > Vec(1.41421356f);
  const Vec k = Vec::blendv(Vec(0.0f), Vec(1.0f), high);
  const Vec x = Vec::blendv(w, w * Vec(0.5f), high) - Vec(1.0f);
  const Vec z = x * x;
  Vec p = at::vec::fmadd(Vec(7.0376836292e-2f), x, Vec(-1.1514610310e-1f));
  p = at::vec::fmadd(p, x, Vec(1.1676998740e-1f));
  p = at::vec::fmadd(p, x, Vec(-1.2420140846e-1f));
  p = at::vec::fmadd(p, x, Vec(1.4249322787e-1f));
  p = at::vec::fmadd(p, x, Vec(-1.6668057665e-1f));
  p = at::vec::fmadd(p, x, Vec(2.0000714765e-1f));
  p = at::vec::fmadd(p, x, Vec(-2.4999993993e-1f));
  p = at::vec::fmadd(p, x, Vec(3.3333331174e-1f));
  Vec r = p * x * z;
  r = at::vec::fmadd(k, Vec(-2.12194440e-4f), r);
  r = at::vec::fmadd(Vec(-0.5f), z, r);
  r = at::vec::fmadd(k, Vec(0.693359375f), x + r);
  return Vec::blendv(r, y * at::vec::fmadd(Vec(-0.5f), y, Vec(1.0f)), y < Vec(1e-4f));
}

// torch.nn.functional.softplus with its default threshold 20 (linear above it), as max(x, 0) + log1p(exp(-|x|)).
SCAN_INLINE Vec softplus(const Vec& x) {
  const Vec soft = at::vec::maximum(x, Vec(0.0f)) + log1p_unit(exp_inline(x.abs().neg()));
  return Vec::blendv(soft, x, x > Vec(20.0f));
}

// d softplus / dx = sigmoid(x), exactly 1 above the threshold (as torch's softplus backward).
SCAN_INLINE Vec softplus_grad(const Vec& x) {
  return Vec::blendv(sigmoid(x), Vec(1.0f), x > Vec(20.0f));
}

struct Problem {
  int64_t batch, length, channels, nstate, chunk, nchunks, nblocks, parts;
  Strided u, delta, z, B, C;
  const float *A_t, *D, *bias;
  bool softplus;
  // With a delta projection (forward_projected): delta is the B x L x R low-rank input and delta_w_t the R x E
  // weight, so a step's raw delta is sum_r delta[t, r] * delta_w_t[r] (plus the bias), computed in the scan.
  const float* delta_w_t = nullptr;
  int64_t rank = 0;
};

// Tasks: (batch element, part); a part is a contiguous range of channel blocks.
int64_t parts_for(int64_t batch, int64_t nblocks) {
  const int64_t threads = at::get_num_threads();
  return std::max<int64_t>(1, std::min<int64_t>(nblocks, (threads + batch - 1) / batch));
}

std::pair<int64_t, int64_t> part_blocks(const Problem& p, int64_t part) {
  return {part * p.nblocks / p.parts, (part + 1) * p.nblocks / p.parts};
}

Problem make_problem(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A_t, const at::Tensor& B,
                     const at::Tensor& C, const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
                     const std::optional<at::Tensor>& bias, bool softplus, int64_t chunk) {
  TORCH_CHECK(chunk >= 1, "scan kernel: chunk must be >= 1");
  TORCH_CHECK(A_t.is_contiguous() && A_t.dim() == 2, "scan kernel: A_t must be a contiguous N x E tensor");
  Problem p;
  p.batch = u.size(0);
  p.length = u.size(1);
  p.channels = u.size(2);
  p.nstate = A_t.size(0);
  p.chunk = chunk;
  p.nchunks = (p.length + chunk - 1) / chunk;
  p.nblocks = (p.channels + W - 1) / W;
  p.parts = parts_for(p.batch, p.nblocks);
  p.u = view(u, false);
  p.delta = view(delta, false);
  p.B = view(B, true);
  p.C = view(C, true);
  if (z.has_value()) p.z = view(*z, false);
  p.A_t = A_t.data_ptr<float>();
  p.D = optional_data(D);
  p.bias = optional_data(bias);
  for (const auto* t : {&D, &bias}) {
    TORCH_CHECK(!t->has_value() || ((*t)->is_contiguous() && (*t)->numel() == p.channels),
                "scan kernel: D and delta_bias must be contiguous with E entries");
  }
  p.softplus = softplus;
  return p;
}

// Per-block constants: A rows (also times log2 e, for exp2), D, bias as W-lane vectors.
struct BlockConsts {
  std::vector<Vec> A, A2;
  Vec D{0.0f}, bias{0.0f};
  int64_t e0, count;
  std::vector<Vec> Wdt;
  BlockConsts(const Problem& p, int64_t block) : A(p.nstate), A2(p.nstate), Wdt(p.rank) {
    e0 = block * W;
    count = std::min<int64_t>(W, p.channels - e0);
    for (int64_t n = 0; n < p.nstate; ++n) {
      A[n] = load(p.A_t + n * p.channels + e0, count);
      A2[n] = A[n] * Vec(LOG2E);
    }
    if (p.D) D = load(p.D + e0, count);
    if (p.bias) bias = load(p.bias + e0, count);
    for (int64_t r = 0; r < p.rank; ++r) Wdt[r] = load(p.delta_w_t + r * p.channels + e0, count);
  }
};

SCAN_INLINE Vec raw_delta(const Problem& p, const BlockConsts& k, const float* row) {
  const Vec x = load(row, k.count);
  return p.bias ? x + k.bias : x;
}

SCAN_INLINE Vec step_delta(const Problem& p, const BlockConsts& k, const float* row) {
  const Vec x = raw_delta(p, k, row);
  return p.softplus ? softplus(x) : x;
}

// A step's delta from the low-rank input row (R entries) through the projection (forward_projected).
SCAN_INLINE Vec projected_delta(const Problem& p, const BlockConsts& k, const float* low) {
  Vec x = p.bias ? k.bias : Vec(0.0f);
  for (int64_t r = 0; r < p.rank; ++r) x = at::vec::fmadd(Vec(low[r]), k.Wdt[r], x);
  return p.softplus ? softplus(x) : x;
}

SCAN_INLINE Vec gate(const Vec& y, const Vec& z) { return y * z * sigmoid(z); }  // y * SiLU(z)

// The chunk rows a block reads: u, delta, z (and the output gradient in backward).
struct ChunkBuffers {
  std::vector<float> u, delta, z, dy;
  explicit ChunkBuffers(int64_t chunk) : u(chunk * W), delta(chunk * W), z(chunk * W), dy(chunk * W) {}
};

}  // namespace

// The recurrence of one chunk for one block, in three passes so that no step waits on a long dependency chain:
// (1) delta after bias and softplus, and delta * u, for every step; (2) the states, h_n = exp(delta A_n) h_n +
// delta u B_n, and y = sum_n C_n h_n; (3) the D skip and the SiLU(z) gate. Pass 2 is the only sequential one; with
// the state count known at compile time (NS > 0) its N state vectors live in registers.
struct StepBuffers {
  std::vector<Vec> dt, drive, y;
  explicit StepBuffers(int64_t chunk) : dt(chunk), drive(chunk), y(chunk) {}
};

// Row-by-row kernels whose rows the hardware prefetcher does not follow (rows of a wider tensor, rows in a scan
// order: reversed every other image row, or down the columns) ask for the row ROWS_AHEAD places ahead themselves
// (measured: 3.5x faster on in_proj's x half, 3.4x on a snake order).
constexpr int64_t ROWS_AHEAD = 8;

inline void prefetch_row(const float* row, int64_t count) {
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int64_t byte = 0; byte < count * static_cast<int64_t>(sizeof(float)); byte += 64) {
    _mm_prefetch(bytes + byte, _MM_HINT_T0);
  }
}

// Sequence-major inputs are read one cache line per step and block, at a stride of a whole row: too sparse for the
// hardware prefetcher, so each block asks for its lines of the next chunk while it works on this one.
SCAN_INLINE void prefetch_step(const Problem& p, int64_t b, int64_t t, int64_t e0) {
  for (const Strided* x : {&p.u, p.rank ? nullptr : &p.delta, &p.z}) {
    if (x && x->data && x->sx == 1) _mm_prefetch(reinterpret_cast<const char*>(x->at(b, t) + e0), _MM_HINT_T0);
  }
}

constexpr int GROUP = 4;  // state vectors whose decays are computed in lock step (NS must be a multiple)

template <int NS>
SCAN_INLINE void recur(const Problem& p, const BlockConsts& k, int64_t b, int64_t t0, int64_t steps,
                       StepBuffers& sb, Vec* h_mem) {
  constexpr int64_t CN = NS;
  const int64_t N = NS > 0 ? CN : p.nstate;
  if constexpr (NS > 0) {
    Vec h[NS];
#pragma GCC unroll 32
    for (int n = 0; n < NS; ++n) h[n] = h_mem[n];
    for (int64_t s = 0; s < steps; ++s) {
      const Vec dt = sb.dt[s], drive = sb.drive[s];
      const float* Bt = p.B.at(b, t0 + s);
      const float* Ct = p.C.at(b, t0 + s);
      Vec part[ACCUMULATORS] = {};
#pragma GCC unroll 8
      for (int n0 = 0; n0 < NS; n0 += GROUP) {
        Vec a[GROUP];
#pragma GCC unroll 8
        for (int g = 0; g < GROUP; ++g) a[g] = dt * k.A2[n0 + g];
        exp2_group<GROUP>(a);
#pragma GCC unroll 8
        for (int g = 0; g < GROUP; ++g) {
          const int n = n0 + g;
          h[n] = at::vec::fmadd(a[g], h[n], drive * Vec(Bt[n]));
          part[g % ACCUMULATORS] = at::vec::fmadd(Vec(Ct[n]), h[n], part[g % ACCUMULATORS]);
        }
      }
      sb.y[s] = (part[0] + part[1]) + (part[2] + part[3]);
    }
#pragma GCC unroll 32
    for (int n = 0; n < NS; ++n) h_mem[n] = h[n];
  } else {
    for (int64_t s = 0; s < steps; ++s) {
      const Vec dt = sb.dt[s], drive = sb.drive[s];
      const float* Bt = p.B.at(b, t0 + s);
      const float* Ct = p.C.at(b, t0 + s);
      Vec part[ACCUMULATORS] = {};
      for (int64_t n = 0; n < N; ++n) {
        h_mem[n] = at::vec::fmadd(exp2_inline(dt * k.A2[n]), h_mem[n], drive * Vec(Bt[n]));
        part[n % ACCUMULATORS] = at::vec::fmadd(Vec(Ct[n]), h_mem[n], part[n % ACCUMULATORS]);
      }
      sb.y[s] = (part[0] + part[1]) + (part[2] + part[3]);
    }
  }
}

std::vector<at::Tensor> scan_forward_impl(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A_t,
                                          const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                          const std::optional<at::Tensor>& z, const std::optional<at::Tensor>& bias,
                                          bool softplus, bool save, int64_t chunk,
                                          const std::optional<at::Tensor>& delta_w_t) {
  Problem p = make_problem(u, delta, A_t, B, C, D, z, bias, softplus, chunk);
  if (delta_w_t.has_value()) {
    TORCH_CHECK(delta_w_t->is_contiguous() && delta_w_t->dim() == 2 && delta_w_t->size(1) == p.channels &&
                    delta_w_t->size(0) == delta.size(2) && delta.stride(2) == 1 && delta.size(1) == p.length,
                "scan kernel: the delta projection must be a contiguous R x E tensor, delta a B x L x R one with "
                "unit last stride");
    p.delta_w_t = delta_w_t->data_ptr<float>();
    p.rank = delta_w_t->size(0);
  }
  const int64_t N = p.nstate;
  at::Tensor y = at::empty({p.batch, p.length, p.channels}, u.options());
  at::Tensor states = save ? at::empty({p.batch, p.nchunks, N, p.channels}, u.options()) : at::empty({0}, u.options());
  float* y_data = y.data_ptr<float>();
  float* states_data = save ? states.data_ptr<float>() : nullptr;

  // Chunks outer, blocks inner: a chunk's B and C rows stay in L1 while every block of the task reads them, and the
  // task's u, delta and z rows are read chunk by chunk instead of once per block over the whole sequence.
  at::parallel_for(0, p.batch * p.parts, 1, [&](int64_t task0, int64_t task1) {
    ChunkBuffers buf(p.chunk);
    StepBuffers sb(p.chunk);
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t b = task / p.parts;
      const auto [block0, block1] = part_blocks(p, task % p.parts);
      std::vector<BlockConsts> consts;
      for (int64_t block = block0; block < block1; ++block) consts.emplace_back(p, block);
      std::vector<Vec> hs((block1 - block0) * N, Vec(0.0f));
      for (int64_t c = 0; c < p.nchunks; ++c) {
        const int64_t t0 = c * p.chunk, steps = std::min(p.chunk, p.length - t0);
        for (size_t i = 0; i < consts.size(); ++i) {
          const BlockConsts& k = consts[i];
          Vec* h = &hs[i * N];
          if (save) {
            float* dst = states_data + ((b * p.nchunks + c) * N) * p.channels + k.e0;
            for (int64_t n = 0; n < N; ++n) store(h[n], dst + n * p.channels, k.count);
          }
          const Rows u_rows = chunk_rows(p.u, b, t0, steps, k.e0, k.count, buf.u.data());
          const Rows d_rows = p.rank ? Rows{nullptr, 0}
                                     : chunk_rows(p.delta, b, t0, steps, k.e0, k.count, buf.delta.data());
          const int64_t ahead = std::min(p.chunk, p.length - t0 - steps);  // steps of the next chunk
          for (int64_t s = 0; s < steps; ++s) {
            if (s < ahead) prefetch_step(p, b, t0 + steps + s, k.e0);
            const Vec dt = p.rank ? projected_delta(p, k, p.delta.at(b, t0 + s))
                                  : step_delta(p, k, d_rows.ptr + s * d_rows.stride);
            sb.dt[s] = dt;
            sb.drive[s] = dt * load(u_rows.ptr + s * u_rows.stride, k.count);
          }
          if (N == 16) recur<16>(p, k, b, t0, steps, sb, h);
          else if (N == 8) recur<8>(p, k, b, t0, steps, sb, h);
          else recur<0>(p, k, b, t0, steps, sb, h);
          const Rows z_rows = p.z.data ? chunk_rows(p.z, b, t0, steps, k.e0, k.count, buf.z.data()) : Rows{nullptr, 0};
          for (int64_t s = 0; s < steps; ++s) {
            Vec acc = sb.y[s];
            if (p.D) acc = at::vec::fmadd(k.D, load(u_rows.ptr + s * u_rows.stride, k.count), acc);
            if (p.z.data) acc = gate(acc, load(z_rows.ptr + s * z_rows.stride, k.count));
            store(acc, y_data + (b * p.length + t0 + s) * p.channels + k.e0, k.count);
          }
        }
      }
    }
  });
  return {y, states};
}

std::vector<at::Tensor> scan_forward(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A_t,
                                     const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                     const std::optional<at::Tensor>& z, const std::optional<at::Tensor>& bias,
                                     bool softplus, bool save, int64_t chunk) {
  return scan_forward_impl(u, delta, A_t, B, C, D, z, bias, softplus, save, chunk, std::nullopt);
}

// Inference with delta's projection folded in: delta_low is B x L x R (unit last stride), delta_w_t R x E.
at::Tensor scan_forward_projected(const at::Tensor& u, const at::Tensor& delta_low, const at::Tensor& delta_w_t,
                                  const at::Tensor& A_t, const at::Tensor& B, const at::Tensor& C,
                                  const std::optional<at::Tensor>& D, const std::optional<at::Tensor>& z,
                                  const std::optional<at::Tensor>& bias, bool softplus, int64_t chunk) {
  return scan_forward_impl(u, delta_low, A_t, B, C, D, z, bias, softplus, false, chunk, delta_w_t)[0];
}

std::vector<at::Tensor> scan_backward(const at::Tensor& u, const at::Tensor& delta, const at::Tensor& A_t,
                                      const at::Tensor& B, const at::Tensor& C, const std::optional<at::Tensor>& D,
                                      const std::optional<at::Tensor>& z, const std::optional<at::Tensor>& bias,
                                      bool softplus, const at::Tensor& states, const at::Tensor& dout,
                                      int64_t chunk) {
  const Problem p = make_problem(u, delta, A_t, B, C, D, z, bias, softplus, chunk);
  const int64_t N = p.nstate, E = p.channels, L = p.length, T = p.chunk;
  TORCH_CHECK(states.is_contiguous() && states.numel() == p.batch * p.nchunks * N * E,
              "scan kernel: states do not match the problem");
  const Strided g = view(dout, false);
  const auto opts = u.options();
  at::Tensor du = at::empty({p.batch, L, E}, opts);
  at::Tensor ddelta = at::empty({p.batch, L, E}, opts);
  at::Tensor dz = p.z.data ? at::empty({p.batch, L, E}, opts) : at::empty({0}, opts);
  // Per batch element (summed over it by the caller): dA_t, dD, dbias. Per part: dB, dC.
  at::Tensor dA = at::zeros({p.batch, N, E}, opts);
  at::Tensor dD = at::zeros({p.batch, E}, opts);
  at::Tensor dbias = at::zeros({p.batch, E}, opts);
  at::Tensor dB = at::zeros({p.parts, p.batch, L, N}, opts);
  at::Tensor dC = at::zeros({p.parts, p.batch, L, N}, opts);
  float *du_d = du.data_ptr<float>(), *ddelta_d = ddelta.data_ptr<float>();
  float* dz_d = p.z.data ? dz.data_ptr<float>() : nullptr;
  float *dA_d = dA.data_ptr<float>(), *dD_d = dD.data_ptr<float>(), *dbias_d = dbias.data_ptr<float>();
  float *dB_d = dB.data_ptr<float>(), *dC_d = dC.data_ptr<float>();
  const float* states_d = states.data_ptr<float>();

  at::parallel_for(0, p.batch * p.parts, 1, [&](int64_t task0, int64_t task1) {
    // Chunk buffers: states h_{t0-1..t1-1}, decays, deltas (after softplus), pre-gate outputs, lane sums of dB/dC.
    std::vector<Vec> hist_h((T + 1) * N), hist_a(T * N), hist_dt(T), hist_y(T), lane_dB(T * N), lane_dC(T * N);
    ChunkBuffers buf(T);
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t b = task / p.parts, part = task % p.parts;
      const auto [block0, block1] = part_blocks(p, part);
      std::vector<BlockConsts> consts;
      for (int64_t block = block0; block < block1; ++block) consts.emplace_back(p, block);
      const int64_t nb = block1 - block0;
      std::vector<Vec> carry(nb * N, Vec(0.0f)), dA_acc(nb * N, Vec(0.0f)), dD_acc(nb, Vec(0.0f)),
          dbias_acc(nb, Vec(0.0f));
      for (int64_t c = p.nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * T, t1 = std::min(L, t0 + T), steps = t1 - t0;
        std::fill(lane_dB.begin(), lane_dB.begin() + steps * N, Vec(0.0f));
        std::fill(lane_dC.begin(), lane_dC.begin() + steps * N, Vec(0.0f));
        for (int64_t i = 0; i < nb; ++i) {
          const BlockConsts& k = consts[i];
          const float* entry = states_d + ((b * p.nchunks + c) * N) * E + k.e0;
          for (int64_t n = 0; n < N; ++n) hist_h[n] = load(entry + n * E, k.count);
          const Rows u_rows = chunk_rows(p.u, b, t0, steps, k.e0, k.count, buf.u.data());
          const Rows d_rows = chunk_rows(p.delta, b, t0, steps, k.e0, k.count, buf.delta.data());
          const Rows z_rows = p.z.data ? chunk_rows(p.z, b, t0, steps, k.e0, k.count, buf.z.data()) : Rows{nullptr, 0};
          const Rows g_rows = chunk_rows(g, b, t0, steps, k.e0, k.count, buf.dy.data());
          // Recompute the chunk's states.
          for (int64_t s = 0; s < steps; ++s) {
            const int64_t t = t0 + s;
            const Vec dt = step_delta(p, k, d_rows.ptr + s * d_rows.stride);
            const Vec uv = load(u_rows.ptr + s * u_rows.stride, k.count);
            const Vec drive = dt * uv;
            const float* Bt = p.B.at(b, t);
            const float* Ct = p.C.at(b, t);
            const Vec* prev = &hist_h[s * N];
            Vec* next = &hist_h[(s + 1) * N];
            Vec* a = &hist_a[s * N];
            Vec part[ACCUMULATORS] = {};
            for (int64_t n = 0; n < N; ++n) {
              a[n] = exp2_inline(dt * k.A2[n]);
              next[n] = at::vec::fmadd(a[n], prev[n], drive * Vec(Bt[n]));
              part[n % ACCUMULATORS] = at::vec::fmadd(Vec(Ct[n]), next[n], part[n % ACCUMULATORS]);
            }
            Vec acc = (part[0] + part[1]) + (part[2] + part[3]);
            if (p.D) acc = at::vec::fmadd(k.D, uv, acc);
            hist_dt[s] = dt;
            hist_y[s] = acc;
          }
          // Reverse sweep.
          Vec* dh = &carry[i * N];
          Vec* dA_k = &dA_acc[i * N];
          for (int64_t s = steps - 1; s >= 0; --s) {
            const int64_t t = t0 + s;
            const int64_t off = (b * L + t) * E + k.e0;
            const Vec uv = load(u_rows.ptr + s * u_rows.stride, k.count);
            Vec gy = load(g_rows.ptr + s * g_rows.stride, k.count);
            if (p.z.data) {
              const Vec zv = load(z_rows.ptr + s * z_rows.stride, k.count);
              const Vec sig = sigmoid(zv);
              store(gy * hist_y[s] * sig * (Vec(1.0f) + zv * (Vec(1.0f) - sig)), dz_d + off, k.count);
              gy = gy * zv * sig;
            }
            Vec du_v(0.0f);
            if (p.D) {
              dD_acc[i] = at::vec::fmadd(gy, uv, dD_acc[i]);
              du_v = gy * k.D;
            }
            const Vec dt = hist_dt[s];
            const Vec dtu = dt * uv;
            const float* Bt = p.B.at(b, t);
            const float* Ct = p.C.at(b, t);
            const Vec* h_prev = &hist_h[s * N];
            const Vec* h_now = &hist_h[(s + 1) * N];
            const Vec* a = &hist_a[s * N];
            Vec* lB = &lane_dB[s * N];
            Vec* lC = &lane_dC[s * N];
            Vec dh_B(0.0f), ddt(0.0f);
            for (int64_t n = 0; n < N; ++n) {
              lC[n] = at::vec::fmadd(gy, h_now[n], lC[n]);
              dh[n] = at::vec::fmadd(gy, Vec(Ct[n]), dh[n]);
              lB[n] = at::vec::fmadd(dh[n], dtu, lB[n]);
              dh_B = at::vec::fmadd(dh[n], Vec(Bt[n]), dh_B);
              const Vec dh_ah = dh[n] * a[n] * h_prev[n];
              ddt = at::vec::fmadd(dh_ah, k.A[n], ddt);
              dA_k[n] = at::vec::fmadd(dh_ah, dt, dA_k[n]);
              dh[n] = dh[n] * a[n];
            }
            du_v = at::vec::fmadd(dt, dh_B, du_v);
            ddt = at::vec::fmadd(uv, dh_B, ddt);
            if (p.softplus) ddt = ddt * softplus_grad(raw_delta(p, k, d_rows.ptr + s * d_rows.stride));
            dbias_acc[i] = dbias_acc[i] + ddt;
            store(du_v, du_d + off, k.count);
            store(ddt, ddelta_d + off, k.count);
          }
        }
        // Reduce the lanes of this chunk's dB/dC into the part's buffers.
        float* dB_rows = dB_d + ((part * p.batch + b) * L + t0) * N;
        float* dC_rows = dC_d + ((part * p.batch + b) * L + t0) * N;
        for (int64_t j = 0; j < steps * N; ++j) {
          dB_rows[j] = at::vec::vec_reduce_all<float>([](Vec& x, Vec& y) { return x + y; }, lane_dB[j]);
          dC_rows[j] = at::vec::vec_reduce_all<float>([](Vec& x, Vec& y) { return x + y; }, lane_dC[j]);
        }
      }
      for (int64_t i = 0; i < nb; ++i) {
        const BlockConsts& k = consts[i];
        for (int64_t n = 0; n < N; ++n) store(dA_acc[i * N + n], dA_d + (b * N + n) * E + k.e0, k.count);
        store(dD_acc[i], dD_d + b * E + k.e0, k.count);
        store(dbias_acc[i], dbias_d + b * E + k.e0, k.count);
      }
    }
  });
  at::Tensor dB_sum = p.parts == 1 ? dB[0] : dB.sum(0);
  at::Tensor dC_sum = p.parts == 1 ? dC[0] : dC.sum(0);
  return {du, ddelta, dA.sum(0), dB_sum, dC_sum, dD.sum(0), dz, dbias.sum(0)};
}

// Mamba's causal depthwise convolution followed by SiLU, on sequence-major B x L x E input (channel stride 1) in one
// pass: out_t = SiLU(bias + w_{K-1} x_t + sum_{k<K-1} w_k x_{t-(K-1-k)}), zeros before the start. weight: E x K.
at::Tensor causal_conv_silu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  const Strided in = view(x, true);
  TORCH_CHECK(weight.is_contiguous() && weight.dim() == 2 && weight.size(0) == x.size(2),
              "causal conv: weight must be a contiguous E x K tensor");
  TORCH_CHECK(!bias.has_value() || (bias->is_contiguous() && bias->numel() == x.size(2)),
              "causal conv: bias must be contiguous with E entries");
  const int64_t batch = x.size(0), L = x.size(1), E = x.size(2), K = weight.size(1);
  at::Tensor out = at::empty({batch, L, E}, x.options());
  float* out_d = out.data_ptr<float>();
  const float* w = weight.data_ptr<float>();
  const float* bias_d = optional_data(bias);
  // Taps and bias per block of W channels, padded with zeros (tail lanes are never stored).
  const int64_t nblocks = (E + W - 1) / W;
  std::vector<float> taps(nblocks * K * W, 0.0f), bias_pad(nblocks * W, 0.0f);
  for (int64_t e = 0; e < E; ++e) {
    for (int64_t k = 0; k < K; ++k) taps[((e / W) * K + k) * W + e % W] = w[e * K + k];
    if (bias_d) bias_pad[e] = bias_d[e];
  }
  // Rows outer, channel blocks inner: each row's K input rows are read once, contiguously. Rows of a wider tensor
  // (x as the first half of in_proj's output) are prefetched ROWS_AHEAD rows ahead.
  const bool gaps = in.st != E;
  at::parallel_for(0, batch * L, 256, [&](int64_t row0, int64_t row1) {
    for (int64_t row = row0; row < row1; ++row) {
      const int64_t b = row / L, t = row % L;
      if (gaps && t + ROWS_AHEAD < L) prefetch_row(in.at(b, t + ROWS_AHEAD), E);
      for (int64_t blk = 0; blk < nblocks; ++blk) {
        const int64_t e0 = blk * W, count = std::min<int64_t>(W, E - e0);
        const float* wk = &taps[blk * K * W];
        Vec acc = at::vec::fmadd(load(in.at(b, t) + e0, count), Vec::loadu(wk + (K - 1) * W),
                                 Vec::loadu(&bias_pad[e0]));
        for (int64_t k = 0; k < K - 1; ++k) {
          const int64_t back = t - (K - 1 - k);
          if (back >= 0) acc = at::vec::fmadd(load(in.at(b, back) + e0, count), Vec::loadu(wk + k * W), acc);
        }
        store(acc / (Vec(1.0f) + exp_inline(acc.neg())), out_d + row * E + e0, count);
      }
    }
  });
  return out;
}

// out[b, i] = x[b, order[i]] (+ acc[b, i]) for a B x P x D tensor with unit last stride and L indices into P; with
// acc (B x L x D, contiguous) the rows are added into it in place and acc is returned. The scans' way back from
// scan order to raster order, and the sum of two scan directions, in one pass.
at::Tensor gather_rows(const at::Tensor& x, const at::Tensor& order, const std::optional<at::Tensor>& acc) {
  const Strided in = view(x, true);
  TORCH_CHECK(order.is_contiguous() && order.scalar_type() == at::kLong, "gather_rows: order must be contiguous int64");
  const int64_t batch = x.size(0), P = x.size(1), D = x.size(2), L = order.numel();
  const int64_t* order_d = order.data_ptr<int64_t>();
  for (int64_t i = 0; i < L; ++i) TORCH_CHECK(order_d[i] >= 0 && order_d[i] < P, "gather_rows: bad index");
  at::Tensor out;
  if (acc.has_value()) {
    TORCH_CHECK(acc->is_contiguous() && acc->scalar_type() == at::kFloat && acc->dim() == 3 && acc->size(0) == batch &&
                    acc->size(1) == L && acc->size(2) == D,
                "gather_rows: acc must be a contiguous float32 B x L x D tensor");
    out = *acc;
  } else {
    out = at::empty({batch, L, D}, x.options());
  }
  float* out_d = out.data_ptr<float>();
  const bool add = acc.has_value();
  at::parallel_for(0, batch * L, 64, [&](int64_t row0, int64_t row1) {
    for (int64_t row = row0; row < row1; ++row) {
      const int64_t b = row / L, i = row % L;
      if (i + ROWS_AHEAD < L) prefetch_row(in.at(b, order_d[i + ROWS_AHEAD]), D);
      const float* src = in.at(b, order_d[i]);
      float* dst = out_d + row * D;
      for (int64_t d = 0; d < D; d += W) {
        const int64_t count = std::min<int64_t>(W, D - d);
        const Vec v = load(src + d, count);
        store(add ? v + load(dst + d, count) : v, dst + d, count);
      }
    }
  });
  return out;
}

// LayerNorm (population variance) of the rows of a B x P x D tensor (unit last stride) taken in the order `order`
// (L indices into P; none: all rows in order), with the L x D table `pe` added first:
// out[b, i] = LN(x[b, order[i]] + pe[i]) * weight + bias. One pass instead of a gather, an add and a LayerNorm.
at::Tensor gather_layer_norm(const at::Tensor& x, const std::optional<at::Tensor>& order,
                             const std::optional<at::Tensor>& pe, const at::Tensor& weight, const at::Tensor& bias,
                             double eps) {
  const Strided in = view(x, true);
  const int64_t batch = x.size(0), P = x.size(1), D = x.size(2);
  const int64_t L = order.has_value() ? order->numel() : P;
  TORCH_CHECK(!order.has_value() || (order->is_contiguous() && order->scalar_type() == at::kLong),
              "gather layer norm: order must be a contiguous int64 tensor");
  TORCH_CHECK(!pe.has_value() || (pe->is_contiguous() && pe->numel() == L * D),
              "gather layer norm: pe must be a contiguous L x D tensor");
  TORCH_CHECK(weight.is_contiguous() && bias.is_contiguous() && weight.numel() == D && bias.numel() == D,
              "gather layer norm: weight and bias must be contiguous with D entries");
  const int64_t* order_d = order.has_value() ? order->data_ptr<int64_t>() : nullptr;
  if (order_d) {
    for (int64_t i = 0; i < L; ++i) TORCH_CHECK(order_d[i] >= 0 && order_d[i] < P, "gather layer norm: bad index");
  }
  const float* pe_d = pe.has_value() ? pe->data_ptr<float>() : nullptr;
  const float *w = weight.data_ptr<float>(), *beta = bias.data_ptr<float>();
  at::Tensor out = at::empty({batch, L, D}, x.options());
  float* out_d = out.data_ptr<float>();
  at::parallel_for(0, batch * L, 64, [&](int64_t row0, int64_t row1) {
    std::vector<float> v(D);
    for (int64_t row = row0; row < row1; ++row) {
      const int64_t b = row / L, i = row % L;
      if (order_d && i + ROWS_AHEAD < L) prefetch_row(in.at(b, order_d[i + ROWS_AHEAD]), D);
      const float* src = in.at(b, order_d ? order_d[i] : i);
      Vec sum(0.0f);
      for (int64_t d = 0; d < D; d += W) {
        const int64_t count = std::min<int64_t>(W, D - d);
        Vec value = load(src + d, count);
        if (pe_d) value = value + load(pe_d + i * D + d, count);
        store(value, v.data() + d, count);
        sum = sum + (count == W ? value : Vec::set(Vec(0.0f), value, count));
      }
      const float mean = at::vec::vec_reduce_all<float>([](Vec& a, Vec& c) { return a + c; }, sum) / D;
      Vec square(0.0f);
      for (int64_t d = 0; d < D; d += W) {
        const int64_t count = std::min<int64_t>(W, D - d);
        const Vec centred = load(v.data() + d, count) - Vec(mean);
        square = at::vec::fmadd(centred, count == W ? centred : Vec::set(Vec(0.0f), centred, count), square);
      }
      const float var = at::vec::vec_reduce_all<float>([](Vec& a, Vec& c) { return a + c; }, square) / D;
      const Vec rstd(1.0f / std::sqrt(var + static_cast<float>(eps)));
      float* dst = out_d + row * D;
      for (int64_t d = 0; d < D; d += W) {
        const int64_t count = std::min<int64_t>(W, D - d);
        const Vec normed = (load(v.data() + d, count) - Vec(mean)) * rstd;
        store(at::vec::fmadd(normed, load(w + d, count), load(beta + d, count)), dst + d, count);
      }
    }
  });
  return out;
}

// GELU(a) * b (exact, erf-based GELU, as F.gelu) for P x F views with unit last stride (a channels-last gate and
// value), in one pass instead of two with a P x F temporary. Returns a contiguous P x F tensor.
at::Tensor gelu_mul(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 2 && b.sizes() == a.sizes() && a.stride(1) == 1 && b.stride(1) == 1 &&
                  a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat,
              "gelu_mul: expected two float32 P x F tensors with unit last stride");
  const int64_t rows = a.size(0), F = a.size(1), sa = a.stride(0), sb = b.stride(0);
  at::Tensor out = at::empty({rows, F}, a.options());
  const float *a_d = a.data_ptr<float>(), *b_d = b.data_ptr<float>();
  float* out_d = out.data_ptr<float>();
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(F, 1)), [&](int64_t row0, int64_t row1) {
    for (int64_t row = row0; row < row1; ++row) {
      const float *x = a_d + row * sa, *y = b_d + row * sb;
      float* dst = out_d + row * F;
      for (int64_t f = 0; f < F; f += W) {
        const int64_t count = std::min<int64_t>(W, F - f);
        const Vec v = load(x + f, count);
        const Vec gelu = v * Vec(0.5f) * (Vec(1.0f) + (v * Vec(static_cast<float>(M_SQRT1_2))).erf());
        store(gelu * load(y + f, count), dst + f, count);
      }
    }
  });
  return out;
}

// L2 norms of the columns of a P x F view with unit last stride (any row stride): sqrt(sum_p x[p, f]^2), F values.
// One pass over the rows, each task summing a range of rows lane-wise; the partial sums are added in task order.
at::Tensor column_norms(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 && x.stride(1) == 1 && x.scalar_type() == at::kFloat,
              "column_norms: expected a float32 P x F tensor with unit last stride");
  const int64_t rows = x.size(0), F = x.size(1), stride = x.stride(0);
  const float* data = x.data_ptr<float>();
  const int64_t tasks = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows / 256));
  std::vector<float> partial(tasks * F, 0.0f);
  at::parallel_for(0, tasks, 1, [&](int64_t task0, int64_t task1) {
    for (int64_t task = task0; task < task1; ++task) {
      float* acc = partial.data() + task * F;
      for (int64_t row = task * rows / tasks; row < (task + 1) * rows / tasks; ++row) {
        const float* src = data + row * stride;
        for (int64_t f = 0; f < F; f += W) {
          const int64_t count = std::min<int64_t>(W, F - f);
          const Vec v = load(src + f, count);
          store(at::vec::fmadd(v, v, load(acc + f, count)), acc + f, count);
        }
      }
    }
  });
  at::Tensor out = at::empty({F}, x.options());
  float* out_d = out.data_ptr<float>();
  for (int64_t f = 0; f < F; ++f) {
    float total = 0.0f;
    for (int64_t task = 0; task < tasks; ++task) total += partial[task * F + f];
    out_d[f] = std::sqrt(total);
  }
  return out;
}

TORCH_LIBRARY(inpaintstudio_scan, m) {
  m.def("gelu_mul(Tensor a, Tensor b) -> Tensor", &gelu_mul);
  m.def("column_norms(Tensor x) -> Tensor", &column_norms);
  m.def("gather_rows(Tensor x, Tensor order, Tensor? acc) -> Tensor", &gather_rows);
  m.def("causal_conv_silu(Tensor x, Tensor weight, Tensor? bias) -> Tensor", &causal_conv_silu);
  m.def("gather_layer_norm(Tensor x, Tensor? order, Tensor? pe, Tensor weight, Tensor bias, float eps) -> Tensor",
        &gather_layer_norm);
  m.def("forward(Tensor u, Tensor delta, Tensor A_t, Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? bias, "
        "bool softplus, bool save, int chunk) -> Tensor[]", &scan_forward);
  m.def("forward_projected(Tensor u, Tensor delta_low, Tensor delta_w_t, Tensor A_t, Tensor B, Tensor C, Tensor? D, "
        "Tensor? z, Tensor? bias, bool softplus, int chunk) -> Tensor", &scan_forward_projected);
  m.def("backward(Tensor u, Tensor delta, Tensor A_t, Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? bias, "
        "bool softplus, Tensor states, Tensor dout, int chunk) -> Tensor[]", &scan_backward);
}
