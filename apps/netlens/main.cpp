// netlens: what a convolutional network sees. This executable is small on purpose: LibTorch (and
// with Debian's build, the 286 shared libraries it needs) takes about half a second to load and
// register its operators, which every command paid before it did anything, `--version` too. The
// executable answers `--version` itself, loading only the BLAS library it reports on, and loads
// the engine (libnetlens_engine.so beside it: LibTorch, OpenCV, the techniques) for everything
// else (docs/performance.md, cold start).
#include <dlfcn.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <climits>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "apps/netlens/version_text.h"
#include "netlens/core/blas.h"
#include "netlens/core/errors.h"

namespace {

// glibc serves every allocation above its mmap threshold (at most 32 MB by default) with a fresh
// mmap, which the kernel page-faults and zeroes on first touch and unmaps on free. A batch's
// activations are tens of MB each, allocated and freed at every optimization step or batched
// pass: measured on featurevis with 16 channels, that was most of the step's time (1.5 s ->
// 0.55 s per step). Keeping large blocks in the heap lets them be reused.
// NETLENS_MALLOC_DEFAULT=1 keeps glibc's defaults (for comparisons, docs/performance.md).
void TuneAllocator() {
#if defined(__GLIBC__)
  if (std::getenv("NETLENS_MALLOC_DEFAULT") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

// The folder of this executable (the engine is built beside it), from /proc/self/exe.
std::string OwnFolder() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  std::string self(path, static_cast<size_t>(n));
  const size_t slash = self.rfind('/');
  return slash == std::string::npos ? "." : self.substr(0, slash);
}

// What `netlens --version` prints: the BLAS line needs the BLAS that LibTorch would call, which
// the executable's DT_RPATH finds as the engine's libraries would (Debian's OpenMP OpenBLAS first).
int PrintVersion() {
  dlopen("libblas.so.3", RTLD_NOW | RTLD_GLOBAL);  // not there: DescribeBlas says so
  netlens::ChooseBlasKernels();
  std::cout << netlens::VersionText() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  TuneAllocator();
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) return PrintVersion();
  const std::string engine = OwnFolder() + "/libnetlens_engine.so";
  void* handle = dlopen(engine.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    std::cerr << "[error] netlens cannot load its engine " << engine << ": " << dlerror()
              << "\n  it is built beside the netlens executable (bash tools/build.sh); keep the two together\n";
    return netlens::kExitFailure;
  }
  using EngineMain = int (*)(int, char**);
  auto run = reinterpret_cast<EngineMain>(dlsym(handle, "netlens_engine_main"));
  if (run == nullptr) {
    std::cerr << "[error] " << engine << " has no netlens_engine_main: " << dlerror() << "\n";
    return netlens::kExitFailure;
  }
  return run(argc, argv);
}
