// Binds an OptionTable to a CLI11 (sub)command: one flag per option, named by the kebab-case
// key, with the option's help, default and choices in --help. Values come back as raw JSON (the
// strings as typed) and go through the same validation as task-file values (CoerceOption).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "netlens/core/options.h"

namespace netlens {

class CliBinding {
 public:
  // Adds a flag for every option of `table` to `app`. The binding must outlive parsing.
  void Bind(CLI::App& app, const OptionTable& table);
  // The options given on the command line, as raw JSON values (strings, bools, string lists).
  Json Given() const;

 private:
  struct Slot {
    const OptionSpec* spec = nullptr;
    CLI::Option* option = nullptr;
    std::string scalar;
    std::vector<std::string> list;
    bool flag = false;
  };
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace netlens
