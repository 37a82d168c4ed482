// A warm hit allocates nothing: this binary replaces the global operator
// new and delete with counting versions and counts every allocation, on any
// thread, while selection and whole CPU calls run.
#include <atomic>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"

namespace {

std::atomic<bool> counting{false};
std::atomic<uint64_t> allocations{0};

void* counted(std::size_t size, std::size_t alignment) {
  if (counting.load(std::memory_order_relaxed)) {
    allocations.fetch_add(1, std::memory_order_relaxed);
  }
  if (size == 0) size = 1;
  void* p = alignment > alignof(std::max_align_t)
                ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                : std::malloc(size);
  return p;
}

}  // namespace

// The replacements stay out of line, as they are for every other file: inlined
// into this file's callers, GCC would pair the malloc() inside operator new
// with operator delete, or operator new with the free() inside operator
// delete, and warn of a mismatch (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t size) {
  if (void* p = counted(size, 0)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) {
  if (void* p = counted(size, 0)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t size, std::align_val_t a) {
  if (void* p = counted(size, static_cast<std::size_t>(a))) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size, std::align_val_t a) {
  if (void* p = counted(size, static_cast<std::size_t>(a))) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return counted(size, 0);
}
[[gnu::noinline]] void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted(size, 0);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace {

using kiln::DType;
using kiln::TensorView;

// Allocations made by fn, on any thread.
template <typename F>
uint64_t allocations_in(F&& fn) {
  allocations.store(0);
  counting.store(true);
  fn();
  counting.store(false);
  return allocations.load();
}

class NoAllocation : public ::testing::Test {
 protected:
  void SetUp() override {
    kiln_test::TestGraphOptions plain;
    plain.more_statics = {16, 32};
    kiln_test::TestGraphOptions temp;
    temp.name = "scale_add_temp";
    temp.use_temp = true;
    kiln_test::TestGraphOptions record;
    record.name = "record_chunks";
    record.record_chunks = true;
    bytes_ = kiln_test::make_test_package({plain, temp, record});
    // Four threads whatever the machine has, so large launches take the pool.
    package_ = std::make_unique<kiln::Package>(
        kiln::Package::open_memory(kiln_test::as_bytes(bytes_),
                                   {.stance = kiln::Stance::fail_on_recompile, .num_threads = 4}));
  }
  std::vector<uint8_t> bytes_;
  std::unique_ptr<kiln::Package> package_;
};

// The counter sees allocations at all: the test would pass for nothing
// otherwise.
TEST_F(NoAllocation, TheCounterCountsThisBinarysAllocations) {
  // Calls, not new-expressions, which the compiler may elide.
  EXPECT_EQ(allocations_in([] { ::operator delete(::operator new(16)); }), 1u);
  EXPECT_EQ(allocations_in([] {
              ::operator delete(::operator new(256, std::align_val_t(64)), std::align_val_t(64));
            }),
            1u);
}

TEST_F(NoAllocation, SelectionAndWholeCallsAfterWarmUp) {
  for (const char* name : {"scale_add", "scale_add_temp"}) {
    kiln::Graph& g = package_->graph(name);
    // n = 8 and 16 hit static specializations, 5 the general one, and 4096
    // rows (262,144 elements) run in chunks on the thread pool.
    for (const int64_t n : {int64_t{8}, int64_t{16}, int64_t{5}, int64_t{4096}}) {
      std::vector<float> x(static_cast<size_t>(n * 64), 1.5f), w(64, 0.25f),
          y(static_cast<size_t>(n * 64));
      TensorView xv(x.data(), DType::f32, {n, 64}), wv(w.data(), DType::f32, {64}),
          yv(y.data(), DType::f32, {n, 64});
      const DLTensor* in[] = {&xv.dl(), &wv.dl()};
      const DLTensor* out[] = {&yv.dl()};
      // Warm-up: loads the kernels and grows this thread's temp workspace.
      g.call(in, out);
      volatile size_t sink = 0;
      const uint64_t count = allocations_in([&] {
        for (int i = 0; i < 200; ++i) {
          sink = sink + g.select(in, out).size();
          g.call(in, out);
        }
      });
      EXPECT_EQ(count, 0u) << name << " with n = " << n;
      EXPECT_FLOAT_EQ(y[static_cast<size_t>(n * 64 - 1)], 2 * 1.5f + 0.25f);
    }
  }
  // A launch of 4096 rows of 64 elements, as above, split into chunks run by
  // several of the pool's threads: the pooled path was the one counted.
  kiln::Graph& record = package_->graph("record_chunks");
  kiln_test::ChunkRecorder recorder(4096);
  recorder.call(record);  // warm-up
  EXPECT_EQ(allocations_in([&] { recorder.call(record); }), 0u);
  const kiln_test::Chunking c = recorder.chunking();
  EXPECT_GE(c.chunks.size(), 2u);
  EXPECT_GE(c.threads.size(), 2u);
  EXPECT_EQ(c.rows_not_written_once, 0);
}

// A miss builds its message: allocating there is expected (and shows the
// counter works through Graph too).
TEST_F(NoAllocation, AMissAllocatesItsMessage) {
  kiln::Graph& g = package_->graph("scale_add");
  std::vector<float> x(8 * 63), w(64), y(8 * 64);
  TensorView xv(x.data(), DType::f32, {8, 63}), wv(w.data(), DType::f32, {64}),
      yv(y.data(), DType::f32, {8, 64});
  const DLTensor* in[] = {&xv.dl(), &wv.dl()};
  const DLTensor* out[] = {&yv.dl()};
  EXPECT_GT(allocations_in([&] { EXPECT_THROW(g.select(in, out), kiln::RecompileError); }), 0u);
}

}  // namespace
