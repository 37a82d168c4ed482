// The `kiln` command line as a user meets it: --version, `kiln help`, each
// command's help (the same from `kiln help C`, `kiln C --help` and `-h`),
// usage errors (exit 2, saying what was expected and what came) and
// failures (exit 1, one "error[CODE]: ..." line). Every message ends with
// exactly one newline.
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/abi/package_header.h"
#include "kiln/support/process.h"
#include "test_support/scratch_files.h"

namespace {

namespace fs = std::filesystem;
using kiln::support::ProcessResult;

ProcessResult kiln_cli(std::vector<std::string> args) {
  args.insert(args.begin(), KILN_TEST_KILN_CLI);
  return kiln::support::run_process(args);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool ends_with_one_newline(const std::string& text) {
  return text.ends_with('\n') && !text.ends_with("\n\n");
}

// The options each command's help must name, as its table says them.
struct CommandExpectation {
  std::string name;
  std::string usage;  // the help's first line
  std::vector<std::string> mentions;
};

const std::vector<CommandExpectation>& commands() {
  static const std::vector<CommandExpectation> expected = {
      {"inspect", "usage: kiln inspect PKG [--json]", {"\n      --json  ", "--json"}},
      {"verify",
       "usage: kiln verify PKG [--trusted-keys LIST]",
       {"error[CODE]", "checksum", "\n      --trusted-keys LIST  ", "KILN_TRUSTED_KEYS",
        "untrusted_package"}},
      {"merge",
       "usage: kiln merge BASE DELTA... -o OUT [-k K]",
       {"\n  -o, --output OUT  ", "\n  -k, --key K       ", "unsigned"}},
      {"keygen",
       "usage: kiln keygen -o NAME [--comment TEXT]",
       {"\n  -o, --out NAME      ", "\n      --comment TEXT  ", "NAME.key", "NAME.pub", "0600",
        "never overwritten", "key id"}},
      {"sign",
       "usage: kiln sign PKG -k K [-o OUT]",
       {"\n  -k, --key K    ", "\n  -o, --out OUT  ", "same bytes", "1.1"}},
      {"cache",
       "usage: kiln cache stats|prune|clear [--dir DIR] [--max-size SIZE]",
       {"\n      --dir DIR  ", "\n      --max-size SIZE  ",
        "\nstats: ", "\nprune: ", "\nclear: ", "KILN_CACHE_DIR", "KILN_CACHE_MAX_SIZE"}},
      {"help", "usage: kiln help [COMMAND]", {"kiln COMMAND --help"}},
  };
  return expected;
}

TEST(Cli, VersionPrintsTheProjectVersionAndThePackageFormat) {
  const ProcessResult r = kiln_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "kiln " KILN_TEST_KILN_VERSION "\npackage format " +
                          std::to_string(KILN_PACKAGE_FORMAT_MAJOR) + "." +
                          std::to_string(KILN_PACKAGE_FORMAT_MINOR) + " (reads " +
                          std::to_string(KILN_PACKAGE_FORMAT_MAJOR) + ".x)\n");
}

TEST(Cli, HelpListsEveryCommandWithOneLine) {
  const ProcessResult help = kiln_cli({"help"});
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_EQ(kiln_cli({"--help"}).output, help.output);
  EXPECT_EQ(kiln_cli({"-h"}).output, help.output);
  EXPECT_TRUE(help.output.starts_with("usage: kiln COMMAND [OPTIONS]\n")) << help.output;
  for (const CommandExpectation& command : commands()) {
    // "  inspect  Show a package's ...": the name, then its summary.
    const std::string entry = "\n  " + command.name + std::string(9 - command.name.size(), ' ');
    EXPECT_NE(help.output.find(entry), std::string::npos) << command.name << "\n" << help.output;
  }
  EXPECT_NE(help.output.find("--version"), std::string::npos) << help.output;
  EXPECT_TRUE(ends_with_one_newline(help.output));
}

TEST(Cli, EachCommandsHelpSaysWhatItDoesAndItsOptions) {
  for (const CommandExpectation& command : commands()) {
    SCOPED_TRACE(command.name);
    const ProcessResult help = kiln_cli({"help", command.name});
    EXPECT_EQ(help.exit_code, 0) << help.output;
    // Written once: --help, -h and `kiln help C` print the same text.
    EXPECT_EQ(kiln_cli({command.name, "--help"}).output, help.output);
    EXPECT_EQ(kiln_cli({command.name, "-h"}).output, help.output);
    const std::vector<std::string> lines = lines_of(help.output);
    ASSERT_GE(lines.size(), 6u) << help.output;
    EXPECT_EQ(lines[0], command.usage);
    EXPECT_EQ(lines[1], "");
    EXPECT_FALSE(lines[2].empty()) << help.output;  // the summary
    for (const std::string& mention : command.mentions) {
      EXPECT_NE(help.output.find(mention), std::string::npos) << mention << "\n" << help.output;
    }
    EXPECT_NE(help.output.find("\noptions:\n"), std::string::npos) << help.output;
    EXPECT_NE(help.output.find("\n  -h, --help  "), std::string::npos) << help.output;
    EXPECT_TRUE(lines.back().starts_with("  ") || lines.back().starts_with("exit status: "))
        << help.output;
    EXPECT_NE(help.output.find("\nexit status: 0 "), std::string::npos) << help.output;
    for (const std::string& line : lines) EXPECT_LE(line.size(), 80u) << line;
    EXPECT_TRUE(ends_with_one_newline(help.output));
  }
}

// A usage error: exit 2, the first line exactly `first_line`, then the
// command's usage (or where the commands are listed), each line ended.
void expect_usage_error(const std::vector<std::string>& args, const std::string& first_line) {
  std::string shown = "kiln";
  for (const std::string& arg : args) shown += " '" + arg + "'";
  SCOPED_TRACE(shown);
  const ProcessResult r = kiln_cli(args);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const std::vector<std::string> lines = lines_of(r.output);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], first_line);
  if (!first_line.starts_with("kiln: ")) {  // "kiln COMMAND: ..."
    ASSERT_EQ(lines.size(), 3u) << r.output;
    EXPECT_TRUE(lines[1].starts_with("usage: kiln ")) << r.output;
    EXPECT_TRUE(lines[2].starts_with("run 'kiln help ")) << r.output;
  } else {
    ASSERT_EQ(lines.size(), 2u) << r.output;
    EXPECT_EQ(lines[1], "run 'kiln help' for the commands");
  }
  EXPECT_TRUE(ends_with_one_newline(r.output)) << r.output;
}

TEST(Cli, UsageErrorsSayWhatWasExpectedAndWhatCame) {
  const std::string commands = "inspect, verify, merge, keygen, sign, cache or help";
  expect_usage_error({}, "kiln: expected a command (" + commands + "), got none");
  expect_usage_error({"frob"}, "kiln: unknown command 'frob': expected " + commands);
  expect_usage_error({"--frob"},
                     "kiln: unknown option '--frob': expected --help, --version or "
                     "a command (" +
                         commands + ")");
  expect_usage_error({"help", "frob"}, "kiln help: unknown command 'frob': expected " + commands);
  expect_usage_error({"inspect"}, "kiln inspect: expected one package path, got none");
  expect_usage_error({"verify", "a.kiln", "b.kiln"},
                     "kiln verify: expected one package path, got 2: 'a.kiln' 'b.kiln'");
  expect_usage_error({"inspect", "--frob", "a.kiln"},
                     "kiln inspect: unknown option '--frob': expected --json or --help");
  expect_usage_error({"verify", "--json", "a.kiln"},
                     "kiln verify: unknown option '--json': expected --trusted-keys or --help");
  expect_usage_error({"keygen"}, "kiln keygen: expected -o NAME (--out), got none");
  expect_usage_error({"keygen", "-o", "k", "extra"},
                     "kiln keygen: expected no operand, got 1: 'extra'");
  expect_usage_error({"sign", "a.kiln"}, "kiln sign: expected -k K (--key), got none");
  expect_usage_error({"sign", "-k", "k.key"}, "kiln sign: expected one package path, got none");
  expect_usage_error({"merge", "a.kiln", "b.kiln"},
                     "kiln merge: expected -o OUT (--output), got none");
  expect_usage_error({"merge", "a.kiln", "-o", "c.kiln"},
                     "kiln merge: expected a base package and at least one delta, got 1: "
                     "'a.kiln'");
  expect_usage_error({"merge", "a.kiln", "b.kiln", "-o"},
                     "kiln merge: expected OUT after '-o', got the end of the command line");
  expect_usage_error({"merge", "a.kiln", "b.kiln", "-o", "c.kiln", "--output", "d.kiln"},
                     "kiln merge: --output given twice");
  expect_usage_error({"cache"}, "kiln cache: expected one of stats, prune, clear, got none");
  const fs::path dir = kiln_test::fresh_dir("cli/cache");
  expect_usage_error({"cache", "bogus", "--dir", dir.string()},
                     "kiln cache: expected stats, prune or clear, got 'bogus'");
  kiln_test::ScopedEnv no_cap("KILN_CACHE_MAX_SIZE", "");
  expect_usage_error(
      {"cache", "prune", "--dir", dir.string()},
      "kiln cache: prune: expected --max-size SIZE or KILN_CACHE_MAX_SIZE, got neither");
}

// A failure: exit 1 and one line, "error[CODE]: kiln: ...".
void expect_failure(const std::vector<std::string>& args, const std::string& code,
                    const std::string& says) {
  std::string shown = "kiln";
  for (const std::string& arg : args) shown += " '" + arg + "'";
  SCOPED_TRACE(shown);
  const ProcessResult r = kiln_cli(args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(lines_of(r.output).size(), 1u) << r.output;
  EXPECT_TRUE(r.output.starts_with("error[" + code + "]: kiln: ")) << r.output;
  EXPECT_NE(r.output.find(says), std::string::npos) << r.output;
  EXPECT_TRUE(ends_with_one_newline(r.output)) << r.output;
}

TEST(Cli, FailuresAreOneErrorLineEndedByANewline) {
  const fs::path dir = kiln_test::fresh_dir("cli/failures");
  const std::string missing = (dir / "missing.kiln").string();
  const std::string empty = (dir / "empty.kiln").string();
  const std::string text = (dir / "text.kiln").string();
  std::ofstream(empty).flush();
  std::ofstream(text) << "not a package, but long enough to hold a header: "
                      << std::string(KILN_PACKAGE_HEADER_SIZE, 'x');
  for (const std::string command : {"verify", "inspect"}) {
    expect_failure({command, missing}, "io", "cannot open package '" + missing + "'");
    expect_failure({command, dir.string()}, "io", "is not a regular file");
    expect_failure({command, empty}, "package_truncated", "");
    expect_failure({command, text}, "package_bad_magic", "");
  }
  expect_failure({"inspect", "--json", text}, "package_bad_magic", "");
  expect_failure({"merge", missing, empty, "-o", (dir / "out.kiln").string()}, "io",
                 "base '" + missing + "'");
  expect_failure({"cache", "prune", "--dir", dir.string(), "--max-size", "12x"}, "invalid_argument",
                 "got '12x'");
}

}  // namespace
