// Objectives of image optimization (Olah et al., "Feature Visualization", Distill 2017; Lucid):
// what a picture is optimized to make a model do, written as a small expression:
//
//   features.12:3                      channel 3: mean of layer[:, 3] over positions
//   features.12:3@5,6                  neuron: layer[:, 3, 5, 6] (without @: the centre unit)
//   features.12:0..15                  channels 0 to 15, one per batch sample (one batch)
//   features.9                         layer: mean of squares (DeepDream)
//   class:tiger cat  /  class:281      class logit, by label (as --target) or index;
//   class:0..9                         one class per batch sample
//   direction(features.12, v.npy)      cosine similarity with a vector over the channels
//   direction(features.12, [1,0,-1])   (a .npy file or a list)
//   l1, l2, tv, blur                   regularizers on the picture (means; see techniques.md)
//   a + b, a - b, 0.5*a, -(a + b)      linear algebra over terms, parentheses
//
// An expression is maximized; each batch sample has its own value (channel ranges zip across
// terms, other terms apply to every sample). Layer names resolve through the lens (aliases like
// last-conv work); a problem is a UsageError that points at the column.
#pragma once

#include "netlens/model/libtorch.h"

#include <string>
#include <vector>

#include "netlens/model/model.h"

namespace netlens::optvis {

struct Term {
  enum class Kind { kChannel, kNeuron, kLayer, kClass, kDirection, kL1, kL2, kTV, kBlur, kMatch };
  Kind kind = Kind::kChannel;
  double weight = 1;
  std::string layer;              // resolved module path; empty for picture terms and classes
  std::vector<int64_t> channels;  // channel or class per sample (one entry: every sample)
  int64_t y = -1, x = -1;         // neuron position; -1: the centre (Lucid's convention)
  torch::Tensor reference;        // direction (C) or the activations to match (kMatch)
  std::string text;               // as written, for captions and messages
  std::vector<std::string> names; // classes: "281 tiger cat" per entry of `channels`
};

struct Objective {
  std::vector<Term> terms;
  int64_t batch = 1;                 // samples optimized together
  std::vector<std::string> layers;   // every layer the terms read, in first-use order
  bool needs_logits = false;         // a class term reads the model's output
  double diversity = 0;              // weight of Lucid's diversity penalty (needs batch > 1)
  std::string diversity_layer;       // its layer: the objective's first layer
  std::string text;

  // The value of every sample (a tensor of `batch` values, to maximize), from the activations of
  // `layers` (in that order), the logits (when needs_logits) and the picture in [0, 1].
  torch::Tensor Evaluate(const std::vector<torch::Tensor>& activations, const torch::Tensor& logits,
                         const torch::Tensor& picture) const;
  // A short caption of sample `b`: "features.12:3", "class 281", "features.12:3 - 0.5*tv".
  std::string Caption(int64_t b) const;
};

// Parses `text` against `model` (layers, channel counts from the measured shapes, labels).
Objective ParseObjective(const std::string& text, Model& model);

// A layer's activation for a picture of height x width as N x C x h x w when its shape has a
// spatial layout (model/layout.h: channels-last, ViT tokens), else as it is: channel and neuron
// terms index channels and positions, not tokens.
torch::Tensor ChannelsFirst(const torch::Tensor& activation, int64_t height, int64_t width);

// Lucid's diversity: minus the summed cosine similarity of the samples' Gram matrices at a layer
// (read through ChannelsFirst for a picture of height x width; 0: as it is), divided by the batch
// (0 for one sample). Larger = more diverse.
torch::Tensor Diversity(const torch::Tensor& activation, int64_t height = 0, int64_t width = 0);

// The index of `layer` in `objective.layers`, adding it when new.
size_t UseLayer(Objective& objective, const std::string& layer);

}  // namespace netlens::optvis
