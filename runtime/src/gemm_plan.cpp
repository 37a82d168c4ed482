#include "gemm_plan.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "kiln/error.h"
#include "text.h"

namespace kiln::detail {

static_assert(
    static_cast<int>(fb::GemmEpilogue::None) == static_cast<int>(GemmEpilogue::none) &&
        static_cast<int>(fb::GemmEpilogue::Bias) == static_cast<int>(GemmEpilogue::bias) &&
        static_cast<int>(fb::GemmEpilogue::Relu) == static_cast<int>(GemmEpilogue::relu) &&
        static_cast<int>(fb::GemmEpilogue::BiasRelu) == static_cast<int>(GemmEpilogue::bias_relu),
    "kiln::GemmEpilogue has kiln.fb.GemmEpilogue's values");

GemmProgram::GemmProgram(const fb::GemmCall& call)
    : m_(call.m(), 0),
      n_(call.n(), 0),
      k_(call.k(), 0),
      batch_(call.batch(), 1),
      lda_(call.lda(), 0),
      ldb_(call.ldb(), 0),
      stride_a_(call.stride_a(), 0),
      stride_b_(call.stride_b(), 0) {
  // DType and GemmEpilogue have the schema's values (a cast).
  fixed_.a_dtype = static_cast<DType>(call.a_dtype());
  fixed_.b_dtype = static_cast<DType>(call.b_dtype());
  fixed_.d_dtype = static_cast<DType>(call.d_dtype());
  fixed_.trans_a = call.trans_a();
  fixed_.trans_b = call.trans_b();
  fixed_.alpha = call.alpha();
  fixed_.epilogue = static_cast<GemmEpilogue>(call.epilogue());
}

GemmProblem GemmProgram::evaluate(const int64_t* symbols) const {
  GemmProblem p = fixed_;
  p.m = m_.evaluate(symbols, "gemm m");
  p.n = n_.evaluate(symbols, "gemm n");
  p.k = k_.evaluate(symbols, "gemm k");
  p.batch = batch_.evaluate(symbols, "gemm batch");
  p.lda = lda_.evaluate(symbols, "gemm lda");
  p.ldb = ldb_.evaluate(symbols, "gemm ldb");
  p.stride_a = stride_a_.evaluate(symbols, "gemm stride_a");
  p.stride_b = stride_b_.evaluate(symbols, "gemm stride_b");
  return p;
}

int64_t tensor_span_bytes(const DLTensor& tensor) noexcept {
  for (int32_t d = 0; d < tensor.ndim; ++d) {
    if (tensor.shape[d] <= 0) return 0;
  }
  int64_t last = 0;  // index of the last element, in elements
  int64_t stride = 1;
  for (int32_t d = tensor.ndim - 1; d >= 0; --d) {
    const int64_t size = tensor.shape[d];
    const int64_t step = tensor.strides != nullptr ? tensor.strides[d] : stride;
    if (step > 0 && size > 1) {
      int64_t reach = 0;
      if (__builtin_mul_overflow(size - 1, step, &reach) ||
          __builtin_add_overflow(last, reach, &last)) {
        return -1;
      }
    }
    if (tensor.strides == nullptr && __builtin_mul_overflow(stride, size, &stride)) return -1;
  }
  const auto element = static_cast<int64_t>((tensor.dtype.bits * tensor.dtype.lanes + 7u) / 8u);
  int64_t bytes = 0;
  if (__builtin_add_overflow(last, 1, &last) || __builtin_mul_overflow(last, element, &bytes)) {
    return -1;
  }
  return bytes;
}

int64_t gemm_operand_elements(const DLTensor* tensor, int64_t declared, DType dtype) noexcept {
  if (tensor == nullptr) return std::max<int64_t>(declared, 0);
  const int64_t bytes = tensor_span_bytes(*tensor);
  if (bytes < 0) return 0;
  const int64_t spanned = bytes / dtype_size(dtype);
  return declared < 0 ? spanned : std::min(declared, spanned);
}

namespace {

bool gemm_input_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

[[noreturn]] void refuse(const GemmSite& site, const std::string& why) {
  throw Error(ErrorCode::invalid_argument, site.prefix() + why);
}

// One stored matrix operand as the gemm walks it.
struct MatrixWalk {
  const char* name;  // "A"
  int64_t rows;      // stored rows
  int64_t row;       // elements of a stored row the gemm reads
  int64_t ld;
  int64_t stride;
};

int64_t matrix_extent(const MatrixWalk& w, int64_t batch, const GemmSite& site) {
  if (batch == 0 || w.rows == 0 || w.row == 0) return 0;
  int64_t batches = 0;
  int64_t rows = 0;
  int64_t extent = 0;
  if (__builtin_mul_overflow(batch - 1, w.stride, &batches) ||
      __builtin_mul_overflow(w.rows - 1, w.ld, &rows) ||
      __builtin_add_overflow(batches, rows, &extent) ||
      __builtin_add_overflow(extent, w.row, &extent)) {
    refuse(site, cat(w.name,
                     " spans more than 2^63 elements ((batch - 1) * stride + (rows - 1) * "
                     "ld + row with batch ",
                     batch, ", stride ", w.stride, ", rows ", w.rows, ", ld ", w.ld, ", row ",
                     w.row, ")"));
  }
  return extent;
}

void check_operand(const char* name, DType dtype, const GemmOperand& operand, int64_t extent,
                   const GemmSite& site, const std::string& how) {
  if (extent == 0) return;
  if (operand.elements < extent) {
    refuse(site, cat(name, " needs ", extent, " ", dtype_name(dtype), " elements (", how,
                     "), its buffer holds ", operand.elements));
  }
  if (operand.data == nullptr) {
    refuse(site, cat(name, " needs ", extent, " elements but its buffer is NULL"));
  }
}

}  // namespace

std::string GemmSite::prefix() const { return cat("kiln: graph '", graph, "', ", launch, ": "); }

GemmExtents gemm_extents(const GemmProblem& p, const GemmSite& site) {
  if (!gemm_input_dtype(p.a_dtype) || p.b_dtype != p.a_dtype ||
      (p.d_dtype != p.a_dtype && p.d_dtype != DType::f32)) {
    refuse(site, cat("a gemm of ", dtype_name(p.a_dtype), " x ", dtype_name(p.b_dtype), " -> ",
                     dtype_name(p.d_dtype),
                     " is not supported: expected A and B of one of f32, f16, "
                     "bf16 and D of theirs or f32"));
  }
  if (gemm_epilogue_name(p.epilogue) == "unknown") {
    refuse(site, cat("unknown gemm epilogue ", static_cast<int>(p.epilogue)));
  }
  const struct {
    const char* name;
    int64_t value;
  } sizes[] = {{"m", p.m},
               {"n", p.n},
               {"k", p.k},
               {"batch", p.batch},
               {"stride_a", p.stride_a},
               {"stride_b", p.stride_b}};
  for (const auto& s : sizes) {
    if (s.value < 0) refuse(site, cat("gemm ", s.name, " is ", s.value, ", expected >= 0"));
  }
  if (p.batch > std::numeric_limits<int32_t>::max()) {
    refuse(site, cat("gemm batch is ", p.batch, ", cuBLASLt takes at most 2147483647"));
  }
  // Stored rows and their length: A is m x k (k x m when transposed), B is
  // k x n (n x k).
  const MatrixWalk a{"A", p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k, p.lda, p.stride_a};
  const MatrixWalk b{"B", p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n, p.ldb, p.stride_b};
  for (const MatrixWalk* w : {&a, &b}) {
    const int64_t least = w->row > 1 ? w->row : 1;
    if (w->ld < least) {
      refuse(site, cat(w->name, "'s leading dimension is ", w->ld, ", expected at least ", least,
                       " (its stored row of ", w->row, " elements, and at least 1)"));
    }
  }
  GemmExtents e;
  if (p.batch == 0 || p.m == 0 || p.n == 0) return e;
  e.a = matrix_extent(a, p.batch, site);
  e.b = matrix_extent(b, p.batch, site);
  if (__builtin_mul_overflow(p.m, p.n, &e.d) || __builtin_mul_overflow(e.d, p.batch, &e.d)) {
    refuse(site, cat("D spans more than 2^63 elements (batch ", p.batch, " x m ", p.m, " x n ", p.n,
                     ")"));
  }
  e.bias = gemm_has_bias(p.epilogue) ? p.n : 0;
  return e;
}

void check_gemm_operands(const GemmProblem& p, const GemmOperands& operands, const GemmSite& site) {
  const GemmExtents e = gemm_extents(p, site);
  auto walk = [&](const char* ld, const char* stride) {
    return cat("(batch - 1) * ", stride, " + (rows - 1) * ", ld, " + row");
  };
  check_operand("A", p.a_dtype, operands.a, e.a, site,
                cat(walk("lda", "stride_a"), " for ", p.trans_a ? "k x m" : "m x k", " = ",
                    p.trans_a ? p.k : p.m, " x ", p.trans_a ? p.m : p.k, ", lda ", p.lda,
                    ", batch ", p.batch, ", stride_a ", p.stride_a));
  check_operand("B", p.b_dtype, operands.b, e.b, site,
                cat(walk("ldb", "stride_b"), " for ", p.trans_b ? "n x k" : "k x n", " = ",
                    p.trans_b ? p.n : p.k, " x ", p.trans_b ? p.k : p.n, ", ldb ", p.ldb,
                    ", batch ", p.batch, ", stride_b ", p.stride_b));
  check_operand("D", p.d_dtype, operands.d, e.d, site,
                cat("batch * m * n = ", p.batch, " * ", p.m, " * ", p.n));
  check_operand("the bias", p.d_dtype, operands.bias, e.bias, site, cat("n = ", p.n));
}

std::string gemm_text(const GemmProblem& p) {
  char alpha[32];
  std::snprintf(alpha, sizeof alpha, "%g", p.alpha);
  return cat(dtype_name(p.a_dtype), " x ", dtype_name(p.b_dtype), " -> ", dtype_name(p.d_dtype),
             ", m ", p.m, ", n ", p.n, ", k ", p.k, ", batch ", p.batch,
             p.trans_a ? ", trans_a" : "", p.trans_b ? ", trans_b" : "", ", lda ", p.lda, ", ldb ",
             p.ldb, ", stride_a ", p.stride_a, ", stride_b ", p.stride_b, ", alpha ",
             std::string_view(alpha), ", epilogue ", gemm_epilogue_name(p.epilogue));
}

}  // namespace kiln::detail
