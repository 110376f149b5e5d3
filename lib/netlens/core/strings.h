// Small string helpers shared by every layer: edit distance for "did you mean" suggestions,
// splitting and joining, case conversion.
#pragma once

#include <string>
#include <vector>

namespace netlens {

// Levenshtein distance (insert, delete, substitute all cost 1).
size_t EditDistance(const std::string& a, const std::string& b);

// Up to `max_count` candidates closest to `name` by edit distance (ties keep candidate order).
// Candidates that contain `name` as a substring rank first.
std::vector<std::string> ClosestMatches(const std::string& name,
                                        const std::vector<std::string>& candidates,
                                        size_t max_count = 3);

// "did you mean "a", "b" or "c"?" for the closest candidates, or "" when there are none.
std::string DidYouMean(const std::string& name, const std::vector<std::string>& candidates);

std::vector<std::string> Split(const std::string& text, char sep);
std::string Join(const std::vector<std::string>& parts, const std::string& sep);
// "0.485, 0.456, 0.406" (shortest round-trip form of each number).
std::string JoinNumbers(const std::vector<double>& values);
std::string Trim(const std::string& text);
std::string ToLower(std::string text);
// snake_case config key -> kebab-case flag name ("crop_pct" -> "crop-pct").
std::string KebabCase(std::string key);
bool StartsWith(const std::string& text, const std::string& prefix);
// "1.2 GB", "35 MB": a size in bytes for messages.
std::string FormatBytes(double bytes);
// Quoted, for messages: "value".
std::string Quote(const std::string& text);
// One line from LibTorch's message of a failure: for a failure inside a TorchScript graph (many
// lines: "The following operation failed in the TorchScript interpreter.", the tracebacks with
// the failing line marked "<--- HERE", then "RuntimeError: <reason>"), the reason followed by
// "(at `<marked line>`, <its File "...", line N>)" of the innermost frame of the last traceback
// (the model's original code where the archive has it); any other message: its first line.
std::string TorchMessageSummary(const std::string& what);
// Whether a summarized LibTorch reason reads like a wrong input size or channel count (where
// --input-size / --channels is the likely remedy), rather than another failure of the model.
bool LooksLikeInputShapeError(const std::string& reason);

}  // namespace netlens
