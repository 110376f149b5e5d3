#include "netlens/core/strings.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace netlens {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> ClosestMatches(const std::string& name,
                                        const std::vector<std::string>& candidates,
                                        size_t max_count) {
  const std::string lower = ToLower(name);
  std::vector<std::pair<size_t, size_t>> scored;  // (score, index)
  for (size_t i = 0; i < candidates.size(); ++i) {
    const std::string cand = ToLower(candidates[i]);
    size_t score = EditDistance(lower, cand) * 2;
    if (!lower.empty() && cand.find(lower) != std::string::npos) score = 0;
    scored.emplace_back(score, i);
  }
  std::stable_sort(scored.begin(), scored.end());
  // Only suggest names that share a reasonable part of the spelling.
  const size_t limit = std::max<size_t>(3, name.size() / 2) * 2;
  std::vector<std::string> out;
  for (const auto& [score, index] : scored) {
    if (out.size() == max_count || score > limit) break;
    out.push_back(candidates[index]);
  }
  return out;
}

std::string DidYouMean(const std::string& name, const std::vector<std::string>& candidates) {
  const auto best = ClosestMatches(name, candidates);
  if (best.empty()) return "";
  std::string text = "did you mean ";
  for (size_t i = 0; i < best.size(); ++i) {
    if (i > 0) text += (i + 1 == best.size()) ? " or " : ", ";
    text += Quote(best[i]);
  }
  return text + "?";
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string current;
  for (char c : text) {
    if (c == sep) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  parts.push_back(current);
  return parts;
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string JoinNumbers(const std::vector<double>& values) {
  std::vector<std::string> parts;
  for (double v : values) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", v);
    parts.push_back(buf);
  }
  return Join(parts, ", ");
}

std::string Trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

std::string ToLower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string KebabCase(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::string Quote(const std::string& text) { return "\"" + text + "\""; }

std::string FormatBytes(double bytes) {
  char text[32];
  if (bytes >= 1e9) std::snprintf(text, sizeof(text), "%.1f GB", bytes / 1e9);
  else std::snprintf(text, sizeof(text), "%.0f MB", std::ceil(bytes / 1e6));
  return text;
}

}  // namespace netlens
