// What a benchmark timed, written down so that the peer can check it: the
// inputs of the last timed call and the output that call produced, as .npy
// files, with one JSON line per benchmark row in DIR/manifest.jsonl naming
// them. `torch_peer.py --check DIR` and `torch_models.py --check DIR`
// compare each output with a float64 reference PyTorch computes from those
// very inputs (tests/gpu/output_check.py), so the specialization that was
// timed is the one that is checked, in the same run.
//
// numpy has no bfloat16: a bf16 tensor is written as its bits ('<u2') and
// the manifest says "bf16", so the reader views the bits as torch.bfloat16.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <kiln/runtime.h>

#include "cuda_support.h"

namespace kiln_gpu {

// numpy's type string for a Kiln dtype's storage.
inline const char* npy_descr(kiln::DType dtype) {
  switch (dtype) {
    case kiln::DType::f32:
      return "<f4";
    case kiln::DType::f64:
      return "<f8";
    case kiln::DType::f16:
      return "<f2";
    case kiln::DType::bf16:
      return "<u2";
    case kiln::DType::i32:
      return "<i4";
    case kiln::DType::i64:
      return "<i8";
    case kiln::DType::boolean:
      return "|b1";
  }
  throw std::invalid_argument("npy_descr: unknown dtype");
}

// A .npy file (format 1.0): magic, header length, a Python dict literal
// padded so the data starts 64-byte aligned, then the C-order bytes.
inline void write_npy(const std::filesystem::path& path, kiln::DType dtype,
                      const std::vector<int64_t>& shape, const void* data, size_t bytes) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 1);  // "(3,)" but "(3, 4)"
  std::string header = "{'descr': '" + std::string(npy_descr(dtype)) +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t preamble = 10;  // magic (6), version (2), header length (2)
  header.append(64 - (preamble + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const auto length = static_cast<uint16_t>(header.size());
  const char length_le[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
  out.write(magic, sizeof magic);
  out.write(length_le, sizeof length_le);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

class OutputDump {
 public:
  // A tensor of a row: `name` is the argument it binds (the peer function's
  // parameter name); `file` is shared by rows that read the same buffer.
  struct Tensor {
    std::string name;
    std::string file;
    const DLTensor* tensor;
  };

  explicit OutputDump(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    manifest_.open(dir_ / "manifest.jsonl", std::ios::trunc);
    if (!manifest_) throw std::runtime_error("cannot write " + (dir_ / "manifest.jsonl").string());
  }

  // Copies each tensor of a finished call to the host and writes it (a file
  // already written by an earlier row is not written again), then the row's
  // manifest line. `fields` are the row's own JSON members ("\"row\":...").
  // The caller has synchronized the stream the call ran on.
  void add_row(const std::string& fields, const std::vector<Tensor>& inputs, const Tensor& output) {
    std::string line = "{" + fields + ",\"inputs\":[";
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (i > 0) line += ',';
      line += write(inputs[i]);
    }
    line += "],\"output\":" + write(output) + "}\n";
    manifest_ << line << std::flush;
    if (!manifest_) throw std::runtime_error("cannot write " + (dir_ / "manifest.jsonl").string());
  }

 private:
  std::string write(const Tensor& t) {
    const DLTensor& dl = *t.tensor;
    const std::optional<kiln::DType> known = kiln::dtype_from_dlpack(dl.dtype);
    if (!known) throw std::invalid_argument("output dump: " + t.name + " has no Kiln dtype");
    const kiln::DType dtype = *known;
    const std::vector<int64_t> shape(dl.shape, dl.shape + dl.ndim);
    size_t bytes = static_cast<size_t>(kiln::dtype_size(dtype));
    for (int64_t d : shape) bytes *= static_cast<size_t>(d);
    if (written_.insert(t.file).second) {
      std::vector<uint8_t> host(bytes);
      const auto* from = static_cast<const uint8_t*>(dl.data) + dl.byte_offset;
      check_cuda(cudaMemcpy(host.data(), from, bytes, cudaMemcpyDeviceToHost),
                 "cudaMemcpy (output dump)");
      write_npy(dir_ / t.file, dtype, shape, host.data(), bytes);
    }
    std::string dims;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (i > 0) dims += ',';
      dims += std::to_string(shape[i]);
    }
    return "{\"name\":\"" + json_escape(t.name) + "\",\"file\":\"" + json_escape(t.file) +
           "\",\"dtype\":\"" + std::string(kiln::dtype_name(dtype)) + "\",\"shape\":[" + dims +
           "]}";
  }

  std::filesystem::path dir_;
  std::ofstream manifest_;
  std::set<std::string> written_;
};

}  // namespace kiln_gpu
