// The CPU runtime end to end: open from file, memory and embedded bytes;
// graph lookup; parallel launches over many chunks; temp buffers between two
// launches; concurrent callers; counters; CPU target selection.
#include <cstdio>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "test_support/cpu_test_package.h"

namespace {

using kiln::DType;
using kiln::ErrorCode;
using kiln::TensorView;

struct Case {
  explicit Case(int64_t rows, uint32_t seed = 1)
      : rows(rows), x(rows * 64), w(64), y(rows * 64, -1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
    for (float& v : x) v = dist(rng);
    for (float& v : w) v = dist(rng);
  }
  void call(kiln::Graph& g) {
    g.call({TensorView(x.data(), DType::f32, {rows, 64}), TensorView(w.data(), DType::f32, {64})},
           {TensorView(y.data(), DType::f32, {rows, 64})});
  }
  // Counts wrong elements, so a failure says how many.
  int64_t wrong() const {
    int64_t bad = 0;
    for (int64_t i = 0; i < rows * 64; ++i) bad += y[i] != 2.0f * x[i] + w[i % 64];
    return bad;
  }
  int64_t rows;
  std::vector<float> x, w, y;
};

std::vector<kiln_test::TestGraphOptions> both_graphs() {
  kiln_test::TestGraphOptions temp;
  temp.name = "scale_add_temp";
  temp.use_temp = true;
  return {kiln_test::TestGraphOptions{}, temp};
}

TEST(RuntimeCpu, OpensFromFileMemoryAndEmbeddedBytes) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package(both_graphs());
  const auto path = std::filesystem::temp_directory_path() /
                    ("kiln-runtime-" + std::to_string(::getpid()) + ".kiln");
  kiln::compiler::write_package_file(path, kiln_test::make_test_manifest(both_graphs()),
                                     kiln_test::test_blobs());

  kiln::Package from_file = kiln::Package::open(path);
  kiln::Package from_memory = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  kiln::Package embedded = kiln::Package::open_embedded(kiln_test::as_bytes(bytes));
  std::filesystem::remove(path);  // the file is read fully at open
  EXPECT_EQ(static_cast<const void*>(embedded.reader().file_bytes().data()),
            static_cast<const void*>(bytes.data()));
  for (kiln::Package* p : {&from_file, &from_memory, &embedded}) {
    EXPECT_EQ(p->graph_names(), (std::vector<std::string_view>{"scale_add", "scale_add_temp"}));
    for (const char* name : {"scale_add", "scale_add_temp"}) {
      Case c(37, 5);
      kiln::Graph& g = p->graph(name);
      EXPECT_EQ(g.name(), name);
      EXPECT_EQ(g.num_inputs(), 2u);
      EXPECT_EQ(g.num_outputs(), 1u);
      c.call(g);
      EXPECT_EQ(c.wrong(), 0) << name;
    }
  }
}

TEST(RuntimeCpu, GraphLookupErrorListsTheNames) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package(both_graphs());
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  try {
    p.graph("scale");
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::graph_not_found);
    EXPECT_NE(std::string(e.what()).find("no graph 'scale'; it has: scale_add, scale_add_temp"),
              std::string::npos)
        << e.what();
  }
}

TEST(RuntimeCpu, ParallelLaunchOverManyChunks) {
  kiln_test::TestGraphOptions record;
  record.name = "record_chunks";
  record.record_chunks = true;
  std::vector<kiln_test::TestGraphOptions> graphs = both_graphs();
  graphs.push_back(record);
  const std::vector<uint8_t> bytes = kiln_test::make_test_package(graphs);
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes), {.num_threads = 4});
  // 20000 rows * 64 = 1.28M elements: about 40 chunks of 32K.
  for (const char* name : {"scale_add", "scale_add_temp"}) {
    Case c(20000, 11);
    c.call(p.graph(name));
    EXPECT_EQ(c.wrong(), 0) << name;
  }
  // Work that does not split evenly into chunks.
  Case odd(20001, 12);
  odd.call(p.graph("scale_add"));
  EXPECT_EQ(odd.wrong(), 0);

  // What the launcher did: rows are work items costing 64 elements each, so
  // the chunks are whole rows. They tile [0, rows) with no gap or overlap, all
  // of one size but the last, more of them than the 4 threads the package
  // was opened with, and at least two of those threads ran some.
  for (int64_t rows : {20000, 20001}) {
    kiln_test::ChunkRecorder recorder(rows);
    recorder.call(p.graph("record_chunks"));
    const kiln_test::Chunking c = recorder.chunking();
    EXPECT_EQ(c.rows_not_written_once, 0) << rows;
    EXPECT_EQ(c.rows_outside_their_chunk, 0) << rows;
    EXPECT_GE(c.chunks.size(), 4u) << rows;
    int64_t next = 0;
    const int64_t size = c.chunks.begin()->second - c.chunks.begin()->first;
    for (const auto& [begin, end] : c.chunks) {
      EXPECT_EQ(begin, next) << rows << " rows: a gap or an overlap";
      EXPECT_TRUE(end - begin == size || end == rows)
          << rows << " rows: chunk [" << begin << ", " << end << ") of size " << end - begin
          << ", the first has " << size;
      next = end;
    }
    EXPECT_EQ(next, rows);
    EXPECT_GE(c.threads.size(), 2u) << rows << " rows in " << c.chunks.size() << " chunks";
    std::printf("%lld rows: %zu chunks of %lld rows on %zu threads\n", static_cast<long long>(rows),
                c.chunks.size(), static_cast<long long>(size), c.threads.size());
  }
}

TEST(RuntimeCpu, TempBufferBetweenTwoLaunchesAtManySizes) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package(both_graphs());
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes), {.num_threads = 3});
  kiln::Graph& g = p.graph("scale_add_temp");
  // Growing and shrinking reuses the calling thread's workspace.
  for (int64_t rows : {1, 8, 1000, 5000, 3, 2048}) {
    Case c(rows, static_cast<uint32_t>(rows));
    c.call(g);
    EXPECT_EQ(c.wrong(), 0) << rows;
  }
  EXPECT_EQ(g.counters().hits, 6u);
}

TEST(RuntimeCpu, ConcurrentCallsFromFourThreads) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package(both_graphs());
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes), {.num_threads = 4});
  constexpr int kThreads = 4, kCalls = 25;
  std::atomic<int64_t> wrong{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      kiln::Graph& g = p.graph(t % 2 ? "scale_add_temp" : "scale_add");
      for (int i = 0; i < kCalls; ++i) {
        // Mix small (inline) and large (pooled) launches.
        Case c(i % 3 == 0 ? 4000 + t : 8, static_cast<uint32_t>(t * 100 + i));
        c.call(g);
        wrong += c.wrong();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  const auto a = p.graph("scale_add").counters();
  const auto b = p.graph("scale_add_temp").counters();
  EXPECT_EQ(a.calls + b.calls, uint64_t{kThreads * kCalls});
  EXPECT_EQ(a.hits + b.hits, uint64_t{kThreads * kCalls});
  EXPECT_EQ(a.misses + b.misses, 0u);
}

TEST(RuntimeCpu, GraphReferencesSurviveMovingThePackage) {
  const std::vector<uint8_t> bytes = kiln_test::make_test_package();
  kiln::Package first = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  kiln::Graph& g = first.graph("scale_add");
  kiln::Package moved = std::move(first);
  Case c(8);
  c.call(g);
  EXPECT_EQ(c.wrong(), 0);
  EXPECT_EQ(&moved.graph("scale_add"), &g);
  EXPECT_EQ(g.counters().calls, 1u);
  EXPECT_EQ(g.counters().hits, 1u);
}

TEST(RuntimeCpu, PicksTheBestCpuTargetThisMachineRuns) {
  // Same kernels under two targets; the baseline always runs, so a call
  // succeeds whichever the host picks.
  const auto manifest =
      kiln_test::make_test_manifest({{.target = 1}}, {"cpu:x86-64", "cpu:x86-64-v2"});
  auto m = manifest;
  auto two = kiln_test::TestGraphOptions{};
  two.name = "base";
  two.target = 0;
  m.graphs.push_back(kiln_test::make_graph(two));
  const auto bytes = kiln::compiler::write_package(std::move(m), kiln_test::test_blobs(2));
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  // Every x86-64 machine this test runs on has SSE4.2: v2 is chosen, so the
  // graph whose only specializations are for the baseline has no candidate.
  Case c(8);
  c.call(p.graph("scale_add"));
  EXPECT_EQ(c.wrong(), 0);
  Case d(8);
  EXPECT_THROW(d.call(p.graph("base")), kiln::NoSpecializationError);
}

TEST(RuntimeCpu, NoCpuTargetForThisMachineIsATypedError) {
  // A package for a level above the host's, if the host is below v4.
  const std::vector<std::string> targets = {"cpu:x86-64-v4"};
  const auto bytes = kiln::compiler::write_package(kiln_test::make_test_manifest({{}}, targets),
                                                   kiln_test::test_blobs());
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  Case c(8);
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) {
    try {
      c.call(p.graph("scale_add"));
      FAIL();
    } catch (const kiln::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kernel_load_failed);
      EXPECT_NE(std::string(e.what()).find("cpu:x86-64-v4"), std::string::npos) << e.what();
    }
  } else {
    c.call(p.graph("scale_add"));
    EXPECT_EQ(c.wrong(), 0);
  }
}

TEST(RuntimeCpu, KernelLoadFailuresAreTyped) {
  // An object built for another ABI version.
  const std::vector<uint8_t> wrong_abi =
      kiln_test::compile_shared_object(kiln_test::kScaleAddKernelSource, "-DABI_VERSION=2");
  auto bytes = kiln::compiler::write_package(kiln_test::make_test_manifest({{}}),
                                             kiln_test::test_blobs(1, &wrong_abi));
  kiln::Package p = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  Case c(8);
  try {
    c.call(p.graph("scale_add"));
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kernel_load_failed);
    EXPECT_NE(std::string(e.what()).find("ABI version 2"), std::string::npos) << e.what();
  }

  // A missing entry point names the kernel.
  auto m = kiln_test::make_test_manifest({{}});
  m.kernels[0]->entry = "kiln_test_missing";
  bytes = kiln::compiler::write_package(std::move(m), kiln_test::test_blobs());
  kiln::Package q = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  try {
    c.call(q.graph("scale_add"));
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kernel_load_failed);
    EXPECT_NE(std::string(e.what()).find("kiln_test_missing"), std::string::npos) << e.what();
  }

  // Not an ELF object at all.
  const std::vector<uint8_t> junk(4096, 0x5A);
  bytes = kiln::compiler::write_package(kiln_test::make_test_manifest({{}}),
                                        kiln_test::test_blobs(1, &junk));
  kiln::Package r = kiln::Package::open_memory(kiln_test::as_bytes(bytes));
  try {
    c.call(r.graph("scale_add"));
    FAIL();
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kernel_load_failed);
  }
}

TEST(RuntimeCpu, TensorViewCopiesKeepTheirOwnShape) {
  std::vector<float> data(6);
  TensorView a(data.data(), DType::bf16, {2, 3});
  TensorView b = a;
  EXPECT_NE(b.dl().shape, a.dl().shape);
  // Reassigning the source leaves the copy alone.
  a = TensorView(data.data(), DType::f32, {6});
  EXPECT_EQ(a.dl().ndim, 1);
  EXPECT_EQ(a.dl().shape[0], 6);
  EXPECT_EQ(b.dl().ndim, 2);
  EXPECT_EQ(b.dl().shape[1], 3);
  EXPECT_EQ(b.dl().strides, nullptr);
  EXPECT_EQ(b.dl().dtype.code, kDLBfloat);
  const TensorView& same = a;
  a = same;  // self-assignment keeps the view
  EXPECT_EQ(a.dl().shape, same.dl().shape);
  EXPECT_EQ(a.dl().shape[0], 6);
  int64_t shape[] = {2, 3}, strides[] = {1, 2};
  TensorView c(data.data(), DType::f32, shape, strides);
  TensorView d = TensorView::from_dlpack(c.dl());
  EXPECT_EQ(d.dl().strides[1], 2);
  EXPECT_NE(d.dl().strides, c.dl().strides);
  EXPECT_EQ(kiln::dtype_from_dlpack({kDLUInt, 8, 1}), DType::boolean);
  EXPECT_EQ(kiln::dtype_from_dlpack(kiln::to_dlpack(DType::boolean)), DType::boolean);
  EXPECT_EQ(kiln::dlpack_dtype_name({kDLUInt, 16, 1}), "uint16");
  EXPECT_THROW(TensorView(data.data(), DType::f32, {1, 1, 1, 1, 1, 1, 1, 1, 1}), kiln::Error);
}

}  // namespace
