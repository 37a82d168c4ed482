// The shape-keyed selection table on its own (runtime/src): which
// specializations a call tries, so that a hit runs one static program
// instead of every static one in turn.
#include <gtest/gtest.h>

#include "guard_program.h"
#include "kiln/package_reader.h"
#include "kiln/tensor_view.h"
#include "selection_table.h"
#include "test_support/cpu_test_package.h"

namespace {

using kiln::DType;
using kiln::TensorView;

class SelectionTableTest : public ::testing::Test {
 protected:
  // scale_add with statics n = 8, 16, 32, then general.
  void SetUp() override {
    kiln_test::TestGraphOptions o;
    o.more_statics = {16, 32};
    bytes_ = kiln_test::make_test_package({o});
    reader_ = std::make_unique<kiln::PackageReader>(
        kiln::PackageReader::open_memory(kiln_test::as_bytes(bytes_)));
    const kiln::fb::GraphEntry& g = *reader_->manifest().graphs()->Get(0);
    names_.tensors = {"x", "w", "y"};
    names_.symbols = {"n"};
    for (const kiln::fb::Specialization* spec : *g.specializations()) {
      programs_.emplace_back(*spec, names_);
    }
    std::vector<const kiln::detail::GuardProgram*> pointers;
    for (const auto& p : programs_) pointers.push_back(&p);
    table_ = kiln::detail::SelectionTable({0, 1, 2, 3}, pointers, 3);
  }

  std::vector<uint32_t> candidates(int64_t n) {
    TensorView x(data_, DType::f32, {n, 64}), w(data_, DType::f32, {64}),
        y(data_, DType::f32, {n, 64});
    const DLTensor* tensors[] = {&x.dl(), &w.dl(), &y.dl()};
    const auto c = table_.candidates(tensors);
    return {c.begin(), c.end()};
  }

  std::vector<uint8_t> bytes_;
  std::unique_ptr<kiln::PackageReader> reader_;
  kiln::detail::GraphNames names_;
  std::vector<kiln::detail::GuardProgram> programs_;
  kiln::detail::SelectionTable table_;
  float data_[4] = {};
};

TEST_F(SelectionTableTest, AStaticIsTriedOnlyForItsOwnShape) {
  EXPECT_EQ(candidates(8), (std::vector<uint32_t>{0, 3}));
  EXPECT_EQ(candidates(16), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(candidates(32), (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(candidates(9), (std::vector<uint32_t>{3}));
  EXPECT_EQ(candidates(0), (std::vector<uint32_t>{3}));
  EXPECT_EQ(table_.describe(names_), "n (x.shape[0]): 3 values");
  EXPECT_TRUE(table_.covers_validation());
}

TEST_F(SelectionTableTest, UnreadableKeysFallBackToEveryCandidate) {
  const int64_t* no_dims = nullptr;
  TensorView x1(data_, DType::f32, std::span<const int64_t>(no_dims, 0));  // rank 0: no shape[0]
  TensorView w(data_, DType::f32, {64}), y(data_, DType::f32, {8, 64});
  const DLTensor* rank_one[] = {&x1.dl(), &w.dl(), &y.dl()};
  EXPECT_EQ(table_.candidates(rank_one).size(), 4u);
  const DLTensor* null_x[] = {nullptr, &w.dl(), &y.dl()};
  EXPECT_EQ(table_.candidates(null_x).size(), 4u);
  DLTensor no_shape = y.dl();
  no_shape.shape = nullptr;
  const DLTensor* null_shape[] = {&no_shape, &w.dl(), &y.dl()};
  EXPECT_EQ(table_.candidates(null_shape).size(), 4u);
}

TEST_F(SelectionTableTest, AProgramThatLeavesATensorUncheckedDoesNotCoverValidation) {
  std::vector<const kiln::detail::GuardProgram*> pointers;
  for (const auto& p : programs_) pointers.push_back(&p);
  // Four tensors: the fourth is checked by no program.
  EXPECT_FALSE(kiln::detail::SelectionTable({0, 1, 2, 3}, pointers, 4).covers_validation());
  EXPECT_TRUE(programs_[3].covers_validation(3));
}

}  // namespace
