// Error types of netlens and the exit codes they map to (apps/netlens/main.cpp is the one place
// that does the mapping):
//   UsageError    bad input from the user: unknown flag or key, wrong type, missing file,
//                 unreadable image, unknown layer. Exit code 2.
//   RuntimeError  a failure of the world while running a valid request (I/O, CUDA). Exit code 1.
//   InternalError a broken invariant inside netlens; the message says expected vs actual. Exit 1.
#pragma once

#include <stdexcept>
#include <string>

namespace netlens {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RuntimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace netlens
