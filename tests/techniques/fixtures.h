// Models small enough to compute by hand, and running a registered technique as the CLI does.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "netlens/runner/common_options.h"
#include "netlens/techniques/registry.h"
#include "tests/test_util.h"

namespace netlens::test {

struct Outcome {
  std::vector<Artifact> artifacts;
  Json metrics;
};

// Validates `options` against the technique's table and runs it on the prepared input `x`.
inline Outcome RunTechnique(const std::string& name, Model& model, const torch::Tensor& x,
                            int64_t target, Json options = Json::object()) {
  const TechniqueInfo& t = FindTechnique(name);
  Diagnostics diag;
  const Json values = ValidateObject(options, {&t.options}, "", nullptr, diag);
  diag.ThrowIfAny();
  Params params({&CommonOptions(), &t.options}, values);
  InputImage input;
  input.tensor = x;
  TechniqueContext ctx{model, input, target, params};
  auto artifacts = t.run(ctx);
  return {artifacts, ctx.metrics};
}

// The shared SqueezeNet 1.0 on the CPU in `dtype`, or null when ../shared/models is absent.
inline std::shared_ptr<Model> SharedSqueezeNet(const std::string& dtype = "float64") {
  const std::string file = SharedModels() + "/squeezenet1_0.pt";
  if (!std::filesystem::exists(file)) return nullptr;
  return LoadCpuModel(file, dtype);
}

// logits = linear(flatten(x), W, b) = flatten(x) W^T + b (float64): its input gradient for class t
// is exactly W[t].
struct LinearModel {
  torch::Tensor W, b;
  std::shared_ptr<Model> model;
  explicit LinearModel(int64_t c = 1, int64_t h = 6, int64_t w = 6, int64_t classes = 3) {
    W = torch::randn({classes, c * h * w}, torch::kFloat64);
    b = torch::randn({classes}, torch::kFloat64);
    torch::jit::Module m("Linear", SharedUnit(), true);
    m.register_parameter("weight", W, false);
    m.register_parameter("bias", b, false);
    m.define("def forward(self, x):\n    return torch.linear(torch.flatten(x, 1), self.weight, self.bias)\n");
    model = SaveAndLoad(m, c, h, w);
  }
};

// conv (K=4, 2->4 channels, 3x3) -> relu -> spatial mean -> fc (3 x 4) on 2 x 6 x 6 inputs.
// With A = conv(x): dA[k,i,j] = V[t,k] [A_k > 0] / 16.
struct CamNet {
  torch::Tensor K = torch::randn({4, 2, 3, 3}, torch::kFloat64);
  torch::Tensor V = torch::randn({3, 4}, torch::kFloat64);
  std::shared_ptr<Model> model;
  CamNet() {
    torch::jit::Module conv("Conv2d", SharedUnit(), true);
    conv.register_parameter("weight", K, false);
    conv.define("def forward(self, x):\n    return torch.conv2d(x, self.weight)\n");
    torch::jit::Module net("Net", SharedUnit(), true);
    net.register_module("conv", conv);
    net.register_parameter("v", V, false);
    net.define("def forward(self, x):\n    a = torch.relu(self.conv.forward(x))\n    return torch.matmul(a.mean([2, 3]), self.v.t())\n");
    model = SaveAndLoad(net, 2, 6, 6);
  }
  torch::Tensor A(const torch::Tensor& x) const { return torch::conv2d(x, K); }
  torch::Tensor dA(const torch::Tensor& x, int64_t t) const {
    return V[t].view({1, 4, 1, 1}) * (A(x) > 0).to(torch::kFloat64) / 16.0;
  }
  torch::Tensor Logits(const torch::Tensor& a) const { return torch::relu(a).mean({2, 3}).matmul(V.t()); }
  // Grad-CAM by hand: w_k = mean_ij dA, cam = sum_k w_k A_k.
  torch::Tensor HandCam(const torch::Tensor& x, int64_t t) const {
    return (dA(x, t).mean({2, 3}, true) * A(x)).sum(1, true);
  }
};

}  // namespace netlens::test
