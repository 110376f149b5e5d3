#include "netlens/core/options.h"

#include <gtest/gtest.h>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

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

}  // namespace
}  // namespace netlens
