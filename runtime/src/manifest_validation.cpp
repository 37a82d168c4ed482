#include "manifest_validation.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>

#include "kiln/abi/cuda_kernel.h"
#include "kiln/abi/library_call.h"
#include "kiln/error.h"
#include "kiln/ir_structure.h"
#include "kiln/package_reader.h"
#include "kiln/runtime_internal/size_expr.h"
#include "kiln/support/crypto.h"
#include "kiln/tensor_view.h"
#include "text.h"

namespace kiln::detail {
namespace {

// Threads per block that every CUDA device since sm_20 accepts.
constexpr uint64_t kMaxCudaBlockThreads = 1024;

[[noreturn]] void corrupt(std::string message) {
  throw PackageError(ErrorCode::package_corrupt,
                     "kiln: package manifest is inconsistent: " + std::move(message));
}

template <class T>
uint32_t count(const flatbuffers::Vector<T>* v) {
  return v ? v->size() : 0;
}

std::string_view view(const flatbuffers::String* s) {
  return s ? std::string_view(s->c_str(), s->size()) : std::string_view();
}

bool valid_dtype(fb::DType t) {
  return static_cast<uint8_t>(t) <= static_cast<uint8_t>(fb::DType::Bool);
}

void check_dims(const flatbuffers::Vector<const fb::Dim*>* dims, uint32_t symbols,
                const std::string& where) {
  if (count(dims) > static_cast<uint32_t>(kMaxTensorRank)) {
    corrupt(cat(where, " has rank ", count(dims), ", more than ", kMaxTensorRank));
  }
  for (uint32_t d = 0; d < count(dims); ++d) {
    int32_t s = dims->Get(d)->symbol();
    if (s >= 0 && static_cast<uint32_t>(s) >= symbols) {
      corrupt(cat(where, " dim ", d, " names symbol ", s, " of ", symbols));
    }
  }
}

// A SizeExpr must leave exactly one value and stay within the evaluator's
// fixed stack.
void check_expr(const fb::SizeExpr* expr, uint32_t symbols, bool required,
                const std::string& where) {
  if (expr == nullptr || count(expr->ops()) == 0) {
    if (required) corrupt(where + " is missing");
    return;
  }
  size_t depth = 0;
  for (const fb::ExprOp* op : *expr->ops()) {
    switch (op->kind()) {
      case fb::ExprOpKind::Const:
        ++depth;
        break;
      case fb::ExprOpKind::Symbol:
        if (op->value() < 0 || static_cast<uint64_t>(op->value()) >= symbols) {
          corrupt(cat(where, " reads symbol ", op->value(), " of ", symbols));
        }
        ++depth;
        break;
      case fb::ExprOpKind::Add:
      case fb::ExprOpKind::Sub:
      case fb::ExprOpKind::Mul:
      case fb::ExprOpKind::FloorDiv:
      case fb::ExprOpKind::CeilDiv:
      case fb::ExprOpKind::Max:
      case fb::ExprOpKind::Min:
        if (depth < 2) corrupt(where + " pops an empty stack");
        --depth;
        break;
      default:
        corrupt(cat(where, " has unknown op ", static_cast<int>(op->kind())));
    }
    if (depth > kMaxExprStack) corrupt(cat(where, " is deeper than ", kMaxExprStack));
  }
  if (depth != 1) corrupt(cat(where, " leaves ", depth, " values instead of 1"));
}

bool uses_tensor(fb::GuardKind kind) {
  return kind != fb::GuardKind::SymbolRange && kind != fb::GuardKind::SymbolDivisible &&
         kind != fb::GuardKind::IndexWidth;
}
bool uses_symbol(fb::GuardKind kind) {
  return kind == fb::GuardKind::DimSymbol || kind == fb::GuardKind::SymbolRange ||
         kind == fb::GuardKind::SymbolDivisible;
}

void check_targets(const fb::Manifest& m) {
  for (uint32_t t = 0; t < count(m.targets()); ++t) {
    const fb::Target* target = m.targets()->Get(t);
    std::string_view name = view(target->name());
    if (!is_known_target_name(name)) {
      throw PackageError(ErrorCode::package_unknown_target,
                         cat("kiln: package target ", t, " '", name,
                             "' is unknown to this runtime (it knows cpu:x86-64, cpu:x86-64-v2, "
                             "cpu:x86-64-v3, cpu:x86-64-v4 and cuda:sm_50 to cuda:sm_120)"));
    }
    const bool is_cpu = name.starts_with("cpu:");
    const std::string_view arch = name.substr(name.find(':') + 1);
    if ((target->device() == fb::DeviceKind::Cpu) != is_cpu ||
        (!is_cpu && target->device() != fb::DeviceKind::Cuda) || view(target->arch()) != arch) {
      corrupt(cat("target ", t, " '", name, "' has device ", static_cast<int>(target->device()),
                  " and arch '", view(target->arch()), "'"));
    }
  }
}

void check_blobs(const fb::Manifest& m, const FileLayout& layout) {
  const uint64_t first_blob_byte = layout.manifest_offset + layout.manifest_size;
  for (uint32_t b = 0; b < count(m.blobs()); ++b) {
    const fb::Blob* blob = m.blobs()->Get(b);
    if (static_cast<uint8_t>(blob->kind()) > static_cast<uint8_t>(fb::BlobKind::Source) ||
        static_cast<uint8_t>(blob->compression()) > static_cast<uint8_t>(fb::Compression::Zstd)) {
      corrupt(cat("blob ", b, " has unknown kind or compression"));
    }
    if (blob->target() >= count(m.targets())) {
      corrupt(cat("blob ", b, " names target ", blob->target(), " of ", count(m.targets())));
    }
    if (blob->offset() % KILN_PACKAGE_BLOB_ALIGNMENT != 0 || blob->offset() < first_blob_byte ||
        blob->offset() > layout.file_size ||
        blob->stored_size() > layout.file_size - blob->offset()) {
      corrupt(cat("blob ", b, " range [", blob->offset(), ", +", blob->stored_size(),
                  ") is not a 64-aligned range after the manifest (which ends at ", first_blob_byte,
                  ") inside the ", layout.file_size, "-byte file"));
    }
    if (blob->compression() == fb::Compression::None && blob->raw_size() != blob->stored_size()) {
      corrupt(cat("blob ", b, " is stored uncompressed but raw_size ", blob->raw_size(),
                  " != stored_size ", blob->stored_size()));
    }
    if (blob->hash() == nullptr) corrupt(cat("blob ", b, " has no hash"));
    if (blob->digest() != nullptr && blob->digest()->size() != support::kHash256Bytes) {
      corrupt(cat("blob ", b, " has a ", blob->digest()->size(), "-byte digest, expected ",
                  support::kHash256Bytes, " (BLAKE2b-256)"));
    }
  }
}

void check_kernels(const fb::Manifest& m) {
  for (uint32_t k = 0; k < count(m.kernels()); ++k) {
    const fb::Kernel* kernel = m.kernels()->Get(k);
    const std::string where = cat("kernel ", k, " '", view(kernel->name()), "'");
    if (kernel->target() >= count(m.targets())) corrupt(where + " names an unknown target");
    if (kernel->blob() >= count(m.blobs())) corrupt(where + " names an unknown blob");
    const fb::Blob* blob = m.blobs()->Get(kernel->blob());
    if (blob->target() != kernel->target()) {
      corrupt(cat(where, " is for target ", kernel->target(), " but its blob ", kernel->blob(),
                  " is for target ", blob->target()));
    }
    const bool cpu = m.targets()->Get(kernel->target())->device() == fb::DeviceKind::Cpu;
    const bool kind_fits =
        cpu ? blob->kind() == fb::BlobKind::CpuSharedObject
            : (blob->kind() == fb::BlobKind::Cubin || blob->kind() == fb::BlobKind::Ptx);
    if (!kind_fits) corrupt(where + " lives in a blob of the wrong kind for its target");
    if (kernel->source_blob() < -1 ||
        (kernel->source_blob() >= 0 &&
         static_cast<uint32_t>(kernel->source_blob()) >= count(m.blobs()))) {
      corrupt(where + " names an unknown source blob");
    }
    // The CUDA launcher loads ptx_blob as the kernel's PTX for its own
    // target when no cubin fits the device.
    const int32_t ptx = kernel->ptx_blob();
    if (ptx != -1) {
      if (cpu || ptx < 0 || static_cast<uint32_t>(ptx) >= count(m.blobs())) {
        corrupt(cat(where, " names PTX blob ", ptx, cpu ? " but is a CPU kernel" : ""));
      }
      const fb::Blob* ptx_blob = m.blobs()->Get(static_cast<uint32_t>(ptx));
      if (ptx_blob->kind() != fb::BlobKind::Ptx || ptx_blob->target() != kernel->target()) {
        corrupt(
            cat(where, " names PTX blob ", ptx, ", which is not PTX of target ", kernel->target()));
      }
    }
  }
}

// The launch's block must be one the driver accepts on every device: a
// wrong one would only show as a launch failure on the GPU.
void check_cuda_dims(const fb::KernelLaunch& launch, const std::string& where) {
  if (count(launch.grid()) != KILN_CUDA_LAUNCH_DIMS ||
      count(launch.block()) != KILN_CUDA_LAUNCH_DIMS) {
    corrupt(cat(where, " has ", count(launch.grid()), " grid and ", count(launch.block()),
                " block dimensions instead of ", KILN_CUDA_LAUNCH_DIMS));
  }
  uint64_t threads = 1;
  for (uint32_t d = 0; d < KILN_CUDA_LAUNCH_DIMS; ++d) {
    const uint32_t dim = launch.block()->Get(d);
    if (dim == 0) corrupt(cat(where, " block[", d, "] is 0"));
    threads *= dim;
  }
  if (threads > kMaxCudaBlockThreads) {
    corrupt(cat(where, " has ", threads, " threads per block, more than ", kMaxCudaBlockThreads));
  }
}

bool gemm_input_dtype(fb::DType t) {
  return t == fb::DType::F32 || t == fb::DType::F16 || t == fb::DType::BF16;
}

std::string_view dtype_text(fb::DType t) {
  return valid_dtype(t) ? dtype_name(static_cast<DType>(t)) : std::string_view("unknown");
}

}  // namespace

void validate_library_call(const fb::KernelLaunch& launch, const fb::LaunchPlan& plan,
                           uint32_t symbols, const std::string& where) {
  const fb::LibraryCall* call = launch.library_call();
  if (call == nullptr) corrupt(where + " makes no library call");
  if (call->kind() != fb::LibraryCallKind::Gemm) {
    corrupt(cat(where, " calls library function kind ", static_cast<int>(call->kind()),
                ", expected Gemm (0)"));
  }
  const fb::GemmCall* gemm = call->gemm();
  if (gemm == nullptr) corrupt(where + " is a Gemm without its gemm table");
  const fb::DType a = gemm->a_dtype();
  const fb::DType b = gemm->b_dtype();
  const fb::DType d = gemm->d_dtype();
  if (!gemm_input_dtype(a) || b != a) {
    corrupt(cat(where, " multiplies ", dtype_text(a), " by ", dtype_text(b),
                ", expected A and B of one dtype among f32, f16, bf16"));
  }
  if (d != a && d != fb::DType::F32) {
    corrupt(cat(where, " writes D as ", dtype_text(d), ", expected ", dtype_text(a), " or f32"));
  }
  if (static_cast<uint8_t>(gemm->epilogue()) > static_cast<uint8_t>(fb::GemmEpilogue::MAX)) {
    corrupt(cat(where, " has unknown epilogue ", static_cast<int>(gemm->epilogue())));
  }
  if (const double alpha = gemm->alpha(); !std::isfinite(alpha)) {
    corrupt(cat(where, " has alpha ", std::isnan(alpha) ? "nan" : alpha > 0 ? "inf" : "-inf"));
  }
  const bool bias =
      gemm->epilogue() == fb::GemmEpilogue::Bias || gemm->epilogue() == fb::GemmEpilogue::BiasRelu;
  const uint32_t expected = bias ? 4 : 3;
  if (count(launch.buffers()) != expected) {
    corrupt(cat(where, " passes ", count(launch.buffers()), " buffers, expected ", expected,
                bias ? " (A, B, D, bias)" : " (A, B, D)"));
  }
  static constexpr const char* kOperands[] = {"A", "B", "D", "the bias"};
  const fb::DType dtypes[] = {a, b, d, d};
  for (uint32_t i = 0; i < expected; ++i) {
    const uint32_t index = launch.buffers()->Get(i);
    if (index >= count(plan.buffers())) {
      corrupt(cat(where, " names buffer ", index, " for ", kOperands[i], " of ",
                  count(plan.buffers())));
    }
    const fb::BufferDecl* decl = plan.buffers()->Get(index);
    if (decl->dtype() != dtypes[i]) {
      corrupt(cat(where, " reads ", kOperands[i], " as ", dtype_text(dtypes[i]), " but buffer ",
                  index, " is ", dtype_text(decl->dtype())));
    }
    if (i == 2 && decl->role() == fb::BufferRole::Input) {
      corrupt(cat(where, " writes D into buffer ", index, ", an input"));
    }
  }
  check_expr(gemm->m(), symbols, true, where + " gemm m");
  check_expr(gemm->n(), symbols, true, where + " gemm n");
  check_expr(gemm->k(), symbols, true, where + " gemm k");
  check_expr(gemm->lda(), symbols, true, where + " gemm lda");
  check_expr(gemm->ldb(), symbols, true, where + " gemm ldb");
  check_expr(gemm->batch(), symbols, false, where + " gemm batch");
  check_expr(gemm->stride_a(), symbols, false, where + " gemm stride_a");
  check_expr(gemm->stride_b(), symbols, false, where + " gemm stride_b");
}

void validate_specialization_guards(const fb::GraphEntry& g, const fb::Specialization& spec,
                                    const std::string& where) {
  const uint32_t symbols = count(g.symbols());
  const uint32_t tensors = count(g.inputs()) + count(g.outputs());
  if (count(spec.symbol_values()) != symbols) {
    corrupt(cat(where, " has ", count(spec.symbol_values()), " symbol values for ", symbols,
                " symbols"));
  }
  for (uint32_t i = 0; i < count(spec.guards()); ++i) {
    const fb::Guard* guard = spec.guards()->Get(i);
    const std::string at = cat(where, " guard ", i);
    if (static_cast<uint8_t>(guard->kind()) > static_cast<uint8_t>(fb::GuardKind::MAX)) {
      corrupt(cat(at, " has unknown kind ", static_cast<int>(guard->kind())));
    }
    if (uses_tensor(guard->kind()) && guard->tensor() >= tensors) {
      corrupt(cat(at, " names tensor ", guard->tensor(), " of ", tensors));
    }
    if (uses_symbol(guard->kind()) &&
        (guard->symbol() < 0 || static_cast<uint32_t>(guard->symbol()) >= symbols)) {
      corrupt(cat(at, " names symbol ", guard->symbol(), " of ", symbols));
    }
    if ((guard->kind() == fb::GuardKind::DimConst || guard->kind() == fb::GuardKind::DimSymbol) &&
        guard->dim() >= kMaxTensorRank) {
      corrupt(cat(at, " checks dim ", guard->dim(), " beyond the maximum rank"));
    }
    if ((guard->kind() == fb::GuardKind::Alignment ||
         guard->kind() == fb::GuardKind::SymbolDivisible) &&
        guard->value() <= 0) {
      corrupt(cat(at, " divides by ", guard->value()));
    }
    if (guard->kind() == fb::GuardKind::IndexWidth) {
      if (guard->value() <= 0) corrupt(cat(at, " limits index extents to ", guard->value()));
      if (count(guard->extents()) == 0) corrupt(at + " limits no index extent");
      for (uint32_t e = 0; e < count(guard->extents()); ++e) {
        check_expr(guard->extents()->Get(e), symbols, true, cat(at, " extent ", e));
      }
    }
  }
}

namespace {

// "n=8, m=3": the binding a plan's sizes were checked at, for messages.
std::string binding_text(const fb::GraphEntry& g, const int64_t* values) {
  std::string text;
  for (uint32_t s = 0; s < count(g.symbols()); ++s) {
    text += cat(s == 0 ? "" : ", ", view(g.symbols()->Get(s)->name()), "=", values[s]);
  }
  return text.empty() ? "no symbols" : text;
}

// A plan's sizes against the buffers they describe, at one binding of the
// graph's symbols: the specialization's own values, and for a dynamic
// symbol the smallest value the graph admits (the runtime checks every
// call of a dynamic specialization at its own binding:
// Graph::Impl::check_plan_sizes).
// Input and output buffers have the dtype of their tensor and, when they
// declare a numel, the tensor's element count; a temp's numel is not
// negative; a CPU launch has no more work items than the largest buffer it
// binds has elements (no kernel the compiler writes has a work item for
// less than one element).
void check_plan_sizes(const fb::Manifest& m, const fb::GraphEntry& g,
                      const fb::Specialization& spec, const std::string& where) {
  const fb::LaunchPlan& plan = *spec.plan();
  int64_t values[kMaxSymbols] = {};
  for (uint32_t s = 0; s < count(g.symbols()); ++s) {
    const int64_t fixed = spec.symbol_values()->Get(s);
    if (fixed >= 0) {
      values[s] = fixed;
      continue;
    }
    const fb::Symbol* symbol = g.symbols()->Get(s);
    const int64_t divisor = std::max<int64_t>(symbol->divisible_by(), 1);
    const int64_t least = std::max<int64_t>(symbol->min(), 0);
    values[s] = least % divisor == 0 ? least : least + (divisor - least % divisor);
  }
  auto evaluate = [&](const fb::SizeExpr* expr, const std::string& what) {
    int64_t value = 0;
    if (!SizeProgram(expr, 1).try_evaluate(values, value)) {
      corrupt(cat(where, " ", what, " cannot be evaluated at ", binding_text(g, values),
                  " (overflow or division by zero)"));
    }
    return value;
  };
  std::vector<int64_t> numel(count(plan.buffers()));
  for (uint32_t b = 0; b < count(plan.buffers()); ++b) {
    const fb::BufferDecl* decl = plan.buffers()->Get(b);
    const std::string at = cat("buffer ", b);
    const bool declared = decl->numel() != nullptr && count(decl->numel()->ops()) > 0;
    if (decl->role() == fb::BufferRole::Temp) {
      numel[b] = evaluate(decl->numel(), at + " numel");
      if (numel[b] < 0) {
        corrupt(cat(where, " ", at, " (a temp) has ", numel[b], " elements at ",
                    binding_text(g, values)));
      }
      continue;
    }
    const bool is_input = decl->role() == fb::BufferRole::Input;
    const fb::TensorSpec* tensor =
        is_input ? g.inputs()->Get(decl->index()) : g.outputs()->Get(decl->index());
    const std::string names_tensor = cat(at, " (", is_input ? "input " : "output ", decl->index(),
                                         " '", view(tensor->name()), "')");
    if (decl->dtype() != tensor->dtype()) {
      corrupt(cat(where, " ", names_tensor, " is ", dtype_text(decl->dtype()),
                  ", expected the tensor's ", dtype_text(tensor->dtype())));
    }
    int64_t elements = 1;
    for (uint32_t d = 0; d < count(tensor->dims()); ++d) {
      const fb::Dim* dim = tensor->dims()->Get(d);
      const int64_t extent = dim->symbol() >= 0 ? values[dim->symbol()] : dim->value();
      if (extent < 0 || __builtin_mul_overflow(elements, extent, &elements)) {
        corrupt(cat("graph '", view(g.name()), "' tensor '", view(tensor->name()),
                    "' has no element count at ", binding_text(g, values)));
      }
    }
    numel[b] = elements;
    if (declared) {
      const int64_t said = evaluate(decl->numel(), at + " numel");
      if (said != elements) {
        corrupt(cat(where, " ", names_tensor, " declares ", said, " elements, but the tensor has ",
                    elements, " at ", binding_text(g, values)));
      }
    }
  }
  if (m.targets()->Get(spec.target())->device() != fb::DeviceKind::Cpu) return;
  for (uint32_t l = 0; l < count(plan.launches()); ++l) {
    const fb::KernelLaunch* launch = plan.launches()->Get(l);
    const std::string at = cat("launch ", l);
    const int64_t work = evaluate(launch->work_items(), at + " work_items");
    int64_t largest = 0;
    for (uint32_t b = 0; b < count(launch->buffers()); ++b) {
      largest = std::max(largest, numel[launch->buffers()->Get(b)]);
    }
    if (work < 0 || work > largest) {
      corrupt(cat(where, " ", at, " has ", work, " work items at ", binding_text(g, values),
                  ", expected 0 to ", largest, ", the elements of the largest buffer it binds"));
    }
  }
}

void check_specialization(const fb::Manifest& m, const fb::GraphEntry& g,
                          const fb::Specialization& spec, const std::string& where) {
  const uint32_t symbols = count(g.symbols());
  const uint32_t inputs = count(g.inputs());
  if (spec.target() >= count(m.targets())) corrupt(where + " names an unknown target");
  validate_specialization_guards(g, spec, where);
  const fb::LaunchPlan* plan = spec.plan();
  if (plan == nullptr) corrupt(where + " has no launch plan");
  const uint32_t buffers = count(plan->buffers());
  if (buffers > kMaxPlanBuffers)
    corrupt(cat(where, " has more than ", kMaxPlanBuffers, " buffers"));
  for (uint32_t b = 0; b < buffers; ++b) {
    const fb::BufferDecl* decl = plan->buffers()->Get(b);
    const std::string at = cat(where, " buffer ", b);
    if (!valid_dtype(decl->dtype())) corrupt(at + " has an unknown dtype");
    switch (decl->role()) {
      case fb::BufferRole::Input:
        if (decl->index() >= inputs) corrupt(cat(at, " names input ", decl->index()));
        check_expr(decl->numel(), symbols, false, at + " numel");
        break;
      case fb::BufferRole::Output:
        if (decl->index() >= count(g.outputs())) corrupt(cat(at, " names output ", decl->index()));
        check_expr(decl->numel(), symbols, false, at + " numel");
        break;
      case fb::BufferRole::Temp:
        check_expr(decl->numel(), symbols, true, at + " numel");
        break;
      default:
        corrupt(at + " has an unknown role");
    }
  }
  for (uint32_t l = 0; l < count(plan->launches()); ++l) {
    const fb::KernelLaunch* launch = plan->launches()->Get(l);
    const std::string at = cat(where, " launch ", l);
    const bool cpu = m.targets()->Get(spec.target())->device() == fb::DeviceKind::Cpu;
    if (launch->library_call() != nullptr || launch->kernel() == kNoKernel) {
      if (cpu) corrupt(at + " is a library call, which only a CUDA target runs");
      if (launch->kernel() != kNoKernel) {
        corrupt(cat(at, " is a library call but names kernel ", launch->kernel(),
                    ", expected 4294967295 (kNoKernel)"));
      }
      validate_library_call(*launch, *plan, symbols, at);
    } else {
      if (launch->kernel() >= count(m.kernels())) corrupt(at + " names an unknown kernel");
      if (m.kernels()->Get(launch->kernel())->target() != spec.target()) {
        corrupt(at + " runs a kernel of another target");
      }
    }
    if (count(launch->buffers()) > kMaxLaunchBuffers) {
      corrupt(cat(at, " passes more than ", kMaxLaunchBuffers, " buffers"));
    }
    for (uint32_t b = 0; b < count(launch->buffers()); ++b) {
      if (launch->buffers()->Get(b) >= buffers)
        corrupt(cat(at, " names buffer ", launch->buffers()->Get(b)));
    }
    check_expr(launch->work_items(), symbols, cpu, at + " work_items");
    check_expr(launch->item_cost(), symbols, false, at + " item_cost");
    for (uint32_t d = 0; d < count(launch->grid()); ++d) {
      check_expr(launch->grid()->Get(d), symbols, true, cat(at, " grid[", d, "]"));
    }
    // A library call has no grid or block of its own: cuBLASLt picks them.
    if (!cpu && launch->library_call() == nullptr) check_cuda_dims(*launch, at);
  }
  check_plan_sizes(m, g, spec, where);
}

void check_ir(const fb::IrGraph* ir, uint32_t symbols, const std::string& where) {
  if (ir == nullptr) return;
  // The index structure is checked where the compiler's IR decoder checks
  // it too (kiln/ir_structure.h); the rank limit is this runtime's.
  if (std::string error = ir_structure_error(*ir, symbols); !error.empty()) {
    corrupt(cat(where, " ", error));
  }
  for (uint32_t n = 0; n < count(ir->nodes()); ++n) {
    const uint32_t rank = count(ir->nodes()->Get(n)->dims());
    if (rank > static_cast<uint32_t>(kMaxTensorRank)) {
      corrupt(cat(where, " IR node ", n, " has rank ", rank, ", more than ", kMaxTensorRank));
    }
  }
}

void check_graphs(const fb::Manifest& m) {
  std::string_view previous;
  for (uint32_t gi = 0; gi < count(m.graphs()); ++gi) {
    const fb::GraphEntry* g = m.graphs()->Get(gi);
    const std::string_view name = view(g->name());
    const std::string where = cat("graph '", name, "'");
    if (gi > 0 && !(previous < name)) {
      corrupt(cat("graphs are not sorted by unique name ('", previous, "' then '", name, "')"));
    }
    previous = name;
    const uint32_t symbols = count(g->symbols());
    if (symbols > kMaxSymbols) {
      corrupt(
          cat(where, " has ", symbols, " symbols; this runtime supports at most ", kMaxSymbols));
    }
    const uint32_t tensors = count(g->inputs()) + count(g->outputs());
    if (tensors > kMaxTensors) {
      corrupt(cat(where, " has ", tensors, " inputs and outputs; this runtime supports at most ",
                  kMaxTensors));
    }
    for (uint32_t t = 0; t < tensors; ++t) {
      const bool is_input = t < count(g->inputs());
      const fb::TensorSpec* spec =
          is_input ? g->inputs()->Get(t) : g->outputs()->Get(t - count(g->inputs()));
      const std::string at = cat(where, " tensor '", view(spec->name()), "'");
      if (!valid_dtype(spec->dtype())) corrupt(at + " has an unknown dtype");
      check_dims(spec->dims(), symbols, at);
    }
    check_ir(g->ir(), symbols, where);
    // The graph's targets: ascending indices of package targets (so each
    // once), naming every target its specializations are for. Absent means
    // every target; an empty list is refused, since the generator never
    // writes one (a graph left with no target fails the build) and kiln
    // merge could not keep it apart from an absent one.
    if (const auto* graph_targets = g->targets()) {
      if (graph_targets->size() == 0) {
        corrupt(cat(where,
                    "'s targets are an empty list (expected absent, for every target, or "
                    "at least one target index)"));
      }
      for (uint32_t i = 0; i < graph_targets->size(); ++i) {
        const uint32_t t = graph_targets->Get(i);
        if (t >= count(m.targets())) {
          corrupt(cat(where, " names target ", t, " of ", count(m.targets())));
        }
        if (i > 0 && t <= graph_targets->Get(i - 1)) {
          corrupt(cat(where, "'s targets are not ascending and unique (", graph_targets->Get(i - 1),
                      " then ", t, ")"));
        }
      }
    }
    for (uint32_t s = 0; s < count(g->specializations()); ++s) {
      const fb::Specialization* spec = g->specializations()->Get(s);
      check_specialization(m, *g, *spec, cat(where, " specialization '", view(spec->name()), "'"));
      if (const auto* graph_targets = g->targets();
          graph_targets && std::find(graph_targets->begin(), graph_targets->end(),
                                     spec->target()) == graph_targets->end()) {
        std::string listed;
        for (uint32_t t : *graph_targets) listed += cat(listed.empty() ? "" : ", ", t);
        corrupt(cat(where, " specialization '", view(spec->name()), "' is for target ",
                    spec->target(), ", which is not among the graph's targets (",
                    listed.empty() ? "none" : listed, ")"));
      }
    }
  }
}

}  // namespace

void validate_manifest(const fb::Manifest& manifest, const FileLayout& layout) {
  check_targets(manifest);
  check_blobs(manifest, layout);
  check_kernels(manifest);
  check_graphs(manifest);
}

}  // namespace kiln::detail
