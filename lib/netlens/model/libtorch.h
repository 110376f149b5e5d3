#pragma once
// The LibTorch headers netlens' code uses: tensors (ATen), autograd, TorchScript modules and the
// graph IR, at::parallel_for. Not the C++ frontend's `torch/torch.h`, whose nn modules, optimizers
// and data loaders double the cost of every translation unit (docs/testing.md, build time); the
// few files that call torch::nn::functional, torch::optim or torch::fft include those themselves.
// This is the precompiled header of every target above netlens_core.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/cuda.h>
#include <torch/csrc/api/include/torch/utils.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>
