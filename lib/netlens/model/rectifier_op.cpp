#include "netlens/model/rectifier_op.h"
#include "netlens/model/rescale_rows.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include "netlens/model/libtorch.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace netlens {
namespace {

torch::Tensor RectifierForward(const torch::Tensor& x, double lo, double hi) {
  return std::isinf(hi) ? x.clamp_min(lo) : x.clamp(lo, hi);
}

constexpr double kDeepLiftEps = 1e-10;  // Captum's

thread_local DeepLiftTape* current_tape = nullptr;

// The tape of a deeplift op: none outside a DeepLiftTapeScope (the batch holds pairs).
DeepLiftTape* TapeOf(int64_t rule) { return IsDeepLift(static_cast<BackwardRule>(rule)) ? current_tape : nullptr; }

// A DeepLIFT batch [x; x0] seen as 2 x N x ...: the pairs' halves along the first dimension, so
// that a multiplier of the N pairs broadcasts over both halves without copies.
torch::Tensor Pairs(const torch::Tensor& t) {
  TORCH_CHECK(t.size(0) % 2 == 0, "the deeplift rule needs a batch of input/reference pairs, got ", t.size(0));
  std::vector<int64_t> sizes = t.sizes().vec();
  sizes[0] /= 2;
  sizes.insert(sizes.begin(), 2);
  return t.view(sizes);
}

// Element (n, c, p) of an N x C x H x W tensor whose two spatial dimensions merge into one
// (p = h * W + w): at n * n_stride + c * c_stride + p * p_stride. That holds for both layouts,
// contiguous and channels-last, and for a channel slice of either (what a concatenation's
// backward hands on), so the CPU kernels below read them all without copies.
struct Planar {
  int64_t n_stride, c_stride, p_stride;
  int64_t At(int64_t n, int64_t c, int64_t p) const { return n * n_stride + c * c_stride + p * p_stride; }
};

// t as a 4-D tensor with merging spatial dimensions: itself when it is one, else a contiguous
// copy viewed as N x (the rest) x 1 x 1.
torch::Tensor AsPlanar(const torch::Tensor& t) {
  if (t.dim() == 4 && (t.size(2) == 1 || t.size(3) == 1 || t.stride(2) == t.size(3) * t.stride(3))) return t;
  return t.contiguous().view({t.size(0), -1, 1, 1});
}

Planar PlanarOf(const torch::Tensor& t) {
  return {t.stride(0), t.stride(1), t.size(3) == 1 ? t.stride(2) : t.stride(3)};
}

// The CPU kernels below serve float32 and float64 tensors on the CPU; the rest (CUDA, other
// types) takes the tensor operations.
bool CpuKernelServes(const torch::Tensor& t) {
  return t.is_cpu() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64);
}

// Runs row(n, c, p, count, along_channels) over the input half (n < pairs) of a planar 4-D tensor,
// in parallel, row by row along the innermost dimension of `layout`'s memory: each row starts at
// element (n, c, p) and runs `count` elements along the channels for channels-last, along the
// positions otherwise.
template <typename Row>
void ForEachRow(const torch::Tensor& layout, int64_t samples, const Row& row) {
  const int64_t pairs = samples, channels = layout.size(1), positions = layout.size(2) * layout.size(3);
  const bool along_channels = channels > 1 && PlanarOf(layout).c_stride == 1;
  const int64_t outer = along_channels ? positions : channels, inner = along_channels ? channels : positions;
  at::parallel_for(0, pairs * outer, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, inner)), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t n = k / outer, j = k % outer;
      row(n, along_channels ? 0 : j, along_channels ? j : 0, inner, along_channels);
    }
  });
}

template <typename Row>
void ForEachPairRow(const torch::Tensor& layout, const Row& row) {
  ForEachRow(layout, layout.size(0) / 2, row);
}

// The CPU's one pass of DeepLiftRescale below: per element the same arithmetic as the tensor
// expression (the same numbers), without its ten intermediate tensors and layout copies. Rows
// along the innermost dimension of x's memory (channels for channels-last, positions otherwise)
// are vectorized where x, g and the result all run with unit stride there, as they do in both
// layouts, channel slices of a concatenation included.
torch::Tensor DeepLiftRescaleCpu(const torch::Tensor& x_any, const torch::Tensor& g_any, double lo, double hi) {
  const torch::Tensor x = AsPlanar(x_any);
  torch::Tensor g = AsPlanar(g_any.to(x_any.scalar_type()));
  const bool along_channels = x.size(1) > 1 && PlanarOf(x).c_stride == 1;
  auto inner_stride = [&](const Planar& t) { return along_channels ? t.c_stride : t.p_stride; };
  // A gradient in the other layout (an average pooling's backward hands a contiguous one to a
  // channels-last input) is copied into x's: one copy costs less than the rows' scalar loop.
  if (inner_stride(PlanarOf(x)) == 1 && inner_stride(PlanarOf(g)) != 1)
    g = AsPlanar(g_any.to(x_any.scalar_type()).contiguous(x_any.suggest_memory_format()));
  torch::Tensor grad = torch::empty_like(x, x.options(), x.suggest_memory_format());
  const Planar px = PlanarOf(x), pg = PlanarOf(g), po = PlanarOf(grad);
  const int64_t pairs = x.size(0) / 2;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "deeplift_rescale", [&] {
    const scalar_t* xs = x.data_ptr<scalar_t>();
    const scalar_t* gs = g.data_ptr<scalar_t>();
    scalar_t* out = grad.data_ptr<scalar_t>();
    const Rescale<scalar_t> rule(lo, hi, kDeepLiftEps);
    // One element pair: where input and reference agree, each half's own local gradient, else
    // the rescale multiplier (f(a) - f(r)) / (a - r) for both.
    auto pair = [rule](scalar_t a, scalar_t r, scalar_t ga, scalar_t gr, scalar_t& oa, scalar_t& orf) {
      scalar_t ma, mr;
      rule.PairMultipliers(a, r, ma, mr);
      oa = ga * ma;
      orf = gr * mr;
    };
    ForEachPairRow(x, [&](int64_t n, int64_t c, int64_t p, int64_t count, bool along_channels) {
      const int64_t sx = along_channels ? px.c_stride : px.p_stride, sg = along_channels ? pg.c_stride : pg.p_stride,
                    so = along_channels ? po.c_stride : po.p_stride;
      const scalar_t* xa = xs + px.At(n, c, p);
      const scalar_t* xr = xs + px.At(n + pairs, c, p);
      const scalar_t* ga = gs + pg.At(n, c, p);
      const scalar_t* gr = gs + pg.At(n + pairs, c, p);
      scalar_t* oa = out + po.At(n, c, p);
      scalar_t* orf = out + po.At(n + pairs, c, p);
      if (sx == 1 && sg == 1 && so == 1) {
        RescalePairRow(xa, xr, ga, gr, oa, orf, count, rule);
      } else {
        for (int64_t i = 0; i < count; ++i) pair(xa[i * sx], xr[i * sx], ga[i * sg], gr[i * sg], oa[i * so], orf[i * so]);
      }
    });
  });
  return grad.view(x_any.sizes());
}

torch::Tensor DeepLiftRescale(const torch::Tensor& x, const torch::Tensor& g, double lo, double hi) {
  if (CpuKernelServes(x) && g.is_cpu() && x.dim() >= 1 && x.size(0) % 2 == 0 && x.sizes() == g.sizes())
    return DeepLiftRescaleCpu(x, g, lo, hi);
  const torch::Tensor xp = Pairs(x);
  const torch::Tensor dx = xp[0] - xp[1];
  const torch::Tensor m = (RectifierForward(xp[0], lo, hi) - RectifierForward(xp[1], lo, hi)) / dx;
  // Where input and reference agree, each half takes its own ordinary gradient.
  torch::Tensor local = (xp > lo);
  if (!std::isinf(hi)) local = local.logical_and(xp < hi);
  const torch::Tensor multiplier = torch::where((dx.abs() < kDeepLiftEps).unsqueeze(0), local.to(g.scalar_type()), m.unsqueeze(0));
  return (Pairs(g) * multiplier).view(g.sizes());
}

// The rescale rule of the inputs alone, their references x0 from a pass of their own (DeepLiftTape):
// grad_out * (f(x) - f(x0)) / (x - x0), or the ordinary gradient where |x - x0| < 1e-10. On the CPU
// one pass over rows of the planar layout where x and x0 share it (both passes ran the same ops
// on inputs of one layout), else the tensor operations.
torch::Tensor DeepLiftRescaleOfInputs(const torch::Tensor& x_any, const torch::Tensor& x0_any, const torch::Tensor& g_any,
                                      double lo, double hi) {
  if (CpuKernelServes(x_any) && g_any.is_cpu() && x_any.dim() >= 1 && x_any.sizes() == g_any.sizes() &&
      x_any.sizes() == x0_any.sizes() && x_any.strides() == x0_any.strides()) {
    const torch::Tensor x = AsPlanar(x_any), x0 = AsPlanar(x0_any), g = AsPlanar(g_any.to(x_any.scalar_type()));
    if (x.strides() == x0.strides()) {
      torch::Tensor grad = torch::empty_like(x, x.options(), x.suggest_memory_format());
      const Planar px = PlanarOf(x), pg = PlanarOf(g), po = PlanarOf(grad);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "deeplift_rescale_inputs", [&] {
        const scalar_t* xs = x.data_ptr<scalar_t>();
        const scalar_t* rs = x0.data_ptr<scalar_t>();
        const scalar_t* gs = g.data_ptr<scalar_t>();
        scalar_t* out = grad.data_ptr<scalar_t>();
        const Rescale<scalar_t> rule(lo, hi, kDeepLiftEps);
        ForEachRow(x, x.size(0), [&](int64_t n, int64_t c, int64_t p, int64_t count, bool along_channels) {
          const int64_t sx = along_channels ? px.c_stride : px.p_stride, sg = along_channels ? pg.c_stride : pg.p_stride,
                        so = along_channels ? po.c_stride : po.p_stride;
          const scalar_t* xa = xs + px.At(n, c, p);
          const scalar_t* xr = rs + px.At(n, c, p);
          const scalar_t* ga = gs + pg.At(n, c, p);
          scalar_t* oa = out + po.At(n, c, p);
          if (sx == 1 && sg == 1 && so == 1) {
            RescaleInputRow(xa, xr, ga, oa, count, rule);
          } else {
            for (int64_t i = 0; i < count; ++i) oa[i * so] = ga[i * sg] * rule.Multiplier(xa[i * sx], xr[i * sx]);
          }
        });
      });
      return grad.view(x_any.sizes());
    }
  }
  const torch::Tensor dx = x_any - x0_any;
  const torch::Tensor m = (RectifierForward(x_any, lo, hi) - RectifierForward(x0_any, lo, hi)) / dx;
  torch::Tensor local = x_any > lo;
  if (!std::isinf(hi)) local = local.logical_and(x_any < hi);
  return g_any * torch::where(dx.abs() < kDeepLiftEps, local.to(g_any.scalar_type()), m);
}

class RectifierFunction : public torch::autograd::Function<RectifierFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double lo, double hi, int64_t rule) {
    std::vector<torch::Tensor> saved{x};  // and, replaying a tape, the reference's x0
    if (DeepLiftTape* tape = TapeOf(rule))
      for (auto& t : tape->Step({x})) saved.push_back(std::move(t));
    ctx->save_for_backward(saved);
    ctx->saved_data["lo"] = lo;
    ctx->saved_data["hi"] = hi;
    ctx->saved_data["rule"] = rule;
    return RectifierForward(x, lo, hi);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const double lo = ctx->saved_data["lo"].toDouble();
    const double hi = ctx->saved_data["hi"].toDouble();
    const auto rule = static_cast<BackwardRule>(ctx->saved_data["rule"].toInt());
    const torch::Tensor& g = grad_outputs[0];
    torch::Tensor grad_in;
    if (IsDeepLift(rule) && saved.size() == 2) {
      grad_in = DeepLiftRescaleOfInputs(x, saved[1], g, lo, hi);
    } else if (IsDeepLift(rule)) {
      grad_in = DeepLiftRescale(x, g, lo, hi);
    } else if (rule == BackwardRule::kDeconvnet) {
      grad_in = g.clamp_min(0);
    } else if (rule == BackwardRule::kLrp) {
      grad_in = g;
    } else {
      // threshold_backward(g, x, lo) is g where x > lo, else 0: ReLU's own fused backward kernel.
      grad_in = at::threshold_backward(rule == BackwardRule::kGuided ? g.clamp_min(0) : g, x, lo);
      if (!std::isinf(hi)) grad_in = grad_in * (x < hi).to(g.scalar_type());
    }
    return {grad_in, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// y = f(x) for a smooth or leaky activation f, computed by the model's own op; the rule decides
// where the incoming gradient goes. Under the deeplift rules it is DeepLIFT's rescale rule, for f
// as for a rectifier: grad_out * (y - y0) / (x - x0) to x, for both halves of a pair (x0 and y0
// the reference's: the other half of the batch, or the tape's record of the reference's own pass),
// and where |x - x0| < 1e-10 the ordinary gradient, which f's own backward gives through y.
class ActivationRuleFunction : public torch::autograd::Function<ActivationRuleFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& y, int64_t rule) {
    ctx->saved_data["rule"] = rule;
    if (IsDeepLift(static_cast<BackwardRule>(rule))) {
      std::vector<torch::Tensor> saved{x, y};  // and, replaying a tape, the reference's x0 and y0
      if (DeepLiftTape* tape = TapeOf(rule))
        for (auto& t : tape->Step({x, y})) saved.push_back(std::move(t));
      ctx->save_for_backward(saved);
    }
    return y.clone();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto rule = static_cast<BackwardRule>(ctx->saved_data["rule"].toInt());
    const torch::Tensor& g = grad_outputs[0];
    if (rule == BackwardRule::kDeconvnet) return {g.clamp_min(0), torch::Tensor(), torch::Tensor()};
    if (rule == BackwardRule::kLrp) return {g, torch::Tensor(), torch::Tensor()};
    if (IsDeepLift(rule)) {
      const auto saved = ctx->get_saved_variables();
      if (saved.size() == 4) {  // the inputs alone, their references from the tape
        const torch::Tensor dx = saved[0] - saved[2];
        const torch::Tensor near = dx.abs() < kDeepLiftEps;
        const torch::Tensor m = torch::where(near, torch::zeros_like(dx), (saved[1] - saved[3]) / dx);
        return {g * m, g * near.to(g.scalar_type()), torch::Tensor()};
      }
      const torch::Tensor xp = Pairs(saved[0]), yp = Pairs(saved[1]), gp = Pairs(g);
      const torch::Tensor dx = xp[0] - xp[1];
      const torch::Tensor near = (dx.abs() < kDeepLiftEps).unsqueeze(0);
      const torch::Tensor m = torch::where(near, torch::zeros_like(dx).unsqueeze(0), ((yp[0] - yp[1]) / dx).unsqueeze(0));
      return {(gp * m).view(g.sizes()), (gp * near.to(g.scalar_type())).view(g.sizes()), torch::Tensor()};
    }
    // On to f's own backward: f'(x) * relu(g) under the guided rule, f'(x) * g otherwise.
    return {torch::Tensor(), rule == BackwardRule::kGuided ? g.clamp_min(0) : g, torch::Tensor()};
  }
};

torch::Tensor ActivationRuleAutograd(const torch::Tensor& x, const torch::Tensor& y, int64_t rule) {
  return ActivationRuleFunction::apply(x, y, rule);
}

torch::Tensor ActivationRuleNoGrad(const torch::Tensor& x, const torch::Tensor& y, int64_t rule) {
  if (DeepLiftTape* tape = TapeOf(rule)) tape->Step({x, y});  // keeps the tape's order
  return y.clone();
}

std::vector<int64_t> StrideOr(const std::vector<int64_t>& stride, const std::vector<int64_t>& kernel) {
  return stride.empty() ? kernel : stride;
}

// The rows of a max-pooling, for walking its planes in bands: output row r reads input rows
// [r * stride - padding, r * stride - padding + reach], reach = (kernel - 1) * dilation. A tensor
// whose spatial dimensions AsPlanar merged into the channels walks as one band.
struct PoolRows {
  int64_t in_rows = 1, in_width = 1, out_rows = 1, out_width = 1, stride = 1, padding = 0, reach = 0;
  PoolRows(const torch::Tensor& x, const torch::Tensor& out, c10::IntArrayRef kernel, c10::IntArrayRef stride_hw,
           c10::IntArrayRef padding_hw, c10::IntArrayRef dilation) {
    in_width = x.size(2) * x.size(3);
    out_width = out.size(2) * out.size(3);
    if (kernel.empty() || x.size(2) == 1 || out.size(2) == 1) return;  // one band (merged or a single row)
    in_rows = x.size(2), in_width = x.size(3), out_rows = out.size(2), out_width = out.size(3);
    stride = stride_hw.empty() ? kernel[0] : stride_hw[0];
    padding = padding_hw.empty() ? 0 : padding_hw[0];
    reach = (kernel[0] - 1) * (dilation.empty() ? 1 : dilation[0]);
  }
};

// How the summing max-pooling rule's CPU kernels below walk their planar N x C x H x W tensors: in
// parallel over channels (a thread owns whole channels, so an arg-max shared by overlapping windows
// is written by one thread, in the order of the output positions, as max-pooling's own backward
// adds them up), each sample band by band down the output rows, so that what a band reads and
// writes is still in cache when it is finished: clear(n, c0, c1, p0, p1) zeroes the result's
// channels [c0, c1) at input positions [p0, p1) before a window first reaches them,
// route(n, o, c0, c1) adds output position o's shares to their arg-maxes, and
// finish(n, c0, c1, p0, p1) divides by x - x0 the input rows no later window reaches. A contiguous
// layout goes one (sample, channel) plane at a time, channels-last with the thread's channels at
// once.
template <typename Clear, typename Route, typename Finish>
void WalkPooledPlanes(bool channels_last, int64_t samples, int64_t channels, const PoolRows& rows, const Clear& clear,
                      const Route& route, const Finish& finish) {
  at::parallel_for(0, channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = 0; n < samples; ++n) {
      for (int64_t c0 = begin; c0 < end; c0 = channels_last ? end : c0 + 1) {
        const int64_t c1 = channels_last ? end : c0 + 1;
        int64_t cleared = 0, finished = 0;  // input rows
        for (int64_t r = 0; r < rows.out_rows; ++r) {
          const bool last = r + 1 == rows.out_rows;
          const int64_t reached = last ? rows.in_rows
                                       : std::min(rows.in_rows, r * rows.stride - rows.padding + rows.reach + 1);
          if (reached > cleared) clear(n, c0, c1, cleared * rows.in_width, reached * rows.in_width);
          cleared = std::max(cleared, reached);
          for (int64_t o = r * rows.out_width; o < (r + 1) * rows.out_width; ++o) route(n, o, c0, c1);
          const int64_t done =
              last ? rows.in_rows : std::clamp<int64_t>((r + 1) * rows.stride - rows.padding, 0, rows.in_rows);
          if (done > finished) finish(n, c0, c1, finished * rows.in_width, done * rows.in_width);
          finished = std::max(finished, done);
        }
      }
    }
  });
}

// Runs row(offset_t, offset_u, count, stride_t, stride_u) for each row of channels [c0, c1) at
// positions [p0, p1) of sample n of planar tensors `t` and `u` (the offsets of the row's first
// element in each): rows along the channels for channels-last, along the positions otherwise.
template <typename Row>
void ForEachRowOf(const Planar& t, const Planar& u, bool channels_last, int64_t n, int64_t c0, int64_t c1, int64_t p0,
                  int64_t p1, const Row& row) {
  if (channels_last) {
    for (int64_t p = p0; p < p1; ++p) row(t.At(n, c0, p), u.At(n, c0, p), c1 - c0, t.c_stride, u.c_stride);
  } else {
    for (int64_t c = c0; c < c1; ++c) row(t.At(n, c, p0), u.At(n, c, p0), p1 - p0, t.p_stride, u.p_stride);
  }
}

template <typename scalar_t>
void ClearRow(scalar_t* row, int64_t count, int64_t step) {
  if (step == 1) {
    std::fill_n(row, count, scalar_t(0));
  } else {
    for (int64_t i = 0; i < count; ++i) row[i * step] = 0;
  }
}

// The CPU's summing max-pooling rule of DeepLIFT pairs: the same arithmetic in the same order as
// the tensor expression in DeepLiftMaxPoolFunction::backward (scatter_add and max-pooling's own
// backward both add up in the order of the output positions), without its intermediate tensors
// and layout copies. x, out, indices, g: planar N x C x H x W (AsPlanar), N = 2 x pairs. Each
// output position's gradient goes to its arg-max: where input and reference agree (|x - x0| < eps)
// the ordinary gradient, into the half it belongs to; elsewhere what the window routes, the
// input's share into the input half and the reference's into the reference half; then where
// they differ both halves get the sum over x - x0 (MaxPoolSharePairRow).
torch::Tensor DeepLiftMaxPoolBackwardCpu(const torch::Tensor& x, const torch::Tensor& out, const torch::Tensor& indices,
                                         const torch::Tensor& g, const PoolRows& rows) {
  const int64_t pairs = x.size(0) / 2, channels = x.size(1);
  torch::Tensor grad = torch::empty_like(x, x.options(), x.suggest_memory_format());
  const Planar px = PlanarOf(x), py = PlanarOf(out), pi = PlanarOf(indices), pg = PlanarOf(g), po = PlanarOf(grad);
  const bool channels_last = channels > 1 && px.c_stride == 1;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "deeplift_max_pool2d_backward", [&] {
    const scalar_t* xs = x.data_ptr<scalar_t>();
    const scalar_t* ys = out.data_ptr<scalar_t>();
    const scalar_t* gs = g.data_ptr<scalar_t>();
    const int64_t* is = indices.data_ptr<int64_t>();
    scalar_t* gr = grad.data_ptr<scalar_t>();
    const scalar_t eps = static_cast<scalar_t>(kDeepLiftEps);
    const int64_t x_half = pairs * px.n_stride, o_half = pairs * po.n_stride;
    auto clear = [&](int64_t n, int64_t c0, int64_t c1, int64_t p0, int64_t p1) {
      for (const int64_t m : {n, n + pairs})
        ForEachRowOf(po, po, channels_last, m, c0, c1, p0, p1, [&](int64_t at, int64_t, int64_t count, int64_t step, int64_t) {
          ClearRow(gr + at, count, step);
        });
    };
    const int64_t y_half = pairs * py.n_stride, i_half = pairs * pi.n_stride, g_half = pairs * pg.n_stride;
    auto route = [&](int64_t n, int64_t o, int64_t c0, int64_t c1) {
      // Channel c0's elements at output position o, and its planes (input, result) of sample n.
      const scalar_t* y = ys + py.At(n, c0, o);
      const int64_t* a = is + pi.At(n, c0, o);
      const scalar_t* ga = gs + pg.At(n, c0, o);
      const scalar_t* xc = xs + px.At(n, c0, 0);
      scalar_t* oc = gr + po.At(n, c0, 0);
      for (int64_t k = 0; k < c1 - c0; ++k) {
        const scalar_t yk = y[k * py.c_stride], y0k = y[k * py.c_stride + y_half], top = std::max(yk, y0k);
        const int64_t ak = a[k * pi.c_stride], bk = a[k * pi.c_stride + i_half];
        const scalar_t gak = ga[k * pg.c_stride], gbk = ga[k * pg.c_stride + g_half];
        // The input at its arg-max is its maximum yk, the reference at its own y0k: one read each.
        const scalar_t x0a = xc[k * px.c_stride + ak * px.p_stride + x_half], xb = xc[k * px.c_stride + bk * px.p_stride];
        oc[k * po.c_stride + ak * po.p_stride] += std::abs(yk - x0a) < eps ? gak : gak * (top - y0k);
        oc[k * po.c_stride + bk * po.p_stride + o_half] += std::abs(xb - y0k) < eps ? gbk : gbk * (yk - top);
      }
    };
    auto finish = [&](int64_t n, int64_t c0, int64_t c1, int64_t p0, int64_t p1) {
      ForEachRowOf(px, po, channels_last, n, c0, c1, p0, p1,
                   [&](int64_t at_x, int64_t at_o, int64_t count, int64_t step_x, int64_t step_o) {
        const scalar_t* xa = xs + at_x;
        const scalar_t* xr = xa + x_half;
        scalar_t* in = gr + at_o;
        scalar_t* ref = in + o_half;
        if (step_x == 1 && step_o == 1) return MaxPoolSharePairRow(xa, xr, in, ref, count, eps);
        for (int64_t i = 0; i < count; ++i)
          MaxPoolSharePair(xa[i * step_x] - xr[i * step_x], eps, in[i * step_o], ref[i * step_o]);
      });
    };
    WalkPooledPlanes(channels_last, pairs, channels, rows, clear, route, finish);
  });
  return grad;
}

// The summing max-pooling rule of the inputs alone, their references from a pass of their own
// (DeepLiftTape): what the pair kernel above gives the input half when both halves' gradients are
// g. Per window the input's share g (max(y, y0) - y0) goes to the input's arg-max (or, where input
// and reference agree there, the ordinary gradient g), the reference's share g (y - max(y, y0)) to
// the reference's arg-max unless they agree there; then the sum over x - x0 where they do not.
// All tensors planar, x and x0 (and out and out0, indices and indices0) with the same strides.
torch::Tensor DeepLiftMaxPoolOfInputsCpu(const torch::Tensor& x, const torch::Tensor& x0, const torch::Tensor& out,
                                         const torch::Tensor& out0, const torch::Tensor& indices,
                                         const torch::Tensor& indices0, const torch::Tensor& g, const PoolRows& rows) {
  const int64_t samples = x.size(0), channels = x.size(1);
  torch::Tensor grad = torch::empty_like(x, x.options(), x.suggest_memory_format());
  const Planar px = PlanarOf(x), py = PlanarOf(out), pi = PlanarOf(indices), pg = PlanarOf(g), po = PlanarOf(grad);
  const bool channels_last = channels > 1 && px.c_stride == 1;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "deeplift_max_pool2d_inputs_backward", [&] {
    const scalar_t* xs = x.data_ptr<scalar_t>();
    const scalar_t* rs = x0.data_ptr<scalar_t>();
    const scalar_t* ys = out.data_ptr<scalar_t>();
    const scalar_t* y0s = out0.data_ptr<scalar_t>();
    const scalar_t* gs = g.data_ptr<scalar_t>();
    const int64_t* is = indices.data_ptr<int64_t>();
    const int64_t* i0s = indices0.data_ptr<int64_t>();
    scalar_t* gr = grad.data_ptr<scalar_t>();
    const scalar_t eps = static_cast<scalar_t>(kDeepLiftEps);
    auto clear = [&](int64_t n, int64_t c0, int64_t c1, int64_t p0, int64_t p1) {
      ForEachRowOf(po, po, channels_last, n, c0, c1, p0, p1, [&](int64_t at, int64_t, int64_t count, int64_t step, int64_t) {
        ClearRow(gr + at, count, step);
      });
    };
    auto route = [&](int64_t n, int64_t o, int64_t c0, int64_t c1) {
      // Channel c0's elements at output position o, and its planes (input, result) of sample n.
      const int64_t yo = py.At(n, c0, o), io = pi.At(n, c0, o), xo = px.At(n, c0, 0);
      const scalar_t* gv = gs + pg.At(n, c0, o);
      scalar_t* oc = gr + po.At(n, c0, 0);
      for (int64_t k = 0; k < c1 - c0; ++k) {
        const scalar_t yk = ys[yo + k * py.c_stride], y0k = y0s[yo + k * py.c_stride], top = std::max(yk, y0k);
        const int64_t ak = is[io + k * pi.c_stride], bk = i0s[io + k * pi.c_stride];
        // The input at its arg-max is its maximum yk, the reference at its own y0k: one read each.
        const scalar_t x0a = rs[xo + k * px.c_stride + ak * px.p_stride], xb = xs[xo + k * px.c_stride + bk * px.p_stride];
        const scalar_t gk = gv[k * pg.c_stride];
        oc[k * po.c_stride + ak * po.p_stride] += std::abs(yk - x0a) < eps ? gk : gk * (top - y0k);
        if (!(std::abs(xb - y0k) < eps)) oc[k * po.c_stride + bk * po.p_stride] += gk * (yk - top);
      }
    };
    auto finish = [&](int64_t n, int64_t c0, int64_t c1, int64_t p0, int64_t p1) {
      ForEachRowOf(px, po, channels_last, n, c0, c1, p0, p1,
                   [&](int64_t at_x, int64_t at_o, int64_t count, int64_t step_x, int64_t step_o) {
        const scalar_t* xa = xs + at_x;
        const scalar_t* xr = rs + at_x;
        scalar_t* in = gr + at_o;
        if (step_x == 1 && step_o == 1) return MaxPoolShareInputRow(xa, xr, in, count, eps);
        for (int64_t i = 0; i < count; ++i)
          in[i * step_o] = MaxPoolShareInput(xa[i * step_x] - xr[i * step_x], eps, in[i * step_o]);
      });
    };
    WalkPooledPlanes(channels_last, samples, channels, rows, clear, route, finish);
  });
  return grad;
}

// max_pool2d whose backward is Captum's DeepLift rule for max-pooling (deep_lift.py, maxpool).
class DeepLiftMaxPoolFunction : public torch::autograd::Function<DeepLiftMaxPoolFunction> {
  // The backward of the inputs alone (saved: x, out, indices and the reference's x0, out0,
  // indices0): the CPU kernel above for the summing rule where the layouts match, else tensor
  // operations, un-pooling as Captum does under `overwrite`.
  static torch::Tensor MaxPoolOfInputsBackward(const std::vector<torch::Tensor>& saved, const torch::Tensor& g_any,
                                               c10::IntArrayRef kernel, c10::IntArrayRef stride,
                                               c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode,
                                               bool overwrite) {
    const torch::Tensor &x = saved[0], &out = saved[1], &indices = saved[2], &x0 = saved[3], &out0 = saved[4],
                        &indices0 = saved[5];
    const torch::Tensor g = g_any.to(x.scalar_type());
    if (!overwrite && CpuKernelServes(x) && x.dim() == 4 && x.strides() == x0.strides() &&
        out.strides() == out0.strides() && indices.strides() == indices0.strides()) {
      const torch::Tensor px = AsPlanar(x), px0 = AsPlanar(x0), py = AsPlanar(out), py0 = AsPlanar(out0);
      const torch::Tensor pi = AsPlanar(indices), pi0 = AsPlanar(indices0);
      if (px.strides() == px0.strides() && py.strides() == py0.strides() && pi.strides() == pi0.strides())
        return DeepLiftMaxPoolOfInputsCpu(px, px0, py, py0, pi, pi0, AsPlanar(g),
                                          PoolRows(px, py, kernel, stride, padding, dilation));
    }
    const torch::Tensor top = at::max(out, out0);
    const torch::Tensor share = g * (top - out0), share0 = g * (out - top);
    torch::Tensor routed;
    if (overwrite) {
      const std::vector<int64_t> size{x.size(-2), x.size(-1)};
      routed = at::max_unpool2d(share.contiguous(), indices.contiguous(), size) +
               at::max_unpool2d(share0.contiguous(), indices0.contiguous(), size);
    } else {
      routed = torch::zeros_like(x, torch::MemoryFormat::Contiguous)
                   .flatten(2)
                   .scatter_add_(2, indices.contiguous().flatten(2), share.contiguous().flatten(2))
                   .scatter_add_(2, indices0.contiguous().flatten(2), share0.contiguous().flatten(2))
                   .view(x.sizes());
    }
    const torch::Tensor dx = x - x0;
    const torch::Tensor ordinary =
        at::max_pool2d_with_indices_backward(g, x, kernel, stride, padding, dilation, ceil_mode, indices);
    return torch::where(dx.abs() < kDeepLiftEps, ordinary, routed / dx);
  }

 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               std::vector<int64_t> kernel, std::vector<int64_t> stride,
                               std::vector<int64_t> padding, std::vector<int64_t> dilation, bool ceil_mode,
                               bool overwrite) {
    // The arg-max positions and the maxima come from the forward pass, for the backward rule.
    const auto [out, indices] =
        at::max_pool2d_with_indices(x, kernel, StrideOr(stride, kernel), padding, dilation, ceil_mode);
    std::vector<torch::Tensor> saved{x, out, indices};  // and, replaying a tape, x0, out0, indices0
    if (current_tape)
      for (auto& t : current_tape->Step(saved)) saved.push_back(std::move(t));
    ctx->save_for_backward(saved);
    ctx->saved_data["overwrite"] = overwrite;
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["stride"] = StrideOr(stride, kernel);
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["ceil_mode"] = ceil_mode;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    torch::NoGradGuard no_grad;
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor x_saved = saved[0], out = saved[1], indices = saved[2];
    const auto kernel = ctx->saved_data["kernel"].toIntVector();
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto dilation = ctx->saved_data["dilation"].toIntVector();
    const bool ceil_mode = ctx->saved_data["ceil_mode"].toBool();
    const bool overwrite = ctx->saved_data["overwrite"].toBool();
    if (saved.size() == 6) {
      const torch::Tensor grad_in = MaxPoolOfInputsBackward(saved, grad_outputs[0], kernel, stride, padding, dilation,
                                                            ceil_mode, overwrite);
      return {grad_in, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
    if (!overwrite && CpuKernelServes(x_saved) && x_saved.dim() == 4 &&
        x_saved.size(0) % 2 == 0) {
      const torch::Tensor px = AsPlanar(x_saved), py = AsPlanar(out);
      const torch::Tensor grad_in =
          DeepLiftMaxPoolBackwardCpu(px, py, AsPlanar(indices), AsPlanar(grad_outputs[0].to(x_saved.scalar_type())),
                                     PoolRows(px, py, kernel, stride, padding, dilation));
      return {grad_in, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
    // Elsewhere (CUDA, --max-pool unpool), tensor operations, in one layout for the index
    // arithmetic (a channels-last input would be copied by each flatten, and mixed layouts take
    // the slow elementwise paths).
    const torch::Tensor x = x_saved.contiguous(), g = grad_outputs[0].contiguous();
    const auto o = out.chunk(2);
    const torch::Tensor xmax = at::max(o[0], o[1]);
    // Input half: max(y, y0) - y0 through the input's arg-max; reference half: y - max(y, y0)
    // through the reference's; their sum, over x - x0, serves both halves.
    const torch::Tensor delta_out = torch::cat({xmax - o[1], o[0] - xmax});
    const torch::Tensor routed_out = g * delta_out;
    torch::Tensor unpooled_all;
    if (ctx->saved_data["overwrite"].toBool()) {
      unpooled_all = at::max_unpool2d(routed_out, indices, {x.size(-2), x.size(-1)});  // Captum's
    } else {
      // What overlapping windows send to a shared arg-max adds up (as the ordinary gradient does).
      unpooled_all = torch::zeros_like(x).flatten(2).scatter_add_(2, indices.flatten(2), routed_out.flatten(2)).view_as(x);
    }
    const auto unpooled = unpooled_all.chunk(2);
    const torch::Tensor routed = unpooled[0] + unpooled[1];
    const torch::Tensor xp = Pairs(x);
    const torch::Tensor dx = xp[0] - xp[1];
    const torch::Tensor ordinary =
        at::max_pool2d_with_indices_backward(g, x, kernel, stride, padding, dilation, ceil_mode, indices);
    const torch::Tensor grad_in =
        torch::where((dx.abs() < kDeepLiftEps).unsqueeze(0), Pairs(ordinary), (routed / dx).unsqueeze(0)).view(x.sizes());
    return {grad_in, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor DeepLiftMaxPoolAutograd(const torch::Tensor& x, c10::IntArrayRef kernel, c10::IntArrayRef stride,
                                      c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode,
                                      bool overwrite) {
  return DeepLiftMaxPoolFunction::apply(x, kernel.vec(), stride.vec(), padding.vec(), dilation.vec(), ceil_mode,
                                        overwrite);
}

torch::Tensor DeepLiftMaxPoolNoGrad(const torch::Tensor& x, c10::IntArrayRef kernel, c10::IntArrayRef stride,
                                    c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode,
                                    bool /*overwrite*/) {
  if (current_tape) {  // keeps the tape's order; what a replay gives here has no backward to read it
    const auto [out, indices] =
        at::max_pool2d_with_indices(x, kernel, StrideOr(stride.vec(), kernel.vec()), padding, dilation, ceil_mode);
    current_tape->Step({x, out, indices});
    return out;
  }
  return at::max_pool2d(x, kernel, StrideOr(stride.vec(), kernel.vec()), padding, dilation, ceil_mode);
}

torch::Tensor RectifierAutograd(const torch::Tensor& x, double lo, double hi, int64_t rule) {
  return RectifierFunction::apply(x, lo, hi, rule);
}

torch::Tensor RectifierNoGrad(const torch::Tensor& x, double lo, double hi, int64_t rule) {
  if (DeepLiftTape* tape = TapeOf(rule)) tape->Step({x});  // keeps the tape's order
  return RectifierForward(x, lo, hi);
}

}  // namespace

TORCH_LIBRARY(netlens, m) {
  m.def("rectifier(Tensor x, float lo, float hi, int rule) -> Tensor");
  m.def("activation_rule(Tensor x, Tensor y, int rule) -> Tensor");
  m.def("deeplift_max_pool2d(Tensor x, int[] kernel_size, int[] stride, int[] padding, int[] dilation, "
        "bool ceil_mode, bool overwrite) -> Tensor");
}

TORCH_LIBRARY_IMPL(netlens, Autograd, m) {
  m.impl("rectifier", &RectifierAutograd);
  m.impl("activation_rule", &ActivationRuleAutograd);
  m.impl("deeplift_max_pool2d", &DeepLiftMaxPoolAutograd);
}

TORCH_LIBRARY_IMPL(netlens, CompositeExplicitAutograd, m) {
  m.impl("rectifier", &RectifierNoGrad);
  m.impl("activation_rule", &ActivationRuleNoGrad);
  m.impl("deeplift_max_pool2d", &DeepLiftMaxPoolNoGrad);
}

void DeepLiftTape::Record(std::vector<torch::Tensor> tensors) {
  Entry entry;
  for (const auto& t : tensors) entry.versions.push_back(t._version());
  entry.tensors = std::move(tensors);
  entries_.push_back(std::move(entry));
}

std::vector<torch::Tensor> DeepLiftTape::Step(std::vector<torch::Tensor> own) {
  if (replaying_) return Replay(own[0], own.size());
  Record(std::move(own));
  return {};
}

std::vector<torch::Tensor> DeepLiftTape::Replay(const torch::Tensor& input, size_t count) {
  const char* remedy = "; DeepLIFT needs a model whose forward pass runs the same operations for every input";
  TORCH_CHECK(next_ < entries_.size(), "deeplift: the input's forward pass ran more rule operations than the "
              "reference's (", entries_.size(), ")", remedy);
  const Entry& entry = entries_[next_++];
  TORCH_CHECK(entry.tensors.size() == count && entry.tensors[0].sizes() == input.sizes(),
              "deeplift: operation ", next_, " of the input's forward pass differs from the reference's (input ",
              input.sizes(), ", reference ", entry.tensors[0].sizes(), ")", remedy);
  for (size_t i = 0; i < count; ++i)
    TORCH_CHECK(entry.tensors[i]._version() == entry.versions[i], "deeplift: the reference's activation at operation ",
                next_, " was changed in place after the rule read it");
  return entry.tensors;
}

DeepLiftTapeScope::DeepLiftTapeScope(DeepLiftTape& tape, bool replay) : previous_(current_tape) {
  tape.replaying_ = replay;
  if (replay) tape.next_ = 0;
  current_tape = &tape;
}

DeepLiftTapeScope::~DeepLiftTapeScope() { current_tape = previous_; }

void EnsureRectifierOpRegistered() {}

}  // namespace netlens
