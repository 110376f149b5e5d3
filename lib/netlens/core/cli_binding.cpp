#include "netlens/core/cli_binding.h"

#include "netlens/core/strings.h"

namespace netlens {

void CliBinding::Bind(CLI::App& app, const OptionTable& table) {
  for (const auto& spec : table) {
    auto slot = std::make_unique<Slot>();
    slot->spec = &spec;
    const std::string name = "--" + KebabCase(spec.key);
    const std::string help = DescribeOption(spec);
    if (spec.type == OptionType::kBool) {
      slot->option = app.add_flag(name, slot->flag, help);
    } else if (spec.type == OptionType::kStringList || spec.type == OptionType::kIntList ||
               spec.type == OptionType::kFloatList) {
      // A plural list flag also answers to its singular (--technique a,b as --techniques a,b)
      // when no other option has that name: users type either.
      std::string names = name;
      if (name.size() > 3 && name.back() == 's') {
        const std::string singular = name.substr(0, name.size() - 1);
        bool taken = app.get_option_no_throw(singular) != nullptr;
        for (const auto& other : table) taken = taken || "--" + KebabCase(other.key) == singular;
        if (!taken) names += "," + singular;
      }
      slot->option = app.add_option(names, slot->list, help)->allow_extra_args(false);
    } else {
      slot->option = app.add_option(name, slot->scalar, help);
    }
    std::string value_name = spec.value_name;
    if (value_name.empty()) {
      switch (spec.type) {
        case OptionType::kInt: value_name = "INT"; break;
        case OptionType::kFloat: value_name = "FLOAT"; break;
        case OptionType::kIntList: value_name = "INT,.."; break;
        case OptionType::kFloatList: value_name = "FLOAT,.."; break;
        case OptionType::kStringList: value_name = "TEXT,.."; break;
        default: value_name = spec.choices.empty() ? "TEXT" : "CHOICE"; break;
      }
    }
    if (spec.type != OptionType::kBool) slot->option->type_name(value_name);
    slots_.push_back(std::move(slot));
  }
}

Json CliBinding::Given() const {
  Json out = Json::object();
  for (const auto& slot : slots_) {
    if (slot->option->count() == 0) continue;
    const std::string& key = slot->spec->key;
    if (slot->spec->type == OptionType::kBool) {
      out[key] = slot->flag;
    } else if (!slot->list.empty()) {
      out[key] = slot->list;
    } else {
      out[key] = slot->scalar;
    }
  }
  return out;
}

}  // namespace netlens
