#include "netlens/image/npy.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "netlens/core/errors.h"
#include "netlens/core/strings.h"

namespace netlens {

std::string NpyBytes(const torch::Tensor& tensor) {
  static_assert(sizeof(float) == 4, "float32 expected");
  // float64 computations keep their precision in the file, so parity can be checked from it.
  const bool f8 = tensor.scalar_type() == torch::kFloat64;
  const torch::Tensor t =
      tensor.detach().to(torch::kCPU, f8 ? torch::kFloat64 : torch::kFloat32).contiguous();
  std::string shape;
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + ", ";
  if (t.dim() > 1) shape.resize(shape.size() - 2);
  if (t.dim() == 1) shape.resize(shape.size() - 1);
  std::string header = std::string("{'descr': '") + (f8 ? "<f8" : "<f4") + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Pad with spaces so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out += static_cast<char>(len & 0xFF);
  out += static_cast<char>(len >> 8);
  out += header;
  out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

torch::Tensor ParseNpy(const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
    throw UsageError("not a .npy file");
  const size_t len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  const std::string header = bytes.substr(10, len);
  const bool f8 = header.find("'<f8'") != std::string::npos;
  if (!f8 && header.find("'<f4'") == std::string::npos)
    throw UsageError(".npy: only little-endian float32/float64 is supported");
  if (header.find("'fortran_order': False") == std::string::npos)
    throw UsageError(".npy: Fortran order is not supported");
  const auto open = header.find('('), close = header.find(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    throw UsageError(".npy: header without a shape");
  std::vector<int64_t> shape;
  double count = 1;
  for (const auto& part : Split(header.substr(open + 1, close - open - 1), ',')) {
    const std::string p = Trim(part);
    if (p.empty()) continue;
    if (p.size() > 12 || p.find_first_not_of("0123456789") != std::string::npos)
      throw UsageError(".npy: bad dimension " + Quote(p));
    shape.push_back(std::stoll(p));
    count *= static_cast<double>(shape.back());
  }
  if (count * (f8 ? 8 : 4) > static_cast<double>(bytes.size())) throw UsageError(".npy: file is truncated");
  const auto dtype = f8 ? torch::kFloat64 : torch::kFloat32;
  torch::Tensor t = torch::empty(shape, dtype);
  const size_t nbytes = t.numel() * (f8 ? 8 : 4);
  if (bytes.size() < 10 + len + nbytes) throw UsageError(".npy: file is truncated");
  std::memcpy(t.data_ptr(), bytes.data() + 10 + len, nbytes);
  return t;
}

torch::Tensor ReadNpyFile(const std::string& path, const std::string& name, double max_bytes,
                          const std::string& bound) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(name + " is missing");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<double>(in.tellg());
  if (size > max_bytes) throw UsageError(name + " is " + FormatBytes(size) + ", larger than " + bound);
  in.seekg(0);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return ParseNpy(bytes);
  } catch (const UsageError& e) {
    throw UsageError(name + ": " + e.what());
  }
}

}  // namespace netlens
