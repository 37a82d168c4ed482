// The table of `kiln` commands and their options, and everything printed
// from it: the overview, each command's help, usage errors and --version.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "commands.h"
#include "kiln/abi/package_header.h"
#include "kiln/error.h"

namespace kiln::cli {
namespace {

constexpr size_t kHelpWidth = 80;
// The option every command takes, listed in each command's help.
constexpr OptionSpec kHelpOption{"--help", "-h", "", "Show this help and exit."};

constexpr std::array kInspectOptions{
    OptionSpec{"--json", "", "", "Print the same content as one JSON object (for programs)."},
};

constexpr std::array kMergeOptions{
    OptionSpec{"--output", "-o", "OUT",
               "The package to write, atomically: written only when the merge succeeds. It may "
               "be BASE.",
               true},
    OptionSpec{"--key", "-k", "K",
               "Sign OUT with this secret key file (`kiln keygen`). Without it OUT is unsigned: "
               "no input's signature carries over to new bytes."},
};

constexpr std::array kVerifyOptions{
    OptionSpec{"--trusted-keys", "", "LIST",
               "The .pub files of the keys to trust, ':'-separated (as KILN_TRUSTED_KEYS, "
               "the default): the package must be signed by one of them."},
};

constexpr std::array kKeygenOptions{
    OptionSpec{"--out", "-o", "NAME",
               "Write the key pair to NAME.key (the secret key, mode 0600) and NAME.pub (the "
               "public key). Neither may exist: a key is never overwritten.",
               true},
    OptionSpec{"--comment", "", "TEXT",
               "A comment on both lines, e.g. who holds the key (printable ASCII, at most 256 "
               "bytes)."},
};

constexpr std::array kSignOptions{
    OptionSpec{"--key", "-k", "K",
               "The secret key file (NAME.key, from `kiln keygen`) to sign with.", true},
    OptionSpec{"--out", "-o", "OUT",
               "Write the signed package here, atomically. Default: PKG itself."},
};

constexpr std::array kCacheOptions{
    OptionSpec{"--dir", "", "DIR",
               "The cache directory. Default: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else "
               "~/.cache/kiln, as the JIT chooses."},
    OptionSpec{"--max-size", "", "SIZE",
               "prune: the size to prune down to, in bytes or with a K, M or G suffix (powers of "
               "1024: \"500M\", \"2G\"). Default: $KILN_CACHE_MAX_SIZE."},
};

constexpr std::string_view kPackageExitStatus =
    "0 the package passed, 1 it failed (the error names the check), 2 usage error";

constexpr std::array kCommands{
    CommandSpec{
        .name = "inspect",
        .operands = "PKG",
        .summary = "Show a package's graphs, specializations, guards, kernels, blobs and "
                   "provenance.",
        .details = "Prints what the manifest of the package file PKG says: its format and targets; "
                   "each graph's symbols, inputs and outputs; its specializations in the order the "
                   "runtime tries them, each with its guards, buffers and launches; then every "
                   "kernel, every blob (kind, target, sizes, compression, hash) and the provenance "
                   "(Kiln version, compilers, flags, source hash).\n\n"
                   "The package is checked as the runtime checks it at open (header, checksum, "
                   "manifest); blobs are not decompressed: `kiln verify` does that.",
        .options = kInspectOptions,
        .min_operands = 1,
        .max_operands = 1,
        .operands_expected = "one package path",
        .exit_status = kPackageExitStatus,
    },
    CommandSpec{
        .name = "verify",
        .operands = "PKG",
        .summary = "Check a package fully: header, checksum, manifest, every blob's hash.",
        .details =
            "Makes every check the runtime makes when it opens the package file PKG (magic, "
            "format version, sizes, the XXH3-128 checksum, the FlatBuffers verifier, the "
            "manifest's own consistency, launch plans' sizes against their buffers, the default "
            "size limits), then those it defers to a blob's first use: every blob's hash and "
            "decompression.\n\n"
            "A signed package's signature is checked too, and who signed it is said: its key "
            "id, and, with trusted keys (--trusted-keys, else KILN_TRUSTED_KEYS), which of "
            "them; an unsigned package or another key then fails with untrusted_package, as "
            "the runtime would refuse it.\n\n"
            "Prints \"ok: PKG (G graphs, B blobs, N bytes)\" and a line on its signature, or "
            "the first problem as \"error[CODE]: ...\", CODE being the kiln::ErrorCode's name "
            "(package_truncated, package_checksum_mismatch, untrusted_package, resource_limit, "
            "...).",
        .options = kVerifyOptions,
        .min_operands = 1,
        .max_operands = 1,
        .operands_expected = "one package path",
        .exit_status = kPackageExitStatus,
    },
    CommandSpec{
        .name = "merge",
        .operands = "BASE DELTA...",
        .summary = "Fold delta packages (what the JIT compiled, another build's "
                   "specializations) into a base package.",
        .details =
            "Adds to the package BASE the specializations of each DELTA that BASE lacks, with "
            "their kernels, blobs and targets, skipping those it already has (same key), and "
            "writes the result to OUT. A delta is what Package::export_compiled wrote (the "
            "JIT's compiles in production) or another build of the same graphs (other hot "
            "values, another profile). Every graph of a delta must be one of BASE's, with the "
            "same structure. The rules: docs/package-format.md.",
        .options = kMergeOptions,
        .min_operands = 2,
        .max_operands = SIZE_MAX,
        .operands_expected = "a base package and at least one delta",
        .exit_status = "0 OUT written, 1 a package failed or does not fit BASE (OUT is not "
                       "written), 2 usage error",
    },
    CommandSpec{
        .name = "keygen",
        .operands = "",
        .summary = "Make an ed25519 key pair to sign packages with.",
        .details = "Writes NAME.key, the secret key (keep it secret: whoever has it can sign "
                   "packages your deployments trust), and NAME.pub, the public key to give "
                   "those who trust it (OpenOptions::trusted_keys, KILN_TRUSTED_KEYS, `kiln "
                   "verify --trusted-keys`). Prints the key id, the first 16 hex digits of the "
                   "public key, by which messages name the key.",
        .options = kKeygenOptions,
        .min_operands = 0,
        .max_operands = 0,
        .operands_expected = "no operand",
        .exit_status = "0 the keys were written, 1 they could not be (or a file exists), 2 "
                       "usage error",
    },
    CommandSpec{
        .name = "sign",
        .operands = "PKG",
        .summary = "Sign a package with a secret key.",
        .details = "Checks the package fully (as `kiln verify`), then writes its ed25519 "
                   "signature of the header and manifest (which hold every blob's hash) into "
                   "the header's signature block, replacing any earlier signature. Nothing else "
                   "changes; the same package and key give the same bytes. A package of format "
                   "1.1 or older has no signature block: rebuild it. The format: "
                   "docs/package-format.md.",
        .options = kSignOptions,
        .min_operands = 1,
        .max_operands = 1,
        .operands_expected = "one package path",
        .exit_status = "0 signed, 1 the package or key failed (nothing is written), 2 usage "
                       "error",
    },
    CommandSpec{
        .name = "cache",
        .operands = "stats|prune|clear",
        .summary = "Look after the JIT's disk cache: its size and counters, prune it, clear it.",
        .details =
            "stats: the directory, its entries, bytes and stale temp files, and the counters "
            "of every process that used it (disk hits, compiles and their time, failures, "
            "corrupt entries, evictions, bypasses).\n\n"
            "prune: remove entries, least recently used first, until they total at most SIZE; "
            "also temp files older than an hour.\n\n"
            "clear: remove every entry, with the counters and remembered compiler identities.\n\n"
            "The cache and its rules: docs/jit.md.",
        .options = kCacheOptions,
        .min_operands = 1,
        .max_operands = 1,
        .operands_expected = "one of stats, prune, clear",
        .exit_status = "0 success, 1 the cache could not be read or changed, 2 usage error",
    },
    CommandSpec{
        .name = "help",
        .operands = "[COMMAND]",
        .summary = "List the commands, or say what COMMAND does and its options.",
        .details = "`kiln COMMAND --help` says the same as `kiln help COMMAND`.",
        .options = {},
        .min_operands = 0,
        .max_operands = 1,
        .operands_expected = "at most one command name",
        .exit_status = "0 success, 2 usage error (an unknown command)",
    },
};

// Appends `text` to `out`, words wrapped at kHelpWidth, each line after the
// first starting with `indent` spaces; the first continues from `column`.
void append_wrapped(std::string& out, std::string_view text, size_t indent, size_t column) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find(' ', pos);
    const std::string_view word =
        text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    if (word.empty()) continue;
    if (column > indent && column + 1 + word.size() > kHelpWidth) {
      out += '\n';
      out.append(indent, ' ');
      column = indent;
    } else if (column > indent) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
  }
}

// Paragraphs separated by "\n\n", each wrapped, with `indent` spaces.
void append_paragraphs(std::string& out, std::string_view text, size_t indent) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find("\n\n", pos);
    const std::string_view paragraph =
        text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 2;
    out.append(indent, ' ');
    append_wrapped(out, paragraph, indent, indent);
    out += pos < text.size() ? "\n\n" : "\n";
  }
}

// "-o, --output OUT", "    --json": long names aligned.
std::string option_label(const OptionSpec& option) {
  std::string label(option.short_name);
  label += option.short_name.empty() ? "    " : ", ";
  label += option.name;
  if (!option.value.empty()) label.append(" ").append(option.value);
  return label;
}

void append_option(std::string& out, const OptionSpec& option, size_t label_width) {
  constexpr size_t kIndent = 2;
  const std::string label = option_label(option);
  out.append(kIndent, ' ');
  out += label;
  out.append(label_width - label.size() + 2, ' ');
  append_wrapped(out, option.help, kIndent + label_width + 2, kIndent + label_width + 2);
  out += '\n';
}

// "exit status: ...", wrapped with a hanging indent.
void append_exit_status(std::string& out, std::string_view meanings) {
  constexpr std::string_view kLabel = "exit status:";  // append_wrapped adds the space
  out += kLabel;
  append_wrapped(out, meanings, 2, kLabel.size());
  out += '\n';
}

void write(std::FILE* out, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), out);
}

}  // namespace

std::span<const CommandSpec> command_specs() { return kCommands; }

const CommandSpec* find_command(std::string_view name) {
  for (const CommandSpec& command : kCommands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::string_view command_names_expected() {
  static const std::string names = [] {
    std::string text;
    for (size_t i = 0; i < kCommands.size(); ++i) {
      if (i > 0) text += i + 1 == kCommands.size() ? " or " : ", ";
      text += kCommands[i].name;
    }
    return text;
  }();
  return names;
}

const OptionSpec* find_option(const CommandSpec& command, std::string_view spelling) {
  for (const OptionSpec& option : command.options) {
    if (option.name == spelling || (!option.short_name.empty() && option.short_name == spelling)) {
      return &option;
    }
  }
  return nullptr;
}

std::string options_expected(const CommandSpec& command) {
  std::string text;
  for (const OptionSpec& option : command.options) {
    text.append(option.name).append(", ");
  }
  if (!text.empty()) text.replace(text.size() - 2, 2, " or ");
  return text + std::string(kHelpOption.name);
}

std::string usage_line(const CommandSpec& command) {
  std::string line = "kiln ";
  line += command.name;
  if (!command.operands.empty()) line.append(" ").append(command.operands);
  for (const OptionSpec& option : command.options) {
    line += option.required ? " " : " [";
    line += option.short_name.empty() ? option.name : option.short_name;
    if (!option.value.empty()) line.append(" ").append(option.value);
    if (!option.required) line += "]";
  }
  return line;
}

void print_overview(std::FILE* out) {
  std::string text =
      "usage: kiln COMMAND [OPTIONS]\n"
      "       kiln help COMMAND | kiln COMMAND --help   what COMMAND does, its options\n"
      "       kiln --version\n\n";
  append_paragraphs(text,
                    "Kiln's command line: inspect and check precompiled .kiln packages, merge "
                    "them, sign them, look after the JIT's disk cache.",
                    0);
  text += "\ncommands:\n";
  size_t name_width = 0;
  for (const CommandSpec& command : kCommands)
    name_width = std::max(name_width, command.name.size());
  for (const CommandSpec& command : kCommands) {
    text.append("  ").append(command.name);
    text.append(name_width - command.name.size() + 2, ' ');
    append_wrapped(text, command.summary, name_width + 4, name_width + 4);
    text += '\n';
  }
  text +=
      "\noptions:\n"
      "  -h, --help     show this help\n"
      "      --version  print the Kiln version and the package format\n\n";
  append_exit_status(text, "0 success, 1 the command failed (a package, the cache), 2 usage error");
  write(out, text);
}

void print_command_help(const CommandSpec& command, std::FILE* out) {
  std::string text = "usage: " + usage_line(command) + "\n\n";
  append_paragraphs(text, command.summary, 0);
  text += '\n';
  append_paragraphs(text, command.details, 0);
  text += "\noptions:\n";
  size_t label_width = option_label(kHelpOption).size();
  for (const OptionSpec& option : command.options) {
    label_width = std::max(label_width, option_label(option).size());
  }
  for (const OptionSpec& option : command.options) append_option(text, option, label_width);
  append_option(text, kHelpOption, label_width);
  text += '\n';
  append_exit_status(text, command.exit_status);
  write(out, text);
}

void print_version(std::FILE* out) {
  std::fprintf(out, "kiln %s\npackage format %d.%d (reads %d.x)\n", KILN_VERSION,
               KILN_PACKAGE_FORMAT_MAJOR, KILN_PACKAGE_FORMAT_MINOR, KILN_PACKAGE_FORMAT_MAJOR);
}

int usage_error(const CommandSpec* command, std::string_view message) {
  if (command == nullptr) {
    std::fprintf(stderr, "kiln: %.*s\nrun 'kiln help' for the commands\n",
                 static_cast<int>(message.size()), message.data());
  } else {
    std::fprintf(stderr, "kiln %.*s: %.*s\nusage: %s\nrun 'kiln help %.*s' for its options\n",
                 static_cast<int>(command->name.size()), command->name.data(),
                 static_cast<int>(message.size()), message.data(), usage_line(*command).c_str(),
                 static_cast<int>(command->name.size()), command->name.data());
  }
  return kExitUsage;
}

int report_failure(const std::exception& failure) {
  std::string_view message = failure.what();
  // Exactly one newline ends the line, whatever the message ends with.
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
  if (const auto* error = dynamic_cast<const Error*>(&failure)) {
    const std::string_view code = error_code_name(error->code());
    std::fprintf(stderr, "error[%.*s]: %.*s\n", static_cast<int>(code.size()), code.data(),
                 static_cast<int>(message.size()), message.data());
  } else {
    std::fprintf(stderr, "error: %.*s\n", static_cast<int>(message.size()), message.data());
  }
  return kExitFailure;
}

}  // namespace kiln::cli
