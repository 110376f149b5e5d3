// Splitting a forward graph at layer outputs, for gradients at those layers only.
//
// Grad-CAM and its relatives need d(score)/d(layer output), never the input gradient. The part of
// the graph that does not depend on the layers (for a late layer: almost all of the network) then
// needs no autograd at all, and may run as a frozen, inference-optimized function (conv + batch
// norm folded, oneDNN weights prepacked); only what follows the layers runs with autograd, from
// the layer outputs as leaves. The gradient at a layer output v is the same either way: every
// value that does not depend on v is a constant for d/dv.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace torch::jit {
struct Graph;
struct Value;
}  // namespace torch::jit

namespace netlens {

// prefix(self, input) -> (cut..., boundary...): every top-level node that does not depend on a
// cut value.
// tail(self, leaf..., boundary...) -> (output, capture...): the nodes that do, one leaf per cut
// value (its readers in the tail read a copy of it, so that in-place ops leave the leaf alone),
// and the prefix values they read as further inputs. capture i is the leaf of requests[i] when
// that layer output is a cut, else the tail's value of it (a layer downstream of another).
struct GraphSplit {
  std::shared_ptr<torch::jit::Graph> prefix;
  std::shared_ptr<torch::jit::Graph> tail;
  size_t cuts = 0;      // number of leaves
  size_t boundary = 0;  // number of further tail inputs
};

// Splits `graph` (the lens' inlined forward) at the top-level values `requests`. Returns nullptr
// graphs and the reason in `why` where the split could change results: the model output does
// not depend on the layers, or an in-place op would see a different order of reads and writes
// (a tail op writing into a prefix value, or a prefix op after the layer writing into a value
// the tail reads).
GraphSplit SplitAtLayers(const std::shared_ptr<torch::jit::Graph>& graph,
                         const std::vector<torch::jit::Value*>& requests, std::string* why);

}  // namespace netlens
