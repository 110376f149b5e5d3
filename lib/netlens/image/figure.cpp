#include "netlens/image/figure.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>

namespace netlens {

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kInk(40, 40, 40);
const cv::Scalar kFaint(110, 110, 110);

int TextWidth(const std::string& text, double scale, int thickness) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, thickness, &baseline).width;
}

void Text(cv::Mat& img, const std::string& text, int x, int y, double scale, const cv::Scalar& color,
          int thickness = 1) {
  cv::putText(img, text, cv::Point(x, y), kFont, scale, color, thickness, cv::LINE_AA);
}

// `picture` scaled to fit side x side, centred on white.
cv::Mat Fitted(const cv::Mat& picture, int side) {
  cv::Mat out(side, side, CV_8UC3, cv::Scalar(255, 255, 255));
  if (picture.empty()) return out;
  cv::Mat bgr = picture;
  if (picture.channels() == 1) cv::cvtColor(picture, bgr, cv::COLOR_GRAY2BGR);
  const double f = std::min(static_cast<double>(side) / bgr.cols, static_cast<double>(side) / bgr.rows);
  const int w = std::max(1, static_cast<int>(bgr.cols * f)), h = std::max(1, static_cast<int>(bgr.rows * f));
  cv::Mat scaled;
  cv::resize(bgr, scaled, cv::Size(w, h), 0, 0, f >= 2 ? cv::INTER_NEAREST : cv::INTER_AREA);
  scaled.copyTo(out(cv::Rect((side - w) / 2, (side - h) / 2, w, h)));
  return out;
}

// Splits a layer name over lines of at most `width` pixels, breaking after dots where possible.
std::vector<std::string> Wrapped(const std::string& text, double scale, int width, size_t max_lines) {
  std::vector<std::string> lines;
  std::string rest = text;
  while (!rest.empty() && lines.size() < max_lines) {
    if (TextWidth(rest, scale, 1) <= width || lines.size() + 1 == max_lines) {
      lines.push_back(FitText(rest, scale, width));
      break;
    }
    size_t cut = rest.size();
    while (cut > 1 && TextWidth(rest.substr(0, cut), scale, 1) > width) --cut;
    const size_t dot = rest.rfind('.', cut - 1);
    if (dot != std::string::npos && dot > 0) cut = dot + 1;
    lines.push_back(rest.substr(0, cut));
    rest = rest.substr(cut);
  }
  return lines;
}

}  // namespace

std::string FitText(const std::string& text, double scale, int width, int thickness) {
  std::string out = text;
  while (out.size() > 3 && TextWidth(out, scale, thickness) > width) out = out.substr(0, out.size() - 3) + "..";
  return out;
}

cv::Mat RenderFigure(const FigureSpec& spec) {
  const int gap = 8, cell = spec.cell, title_h = 20, header_h = spec.title.empty() ? gap : 56;
  size_t columns = 0;
  for (const auto& row : spec.rows) columns = std::max(columns, row.cells.size());
  const int width = gap + spec.label_width + static_cast<int>(columns) * (cell + gap);
  const int row_h = title_h + cell + gap;
  const int bar_h = spec.color_bar ? 40 : 0;
  cv::Mat out(header_h + static_cast<int>(spec.rows.size()) * row_h + bar_h + gap, std::max(width, 360),
              CV_8UC3, cv::Scalar(255, 255, 255));
  if (!spec.title.empty()) {
    Text(out, FitText(spec.title, 0.7, out.cols - 2 * gap, 2), gap, 24, 0.7, kInk, 2);
    Text(out, FitText(spec.subtitle, 0.45, out.cols - 2 * gap), gap, 46, 0.45, kFaint);
  }
  int y = header_h;
  for (const auto& row : spec.rows) {
    if (spec.label_width > 0) {
      int ly = y + title_h + 18;
      for (const auto& line : Wrapped(row.label, 0.5, spec.label_width - gap, 3)) {
        Text(out, line, gap, ly, 0.5, kInk, 1);
        ly += 20;
      }
      if (!row.note.empty()) Text(out, FitText(row.note, 0.38, spec.label_width - gap), gap, ly, 0.38, kFaint);
    }
    int x = gap + spec.label_width;
    for (const auto& c : row.cells) {
      Text(out, FitText(c.title, 0.42, cell), x, y + title_h - 6, 0.42, kInk);
      Fitted(c.picture, cell).copyTo(out(cv::Rect(x, y + title_h, cell, cell)));
      x += cell + gap;
    }
    y += row_h;
  }
  if (spec.color_bar) {
    const int bw = std::min(300, out.cols - 2 * gap - 120), bx = gap + spec.label_width;
    cv::Mat ramp(1, 256, CV_8UC1);
    for (int i = 0; i < 256; ++i) ramp.at<uint8_t>(0, i) = static_cast<uint8_t>(i);
    cv::Mat jet;
    cv::applyColorMap(ramp, jet, cv::COLORMAP_JET);
    cv::Mat bar;
    cv::resize(jet, bar, cv::Size(bw, 12), 0, 0, cv::INTER_LINEAR);
    bar.copyTo(out(cv::Rect(bx, y + 6, bw, 12)));
    Text(out, "low", bx, y + 34, 0.4, kFaint);
    Text(out, "high", bx + bw - TextWidth("high", 0.4, 1), y + 34, 0.4, kFaint);
    Text(out, "heat maps: scaled to each map's own range", bx + bw + 12, y + 17, 0.4, kFaint);
  }
  return out;
}

cv::Mat BarChart(const std::vector<std::string>& labels, const std::vector<double>& values, int width,
                 int height) {
  cv::Mat out(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int n = static_cast<int>(std::min(labels.size(), values.size()));
  if (n == 0) return out;
  const int slot = height / n, bar = std::max(4, slot / 3);
  for (int i = 0; i < n; ++i) {
    const int top = i * slot;
    const double v = std::clamp(values[static_cast<size_t>(i)], 0.0, 1.0);
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%.1f%%", 100 * v);
    Text(out, FitText(labels[static_cast<size_t>(i)], 0.4, width - 4), 2, top + slot / 2 - 2, 0.4, kInk);
    const int bw = static_cast<int>((width - 60) * v);
    cv::rectangle(out, cv::Rect(2, top + slot / 2 + 2, std::max(1, bw), bar),
                  i == 0 ? cv::Scalar(180, 110, 30) : cv::Scalar(200, 170, 140), cv::FILLED);
    Text(out, pct, 6 + bw, top + slot / 2 + 2 + bar, 0.38, kFaint);
  }
  return out;
}

cv::Mat Captioned(const cv::Mat& picture, const std::string& text) {
  const int strip = 26;
  cv::Mat out(picture.rows + strip, picture.cols, CV_8UC3, cv::Scalar(255, 255, 255));
  picture.copyTo(out(cv::Rect(0, 0, picture.cols, picture.rows)));
  Text(out, FitText(text, 0.5, picture.cols - 8), 4, picture.rows + 19, 0.5, kInk);
  return out;
}

cv::Scalar PaletteColor(int64_t i) {
  static const cv::Scalar kPalette[] = {
      {180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214}, {189, 103, 148},
      {75, 86, 140},  {194, 119, 227}, {34, 189, 188}, {207, 190, 23}, {127, 127, 127}};
  return kPalette[i % 10];
}

cv::Mat LineChart(const std::string& title, const std::string& x_label, const std::string& y_label,
                  const std::vector<Series>& series, double y_max, int width, int height,
                  const std::vector<std::string>& x_ticks) {
  cv::Mat out(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  constexpr int kLegendRow = 16;
  const int legend_height = 6 + kLegendRow * static_cast<int>((series.size() + 1) / 2);
  const int left = 46, right = 10, top = 28, bottom = 40 + legend_height;
  const int pw = width - left - right, ph = std::max(40, height - top - bottom);
  if (y_max <= 0) y_max = 1.0;
  bool negative = false;
  for (const auto& s : series)
    for (double v : s.values) negative = negative || v < 0;
  const double y_min = negative ? -y_max : 0.0;
  Text(out, FitText(title, 0.5, width - 8, 1), 6, 18, 0.5, kInk, 1);
  cv::rectangle(out, cv::Rect(left, top, pw, ph), cv::Scalar(200, 200, 200));
  char buf[32];
  for (int t = 0; t <= 4; ++t) {  // y ticks
    const int y = top + ph - t * ph / 4;
    std::snprintf(buf, sizeof(buf), "%.2g", y_min + (y_max - y_min) * t / 4);
    cv::line(out, {left, y}, {left + pw, y}, cv::Scalar(235, 235, 235));
    Text(out, buf, 4, y + 4, 0.35, kFaint);
  }
  const int ticks = x_ticks.empty() ? 5 : static_cast<int>(x_ticks.size());
  for (int t = 0; t < ticks; ++t) {  // x ticks
    const int x = left + (ticks > 1 ? t * pw / (ticks - 1) : 0);
    std::string label = x_ticks.empty() ? "" : x_ticks[t];
    if (x_ticks.empty()) {
      std::snprintf(buf, sizeof(buf), "%g", t / 4.0);
      label = buf;
    }
    const int w = TextWidth(label, 0.35, 1);
    Text(out, label, std::clamp(x - w / 2, 0, width - w), top + ph + 14, 0.35, kFaint);
  }
  const std::string x_text = FitText(x_label, 0.4, pw);
  Text(out, x_text, left + pw / 2 - TextWidth(x_text, 0.4, 1) / 2, top + ph + 32, 0.4, kFaint);
  Text(out, FitText(y_label, 0.38, left + pw), left + 4, top + 12, 0.38, kFaint);
  const int column = (width - 12) / 2;
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& v = series[s].values;
    const cv::Scalar color = PaletteColor(static_cast<int64_t>(s));
    std::vector<cv::Point> points;
    for (size_t i = 0; i < v.size(); ++i) {
      const double fx = v.size() > 1 ? static_cast<double>(i) / (v.size() - 1) : 0.0;
      const double fy = std::clamp((v[i] - y_min) / (y_max - y_min), 0.0, 1.0);
      points.emplace_back(left + static_cast<int>(fx * pw), top + ph - static_cast<int>(fy * ph));
    }
    if (points.size() > 1) cv::polylines(out, points, false, color, 2, cv::LINE_AA);
    if (points.size() == 1) cv::circle(out, points[0], 3, color, cv::FILLED, cv::LINE_AA);
    // Legend: two columns under the x label.
    const int lx = 6 + static_cast<int>(s % 2) * column;
    const int ly = top + ph + 40 + 12 + static_cast<int>(s / 2) * kLegendRow;
    cv::line(out, {lx, ly - 4}, {lx + 18, ly - 4}, color, 2, cv::LINE_AA);
    Text(out, FitText(series[s].name, 0.38, column - 26), lx + 22, ly, 0.38, kInk);
  }
  return out;
}

}  // namespace netlens
