#include "netlens/optvis/optimize.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <torch/optim/adam.h>

#include "netlens/core/errors.h"
#include "netlens/core/json_text.h"
#include "netlens/core/log.h"
#include "netlens/optvis/lbfgs.h"
#include "netlens/optvis/picture.h"

namespace netlens::optvis {

namespace {

class StepProgress {
 public:
  StepProgress(const std::string& mode, int64_t steps, std::string what)
      : steps_(steps), what_(std::move(what)) {
    bar_ = mode == "bar" || (mode == "auto" && isatty(STDERR_FILENO));
    json_ = mode == "json";
    every_ = std::max<int64_t>(1, steps / 32);
  }
  void Step(int64_t step, double value, double seconds) {
    const double rate = seconds > 0 ? step / seconds : 0;
    if (bar_ && (step % std::max<int64_t>(1, steps_ / 200) == 0 || step == steps_)) {
      const int width = 30, done = static_cast<int>(width * step / std::max<int64_t>(1, steps_));
      std::fprintf(stderr, "\r%s [%s%s] %lld/%lld  %.1f steps/s  objective %.4g ", what_.c_str(),
                   std::string(static_cast<size_t>(done), '#').c_str(),
                   std::string(static_cast<size_t>(width - done), '.').c_str(),
                   static_cast<long long>(step), static_cast<long long>(steps_), rate, value);
      if (step == steps_) std::fprintf(stderr, "\n");
      std::fflush(stderr);
    }
    if (json_ && (step % every_ == 0 || step == steps_)) {
      const Json line{{"event", "step"}, {"what", what_}, {"step", step}, {"steps", steps_},
                      {"objective", std::isfinite(value) ? value : 0.0}, {"steps_per_s", rate}};
      std::printf("%s\n", SafeDump(line).c_str());
      std::fflush(stdout);
    }
  }
  void Abort() {
    if (bar_) std::fprintf(stderr, "\n");
  }

 private:
  int64_t steps_, every_;
  std::string what_;
  bool bar_ = false, json_ = false;
};

}  // namespace

OptimizeResult Optimize(ImageParam& param, const ValueFn& value, const OptimizeOptions& options) {
  OptimizeResult result;
  std::vector<torch::Tensor> params = param.tensors();
  // Adam, or L-BFGS with one evaluation per step (its history of 100 carries across steps;
  // optvis/lbfgs.h: LibTorch's iterates, its two loops fused). Both run `evaluate` as their
  // closure, which sets the gradients and does the bookkeeping.
  std::unique_ptr<torch::optim::Adam> adam;
  std::unique_ptr<Lbfgs> lbfgs;
  if (options.optimizer == "lbfgs") {
    lbfgs = std::make_unique<Lbfgs>(params, options.lr, options.history);
  } else if (options.optimizer == "adam") {
    adam = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(options.lr));
  } else {
    throw InternalError("Optimize: unknown optimizer " + options.optimizer);
  }
  StepProgress progress(options.progress, options.steps, options.what);
  const int64_t frame_every =
      options.frames > 0 ? std::max<int64_t>(1, options.steps / options.frames) : 0;
  using Clock = std::chrono::steady_clock;
  const auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  const auto start = Clock::now();
  torch::Tensor last_good;
  {
    torch::NoGradGuard no_grad;
    last_good = param.Render().detach().to(torch::kCPU);
  }
  if (frame_every > 0) result.frames.push_back(AnimationFrame(last_good));
  constexpr int64_t kZeroSteps = 8;
  const int64_t log_every = std::max<int64_t>(1, options.steps / 8);
  int64_t zero_steps = 0;
  for (int64_t step = 1; step <= options.steps; ++step) {
    bool stop = false;
    double v = 0, evaluation_seconds = 0;
    const auto step_start = Clock::now();
    auto evaluate = [&]() -> torch::Tensor {
      const auto evaluation_start = Clock::now();
      for (auto& p : params) p.mutable_grad() = torch::zeros_like(p);  // a stop leaves no update
      const torch::Tensor picture = param.Render();
      const torch::Tensor total = value(picture).sum();
      v = total.item<double>();
      result.objective_seconds += since(evaluation_start);
      const auto gradient_start = Clock::now();
      if (!std::isfinite(v)) {
        result.stopped = "the objective became " + std::string(std::isnan(v) ? "NaN" : "infinite") +
                         " at step " + std::to_string(step) + "; kept the picture of step " +
                         std::to_string(step - 1);
        stop = true;
        return torch::zeros({}, picture.options());
      }
      last_good = picture.detach().to(torch::kCPU);
      if (!total.requires_grad()) {
        result.constant = true;
        result.stopped = "the objective does not depend on the picture";
        stop = true;
        return -total.detach();
      }
      // Ascent: the gradient of -total, seeded with -1 rather than negating the graph's output.
      const auto grads = torch::autograd::grad({total}, params, {-torch::ones_like(total)},
                                               /*retain_graph=*/false, /*create_graph=*/false,
                                               /*allow_unused=*/true);
      bool all_zero = true, finite = true;
      for (size_t i = 0; i < params.size(); ++i) {
        if (!grads[i].defined()) continue;
        const double m = grads[i].abs().max().item<double>();
        all_zero = all_zero && m == 0;
        finite = finite && std::isfinite(m);
        if (std::isfinite(m)) params[i].mutable_grad() = grads[i];
      }
      result.gradient_seconds += since(gradient_start);
      evaluation_seconds = since(evaluation_start);
      result.curve.push_back(v);
      result.steps_done = step;
      // Zero gradients at the first steps, whatever the transforms drew: the unit is dead (or
      // constant) on this start; the optimizer would never move.
      zero_steps += all_zero ? 1 : 0;
      if (zero_steps == step && step == kZeroSteps) {
        result.constant = true;
        result.stopped = "the objective's gradient was zero for the first " + std::to_string(kZeroSteps) + " steps";
        stop = true;
      } else if (!finite) {
        result.stopped = "the gradient became NaN or infinite at step " + std::to_string(step) +
                         "; kept the picture of step " + std::to_string(step - 1);
        stop = true;
      }
      return -total.detach();
    };
    if (lbfgs) lbfgs->Step(evaluate);
    else adam->step(evaluate);
    if (stop) break;
    result.optimizer_seconds += since(step_start) - evaluation_seconds;
    const double seconds = since(start);
    progress.Step(step, v, seconds);
    if (step % log_every == 0 && step != options.steps)  // the curve in the log, 8 points
      Log().info("{}: step {}/{}, objective {:.4g}, {:.1f} steps/s", options.what, step,
                 options.steps, v, step / std::max(seconds, 1e-9));
    const bool snapshot = std::find(options.thresholds.begin(), options.thresholds.end(), step) !=
                          options.thresholds.end();
    const bool frame = frame_every > 0 && step % frame_every == 0;
    if (snapshot || frame || step == options.steps) {
      torch::NoGradGuard no_grad;
      const torch::Tensor now = param.Render().detach().to(torch::kCPU);
      if (snapshot) {
        result.snapshot_steps.push_back(step);
        result.snapshots.push_back(now);
        Log().info("{}: snapshot at step {}/{}, objective {:.4g}", options.what, step, options.steps, v);
      }
      if (frame) result.frames.push_back(AnimationFrame(now));
      if (torch::isfinite(now).all().item<bool>()) last_good = now;
    }
  }
  if (!result.stopped.empty()) progress.Abort();
  result.picture = last_good;
  result.seconds = since(start);
  return result;
}

}  // namespace netlens::optvis
