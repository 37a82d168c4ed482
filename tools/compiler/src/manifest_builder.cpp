#include "kiln/compiler/manifest_builder.h"

#include <algorithm>
#include <set>

namespace kiln::compiler {

fb::Hash128 to_fb(const Hash128& h) { return fb::Hash128(h.lo, h.hi); }

std::unique_ptr<fb::SizeExprT> to_fb(const SizeExpr& e) {
  auto out = std::make_unique<fb::SizeExprT>();
  for (const auto& op : e.ops()) {
    out->ops.emplace_back(static_cast<fb::ExprOpKind>(op.kind), op.value);
  }
  return out;
}

std::unique_ptr<fb::KeyComponentsT> to_fb(const KeyComponents& k) {
  auto out = std::make_unique<fb::KeyComponentsT>();
  out->structure = std::make_unique<fb::Hash128>(to_fb(k.structure));
  out->dtypes = std::make_unique<fb::Hash128>(to_fb(k.dtypes));
  out->shapes = std::make_unique<fb::Hash128>(to_fb(k.shapes));
  out->target = std::make_unique<fb::Hash128>(to_fb(k.target));
  out->options = std::make_unique<fb::Hash128>(to_fb(k.options));
  out->compiler = std::make_unique<fb::Hash128>(to_fb(k.compiler));
  out->runtime = std::make_unique<fb::Hash128>(to_fb(k.runtime));
  out->tag = std::make_unique<fb::Hash128>(to_fb(k.tag));
  return out;
}

namespace {

std::unique_ptr<fb::GuardT> guard(fb::GuardKind kind, uint32_t tensor, uint32_t dim, int32_t symbol,
                                  int64_t value, int64_t value2 = 0) {
  auto g = std::make_unique<fb::GuardT>();
  g->kind = kind;
  g->tensor = static_cast<uint16_t>(tensor);
  g->dim = static_cast<uint16_t>(dim);
  g->symbol = symbol;
  g->value = value;
  g->value2 = value2;
  return g;
}

}  // namespace

std::unique_ptr<fb::GraphEntryT> graph_entry(const ir::Graph& g, const Hash128& structure) {
  std::unique_ptr<fb::GraphEntryT> e = graph_entry_ir(g);
  e->structure_hash = std::make_unique<fb::Hash128>(to_fb(structure));
  return e;
}

std::vector<std::unique_ptr<fb::GuardT>> specialization_guards(
    const ir::Graph& g, const ir::SymbolValues& static_values, int dl_device_type,
    int64_t alignment) {
  std::vector<std::unique_ptr<fb::GuardT>> guards;
  std::vector<const ir::Node*> tensors;
  for (int32_t id : g.inputs) tensors.push_back(&g.node(id));
  for (int32_t id : g.outputs) tensors.push_back(&g.node(id));

  // Cheap, most discriminating checks first: dtype, device, rank, shape.
  std::set<int32_t> bound;
  auto shape_guards = [&](uint32_t t) {
    const ir::Node& n = *tensors[t];
    guards.push_back(guard(fb::GuardKind::DType, t, 0, -1, static_cast<int64_t>(n.dtype)));
    guards.push_back(guard(fb::GuardKind::Device, t, 0, -1, dl_device_type));
    guards.push_back(guard(fb::GuardKind::Rank, t, 0, -1, static_cast<int64_t>(n.shape.size())));
    for (uint32_t d = 0; d < n.shape.size(); ++d) {
      const ir::Dim& dim = n.shape[d];
      if (dim.is_constant()) {
        guards.push_back(guard(fb::GuardKind::DimConst, t, d, -1, dim.value));
        continue;
      }
      guards.push_back(guard(fb::GuardKind::DimSymbol, t, d, dim.sym, 0));
      if (bound.insert(dim.sym).second) {
        const ir::SymbolDecl& s = g.symbols[static_cast<size_t>(dim.sym)];
        const int64_t v = static_values[static_cast<size_t>(dim.sym)];
        if (v >= 0) {
          guards.push_back(guard(fb::GuardKind::SymbolRange, t, d, dim.sym, v, v));
        } else {
          guards.push_back(guard(fb::GuardKind::SymbolRange, t, d, dim.sym, s.min, s.max));
          if (s.divisible_by > 1) {
            guards.push_back(guard(fb::GuardKind::SymbolDivisible, t, d, dim.sym, s.divisible_by));
          }
        }
      }
    }
  };
  auto layout_guards = [&](uint32_t t) {
    guards.push_back(guard(fb::GuardKind::Contiguous, t, 0, -1, 0));
    const auto element = static_cast<int64_t>(dtype_size(tensors[t]->dtype));
    guards.push_back(guard(fb::GuardKind::Alignment, t, 0, -1, std::max(element, alignment)));
  };
  for (uint32_t t = 0; t < tensors.size(); ++t) shape_guards(t);
  for (uint32_t t = 0; t < tensors.size(); ++t) layout_guards(t);
  return guards;
}

std::unique_ptr<fb::GuardT> cuda_arch_guard(int arch, bool has_ptx) {
  return guard(fb::GuardKind::CudaArch, 0, 0, -1, arch, has_ptx ? 1 : 0);
}

std::unique_ptr<fb::GuardT> index_width_guard(const std::vector<SizeExpr>& extents, int64_t limit) {
  auto g = guard(fb::GuardKind::IndexWidth, 0, 0, -1, limit);
  for (const SizeExpr& e : extents) g->extents.push_back(to_fb(e));
  return g;
}

namespace {

std::unique_ptr<fb::LibraryCallT> library_call(const GemmLaunch& g) {
  auto gemm = std::make_unique<fb::GemmCallT>();
  gemm->a_dtype = static_cast<fb::DType>(g.a_dtype);
  gemm->b_dtype = static_cast<fb::DType>(g.b_dtype);
  gemm->d_dtype = static_cast<fb::DType>(g.d_dtype);
  gemm->m = to_fb(g.m);
  gemm->n = to_fb(g.n);
  gemm->k = to_fb(g.k);
  gemm->batch = to_fb(g.batch);
  gemm->trans_a = g.trans_a;
  gemm->trans_b = g.trans_b;
  gemm->lda = to_fb(g.lda);
  gemm->ldb = to_fb(g.ldb);
  gemm->stride_a = to_fb(g.stride_a);
  gemm->stride_b = to_fb(g.stride_b);
  gemm->alpha = g.alpha;
  gemm->epilogue = static_cast<fb::GemmEpilogue>(g.epilogue);
  auto call = std::make_unique<fb::LibraryCallT>();
  call->kind = fb::LibraryCallKind::Gemm;
  call->gemm = std::move(gemm);
  return call;
}

std::unique_ptr<fb::LaunchPlanT> plan_with_buffers(const std::vector<PlanBuffer>& buffers) {
  auto plan = std::make_unique<fb::LaunchPlanT>();
  for (const auto& b : buffers) {
    auto decl = std::make_unique<fb::BufferDeclT>();
    decl->role = static_cast<fb::BufferRole>(b.role);
    decl->index = b.index;
    decl->dtype = static_cast<fb::DType>(b.dtype);
    decl->numel = to_fb(b.numel);
    plan->buffers.push_back(std::move(decl));
  }
  return plan;
}

}  // namespace

std::unique_ptr<fb::LaunchPlanT> launch_plan(const CudaLoweredGraph& lowered,
                                             uint32_t kernel_base) {
  auto plan = plan_with_buffers(lowered.buffers);
  for (const auto& l : lowered.launches) {
    auto launch = std::make_unique<fb::KernelLaunchT>();
    launch->buffers = l.buffers;
    if (l.gemm) {
      launch->kernel = kNoKernel;
      launch->library_call = library_call(*l.gemm);
      plan->launches.push_back(std::move(launch));
      continue;
    }
    launch->kernel = kernel_base + l.kernel;
    for (const SizeExpr& g : l.grid) launch->grid.push_back(to_fb(g));
    launch->block.assign(l.block.begin(), l.block.end());
    launch->shared_bytes = l.shared_bytes;
    plan->launches.push_back(std::move(launch));
  }
  return plan;
}

std::unique_ptr<fb::LaunchPlanT> launch_plan(const CpuLoweredGraph& lowered, uint32_t kernel_base) {
  auto plan = plan_with_buffers(lowered.buffers);
  for (const auto& l : lowered.launches) {
    auto launch = std::make_unique<fb::KernelLaunchT>();
    launch->kernel = kernel_base + l.kernel;
    launch->buffers = l.buffers;
    launch->work_items = to_fb(l.work_items);
    launch->item_cost = to_fb(l.item_cost);
    plan->launches.push_back(std::move(launch));
  }
  return plan;
}

std::unique_ptr<fb::SpecializationT> specialization(std::string name, uint32_t target,
                                                    const ir::SymbolValues& values,
                                                    std::vector<std::unique_ptr<fb::GuardT>> guards,
                                                    std::unique_ptr<fb::LaunchPlanT> plan,
                                                    const Hash128& key,
                                                    const KeyComponents& components) {
  auto spec = std::make_unique<fb::SpecializationT>();
  spec->name = std::move(name);
  spec->target = target;
  spec->symbol_values = values;
  spec->guards = std::move(guards);
  spec->plan = std::move(plan);
  spec->key = std::make_unique<fb::Hash128>(to_fb(key));
  spec->key_components = to_fb(components);
  return spec;
}

}  // namespace kiln::compiler
