#include "netlens/core/task_file.h"

#include <gtest/gtest.h>

#include "netlens/core/errors.h"

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

}  // namespace
}  // namespace netlens
