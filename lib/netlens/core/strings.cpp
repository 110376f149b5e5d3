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

std::string TorchMessageSummary(const std::string& what) {
  const std::vector<std::string> lines = Split(what, '\n');
  const auto is_error_line = [](const std::string& line) {
    const size_t colon = line.find(": ");
    if (colon == std::string::npos || colon == 0) return false;
    const std::string name = line.substr(0, colon);
    if (name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.") != std::string::npos)
      return false;
    return name.size() >= 5 && (name.compare(name.size() - 5, 5, "Error") == 0 ||
                                (name.size() >= 9 && name.compare(name.size() - 9, 9, "Exception") == 0));
  };
  size_t reason_at = lines.size();
  for (size_t i = lines.size(); i-- > 0;)
    if (is_error_line(lines[i])) {
      reason_at = i;
      break;
    }
  std::string first;
  for (const auto& line : lines)
    if (!Trim(line).empty()) {
      first = Trim(line);
      break;
    }
  if (reason_at == lines.size()) return first;
  // The reason: the error line without its class name, and the lines that continue it.
  std::string reason = lines[reason_at].substr(lines[reason_at].find(": ") + 2);
  for (size_t i = reason_at + 1; i < lines.size() && i < reason_at + 4 && !Trim(lines[i]).empty(); ++i)
    reason += " " + Trim(lines[i]);
  // The innermost frame of the last traceback: the last "<--- HERE" marker before the reason.
  std::string code, file;
  for (size_t i = reason_at; i-- > 0;) {
    if (lines[i].find("<--- HERE") == std::string::npos) continue;
    for (size_t j = i; j-- > 0;) {
      const std::string t = Trim(lines[j]);
      if (code.empty() && !t.empty() && t.find_first_not_of("~ ") != std::string::npos) code = t;
      if (StartsWith(t, "File \"")) {
        file = t;
        break;
      }
    }
    break;
  }
  if (code.empty()) return reason;
  return reason + " (at `" + code + "`" + (file.empty() ? "" : ", " + file) + ")";
}

bool LooksLikeInputShapeError(const std::string& reason) {
  const std::string r = ToLower(reason);
  for (const char* hint : {"shape", "size", "channels", "dimension", "mat1 and mat2", "expected input"})
    if (r.find(hint) != std::string::npos) return true;
  return false;
}

std::string FormatBytes(double bytes) {
  char text[32];
  if (bytes >= 1e9) std::snprintf(text, sizeof(text), "%.1f GB", bytes / 1e9);
  else std::snprintf(text, sizeof(text), "%.0f MB", std::ceil(bytes / 1e6));
  return text;
}

}  // namespace netlens
