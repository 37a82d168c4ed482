// The `kiln` command line: inspect, verify and merge packages, look after
// the JIT cache. The commands and their options are the table of
// command_specs.cpp; this file reads argv against it and dispatches.
#include <cstdio>
#include <filesystem>
#include <map>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "kiln/error.h"

namespace {

using kiln::cli::CommandSpec;
using kiln::cli::OptionSpec;
using kiln::cli::usage_error;

// A command line checked against its command's spec.
struct ParsedCommand {
  std::vector<std::string_view> operands;
  std::map<std::string_view, std::string_view> options;  // by long name; "" for a flag
  bool help = false;

  std::optional<std::string_view> option(std::string_view name) const {
    const auto it = options.find(name);
    return it == options.end() ? std::nullopt : std::optional(it->second);
  }
};

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// The arguments after the command name. Returns the exit code of a usage
// error, already reported, or nullopt with `parsed` filled.
std::optional<int> parse(const CommandSpec& command, std::span<const std::string_view> args,
                         ParsedCommand& parsed) {
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (options_ended || arg == "-" || !arg.starts_with("-")) {
      parsed.operands.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      parsed.help = true;
      continue;
    }
    const OptionSpec* option = kiln::cli::find_option(command, arg);
    if (option == nullptr) {
      return usage_error(&command, "unknown option " + quoted(arg) + ": expected " +
                                       kiln::cli::options_expected(command));
    }
    if (parsed.options.contains(option->name)) {
      return usage_error(&command, std::string(option->name) + " given twice");
    }
    if (option->value.empty()) {
      parsed.options.emplace(option->name, "");
      continue;
    }
    if (i + 1 == args.size()) {
      return usage_error(&command, "expected " + std::string(option->value) + " after " +
                                       quoted(arg) + ", got the end of the command line");
    }
    parsed.options.emplace(option->name, args[++i]);
  }
  if (parsed.help) return std::nullopt;
  const size_t count = parsed.operands.size();
  if (count < command.min_operands || count > command.max_operands) {
    std::string got = count == 0 ? "none" : std::to_string(count) + ":";
    // Appended piecewise: `" " + quoted(operand)` draws a false -Wrestrict
    // from GCC 12 (its bug 105329).
    for (std::string_view operand : parsed.operands) got.append(" ").append(quoted(operand));
    return usage_error(&command,
                       "expected " + std::string(command.operands_expected) + ", got " + got);
  }
  for (const OptionSpec& option : command.options) {
    if (option.required && !parsed.options.contains(option.name)) {
      return usage_error(&command, "expected " + std::string(option.short_name) + " " +
                                       std::string(option.value) + " (" + std::string(option.name) +
                                       "), got none");
    }
  }
  return std::nullopt;
}

int run(const CommandSpec& command, const ParsedCommand& parsed) {
  const std::vector<std::string_view>& operands = parsed.operands;
  if (command.name == "inspect") {
    return kiln::cli::run_inspect(std::filesystem::path(operands[0]),
                                  parsed.option("--json").has_value());
  }
  if (command.name == "verify") {
    return kiln::cli::run_verify(std::filesystem::path(operands[0]),
                                 parsed.option("--trusted-keys"));
  }
  if (command.name == "merge") {
    const std::vector<std::filesystem::path> deltas(operands.begin() + 1, operands.end());
    std::optional<std::filesystem::path> key;
    if (const auto k = parsed.option("--key")) key = std::filesystem::path(*k);
    return kiln::cli::run_merge(std::filesystem::path(operands[0]), deltas,
                                std::filesystem::path(*parsed.option("--output")), key);
  }
  if (command.name == "keygen") {
    return kiln::cli::run_keygen(std::filesystem::path(*parsed.option("--out")),
                                 parsed.option("--comment").value_or(""));
  }
  if (command.name == "sign") {
    return kiln::cli::run_sign(std::filesystem::path(operands[0]),
                               std::filesystem::path(*parsed.option("--key")),
                               std::filesystem::path(parsed.option("--out").value_or("")));
  }
  if (command.name == "cache") {
    return kiln::cli::run_cache(operands[0],
                                std::filesystem::path(parsed.option("--dir").value_or("")),
                                parsed.option("--max-size"));
  }
  // help
  if (operands.empty()) {
    kiln::cli::print_overview(stdout);
    return kiln::cli::kExitSuccess;
  }
  const CommandSpec* topic = kiln::cli::find_command(operands[0]);
  if (topic == nullptr) {
    return usage_error(&command, "unknown command " + quoted(operands[0]) + ": expected " +
                                     std::string(kiln::cli::command_names_expected()));
  }
  kiln::cli::print_command_help(*topic, stdout);
  return kiln::cli::kExitSuccess;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    return usage_error(
        nullptr,
        "expected a command (" + std::string(kiln::cli::command_names_expected()) + "), got none");
  }
  const std::string_view first = args[0];
  if (first == "-h" || first == "--help") {
    kiln::cli::print_overview(stdout);
    return kiln::cli::kExitSuccess;
  }
  if (first == "--version") {
    kiln::cli::print_version(stdout);
    return kiln::cli::kExitSuccess;
  }
  const CommandSpec* command = kiln::cli::find_command(first);
  if (command == nullptr) {
    const std::string commands(kiln::cli::command_names_expected());
    if (first.starts_with("-")) {
      return usage_error(nullptr, "unknown option " + quoted(first) +
                                      ": expected --help, --version or a command (" + commands +
                                      ")");
    }
    return usage_error(nullptr, "unknown command " + quoted(first) + ": expected " + commands);
  }
  ParsedCommand parsed;
  if (const std::optional<int> error = parse(*command, std::span(args).subspan(1), parsed)) {
    return *error;
  }
  if (parsed.help) {
    kiln::cli::print_command_help(*command, stdout);
    return kiln::cli::kExitSuccess;
  }
  // The commands report their failures; this is the net under them, so that
  // no input ends the process with an uncaught exception (an abort).
  try {
    return run(*command, parsed);
  } catch (const std::bad_alloc&) {
    return kiln::cli::report_failure(
        kiln::Error(kiln::ErrorCode::resource_limit, "kiln: out of memory"));
  } catch (const std::exception& e) {
    return kiln::cli::report_failure(e);
  } catch (...) {
    return kiln::cli::report_failure(
        kiln::Error(kiln::ErrorCode::internal, "kiln: an exception that is not a std::exception"));
  }
}
