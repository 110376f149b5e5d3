#include "netlens/image/gif.h"

#include <gif_lib.h>

#include <cstring>
#include <memory>

#include "netlens/core/errors.h"

namespace netlens {

namespace {

int AppendBytes(GifFileType* gif, const GifByteType* data, int length) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data),
                                                   static_cast<size_t>(length));
  return length;
}

void Check(int status, const char* what) {
  if (status != GIF_OK) throw RuntimeError(std::string("GIF encoding failed at ") + what);
}

}  // namespace

std::string GifBytes(const std::vector<cv::Mat>& frames, int delay_cs, int last_delay_cs) {
  if (frames.empty()) throw InternalError("GifBytes: no frames");
  const int w = frames[0].cols, h = frames[0].rows;
  std::string out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, AppendBytes, &error);
  if (gif == nullptr) throw RuntimeError("GIF encoding failed: " + std::string(GifErrorString(error)));
  struct Closer {
    GifFileType* gif;
    ~Closer() {
      int e = 0;
      if (gif) EGifCloseFile(gif, &e);
    }
  } closer{gif};
  EGifSetGifVersion(gif, true);
  Check(EGifPutScreenDesc(gif, w, h, 8, 0, nullptr), "screen descriptor");
  // NETSCAPE2.0 application extension: loop forever.
  Check(EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE), "loop extension");
  Check(EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0"), "loop extension");
  const unsigned char loop[3] = {1, 0, 0};
  Check(EGifPutExtensionBlock(gif, 3, loop), "loop extension");
  Check(EGifPutExtensionTrailer(gif), "loop extension");

  const size_t pixels = static_cast<size_t>(w) * static_cast<size_t>(h);
  std::vector<GifByteType> r(pixels), g(pixels), b(pixels), indices(pixels);
  for (size_t f = 0; f < frames.size(); ++f) {
    const cv::Mat& frame = frames[f];
    if (frame.cols != w || frame.rows != h || frame.type() != CV_8UC3)
      throw InternalError("GifBytes: frames differ in size or type");
    for (int y = 0; y < h; ++y) {
      const auto* row = frame.ptr<cv::Vec3b>(y);
      for (int x = 0; x < w; ++x) {
        const size_t i = static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x);
        b[i] = row[x][0];
        g[i] = row[x][1];
        r[i] = row[x][2];
      }
    }
    int colors = 256;
    GifColorType palette[256];
    std::memset(palette, 0, sizeof(palette));
    Check(GifQuantizeBuffer(static_cast<unsigned>(w), static_cast<unsigned>(h), &colors, r.data(),
                            g.data(), b.data(), indices.data(), palette), "colour quantization");
    GraphicsControlBlock gcb;
    gcb.DisposalMode = DISPOSAL_UNSPECIFIED;
    gcb.UserInputFlag = false;
    gcb.DelayTime = f + 1 == frames.size() ? last_delay_cs : delay_cs;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType extension[4];
    EGifGCBToExtension(&gcb, extension);
    Check(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, extension), "frame delay");
    std::unique_ptr<ColorMapObject, void (*)(ColorMapObject*)> map(GifMakeMapObject(256, palette),
                                                                  GifFreeMapObject);
    if (!map) throw RuntimeError("GIF encoding failed: out of memory for a palette");
    Check(EGifPutImageDesc(gif, 0, 0, w, h, false, map.get()), "image descriptor");
    for (int y = 0; y < h; ++y)
      Check(EGifPutLine(gif, indices.data() + static_cast<size_t>(y) * static_cast<size_t>(w), w),
            "pixel data");
  }
  closer.gif = nullptr;
  if (EGifCloseFile(gif, &error) != GIF_OK)
    throw RuntimeError("GIF encoding failed: " + std::string(GifErrorString(error)));
  return out;
}

}  // namespace netlens
