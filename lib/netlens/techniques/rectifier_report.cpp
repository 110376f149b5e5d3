#include "netlens/techniques/rectifier_report.h"

#include <algorithm>
#include <mutex>
#include <vector>

#include "netlens/core/log.h"
#include "netlens/model/graph.h"

namespace netlens {
namespace {

std::string Kinds(const std::map<std::string, int64_t>& counts) {
  std::string out;
  for (const auto& [op, n] : counts) out += (out.empty() ? "" : ", ") + op + " " + std::to_string(n);
  return out;
}

struct Known {
  c10::weak_intrusive_ptr<c10::ivalue::Object> module;  // expired: another model at this address
  ActivationCensus census;
  bool deeplift_one_backward = false;  // DeepLiftOneBackwardIsExact
  std::vector<BackwardRule> said;  // rules already described in the log
};

std::mutex known_mutex;
std::vector<Known> known;

// The model's entry, analysed on first sight; the caller holds known_mutex.
Known& EntryOf(Model& model) {
  const c10::intrusive_ptr<c10::ivalue::Object> object = model.module()._ivalue();
  for (auto& k : known)
    if (!k.module.expired() && k.module.lock().get() == object.get()) return k;
  known.erase(std::remove_if(known.begin(), known.end(), [](const Known& k) { return k.module.expired(); }),
              known.end());
  const auto graph = InlinedForward(model.module());
  known.push_back({c10::weak_intrusive_ptr<c10::ivalue::Object>(object), CountActivations(*graph),
                   DeepLiftOneBackwardIsExact(*graph), {}});
  return known.back();
}

}  // namespace

bool DeepLiftOneBackward(Model& model) {
  std::lock_guard<std::mutex> lock(known_mutex);
  return EntryOf(model).deeplift_one_backward;
}

ActivationCensus ActivationsOf(Model& model) {
  std::lock_guard<std::mutex> lock(known_mutex);
  return EntryOf(model).census;
}

nlohmann::json RectifierReport(Model& model, BackwardRule rule) {
  std::lock_guard<std::mutex> lock(known_mutex);
  Known* entry = &EntryOf(model);
  const ActivationCensus& census = entry->census;
  const std::string name = rule == BackwardRule::kDeconvnet ? "deconvnet" : IsDeepLift(rule) ? "deeplift" : "guided";
  const std::string plain = IsDeepLift(rule) ? "the gradient times (input - baseline), max-pooling aside"
                                                            : "the vanilla gradient (saliency)";
  const bool smooth = model.lens().ReachesSmoothActivations(rule);
  if (std::find(entry->said.begin(), entry->said.end(), rule) == entry->said.end()) {
    entry->said.push_back(rule);
    const std::string hint = IsDeepLift(rule) ? "" : "; --smooth-activations applies netlens' generalization of the rule to them";
    if (smooth && census.Others() > 0) {
      Log().info("{}: the rule replaces {} rectifier(s){} and reaches {} smooth or leaky activation(s) ({}) by {}",
                 name, census.Rectifiers(), census.Rectifiers() ? " (" + Kinds(census.rectifiers) + ")" : "",
                 census.Others(), Kinds(census.others),
                 IsDeepLift(rule) ? "the rescale rule (Captum applies it to ELU, LeakyReLU and Softplus modules only)"
                                  : "netlens' generalization (--smooth-activations)");
    } else if (census.Rectifiers() == 0) {
      Log().warn("{}: the model has no ReLU-like activation to rewrite{}, so the {} rule changes nothing and "
                 "the map equals {}{}",
                 name, census.Others() ? " (it has " + Kinds(census.others) + ")" : "", name, plain,
                 census.Others() ? hint : "");
    } else if (census.Others() > 0) {
      Log().warn("{}: the rule replaces {} rectifier(s) ({}) and leaves {} other activation(s) with their "
                 "ordinary gradient ({}): the map is partly {}{}",
                 name, census.Rectifiers(), Kinds(census.rectifiers), census.Others(), Kinds(census.others), plain,
                 hint);
    } else {
      Log().info("{}: the rule replaces {} rectifier(s) ({}); the model has no other activation", name,
                 census.Rectifiers(), Kinds(census.rectifiers));
    }
  }
  // Rectifiers under `rewritten`; the other activations under `generalized` when the rule
  // reached them, else under `left`.
  nlohmann::json report{{"rule", name},
                        {"rewritten", census.Rectifiers()},
                        {"rewritten_kinds", census.rectifiers},
                        {"left", smooth ? 0 : census.Others()},
                        {"left_kinds", smooth ? std::map<std::string, int64_t>{} : census.others}};
  if (IsDeepLift(rule)) report["backward"] = entry->deeplift_one_backward ? "inputs" : "pairs";
  if (smooth) {
    report["generalized"] = census.Others();
    report["generalized_kinds"] = census.others;
  }
  return report;
}

}  // namespace netlens
