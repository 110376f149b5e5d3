#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "netlens/core/errors.h"
#include "netlens/image/image_io.h"
#include "netlens/image/npy.h"
#include "netlens/image/render.h"
#include "netlens/output/files.h"
#include "tests/test_util.h"

namespace netlens {
namespace {

TEST(Npy, HeaderIsAlignedAndRoundTrips) {
  const torch::Tensor t = torch::arange(24, torch::kFloat64).view({1, 2, 3, 4}) / 7.0;
  const std::string bytes = NpyBytes(t);
  const size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_NE(bytes.find("'shape': (1, 2, 3, 4)"), std::string::npos);
  // float64 keeps its precision (so float64 parity can be checked from the files) ...
  const torch::Tensor back = ParseNpy(bytes);
  EXPECT_NE(bytes.find("'descr': '<f8'"), std::string::npos);
  EXPECT_EQ(back.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::equal(back, t));
  // ... any other dtype is written as float32.
  const torch::Tensor f = ParseNpy(NpyBytes(t.to(torch::kFloat32)));
  EXPECT_EQ(f.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(f, t.to(torch::kFloat32)));
  EXPECT_EQ(ParseNpy(NpyBytes(torch::arange(5))).scalar_type(), torch::kFloat32);
}

TEST(Npy, HostileHeadersAreUsageErrors) {
  std::string bytes = NpyBytes(torch::ones({2, 2}));
  EXPECT_THROW(ParseNpy(bytes.substr(0, bytes.size() - 3)), UsageError);  // truncated data
  std::string huge = bytes;
  huge.replace(huge.find("(2, 2)"), 6, "(9999999999, 9)");  // shape far beyond the data
  EXPECT_THROW(ParseNpy(huge), UsageError);
  std::string word = bytes;
  word.replace(word.find("(2, 2)"), 6, "(2, x)");
  EXPECT_THROW(ParseNpy(word), UsageError);
}

TEST(Render, CaptumCumulativeThreshold) {
  // |values| sorted: 1, 1, 1, 97; 98% of 100 is reached only at the last value.
  EXPECT_DOUBLE_EQ(CumulativeThreshold(torch::tensor({1.0, -1.0, 1.0, 97.0}), 2.0), 97.0);
  // With 5% clipped, the threshold is the largest of the small values.
  EXPECT_DOUBLE_EQ(CumulativeThreshold(torch::tensor({1.0, -1.0, 1.0, 97.0}), 5.0), 97.0);
  // Sorted 10, 20, 30, 40: cumulative 10, 30, 60, 100 reaches 60% at 30.
  EXPECT_DOUBLE_EQ(CumulativeThreshold(torch::tensor({40.0, -10.0, 30.0, 20.0}), 40.0), 30.0);
  EXPECT_DOUBLE_EQ(CumulativeThreshold(torch::zeros({4}), 2.0), 1.0);
}

TEST(ImageIo, ReadsGrayAndRgbaAndRejectsGarbage) {
  const std::string dir = test::TempDir("img");
  cv::Mat gray(4, 6, CV_8UC1, cv::Scalar(100));
  cv::imwrite(dir + "/g.png", gray);
  EXPECT_EQ(ReadImage(dir + "/g.png").channels(), 3);
  cv::Mat rgba(4, 6, CV_8UC4, cv::Scalar(0, 0, 255, 0));  // fully transparent red
  cv::imwrite(dir + "/a.png", rgba);
  const cv::Mat composited = ReadImage(dir + "/a.png");
  EXPECT_EQ(composited.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
  test::WriteText(dir + "/bad.png", "not an image");
  EXPECT_THROW(ReadImage(dir + "/bad.png"), UsageError);
  EXPECT_THROW(ReadImage(dir + "/missing.png"), UsageError);
}

TEST(Files, AtomicWriteLeavesNoTemporaryFiles) {
  const std::string dir = test::TempDir("files");
  WriteFileAtomic(dir + "/sub/a.txt", "hello");
  int count = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) count += e.is_regular_file();
  EXPECT_EQ(count, 1);
  EXPECT_THROW(WriteFileAtomic("/proc/netlens/forbidden.txt", "x"), RuntimeError);
}

}  // namespace
}  // namespace netlens

namespace netlens {
namespace {

// A JPEG whose frame header declares 60000 x 60000 pixels is refused before OpenCV allocates
// 10 GB for it (found by the image fuzzer); the same for PNG.
TEST(Image, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  std::vector<unsigned char> jpeg{0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, 0x00, 0x00,  // SOI, a DQT stub
                                  0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60, 0x03,
                                  0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9};
  try {
    DecodeImage(jpeg, "big.jpg");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("declares 60000x60000"), std::string::npos) << e.what();
  }
  std::vector<unsigned char> png{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                 0, 0, 0xC3, 0x50, 0, 0, 0xC3, 0x50, 8, 2, 0, 0, 0};
  EXPECT_THROW(DecodeImage(png, "big.png"), UsageError);
}

}  // namespace
}  // namespace netlens
