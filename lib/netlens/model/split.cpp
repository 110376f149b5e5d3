#include "netlens/model/split.h"

#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <algorithm>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "netlens/core/errors.h"
#include "netlens/model/graph.h"

namespace netlens {
namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
namespace prim = c10::prim;

// The top-level values a top-level node reads: its inputs and, for control flow, what its
// blocks read from outside them.
void OuterReads(const Graph& graph, Node* n, std::vector<Value*>* out) {
  for (Value* v : n->inputs()) {
    if (v->node()->owningBlock() == graph.block() || v->node() == graph.param_node()) out->push_back(v);
  }
  for (Block* b : n->blocks()) {
    for (Node* inner : b->nodes()) OuterReads(graph, inner, out);
    OuterReads(graph, b->return_node(), out);
  }
}

// Constants and attribute reads from `self` (weights, submodules): both graphs get their own.
bool IsFree(const Graph& graph, Node* n, const std::unordered_set<Node*>& free) {
  if (n->kind() == prim::Constant) return true;
  if (n->kind() != prim::GetAttr) return false;
  Value* owner = n->input(0);
  return owner == graph.inputs().at(0) || free.count(owner->node());
}

// A graph of `nodes` (in order, from `source`), inputs `inputs` standing for the given source
// values, returning `returned` (source values).
std::shared_ptr<Graph> Extract(Graph& source, const std::vector<Node*>& nodes,
                               const std::vector<std::pair<Value*, std::string>>& inputs,
                               std::unordered_map<Value*, Value*> map,
                               const std::function<void(Graph&, std::unordered_map<Value*, Value*>&)>& after_inputs,
                               const std::vector<Value*>& returned) {
  auto graph = std::make_shared<Graph>();
  for (const auto& [v, name] : inputs) {
    Value* in = graph->addInput(name);
    in->setType(v->type());
    map[v] = in;
  }
  if (after_inputs) after_inputs(*graph, map);
  const auto lookup = [&](Value* v) {
    auto it = map.find(v);
    if (it == map.end()) throw InternalError("graph split: value %" + v->debugName() + " has no source");
    return it->second;
  };
  for (Node* n : nodes) {
    Node* copy = graph->insertNode(graph->createClone(n, lookup));
    for (size_t i = 0; i < n->outputs().size(); ++i) map.emplace(n->output(i), copy->output(i));
  }
  std::vector<Value*> out;
  for (Value* v : returned) out.push_back(lookup(v));
  Node* tuple = graph->insertNode(graph->createTuple(out));
  graph->registerOutput(tuple->output());
  torch::jit::EliminateDeadCode(graph);
  return graph;
}

}  // namespace

GraphSplit SplitAtLayers(const std::shared_ptr<Graph>& graph_ptr, const std::vector<Value*>& requests,
                         std::string* why) {
  Graph& graph = *graph_ptr;
  const auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return GraphSplit{};
  };
  const std::unordered_set<Value*> requested(requests.begin(), requests.end());
  torch::jit::AliasDb aliases(graph_ptr);
  // Walk the top level in order. A node is in the tail when it reads a value that depends on a
  // requested layer output, or one that a tail node wrote into before (scripted DenseNet appends
  // each layer's features to a list); a requested output produced by a prefix node is a cut.
  // Prefix nodes all run before the tail: one that writes into what a tail node read before it
  // (or into a cut) would change what the tail sees, and the graph is not split.
  std::unordered_set<Value*> dependent;
  std::unordered_set<Node*> tail_set, free_set;
  std::vector<Value*> cuts;
  // Prefix values the tail reads (besides self, constants and attributes). A value a node reads
  // was produced before it, so whether it depends on the layers is settled when it is read.
  std::vector<Value*> boundary;
  std::unordered_set<Value*> in_boundary;
  torch::jit::ValueSet written_by_tail, read_by_tail;
  for (Node* n : graph.nodes()) {
    if (n->kind() == prim::SetAttr) return fail("the forward pass sets a module attribute");
    if (IsFree(graph, n, free_set)) {
      free_set.insert(n);
      continue;
    }
    std::vector<Value*> reads;
    OuterReads(graph, n, &reads);
    const torch::jit::ValueSet read(reads.begin(), reads.end());
    const bool in_tail = std::any_of(reads.begin(), reads.end(), [&](Value* v) { return dependent.count(v) > 0; }) ||
                         (!written_by_tail.empty() && aliases.mayAlias(read, written_by_tail));
    if (in_tail) {
      tail_set.insert(n);
      read_by_tail.insert(read.begin(), read.end());
      for (Value* v : reads) {
        if (dependent.count(v)) continue;
        if (aliases.writesToAlias(n, {v})) written_by_tail.insert(v);
        if (v != graph.inputs().at(0) && !free_set.count(v->node()) && in_boundary.insert(v).second)
          boundary.push_back(v);
      }
      for (Value* v : n->outputs()) dependent.insert(v);
    } else {
      if (!read_by_tail.empty() && aliases.writesToAlias(n, read_by_tail))
        return fail("op " + std::string(n->kind().toQualString()) + " overwrites a value that the ops after the layer read");
      for (Value* v : n->outputs()) {
        if (requested.count(v) && std::find(cuts.begin(), cuts.end(), v) == cuts.end()) {
          cuts.push_back(v);
          dependent.insert(v);
          read_by_tail.insert(v);
        }
      }
    }
  }
  Value* output = graph.outputs().at(0);
  if (!dependent.count(output)) return fail("the model output does not depend on the layers");

  GraphSplit split;
  split.cuts = cuts.size();
  split.boundary = boundary.size();
  Value* self = graph.inputs().at(0);

  std::vector<Node*> prefix_nodes;  // in graph order: free nodes interleaved with the prefix
  std::vector<Node*> tail_nodes;
  for (Node* n : graph.nodes()) {
    if (free_set.count(n)) {
      prefix_nodes.push_back(n);
      tail_nodes.push_back(n);
    } else if (tail_set.count(n)) {
      tail_nodes.push_back(n);
    } else {
      prefix_nodes.push_back(n);
    }
  }
  std::vector<Value*> prefix_returns(cuts.begin(), cuts.end());
  prefix_returns.insert(prefix_returns.end(), boundary.begin(), boundary.end());
  std::vector<std::pair<Value*, std::string>> prefix_inputs;
  for (Value* v : graph.inputs()) prefix_inputs.emplace_back(v, v->debugNameBase());
  split.prefix = Extract(graph, prefix_nodes, prefix_inputs, {}, nullptr, prefix_returns);

  // The tail: leaves first; the tail's readers of a cut read clone(leaf).
  std::vector<std::pair<Value*, std::string>> tail_inputs{{self, "self"}};
  for (Value* c : cuts) tail_inputs.emplace_back(c, "leaf");
  for (Value* b : boundary) tail_inputs.emplace_back(b, "boundary");
  const auto copy_leaves = [&](Graph& g, std::unordered_map<Value*, Value*>& map) {
    for (Value* c : cuts) map[c] = g.insert(c10::aten::clone, {map.at(c)});
  };
  std::vector<Value*> tail_returns{output};
  tail_returns.insert(tail_returns.end(), requests.begin(), requests.end());
  split.tail = Extract(graph, tail_nodes, tail_inputs, {}, copy_leaves, tail_returns);
  // A cut's capture is its leaf (the gradient's target), not the copy; a layer inside the tail
  // is captured before later in-place ops can change it: its readers read a copy.
  Node* tuple = split.tail->outputs().at(0)->node();
  std::vector<Value*> captures(tuple->inputs().begin() + 1, tuple->inputs().end());
  std::unordered_set<Value*> copied;
  for (size_t i = 0; i < requests.size(); ++i) {
    auto at = std::find(cuts.begin(), cuts.end(), requests[i]);
    if (at != cuts.end()) {
      captures[i] = split.tail->inputs().at(1 + (at - cuts.begin()));
    } else if (copied.insert(captures[i]).second) {
      Value* v = captures[i];
      torch::jit::WithInsertPoint guard(v->node()->next());
      Value* copy = split.tail->insert(c10::aten::clone, {v});
      v->replaceAllUsesAfterNodeWith(copy->node(), copy);
    }
  }
  for (size_t i = 0; i < captures.size(); ++i) tuple->replaceInput(i + 1, captures[i]);
  return split;
}

}  // namespace netlens
