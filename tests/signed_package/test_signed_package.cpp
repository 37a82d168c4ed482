// add_precompiled_graphs(... SIGN_KEY): the package the build signed opens
// where its key is trusted, is refused under another key, and the same
// graph built without SIGN_KEY is refused where a key is trusted. The
// signed build is the unsigned one plus its signature: `kiln sign` of the
// unsigned package with the same key gives the same bytes.
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/package_reader.h"
#include "kiln/runtime.h"
#include "kiln/support/key_file.h"
#include "kiln/support/process.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;

const fs::path kKeys = KILN_TEST_KEYS_DIR;

// "runs right", or the error's code name.
std::string open_outcome(const fs::path& package, const kiln::OpenOptions& options) {
  try {
    kiln::Package p = kiln::Package::open(package, options);
    std::vector<float> x = {1, 2, 3, 4, 5}, y(5);
    p.graph("affine").call({kiln::TensorView(x.data(), kiln::DType::f32, {5})},
                           {kiln::TensorView(y.data(), kiln::DType::f32, {5})});
    for (size_t i = 0; i < x.size(); ++i) {
      if (y[i] != 2 * x[i] + 1) return "runs wrong";
    }
    return "runs right";
  } catch (const kiln::Error& e) {
    return std::string(kiln::error_code_name(e.code())) + ": " + e.what();
  }
}

kiln::OpenOptions trusting(const fs::path& pub) {
  kiln::OpenOptions options;
  options.trusted_key_files = {pub};
  return options;
}

TEST(SignedPackage, TheBuildSignedItWithSignKey) {
  const kiln::PackageReader reader = kiln::PackageReader::open_file(KILN_TEST_SIGNED_PACKAGE);
  ASSERT_TRUE(reader.signer().has_value());
  EXPECT_EQ(reader.signer()->public_key,
            kiln::support::read_public_key_file(kKeys / "test_signer.pub").key);
  EXPECT_FALSE(kiln::PackageReader::open_file(KILN_TEST_UNSIGNED_PACKAGE).signer().has_value());
}

TEST(SignedPackage, OpensWithItsKeyOnly) {
  EXPECT_EQ(open_outcome(KILN_TEST_SIGNED_PACKAGE, trusting(kKeys / "test_signer.pub")),
            "runs right");
  EXPECT_EQ(open_outcome(KILN_TEST_SIGNED_PACKAGE, {}), "runs right");
  const std::string signer_id =
      kiln::support::key_id(kiln::support::read_public_key_file(kKeys / "test_signer.pub").key);
  EXPECT_EQ(
      open_outcome(KILN_TEST_SIGNED_PACKAGE, trusting(kKeys / "test_other.pub")),
      "untrusted_package: kiln: package is signed by key " + signer_id +
          ", which is not trusted here (1 trusted key: " +
          kiln::support::key_id(kiln::support::read_public_key_file(kKeys / "test_other.pub").key) +
          " from key file '" + (kKeys / "test_other.pub").string() + "')");
}

TEST(SignedPackage, TheUnsignedBuildIsRefusedWhereAKeyIsTrusted) {
  EXPECT_EQ(open_outcome(KILN_TEST_UNSIGNED_PACKAGE, {}), "runs right");
  const std::string outcome =
      open_outcome(KILN_TEST_UNSIGNED_PACKAGE, trusting(kKeys / "test_signer.pub"));
  EXPECT_TRUE(outcome.starts_with("untrusted_package: kiln: package is unsigned")) << outcome;
  kiln_test::ScopedEnv env("KILN_TRUSTED_KEYS", (kKeys / "test_signer.pub").c_str());
  EXPECT_TRUE(open_outcome(KILN_TEST_UNSIGNED_PACKAGE, {}).starts_with("untrusted_package"));
  EXPECT_EQ(open_outcome(KILN_TEST_SIGNED_PACKAGE, {}), "runs right");
}

TEST(SignedPackage, KilnSignOfTheUnsignedBuildGivesTheSignedBuild) {
  const fs::path dir = kiln_test::fresh_dir("signed_package");
  const auto r = kiln::support::run_process({KILN_TEST_KILN_CLI, "sign", KILN_TEST_UNSIGNED_PACKAGE,
                                             "--key", (kKeys / "test_signer.key").string(), "--out",
                                             (dir / "resigned.kiln").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(kiln_test::slurp(dir / "resigned.kiln"), kiln_test::slurp(KILN_TEST_SIGNED_PACKAGE));
}

}  // namespace
