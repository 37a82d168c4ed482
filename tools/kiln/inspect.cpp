// `kiln inspect PKG [--json]`: everything the manifest says, in selection
// order, readable by a person or (with --json) by a program.
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands.h"
#include "json_writer.h"
#include "kiln/dtype.h"
#include "kiln/manifest_text.h"
#include "kiln/package_reader.h"
#include "kiln/support/hex.h"

namespace kiln::cli {
namespace {

template <class T>
uint32_t size_of(const flatbuffers::Vector<T>* v) {
  return v ? v->size() : 0;
}

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

const char* dtype_text(fb::DType t) {
  return static_cast<uint8_t>(t) < kDTypeCount ? dtype_name(static_cast<DType>(t)).data() : "?";
}

const char* blob_kind_text(fb::BlobKind kind) {
  switch (kind) {
    case fb::BlobKind::CpuSharedObject:
      return "cpu_shared_object";
    case fb::BlobKind::Cubin:
      return "cubin";
    case fb::BlobKind::Ptx:
      return "ptx";
    case fb::BlobKind::Source:
      return "source";
  }
  return "?";
}

const char* compression_text(fb::Compression c) {
  return c == fb::Compression::Zstd ? "zstd" : "none";
}

const char* role_text(fb::BufferRole role) {
  switch (role) {
    case fb::BufferRole::Input:
      return "input";
    case fb::BufferRole::Output:
      return "output";
    case fb::BufferRole::Temp:
      return "temp";
  }
  return "?";
}

const char* epilogue_text(fb::GemmEpilogue e) {
  switch (e) {
    case fb::GemmEpilogue::None:
      return "none";
    case fb::GemmEpilogue::Bias:
      return "bias";
    case fb::GemmEpilogue::Relu:
      return "relu";
    case fb::GemmEpilogue::BiasRelu:
      return "bias_relu";
  }
  return "?";
}

// A library call: "gemm f16 x f16 -> f32, m n, n 4096, k 1024, batch 1,
// trans_b, lda 1024, ldb 1024, stride_a 0, stride_b 0, alpha 1, epilogue
// bias"; every size as an expression of the symbols.
std::string library_call_text(const fb::GraphEntry& g, const fb::LibraryCall& call) {
  const fb::GemmCall* gemm = call.gemm();
  if (call.kind() != fb::LibraryCallKind::Gemm || gemm == nullptr) return "library call ?";
  char alpha[32];
  std::snprintf(alpha, sizeof alpha, "%g", gemm->alpha());
  std::string text = std::string("gemm ") + dtype_text(gemm->a_dtype()) + " x " +
                     dtype_text(gemm->b_dtype()) + " -> " + dtype_text(gemm->d_dtype());
  const std::pair<const char*, const fb::SizeExpr*> sizes[] = {{"m", gemm->m()},
                                                               {"n", gemm->n()},
                                                               {"k", gemm->k()},
                                                               {"batch", gemm->batch()},
                                                               {"lda", gemm->lda()},
                                                               {"ldb", gemm->ldb()},
                                                               {"stride_a", gemm->stride_a()},
                                                               {"stride_b", gemm->stride_b()}};
  for (const auto& [name, expr] : sizes) {
    text += std::string(", ") + name + " " + describe_size_expr(g, expr);
    if (std::string_view(name) == "batch") {
      if (gemm->trans_a()) text += ", trans_a";
      if (gemm->trans_b()) text += ", trans_b";
    }
  }
  return text + ", alpha " + alpha + ", epilogue " + epilogue_text(gemm->epilogue());
}

// A CUDA launch's grid, "[min(ceil_div(n, 1), 16777216), 1, 1]", and block.
std::string grid_text(const fb::GraphEntry& g, const fb::KernelLaunch& launch) {
  std::string text = "[";
  for (uint32_t d = 0; d < size_of(launch.grid()); ++d) {
    if (d > 0) text += ", ";
    text += describe_size_expr(g, launch.grid()->Get(d));
  }
  return text + "]";
}

std::string block_text(const fb::KernelLaunch& launch) {
  std::string text = "[";
  for (uint32_t d = 0; d < size_of(launch.block()); ++d) {
    if (d > 0) text += ", ";
    text += std::to_string(launch.block()->Get(d));
  }
  return text + "]";
}

// A blob's BLAKE2b-256 digest in hex, or "none" (a writer from before digests).
std::string digest_text(const fb::Blob& blob) {
  if (blob.digest() == nullptr) return "none";
  return support::hex_bytes({blob.digest()->data(), blob.digest()->size()});
}

std::string target_name(const fb::Manifest& m, uint32_t index) {
  return index < size_of(m.targets()) ? str(m.targets()->Get(index)->name()) : "?";
}

// The targets graph `g` is built for (GraphEntry.targets; every target of
// the package when absent, as in packages from before the field).
std::vector<std::string> graph_target_names(const fb::Manifest& m, const fb::GraphEntry& g) {
  std::vector<std::string> names;
  if (g.targets() == nullptr) {
    for (uint32_t t = 0; t < size_of(m.targets()); ++t) names.push_back(target_name(m, t));
  } else {
    for (uint32_t t : *g.targets()) names.push_back(target_name(m, t));
  }
  return names;
}

std::string symbol_values_text(const fb::Specialization& spec, const fb::GraphEntry& g) {
  std::string text;
  for (uint32_t s = 0; s < size_of(spec.symbol_values()); ++s) {
    if (!text.empty()) text += ", ";
    text += str(g.symbols()->Get(s)->name()) + "=";
    const int64_t v = spec.symbol_values()->Get(s);
    text += v < 0 ? std::string("dynamic") : std::to_string(v);
  }
  return text.empty() ? "-" : text;
}

void print_text(const PackageReader& reader, const std::filesystem::path& path) {
  const fb::Manifest& m = reader.manifest();
  const KilnPackageHeader& h = reader.header();
  std::printf("package %s: format %u.%u, %zu bytes, manifest %" PRIu64 " bytes\n", path.c_str(),
              h.format_major, h.format_minor, reader.file_bytes().size(), h.manifest_size);
  if (reader.signer()) {
    std::printf(
        "signed by key %s (ed25519 %s; signature valid, trust not checked: kiln verify "
        "--trusted-keys)\n",
        reader.signer()->key_id.c_str(), support::hex_bytes(reader.signer()->public_key).c_str());
  } else {
    std::printf("unsigned\n");
  }

  std::printf("\ntargets:\n");
  for (uint32_t t = 0; t < size_of(m.targets()); ++t) {
    const fb::Target* target = m.targets()->Get(t);
    std::printf("  [%u] %s (%s, arch %s)\n", t, str(target->name()).c_str(),
                target->device() == fb::DeviceKind::Cpu ? "cpu" : "cuda",
                str(target->arch()).c_str());
  }

  for (uint32_t gi = 0; gi < size_of(m.graphs()); ++gi) {
    const fb::GraphEntry& g = *m.graphs()->Get(gi);
    std::printf("\ngraph %s (structure %s)\n", str(g.name()).c_str(),
                hash_text(g.structure_hash()).c_str());
    std::string targets;
    for (const std::string& name : graph_target_names(m, g)) {
      targets += (targets.empty() ? "" : ", ") + name;
    }
    std::printf("  targets: %s\n", targets.empty() ? "none" : targets.c_str());
    for (uint32_t s = 0; s < size_of(g.symbols()); ++s) {
      const fb::Symbol* sym = g.symbols()->Get(s);
      std::string hot;
      for (uint32_t i = 0; i < size_of(sym->hot()); ++i) {
        hot += (i ? ", " : "") + std::to_string(sym->hot()->Get(i));
      }
      std::printf("  symbol %s in [%" PRId64 ", %" PRId64 "]%s%s%s\n", str(sym->name()).c_str(),
                  sym->min(), sym->max(),
                  sym->divisible_by() > 1
                      ? (", divisible by " + std::to_string(sym->divisible_by())).c_str()
                      : "",
                  hot.empty() ? "" : ", hot ", hot.c_str());
    }
    for (uint32_t t = 0; t < size_of(g.inputs()); ++t) {
      const fb::TensorSpec& spec = *g.inputs()->Get(t);
      std::printf("  input  %s: %s%s\n", str(spec.name()).c_str(), dtype_text(spec.dtype()),
                  describe_dims(g, spec).c_str());
    }
    for (uint32_t t = 0; t < size_of(g.outputs()); ++t) {
      const fb::TensorSpec& spec = *g.outputs()->Get(t);
      std::printf("  output %s: %s%s\n", str(spec.name()).c_str(), dtype_text(spec.dtype()),
                  describe_dims(g, spec).c_str());
    }
    std::printf("  IR: %u nodes\n", g.ir() ? size_of(g.ir()->nodes()) : 0);
    std::printf("  specializations, in selection order:\n");
    for (uint32_t s = 0; s < size_of(g.specializations()); ++s) {
      const fb::Specialization& spec = *g.specializations()->Get(s);
      std::printf("    %u. %s  target %s  key %s\n", s + 1, str(spec.name()).c_str(),
                  target_name(m, spec.target()).c_str(), hash_text(spec.key()).c_str());
      std::printf("       symbols: %s\n", symbol_values_text(spec, g).c_str());
      for (uint32_t i = 0; i < size_of(spec.guards()); ++i) {
        std::printf("       guard: %s\n", describe_guard(g, *spec.guards()->Get(i)).c_str());
      }
      const fb::LaunchPlan* plan = spec.plan();
      for (uint32_t b = 0; plan && b < size_of(plan->buffers()); ++b) {
        const fb::BufferDecl* d = plan->buffers()->Get(b);
        std::printf("       buffer %u: %s %u, %s, numel %s\n", b, role_text(d->role()), d->index(),
                    dtype_text(d->dtype()), describe_size_expr(g, d->numel()).c_str());
      }
      for (uint32_t l = 0; plan && l < size_of(plan->launches()); ++l) {
        const fb::KernelLaunch* launch = plan->launches()->Get(l);
        std::string buffers;
        for (uint32_t b = 0; b < size_of(launch->buffers()); ++b) {
          buffers += (b ? ", " : "") + std::to_string(launch->buffers()->Get(b));
        }
        const uint32_t k = launch->kernel();
        const std::string kernel =
            k < size_of(m.kernels()) ? str(m.kernels()->Get(k)->name()) : "?";
        if (launch->library_call() != nullptr) {
          std::printf("       launch %u: %s (buffers %s)\n", l,
                      library_call_text(g, *launch->library_call()).c_str(), buffers.c_str());
        } else if (size_of(launch->grid()) > 0) {
          std::printf("       launch %u: kernel %s (buffers %s), grid %s, block %s, shared %u\n", l,
                      kernel.c_str(), buffers.c_str(), grid_text(g, *launch).c_str(),
                      block_text(*launch).c_str(), launch->shared_bytes());
        } else {
          std::printf("       launch %u: kernel %s (buffers %s), work items %s, cost %s\n", l,
                      kernel.c_str(), buffers.c_str(),
                      describe_size_expr(g, launch->work_items()).c_str(),
                      describe_size_expr(g, launch->item_cost()).c_str());
        }
      }
    }
  }

  std::printf("\nkernels:\n");
  for (uint32_t k = 0; k < size_of(m.kernels()); ++k) {
    const fb::Kernel* kernel = m.kernels()->Get(k);
    std::printf("  [%u] %s: entry %s, target %s, blob %u%s\n", k, str(kernel->name()).c_str(),
                str(kernel->entry()).c_str(), target_name(m, kernel->target()).c_str(),
                kernel->blob(),
                kernel->source_blob() >= 0
                    ? (", source blob " + std::to_string(kernel->source_blob())).c_str()
                    : "");
  }
  std::printf("\nblobs:\n");
  for (uint32_t b = 0; b < size_of(m.blobs()); ++b) {
    const fb::Blob* blob = m.blobs()->Get(b);
    std::printf("  [%u] %s, target %s, offset %" PRIu64 ", stored %" PRIu64 " bytes, raw %" PRIu64
                " bytes, %s, hash %s, digest %s\n",
                b, blob_kind_text(blob->kind()), target_name(m, blob->target()).c_str(),
                blob->offset(), blob->stored_size(), blob->raw_size(),
                compression_text(blob->compression()), hash_text(blob->hash()).c_str(),
                digest_text(*blob).c_str());
  }
  std::printf("\nprovenance:\n");
  if (const fb::Provenance* p = m.provenance()) {
    std::printf("  kiln version: %s\n", str(p->kiln_version()).c_str());
    for (uint32_t i = 0; i < size_of(p->compilers()); ++i) {
      std::printf("  compiler: %s\n", p->compilers()->Get(i)->c_str());
    }
    for (uint32_t i = 0; i < size_of(p->flags()); ++i) {
      std::printf("  flag: %s\n", p->flags()->Get(i)->c_str());
    }
    std::printf("  source hash: %s\n", hash_text(p->source_hash()).c_str());
  } else {
    std::printf("  none\n");
  }
}

void json_tensor(JsonWriter& j, const fb::GraphEntry& g, const fb::TensorSpec& t) {
  j.begin_object();
  j.key("name");
  j.value(str(t.name()));
  j.key("dtype");
  j.value(dtype_text(t.dtype()));
  j.key("shape");
  j.begin_array();
  for (uint32_t d = 0; d < size_of(t.dims()); ++d) {
    const fb::Dim* dim = t.dims()->Get(d);
    if (dim->symbol() >= 0 && static_cast<uint32_t>(dim->symbol()) < size_of(g.symbols())) {
      j.value(str(g.symbols()->Get(dim->symbol())->name()));
    } else {
      j.value(dim->value());
    }
  }
  j.end_array();
  j.end_object();
}

std::string print_json(const PackageReader& reader, const std::filesystem::path& path) {
  const fb::Manifest& m = reader.manifest();
  const KilnPackageHeader& h = reader.header();
  JsonWriter j;
  j.begin_object();
  j.key("path");
  j.value(path.string());
  j.key("format");
  j.value(std::to_string(h.format_major) + "." + std::to_string(h.format_minor));
  j.key("file_size");
  j.value(static_cast<uint64_t>(reader.file_bytes().size()));
  j.key("manifest_size");
  j.value(h.manifest_size);
  // The signer's public key (hex), or null when unsigned.
  j.key("signed_by");
  if (reader.signer()) {
    j.value(support::hex_bytes(reader.signer()->public_key));
  } else {
    j.null();
  }

  j.key("targets");
  j.begin_array();
  for (uint32_t t = 0; t < size_of(m.targets()); ++t) {
    const fb::Target* target = m.targets()->Get(t);
    j.begin_object();
    j.key("name");
    j.value(str(target->name()));
    j.key("device");
    j.value(target->device() == fb::DeviceKind::Cpu ? "cpu" : "cuda");
    j.key("arch");
    j.value(str(target->arch()));
    j.end_object();
  }
  j.end_array();

  j.key("graphs");
  j.begin_array();
  for (uint32_t gi = 0; gi < size_of(m.graphs()); ++gi) {
    const fb::GraphEntry& g = *m.graphs()->Get(gi);
    j.begin_object();
    j.key("name");
    j.value(str(g.name()));
    j.key("structure_hash");
    j.value(hash_text(g.structure_hash()));
    j.key("targets");
    j.begin_array();
    for (const std::string& name : graph_target_names(m, g)) j.value(name);
    j.end_array();
    j.key("symbols");
    j.begin_array();
    for (uint32_t s = 0; s < size_of(g.symbols()); ++s) {
      const fb::Symbol* sym = g.symbols()->Get(s);
      j.begin_object();
      j.key("name");
      j.value(str(sym->name()));
      j.key("min");
      j.value(sym->min());
      j.key("max");
      j.value(sym->max());
      j.key("divisible_by");
      j.value(sym->divisible_by());
      j.key("hot");
      j.begin_array();
      for (uint32_t i = 0; i < size_of(sym->hot()); ++i) j.value(sym->hot()->Get(i));
      j.end_array();
      j.end_object();
    }
    j.end_array();
    j.key("inputs");
    j.begin_array();
    for (uint32_t t = 0; t < size_of(g.inputs()); ++t) json_tensor(j, g, *g.inputs()->Get(t));
    j.end_array();
    j.key("outputs");
    j.begin_array();
    for (uint32_t t = 0; t < size_of(g.outputs()); ++t) json_tensor(j, g, *g.outputs()->Get(t));
    j.end_array();
    j.key("ir_nodes");
    j.value(g.ir() ? size_of(g.ir()->nodes()) : 0u);
    j.key("specializations");
    j.begin_array();
    for (uint32_t s = 0; s < size_of(g.specializations()); ++s) {
      const fb::Specialization& spec = *g.specializations()->Get(s);
      j.begin_object();
      j.key("name");
      j.value(str(spec.name()));
      j.key("target");
      j.value(target_name(m, spec.target()));
      j.key("key");
      j.value(hash_text(spec.key()));
      j.key("symbol_values");
      j.begin_array();
      for (uint32_t v = 0; v < size_of(spec.symbol_values()); ++v) {
        j.value(spec.symbol_values()->Get(v));
      }
      j.end_array();
      j.key("guards");
      j.begin_array();
      for (uint32_t i = 0; i < size_of(spec.guards()); ++i) {
        j.value(describe_guard(g, *spec.guards()->Get(i)));
      }
      j.end_array();
      j.key("launches");
      j.begin_array();
      const fb::LaunchPlan* plan = spec.plan();
      for (uint32_t l = 0; plan && l < size_of(plan->launches()); ++l) {
        const fb::KernelLaunch* launch = plan->launches()->Get(l);
        j.begin_object();
        if (launch->library_call() != nullptr) {
          j.key("library_call");
          j.value(library_call_text(g, *launch->library_call()));
          j.end_object();
          continue;
        }
        j.key("kernel");
        j.value(launch->kernel() < size_of(m.kernels())
                    ? str(m.kernels()->Get(launch->kernel())->name())
                    : std::string("?"));
        if (size_of(launch->grid()) > 0) {
          j.key("grid");
          j.value(grid_text(g, *launch));
          j.key("block");
          j.value(block_text(*launch));
          j.key("shared_bytes");
          j.value(static_cast<uint64_t>(launch->shared_bytes()));
        } else {
          j.key("work_items");
          j.value(describe_size_expr(g, launch->work_items()));
          j.key("item_cost");
          j.value(describe_size_expr(g, launch->item_cost()));
        }
        j.end_object();
      }
      j.end_array();
      j.end_object();
    }
    j.end_array();
    j.end_object();
  }
  j.end_array();

  j.key("kernels");
  j.begin_array();
  for (uint32_t k = 0; k < size_of(m.kernels()); ++k) {
    const fb::Kernel* kernel = m.kernels()->Get(k);
    j.begin_object();
    j.key("name");
    j.value(str(kernel->name()));
    j.key("entry");
    j.value(str(kernel->entry()));
    j.key("target");
    j.value(target_name(m, kernel->target()));
    j.key("blob");
    j.value(kernel->blob());
    j.key("source_blob");
    j.value(static_cast<int64_t>(kernel->source_blob()));
    j.end_object();
  }
  j.end_array();

  j.key("blobs");
  j.begin_array();
  for (uint32_t b = 0; b < size_of(m.blobs()); ++b) {
    const fb::Blob* blob = m.blobs()->Get(b);
    j.begin_object();
    j.key("kind");
    j.value(blob_kind_text(blob->kind()));
    j.key("target");
    j.value(target_name(m, blob->target()));
    j.key("offset");
    j.value(blob->offset());
    j.key("stored_size");
    j.value(blob->stored_size());
    j.key("raw_size");
    j.value(blob->raw_size());
    j.key("compression");
    j.value(compression_text(blob->compression()));
    j.key("hash");
    j.value(hash_text(blob->hash()));
    j.key("digest");  // BLAKE2b-256 in hex, or null
    if (blob->digest() != nullptr) {
      j.value(digest_text(*blob));
    } else {
      j.null();
    }
    j.end_object();
  }
  j.end_array();

  j.key("provenance");
  if (const fb::Provenance* p = m.provenance()) {
    j.begin_object();
    j.key("kiln_version");
    j.value(str(p->kiln_version()));
    j.key("compilers");
    j.begin_array();
    for (uint32_t i = 0; i < size_of(p->compilers()); ++i) j.value(p->compilers()->Get(i)->str());
    j.end_array();
    j.key("flags");
    j.begin_array();
    for (uint32_t i = 0; i < size_of(p->flags()); ++i) j.value(p->flags()->Get(i)->str());
    j.end_array();
    j.key("source_hash");
    j.value(hash_text(p->source_hash()));
    j.end_object();
  } else {
    j.null();
  }
  j.end_object();
  return j.text();
}

}  // namespace

int run_inspect(const std::filesystem::path& package, bool json) {
  try {
    PackageReader reader = PackageReader::open_file(package);
    if (json) {
      std::printf("%s\n", print_json(reader, package).c_str());
    } else {
      print_text(reader, package);
    }
    return 0;
  } catch (const std::exception& e) {
    return report_failure(e);
  }
}

}  // namespace kiln::cli
