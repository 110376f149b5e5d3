#include "netlens/core/task_file.h"

#include <gtest/gtest.h>

#include "netlens/core/errors.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

TEST(TaskFile, YamlValuesAndPositions) {
  const TaskDocument doc = ParseTaskText(
      "model: m.pt\n"
      "tasks:\n"
      "  - technique: guided\n"
      "    target: 281\n"
      "    name: \"007\"\n"
      "    scale: 0.5\n",
      "run.yaml");
  EXPECT_EQ(doc.root["model"], "m.pt");
  EXPECT_EQ(doc.root["tasks"][0]["target"], 281);
  EXPECT_EQ(doc.root["tasks"][0]["name"], "007");  // quoted stays a string
  EXPECT_EQ(doc.root["tasks"][0]["scale"], 0.5);
  EXPECT_EQ(doc.Locate("tasks[0].target"), "run.yaml:4:5");
  EXPECT_EQ(doc.Locate("model"), "run.yaml:1:1");
}

TEST(TaskFile, JsonSyntaxErrorHasLineAndColumn) {
  try {
    ParseTaskText("{\n  \"model\": \"m.pt\",\n  \"tasks\": [,]\n}\n", "run.json");
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("run.json:3:"), std::string::npos) << e.what();
  }
}

TEST(TaskFile, JsonKeysGetPositionsToo) {
  const TaskDocument doc = ParseTaskText("{\"model\": \"m.pt\",\n \"tasks\": [{\"technique\": \"x\"}]}",
                                         "run.json");
  EXPECT_EQ(doc.root["tasks"][0]["technique"], "x");
  EXPECT_EQ(doc.Locate("tasks[0].technique"), "run.json:2:13");
}

TEST(TaskFile, DuplicateKeysAndBadExtensions) {
  EXPECT_THROW(ParseTaskText("a: 1\na: 2\n", "x.yaml"), UsageError);
  EXPECT_THROW(LoadTaskFile("tasks.txt"), UsageError);
  EXPECT_THROW(LoadTaskFile("/nonexistent/tasks.yaml"), UsageError);
}

// Hostile task files (issue 11): each is a UsageError naming the problem, not a crash or a
// process that eats the machine's memory.
std::string ErrorOf(const std::string& text, const std::string& name) {
  try {
    ParseTaskText(text, name);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TaskFile, SelfReferencingAliasIsAnError) {
  const std::string e = ErrorOf("a: &a [*a]\n", "evil.yaml");
  EXPECT_NE(e.find("cycle"), std::string::npos) << e;
  EXPECT_NE(e.find("evil.yaml:1:"), std::string::npos) << e;
}

TEST(TaskFile, BillionLaughsStopsAtTheValueLimit) {
  const std::string e = ErrorOf(test::BillionLaughsYaml(), "laughs.yaml");
  EXPECT_NE(e.find("more than 200000 values"), std::string::npos) << e;
}

TEST(TaskFile, DeepNestingIsAnErrorInJsonAndYaml) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string e = ErrorOf(deep, "deep.json");
  EXPECT_NE(e.find("nesting deeper than 64"), std::string::npos) << e.substr(0, 300);
  e = ErrorOf(deep, "deep.yaml");
  EXPECT_NE(e.find("deep.yaml"), std::string::npos) << e.substr(0, 300);
  // Just inside the limit still parses.
  const std::string ok = "{\"tasks\": " + std::string(60, '[') + std::string(60, ']') + "}";
  EXPECT_NO_THROW(ParseTaskText(ok, "ok.json"));
  EXPECT_NO_THROW(ParseTaskText(ok, "ok.yaml"));
}

// Found by tools/fuzz.sh: a YAML value with invalid UTF-8 made every later dump of the value
// (messages, manifest) throw nlohmann's type_error 316.
TEST(TaskFile, InvalidUtf8IsAnErrorWithItsPosition) {
  const std::string e = ErrorOf("tasks:\n  - technique: \x95\x9a" "convnet\n", "bad.yaml");
  EXPECT_NE(e.find("bad.yaml:2:16: invalid UTF-8 (byte 0x95)"), std::string::npos) << e;
  EXPECT_NO_THROW(ParseTaskText("name: \"caf\xc3\xa9 \xe2\x9c\x93\"\n", "ok.yaml"));  // valid multi-byte
  EXPECT_NE(ErrorOf("name: \"\xc3\"\n", "cut.yaml").find("invalid UTF-8"), std::string::npos);
  EXPECT_NE(ErrorOf("name: \xed\xa0\x80\n", "surrogate.yaml").find("invalid UTF-8"), std::string::npos);
}

// Found by tools/fuzz.sh: nlohmann reports a number beyond double's range as out_of_range, not
// as a parse_error, so it escaped as an unexpected exception (exit 1 instead of 2).
TEST(TaskFile, JsonNumberOverflowIsAUsageError) {
  const std::string e = ErrorOf("{\"steps\": 1" + std::string(40, '0') + "E4417}", "big.json");
  EXPECT_NE(e.find("big.json: invalid JSON"), std::string::npos) << e;
}

TEST(TaskFile, OversizedTextIsAnError) {
  const std::string big = "# " + std::string(TaskFileLimits::kMaxBytes, 'x') + "\n";
  EXPECT_NE(ErrorOf(big, "big.yaml").find("limited to"), std::string::npos);
}

}  // namespace
}  // namespace netlens
