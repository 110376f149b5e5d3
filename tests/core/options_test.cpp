#include "netlens/core/options.h"

#include <gtest/gtest.h>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"
#include "netlens/model/libtorch.h"
#include "netlens/runner/common_options.h"

#include <cstdlib>
#include <string>
#include <thread>

namespace netlens {
namespace {

const OptionTable& Table() {
  static const OptionTable table{
      {"steps", OptionType::kInt, "steps", 50, {}, 1.0, 1000.0},
      {"method", OptionType::kString, "method", "gausslegendre", {"gausslegendre", "riemann_left"}},
      {"layer", OptionType::kStringList, "layers", Json::array({"last-conv"})},
      {"mean", OptionType::kFloatList, "mean"},
      {"guided", OptionType::kBool, "guided", false},
  };
  return table;
}

Json Validate(const Json& object, Diagnostics& diag) {
  return ValidateObject(object, {&Table()}, "tasks[0]", nullptr, diag);
}

TEST(Strings, EditDistanceAndSuggestions) {
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(ClosestMatches("layer4.3", {"layer1.0", "layer4.1", "fc"})[0], "layer4.1");
  EXPECT_EQ(DidYouMean("zzzzzzzzzzzzzzzz", {"a"}), "");
}

TEST(Options, CoercesCommandLineStringsToTypes) {
  Diagnostics diag;
  const Json v = Validate({{"steps", "20"}, {"mean", "0.5,0.25"}, {"guided", "true"},
                           {"layer", "a, b"}}, diag);
  ASSERT_TRUE(diag.empty()) << Join(diag.errors(), "\n");
  EXPECT_EQ(v["steps"], 20);
  EXPECT_EQ(v["mean"], Json::array({0.5, 0.25}));
  EXPECT_EQ(v["guided"], true);
  EXPECT_EQ(v["layer"], Json::array({"a", "b"}));
}

TEST(Options, UnknownKeyNamesTheClosestOne) {
  Diagnostics diag;
  Validate({{"stesp", 3}}, diag);
  ASSERT_EQ(diag.errors().size(), 1u);
  EXPECT_NE(diag.errors()[0].find("tasks[0].stesp"), std::string::npos);
  EXPECT_NE(diag.errors()[0].find("did you mean \"steps\""), std::string::npos);
}

TEST(Options, ReportsEveryProblemAtOnce) {
  Diagnostics diag;
  Validate({{"steps", 0}, {"method", "riemann"}, {"guided", "maybe"}, {"mean", "x"}}, diag);
  ASSERT_EQ(diag.errors().size(), 4u);
  const std::string all = Join(diag.errors(), "\n");
  EXPECT_NE(all.find("out of range [1, 1000]"), std::string::npos);
  EXPECT_NE(all.find("valid: gausslegendre, riemann_left"), std::string::npos);
  EXPECT_NE(all.find("expected true or false"), std::string::npos);
  EXPECT_NE(all.find("expected a number"), std::string::npos);
  EXPECT_THROW(diag.ThrowIfAny(), UsageError);
}

TEST(Options, RejectsNonIntegerAndListForScalar) {
  Diagnostics diag;
  Validate({{"steps", 2.5}}, diag);
  Validate({{"steps", Json::array({1, 2})}}, diag);
  EXPECT_EQ(diag.errors().size(), 2u);
  // Beyond int64 (a fuzzed task file: converting it was undefined behaviour, caught by UBSan).
  Validate({{"steps", "633333333333333333333333"}}, diag);
  Validate({{"steps", -1e300}}, diag);
  ASSERT_EQ(diag.errors().size(), 4u);
  EXPECT_NE(diag.errors()[2].find("out of range"), std::string::npos) << diag.errors()[2];
}

TEST(Options, ParamsFallBackToDefaultsAndCatchUndeclaredKeys) {
  Params p({&Table()}, Json{{"steps", 7}});
  EXPECT_EQ(p.Int("steps"), 7);
  EXPECT_EQ(p.Str("method"), "gausslegendre");
  EXPECT_EQ(p.Strs("layer"), std::vector<std::string>{"last-conv"});
  EXPECT_FALSE(p.Has("mean"));
  EXPECT_THROW(p.Floats("mean"), UsageError);
  EXPECT_THROW(p.Int("nonexistent"), InternalError);
  EXPECT_TRUE(p.Declares("mean"));  // declared, without a value
  EXPECT_FALSE(p.Declares("nonexistent"));
  EXPECT_EQ(p.Resolved()["method"], "gausslegendre");
}

// --threads 0 reads OMP_NUM_THREADS as --threads would read it (a whole number from 1 to 4096),
// else all cores; an explicit --threads wins. The process's variable and thread count come back.
TEST(Options, ThreadsFollowOmpNumThreadsWhenNotGiven) {
  const char* saved = std::getenv("OMP_NUM_THREADS");
  const std::string kept = saved ? saved : "";
  const int before = torch::get_num_threads();
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const Params automatic({&CommonOptions()}, Json::object());
  const Params three({&CommonOptions()}, Json{{"threads", 3}});
  setenv("OMP_NUM_THREADS", "1", 1);
  EXPECT_EQ(UseCpuThreads(automatic), 1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_EQ(UseCpuThreads(three), 3);
  for (const char* bad : {"0", "-2", "abc", "2x", "99999", ""}) {
    setenv("OMP_NUM_THREADS", bad, 1);
    EXPECT_EQ(UseCpuThreads(automatic), cores) << "OMP_NUM_THREADS=" << bad;
  }
  unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(UseCpuThreads(automatic), cores);
  if (saved) setenv("OMP_NUM_THREADS", kept.c_str(), 1);
  torch::set_num_threads(before);
}

}  // namespace
}  // namespace netlens
