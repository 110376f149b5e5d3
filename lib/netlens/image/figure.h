// Labelled figures made of pictures: rows of titled cells with a row label on the left, a title
// line, horizontal bar charts and a colour bar. Shared by every composed output (gist's overview,
// neuron groups, animation frames) so that they look alike. All pictures are 8-bit BGR.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace netlens {

struct FigureCell {
  std::string title;  // above the picture (shortened with ".." to fit)
  cv::Mat picture;    // any size: scaled to the figure's cell size, aspect kept, on white
};

struct FigureRow {
  std::string label;  // left of the row (a layer name); wrapped over up to three lines
  std::string note;   // second line under the label, smaller (a shape, a score)
  std::vector<FigureCell> cells;
};

struct FigureSpec {
  std::string title;     // first line, bold
  std::string subtitle;  // second line (model, image, target)
  int cell = 160;        // cell width and height in pixels
  int label_width = 150; // the row-label column (0: none)
  std::vector<FigureRow> rows;
  bool color_bar = false;  // a JET colour bar "low .. high" at the bottom
};

cv::Mat RenderFigure(const FigureSpec& spec);

// Horizontal bars for (label, value in [0, 1]) pairs, value printed as a percentage.
cv::Mat BarChart(const std::vector<std::string>& labels, const std::vector<double>& values,
                 int width, int height);

// Curves on one chart: x from 0 to 1 (each series' values evenly spread), y from 0 to `y_max`
// (from -y_max when a value is negative); a legend with each series' name below the plot, which
// it never covers. `x_ticks`, when given, label evenly spread ticks instead of 0, 0.25, .., 1
// (a chart over steps). Colours from the figure palette, in series order.
struct Series {
  std::string name;
  std::vector<double> values;
};
cv::Mat LineChart(const std::string& title, const std::string& x_label, const std::string& y_label,
                  const std::vector<Series>& series, double y_max = 1.0, int width = 420, int height = 320,
                  const std::vector<std::string>& x_ticks = {});

// The figure palette (BGR), shared by charts and group maps.
cv::Scalar PaletteColor(int64_t i);

// `text` drawn on a copy of `picture` in a strip below it (a caption for a GIF frame).
cv::Mat Captioned(const cv::Mat& picture, const std::string& text);

// `text` shortened with ".." until it fits `width` pixels at `scale`.
std::string FitText(const std::string& text, double scale, int width, int thickness = 1);

}  // namespace netlens
