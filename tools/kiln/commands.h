// The subcommands of the `kiln` CLI and the one table that describes them:
// `kiln help`, `kiln help COMMAND`, `kiln COMMAND --help` and the argument
// parser all read it, so what the help says is what the parser accepts.
// Each run_* returns the process exit code: 0 success, 1 a failure it
// reported, 2 a usage error.
#pragma once

#include <cstddef>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kiln::cli {

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// One option of a command, as the help shows it and the parser reads it.
struct OptionSpec {
  std::string_view name;        // "--output"
  std::string_view short_name;  // "-o", or empty
  std::string_view value;       // the value's placeholder ("OUT"); empty for a flag
  std::string_view help;        // one sentence, wrapped by the help printer
  bool required = false;
};

struct CommandSpec {
  std::string_view name;      // "merge"
  std::string_view operands;  // "BASE DELTA...", as the usage line shows them
  std::string_view summary;   // the line `kiln help` lists
  std::string_view details;   // paragraphs separated by "\n\n", wrapped by the help printer
  std::span<const OptionSpec> options;  // --help aside, which every command takes
  size_t min_operands = 0;
  size_t max_operands = 0;
  std::string_view operands_expected;  // "one package path", for the usage error
  std::string_view exit_status;        // what 0, 1 and 2 mean for it
};

// Every command, in the order `kiln help` lists them.
std::span<const CommandSpec> command_specs();
// nullptr when there is no command of that name.
const CommandSpec* find_command(std::string_view name);
// "inspect, verify, merge, cache or help": what a command name may be.
std::string_view command_names_expected();
// The option of `command` spelt `spelling` (long or short), or nullptr.
const OptionSpec* find_option(const CommandSpec& command, std::string_view spelling);
// "--json or --help": the options `command` takes.
std::string options_expected(const CommandSpec& command);
// "kiln merge BASE DELTA... -o OUT".
std::string usage_line(const CommandSpec& command);

// `kiln help`, `kiln --help`: every command with its summary.
void print_overview(std::FILE* out);
// `kiln help COMMAND`, `kiln COMMAND --help`.
void print_command_help(const CommandSpec& command, std::FILE* out);
// `kiln --version`: the Kiln version and the package format it writes and reads.
void print_version(std::FILE* out);

// A usage error: "kiln[ COMMAND]: MESSAGE" then how to get help, on stderr.
// Returns kExitUsage.
int usage_error(const CommandSpec* command, std::string_view message);

// A failure of a command, on stderr, as one line ended by one newline:
// "error[CODE]: MESSAGE" for a kiln::Error, "error: MESSAGE" otherwise.
// Returns kExitFailure.
int report_failure(const std::exception& failure);

int run_inspect(const std::filesystem::path& package, bool json);
// `trusted_keys`: a ':'-separated list of .pub files; nullopt: KILN_TRUSTED_KEYS.
int run_verify(const std::filesystem::path& package, std::optional<std::string_view> trusted_keys);
// Writes `out` only when the merge succeeds; signed with `key` (a .key file) when given.
int run_merge(const std::filesystem::path& base, std::span<const std::filesystem::path> deltas,
              const std::filesystem::path& out, std::optional<std::filesystem::path> key);
int run_keygen(const std::filesystem::path& name, std::string_view comment);
// `out` empty: `package` itself.
int run_sign(const std::filesystem::path& package, const std::filesystem::path& key,
             const std::filesystem::path& out);
// `dir` empty: the JIT's default directory. `max_size`: prune's cap, else
// $KILN_CACHE_MAX_SIZE.
int run_cache(std::string_view action, std::filesystem::path dir,
              std::optional<std::string_view> max_size);

}  // namespace kiln::cli
