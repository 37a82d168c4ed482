#include "cache_entry.h"

#include <cstring>

#include "kiln/abi/library_call.h"
#include "kiln/error.h"
#include "kiln/runtime_internal/manifest_validation.h"

namespace kiln::jit::detail {
namespace {

class Writer {
 public:
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  void bytes(const void* data, size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    out.insert(out.end(), p, p + size);
  }
  std::vector<std::byte> out;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  bool u64(uint64_t& v) {
    if (in_.size() - at_ < sizeof v) return false;
    std::memcpy(&v, in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return true;
  }
  // A length-prefixed run of bytes.
  bool block(std::span<const std::byte>& out) {
    uint64_t size = 0;
    if (!u64(size) || in_.size() - at_ < size) return false;
    out = in_.subspan(at_, size);
    at_ += size;
    return true;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  std::span<const std::byte> in_;
  size_t at_ = 0;
};

compiler::SizeExpr expr(const fb::SizeExpr* e, int64_t missing) {
  if (e == nullptr || e->ops() == nullptr || e->ops()->size() == 0) {
    return compiler::SizeExpr::constant(missing);
  }
  std::vector<compiler::ExprOp> ops;
  for (const fb::ExprOp* op : *e->ops()) {
    ops.push_back({static_cast<compiler::ExprOpKind>(op->kind()), op->value()});
  }
  return compiler::SizeExpr::from_ops(std::move(ops));
}

std::vector<compiler::PlanBuffer> buffers(const fb::LaunchPlan& plan) {
  std::vector<compiler::PlanBuffer> out;
  if (plan.buffers() == nullptr) return out;
  for (const fb::BufferDecl* b : *plan.buffers()) {
    out.push_back({static_cast<compiler::BufferRole>(b->role()), b->index(),
                   static_cast<DType>(b->dtype()), expr(b->numel(), 0)});
  }
  return out;
}

std::vector<uint32_t> launch_buffers(const fb::KernelLaunch& l) {
  return l.buffers() ? std::vector<uint32_t>(l.buffers()->begin(), l.buffers()->end())
                     : std::vector<uint32_t>{};
}

}  // namespace

std::vector<std::byte> pack_entry(const CacheEntry& entry) {
  Writer w;
  w.u64(entry.specialization.size());
  w.bytes(entry.specialization.data(), entry.specialization.size());
  w.u64(entry.kernels.size());
  for (const std::string& k : entry.kernels) {
    w.u64(k.size());
    w.bytes(k.data(), k.size());
  }
  w.u64(entry.code.size());
  for (const auto& c : entry.code) {
    w.u64(c.size());
    w.bytes(c.data(), c.size());
  }
  return std::move(w.out);
}

std::optional<CacheEntry> unpack_entry(std::span<const std::byte> payload) {
  Reader r(payload);
  CacheEntry entry;
  std::span<const std::byte> block;
  if (!r.block(block)) return std::nullopt;
  entry.specialization.assign(reinterpret_cast<const uint8_t*>(block.data()),
                              reinterpret_cast<const uint8_t*>(block.data()) + block.size());
  uint64_t count = 0;
  if (!r.u64(count) || count > payload.size()) return std::nullopt;
  for (uint64_t k = 0; k < count; ++k) {
    if (!r.block(block)) return std::nullopt;
    entry.kernels.emplace_back(reinterpret_cast<const char*>(block.data()), block.size());
  }
  if (!r.u64(count) || count > payload.size()) return std::nullopt;
  for (uint64_t c = 0; c < count; ++c) {
    if (!r.block(block)) return std::nullopt;
    entry.code.emplace_back(block.begin(), block.end());
  }
  if (!r.done()) return std::nullopt;
  flatbuffers::Verifier verifier(entry.specialization.data(), entry.specialization.size());
  if (!verifier.VerifyBuffer<fb::Specialization>(nullptr)) return std::nullopt;
  const auto* spec = flatbuffers::GetRoot<fb::Specialization>(entry.specialization.data());
  if (spec->plan() == nullptr) return std::nullopt;
  const uint32_t buffer_count = spec->plan()->buffers() ? spec->plan()->buffers()->size() : 0;
  if (spec->plan()->launches() != nullptr) {
    for (const fb::KernelLaunch* l : *spec->plan()->launches()) {
      const bool library_call = l->kernel() == kNoKernel && l->library_call() != nullptr;
      if (l->kernel() >= entry.kernels.size() && !library_call) return std::nullopt;
      if (l->buffers() != nullptr) {
        for (uint32_t b : *l->buffers()) {
          if (b >= buffer_count) return std::nullopt;
        }
      }
    }
  }
  return entry;
}

bool fits_graph(std::span<const uint8_t> specialization, size_t symbols) {
  const auto* spec = flatbuffers::GetRoot<fb::Specialization>(specialization.data());
  const size_t values = spec->symbol_values() ? spec->symbol_values()->size() : 0;
  if (values != symbols) return false;
  auto fits = [&](const fb::SizeExpr* e) {
    if (e == nullptr || e->ops() == nullptr) return true;
    for (const fb::ExprOp* op : *e->ops()) {
      if (op->kind() > fb::ExprOpKind::MAX) return false;
      if (op->kind() == fb::ExprOpKind::Symbol &&
          (op->value() < 0 || static_cast<uint64_t>(op->value()) >= symbols)) {
        return false;
      }
    }
    return true;
  };
  const fb::LaunchPlan& plan = *spec->plan();
  if (plan.buffers() != nullptr) {
    for (const fb::BufferDecl* b : *plan.buffers()) {
      if (!fits(b->numel())) return false;
    }
  }
  if (plan.launches() != nullptr) {
    for (const fb::KernelLaunch* l : *plan.launches()) {
      if (!fits(l->work_items()) || !fits(l->item_cost())) return false;
      if (l->grid() != nullptr) {
        for (const fb::SizeExpr* g : *l->grid()) {
          if (!fits(g)) return false;
        }
      }
      if (l->library_call() != nullptr || l->kernel() == kNoKernel) {
        if (l->kernel() != kNoKernel) return false;  // a call and a kernel: which one?
        try {
          ::kiln::detail::validate_library_call(*l, plan, static_cast<uint32_t>(symbols),
                                                "cached launch");
        } catch (const PackageError&) {
          return false;
        }
      }
    }
  }
  return true;
}

compiler::CpuLoweredGraph cpu_plan(const fb::Specialization& spec,
                                   const std::vector<std::string>& kernels) {
  compiler::CpuLoweredGraph out;
  out.buffers = buffers(*spec.plan());
  for (const std::string& k : kernels) out.kernels.push_back({k, {}});
  if (spec.plan()->launches() == nullptr) return out;
  for (const fb::KernelLaunch* l : *spec.plan()->launches()) {
    if (l->library_call() != nullptr || l->kernel() == kNoKernel) {
      throw Error(ErrorCode::internal, "kiln: a cached CPU plan makes a library call");
    }
    out.launches.push_back(
        {l->kernel(), launch_buffers(*l), expr(l->work_items(), 0), expr(l->item_cost(), 1)});
  }
  return out;
}

compiler::CudaLoweredGraph cuda_plan(const fb::Specialization& spec,
                                     const std::vector<std::string>& kernels) {
  compiler::CudaLoweredGraph out;
  out.buffers = buffers(*spec.plan());
  for (const std::string& k : kernels) out.kernels.push_back({k, {}});
  if (spec.plan()->launches() == nullptr) return out;
  for (const fb::KernelLaunch* l : *spec.plan()->launches()) {
    compiler::CudaLaunch launch;
    launch.kernel = l->kernel();
    launch.buffers = launch_buffers(*l);
    for (uint32_t d = 0; d < 3; ++d) {
      const fb::SizeExpr* g = l->grid() && d < l->grid()->size() ? l->grid()->Get(d) : nullptr;
      launch.grid[d] = expr(g, 1);
      if (l->block() && d < l->block()->size()) launch.block[d] = l->block()->Get(d);
    }
    launch.shared_bytes = l->shared_bytes();
    out.launches.push_back(std::move(launch));
  }
  return out;
}

std::vector<std::optional<::kiln::detail::GemmProgram>> cuda_gemms(const fb::Specialization& spec) {
  std::vector<std::optional<::kiln::detail::GemmProgram>> out;
  if (spec.plan()->launches() == nullptr) return out;
  for (const fb::KernelLaunch* l : *spec.plan()->launches()) {
    out.emplace_back();
    if (const fb::LibraryCall* call = l->library_call()) out.back().emplace(*call->gemm());
  }
  return out;
}

}  // namespace kiln::jit::detail
