// cuda/nvrtc_prelude.cuh: what the kernels use of <stdint.h> and <math.h>,
// for NVRTC, which has no C library headers (memcpy and the math functions
// are built into it). The integer types are glibc's on x86-64 (int64_t is
// long), so overloads such as min(int64_t, int64_t) resolve as under nvcc.
// NVRTC knows no __builtin_inff or __builtin_nanf (glibc's INFINITY and NAN):
// the bit patterns, through CUDA's reinterpret intrinsic, give the same
// float constants. A kernel for NVRTC starts with it instead of #includes.
// Embedded into the CUDA codegen (cmake/KilnEmbedText.cmake): the text after
// this first paragraph goes into a kernel verbatim. The build compiles it
// (tools/compiler/src/cuda/check_device_text.cu).
// clang-format off

// NVRTC: <stdint.h> and <math.h> as far as this kernel needs them.
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long int64_t;
typedef unsigned long uint64_t;
#define INT64_C(c) c##L
#define INT64_MAX (INT64_C(9223372036854775807))
#define INT64_MIN (-INT64_MAX - 1)
#define INFINITY (__uint_as_float(0x7f800000u))
#define NAN (__uint_as_float(0x7fc00000u))
