// The mutation campaign of issue 16 ("Trust what runs"): damaged copies of a
// real package against `kiln verify` and against open + call, counting
// crashes, hangs and exceptions that are not a kiln::Error.
//
// Mutants: every byte of the first --first-bytes bytes (every --stride-th
// byte for a short run) under four patterns (set to 0x00, set to 0xff, low
// bit flipped, high bit flipped; a pattern that leaves the byte as it was is
// skipped), then --random mutants of 2 to 8 random bytes anywhere in the
// file. Each mutant runs twice: with the header checksum as it was, and with
// every integrity hash recomputed over the damage (each blob's XXH3-128 in
// the manifest, when the damaged manifest still passes the FlatBuffers
// verifier, then the header's checksum), so that the damage reaches the
// checks behind the checksum.
//
// Each run is its own process: `kiln verify` is executed on the mutant's
// file; open + call forks this program, which opens the bytes with
// Package::open_memory and calls every graph of the pristine package with
// tensors of the pristine signature (what an application passes). A run is
// killed by SIGALRM past --timeout-s (a hang); any other signal is a crash.
// Outcomes: "ok" (verify passed, or every call ran; "ok, output differs"
// when an output is not the pristine package's), "error[code]" (a typed
// error), "untyped" (an exception that is not a kiln::Error, or the CLI's
// "error:" line without a code), "crash: SIGNAL", "hang".
//
// A mutant that writes into a blob's stored bytes with the hashes recomputed
// is kept apart ("recomputed_code"): the blob is then other machine code
// with valid hashes, which no check of the runtime can tell from the
// compiler's (a shared object dlopen()ed and run); what keeps such a
// package out is its signature (issue 16, item 1). Its outcomes are
// counted and reported, and do not decide the exit status.
//
// Writes one JSON line per target (verify, call) and checksum variant, then
// a run record, to --results (appending), and a summary on stdout. Exits 1
// when any other run crashed, hung or threw an untyped exception.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/abi/package_header.h"
#include "kiln/package_reader.h"
#include "kiln/runtime.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace {

namespace fb = kiln::fb;
namespace fs = std::filesystem;

struct Options {
  fs::path package;
  fs::path kiln;
  fs::path work_dir = fs::temp_directory_path();
  size_t first_bytes = 8192;
  size_t stride = 1;
  size_t random_mutants = 5000;
  uint32_t seed = 1;
  unsigned timeout_s = 10;
  unsigned jobs = 2;
  fs::path results;  // empty: no JSON lines
  std::string date, device, commit;
};

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr,
               "mutation_campaign: %s\n"
               "usage: mutation_campaign --package PKG --kiln KILN [--first-bytes N] [--stride N]\n"
               "         [--random N] [--seed N] [--timeout-s N] [--jobs N] [--work-dir DIR]\n"
               "         [--results FILE --date DATE --device DEVICE --commit COMMIT]\n",
               message.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 == argc) usage("expected a value after " + std::string(arg));
    const std::string value = argv[++i];
    auto number = [&] {
      try {
        return std::stoull(value);
      } catch (const std::exception&) {
        usage("expected a number after " + std::string(arg) + ", got '" + value + "'");
      }
    };
    if (arg == "--package") {
      o.package = value;
    } else if (arg == "--kiln") {
      o.kiln = value;
    } else if (arg == "--work-dir") {
      o.work_dir = value;
    } else if (arg == "--first-bytes") {
      o.first_bytes = number();
    } else if (arg == "--stride") {
      o.stride = std::max<size_t>(1, number());
    } else if (arg == "--random") {
      o.random_mutants = number();
    } else if (arg == "--seed") {
      o.seed = static_cast<uint32_t>(number());
    } else if (arg == "--timeout-s") {
      o.timeout_s = static_cast<unsigned>(std::max<unsigned long long>(1, number()));
    } else if (arg == "--jobs") {
      o.jobs = static_cast<unsigned>(std::max<unsigned long long>(1, number()));
    } else if (arg == "--results") {
      o.results = value;
    } else if (arg == "--date") {
      o.date = value;
    } else if (arg == "--device") {
      o.device = value;
    } else if (arg == "--commit") {
      o.commit = value;
    } else {
      usage("unknown option '" + std::string(arg) + "'");
    }
  }
  if (o.package.empty() || o.kiln.empty()) usage("expected --package and --kiln");
  if (!o.results.empty() && (o.date.empty() || o.device.empty() || o.commit.empty())) {
    usage("--results needs --date, --device and --commit");
  }
  return o;
}

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---- mutants ----------------------------------------------------------------

struct Mutant {
  std::string description;                         // "byte 812 = 0xff", "random 17: 5 bytes"
  std::vector<std::pair<size_t, uint8_t>> writes;  // offset, new value
  size_t first_offset = 0;                         // for the region
};

constexpr std::string_view kCodeVariant = "recomputed_code";

std::vector<Mutant> make_mutants(const std::vector<uint8_t>& pristine, const Options& o) {
  std::vector<Mutant> mutants;
  const size_t end = std::min(o.first_bytes, pristine.size());
  struct Pattern {
    const char* name;
    uint8_t (*apply)(uint8_t);
  };
  static constexpr Pattern kPatterns[] = {
      {"= 0x00", [](uint8_t) -> uint8_t { return 0x00; }},
      {"= 0xff", [](uint8_t) -> uint8_t { return 0xff; }},
      {"^ 0x01", [](uint8_t b) -> uint8_t { return b ^ 0x01; }},
      {"^ 0x80", [](uint8_t b) -> uint8_t { return b ^ 0x80; }},
  };
  for (size_t at = 0; at < end; at += o.stride) {
    for (const Pattern& p : kPatterns) {
      const uint8_t value = p.apply(pristine[at]);
      if (value == pristine[at]) continue;
      mutants.push_back({"byte " + std::to_string(at) + " " + p.name, {{at, value}}, at});
    }
  }
  std::mt19937_64 rng(o.seed);
  for (size_t r = 0; r < o.random_mutants; ++r) {
    Mutant m;
    const size_t count = 2 + rng() % 7;
    for (size_t i = 0; i < count; ++i) {
      m.writes.emplace_back(rng() % pristine.size(), static_cast<uint8_t>(rng()));
    }
    m.first_offset = m.writes.front().first;
    m.description = "random " + std::to_string(r) + ": " + std::to_string(count) + " bytes";
    mutants.push_back(std::move(m));
  }
  return mutants;
}

KilnPackageHeader header_of(const std::vector<uint8_t>& bytes) {
  KilnPackageHeader h{};
  std::memcpy(&h, bytes.data(), std::min(sizeof h, bytes.size()));
  return h;
}

// Every integrity hash recomputed over the bytes as they are: each blob's
// hash in the manifest (when the manifest still verifies and the blob lies
// in the file), then the header's checksum (when header_size does).
void recompute_hashes(std::vector<uint8_t>& bytes) {
  if (bytes.size() < KILN_PACKAGE_HEADER_SIZE) return;
  KilnPackageHeader h = header_of(bytes);
  const uint64_t size = bytes.size();
  if (h.manifest_offset <= size && h.manifest_size <= size - h.manifest_offset &&
      h.manifest_offset % 8 == 0) {
    uint8_t* manifest = bytes.data() + h.manifest_offset;
    flatbuffers::Verifier verifier(manifest, h.manifest_size);
    if (fb::VerifyManifestBuffer(verifier)) {
      const fb::Manifest* m = fb::GetManifest(manifest);
      for (uint32_t b = 0; m->blobs() && b < m->blobs()->size(); ++b) {
        const fb::Blob* blob = m->blobs()->Get(b);
        if (blob->hash() == nullptr || blob->offset() > size ||
            blob->stored_size() > size - blob->offset()) {
          continue;
        }
        const XXH128_hash_t hash = XXH3_128bits(bytes.data() + blob->offset(), blob->stored_size());
        // The Hash128 struct lies in the buffer: lo, then hi.
        uint8_t* at = const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(blob->hash()));
        std::memcpy(at, &hash.low64, 8);
        std::memcpy(at + 8, &hash.high64, 8);
      }
    }
  }
  if (h.header_size >= KILN_PACKAGE_HEADER_SIZE && h.header_size <= size) {
    const XXH128_hash_t sum = XXH3_128bits(bytes.data() + h.header_size, size - h.header_size);
    h.checksum_lo = sum.low64;
    h.checksum_hi = sum.high64;
    std::memcpy(bytes.data(), &h, sizeof h);
  }
}

// ---- the pristine package's calls ------------------------------------------

struct TensorPlan {
  kiln::DType dtype;
  std::vector<int64_t> shape;
  size_t bytes = 0;
};
struct CallPlan {
  std::string graph;
  std::vector<TensorPlan> inputs, outputs;
};

// A value for each symbol: its first hot value, else 16 within its range,
// rounded up to its divisor.
std::vector<CallPlan> plan_calls(const std::vector<uint8_t>& pristine) {
  const kiln::PackageReader reader =
      kiln::PackageReader::open_memory(std::as_bytes(std::span(pristine)));
  std::vector<CallPlan> plans;
  for (const fb::GraphEntry* g : *reader.manifest().graphs()) {
    std::vector<int64_t> values;
    if (g->symbols()) {
      for (const fb::Symbol* s : *g->symbols()) {
        int64_t v = s->hot() && s->hot()->size() > 0 ? s->hot()->Get(0)
                                                     : std::clamp<int64_t>(16, s->min(), s->max());
        const int64_t d = std::max<int64_t>(1, s->divisible_by());
        if (v % d != 0) v += d - v % d;
        values.push_back(v);
      }
    }
    CallPlan plan{g->name()->str(), {}, {}};
    auto tensor = [&](const fb::TensorSpec* spec) {
      TensorPlan t{static_cast<kiln::DType>(spec->dtype()), {}, 0};
      size_t numel = 1;
      for (const fb::Dim* d : *spec->dims()) {
        t.shape.push_back(d->symbol() >= 0 ? values[static_cast<size_t>(d->symbol())] : d->value());
        numel *= static_cast<size_t>(t.shape.back());
      }
      t.bytes = numel * static_cast<size_t>(kiln::dtype_size(t.dtype));
      return t;
    };
    for (const fb::TensorSpec* s : *g->inputs()) plan.inputs.push_back(tensor(s));
    for (const fb::TensorSpec* s : *g->outputs()) plan.outputs.push_back(tensor(s));
    plans.push_back(std::move(plan));
  }
  return plans;
}

// Opens `bytes` and calls every planned graph: "ok <hash of the outputs>",
// "error[code]" or "untyped: what".
std::string open_and_call(const std::vector<uint8_t>& bytes, const std::vector<CallPlan>& plans) {
  try {
    kiln::Package package = kiln::Package::open_memory(std::as_bytes(std::span(bytes)));
    XXH64_state_t* outputs_hash = XXH64_createState();
    XXH64_reset(outputs_hash, 0);
    for (const CallPlan& plan : plans) {
      std::vector<std::vector<uint8_t>> storage;
      std::vector<kiln::TensorView> views;
      for (const TensorPlan& t : plan.inputs) {
        // Small values of any dtype: each byte 0x3c ("1.0" in f16's high byte).
        storage.emplace_back(t.bytes + 64, uint8_t{0x3c});
      }
      for (const TensorPlan& t : plan.outputs) storage.emplace_back(t.bytes + 64, uint8_t{0});
      std::vector<const DLTensor*> pointers;
      size_t i = 0;
      for (const auto* list : {&plan.inputs, &plan.outputs}) {
        for (const TensorPlan& t : *list) {
          // 64-byte aligned, as alignment guards ask.
          auto* base = storage[i].data();
          auto* aligned = base + (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
          views.emplace_back(aligned, t.dtype, std::span<const int64_t>(t.shape));
          ++i;
        }
      }
      for (const kiln::TensorView& v : views) pointers.push_back(&v.dl());
      const std::span<const DLTensor* const> all(pointers);
      package.graph(plan.graph)
          .call(all.first(plan.inputs.size()), all.subspan(plan.inputs.size()));
      for (size_t o = 0; o < plan.outputs.size(); ++o) {
        const DLTensor& out = views[plan.inputs.size() + o].dl();
        XXH64_update(outputs_hash, out.data, plan.outputs[o].bytes);
      }
    }
    const uint64_t hash = XXH64_digest(outputs_hash);
    XXH64_freeState(outputs_hash);
    return "ok " + std::to_string(hash);
  } catch (const kiln::Error& e) {
    return "error[" + std::string(kiln::error_code_name(e.code())) + "]";
  } catch (const std::exception& e) {
    return std::string("untyped: ") + e.what();
  } catch (...) {
    return "untyped: not a std::exception";
  }
}

// ---- running one mutant ------------------------------------------------------

std::string signal_outcome(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGALRM) return "hang";
    return std::string("crash: ") + (sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
  }
  return {};
}

std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR);) {
    if (n > 0) text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

// `kiln verify FILE`, killed past the timeout.
std::string run_verify(const Options& o, const fs::path& file) {
  int fds[2];
  if (::pipe(fds) != 0) return "harness: pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    ::alarm(o.timeout_s);  // survives exec: SIGALRM ends a run that hangs
    ::execl(o.kiln.c_str(), o.kiln.c_str(), "verify", file.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  const std::string output = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (std::string s = signal_outcome(status); !s.empty()) return s;
  const int code = WEXITSTATUS(status);
  if (code == 0) return "ok";
  if (code == 1 && output.starts_with("error[")) return output.substr(0, output.find(']') + 1);
  if (code == 1 && output.starts_with("error: ")) return "untyped";
  return "exit " + std::to_string(code) + ": " + output.substr(0, output.find('\n'));
}

// open + call in a child of this process, killed past the timeout.
std::string run_call(const Options& o, const std::vector<uint8_t>& bytes,
                     const std::vector<CallPlan>& plans, const std::string& pristine_outcome) {
  int fds[2];
  if (::pipe(fds) != 0) return "harness: pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    // What ld.so prints about a damaged shared object is not the outcome.
    if (const int null = ::open("/dev/null", O_WRONLY); null >= 0) ::dup2(null, 2);
    ::alarm(o.timeout_s);
    const std::string outcome = open_and_call(bytes, plans);
    if (::write(fds[1], outcome.data(), outcome.size()) < 0) ::_exit(3);
    ::_exit(0);
  }
  ::close(fds[1]);
  const std::string outcome = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (std::string s = signal_outcome(status); !s.empty()) return s;
  if (WEXITSTATUS(status) != 0) return "exit " + std::to_string(WEXITSTATUS(status));
  if (outcome.starts_with("untyped")) return "untyped";
  if (outcome.starts_with("ok ")) return outcome == pristine_outcome ? "ok" : "ok, output differs";
  return outcome;
}

// ---- tallies -------------------------------------------------------------------

struct Regions {
  uint64_t manifest_begin = 0, manifest_end = 0;
  std::vector<std::pair<uint64_t, uint64_t>> blobs;
  std::string of(size_t at) const {
    if (at < KILN_PACKAGE_HEADER_SIZE) return "header";
    if (at >= manifest_begin && at < manifest_end) return "manifest";
    for (const auto& [begin, end] : blobs) {
      if (at >= begin && at < end) return "blob";
    }
    return "padding";
  }
  bool touches_blob(const Mutant& m) const {
    return std::any_of(m.writes.begin(), m.writes.end(),
                       [&](const auto& write) { return of(write.first) == "blob"; });
  }
};

bool is_failure(const std::string& outcome) {
  return outcome.starts_with("crash") || outcome == "hang" || outcome == "untyped" ||
         outcome.starts_with("exit") || outcome.starts_with("harness");
}

struct Tally {
  size_t runs = 0;
  std::map<std::string, size_t> outcomes;
  std::map<std::string, size_t> failures_by_region;
  std::vector<std::string> failure_examples;  // the first few, with their mutant
};

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out;
}

template <class Map>
std::string json_counts(const Map& counts) {
  std::string out = "{";
  for (const auto& [key, n] : counts) {
    out += (out.size() > 1 ? "," : "") + ("\"" + json_escape(key) + "\":" + std::to_string(n));
  }
  return out + "}";
}

size_t count_matching(const Tally& t, bool (*match)(const std::string&)) {
  size_t n = 0;
  for (const auto& [outcome, count] : t.outcomes) {
    if (match(outcome)) n += count;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::vector<uint8_t> pristine = read_file(o.package);
  if (pristine.size() < KILN_PACKAGE_HEADER_SIZE) usage("cannot read " + o.package.string());
  std::vector<CallPlan> plans;
  Regions regions;
  try {
    plans = plan_calls(pristine);
    const kiln::PackageReader reader =
        kiln::PackageReader::open_memory(std::as_bytes(std::span(pristine)));
    regions.manifest_begin = reader.header().manifest_offset;
    regions.manifest_end = regions.manifest_begin + reader.header().manifest_size;
    for (const fb::Blob* blob : *reader.manifest().blobs()) {
      regions.blobs.emplace_back(blob->offset(), blob->offset() + blob->stored_size());
    }
  } catch (const std::exception& e) {
    usage(std::string("the pristine package does not open: ") + e.what());
  }
  const std::string pristine_outcome = open_and_call(pristine, plans);
  if (!pristine_outcome.starts_with("ok ")) {
    usage("the pristine package's calls fail: " + pristine_outcome);
  }
  const std::vector<Mutant> mutants = make_mutants(pristine, o);
  std::printf(
      "mutation_campaign: %s (%zu bytes), %zu mutants x 2 checksum variants x "
      "(kiln verify, open + call), %u jobs\n",
      o.package.c_str(), pristine.size(), mutants.size(), o.jobs);
  std::fflush(stdout);

  // Workers take every jobs-th mutant and report one line per run:
  // target \t variant \t region \t outcome \t mutant.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<pid_t, int>> workers;
  for (unsigned w = 0; w < o.jobs; ++w) {
    int fds[2];
    if (::pipe(fds) != 0) usage("pipe failed");
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      const fs::path file =
          o.work_dir / ("mutation_campaign_" + std::to_string(::getpid()) + ".kiln");
      FILE* report = ::fdopen(fds[1], "w");
      for (size_t m = w; m < mutants.size(); m += o.jobs) {
        for (const bool recomputed : {false, true}) {
          std::vector<uint8_t> bytes = pristine;
          for (const auto& [at, value] : mutants[m].writes) bytes[at] = value;
          if (recomputed) recompute_hashes(bytes);
          std::ofstream(file, std::ios::binary | std::ios::trunc)
              .write(reinterpret_cast<const char*>(bytes.data()),
                     static_cast<std::streamsize>(bytes.size()));
          const std::string variant = !recomputed                        ? "as_written"
                                      : regions.touches_blob(mutants[m]) ? std::string(kCodeVariant)
                                                                         : "recomputed";
          const std::string region = regions.of(mutants[m].first_offset);
          std::fprintf(report, "verify\t%s\t%s\t%s\t%s\n", variant.c_str(), region.c_str(),
                       run_verify(o, file).c_str(), mutants[m].description.c_str());
          std::fprintf(report, "call\t%s\t%s\t%s\t%s\n", variant.c_str(), region.c_str(),
                       run_call(o, bytes, plans, pristine_outcome).c_str(),
                       mutants[m].description.c_str());
        }
      }
      std::fclose(report);
      fs::remove(file);
      ::_exit(0);
    }
    ::close(fds[1]);
    workers.emplace_back(pid, fds[0]);
  }
  std::map<std::pair<std::string, std::string>, Tally> tallies;  // (target, variant)
  for (const auto& [pid, fd] : workers) {
    const std::string lines = read_all(fd);
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    size_t pos = 0;
    while (pos < lines.size()) {
      const size_t end = lines.find('\n', pos);
      std::vector<std::string> fields;
      size_t field_start = pos;
      for (size_t i = pos; i <= end; ++i) {
        if (lines[i] == '\t' || i == end) {
          fields.push_back(lines.substr(field_start, i - field_start));
          field_start = i + 1;
        }
      }
      pos = end + 1;
      if (fields.size() != 5) continue;
      Tally& t = tallies[{fields[0], fields[1]}];
      ++t.runs;
      ++t.outcomes[fields[3]];
      if (is_failure(fields[3])) {
        ++t.failures_by_region[fields[2]];
        if (t.failure_examples.size() < 10) {
          t.failure_examples.push_back(fields[4] + " (" + fields[2] + "): " + fields[3]);
        }
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  size_t failures = 0, code_failures = 0;
  std::string json;
  for (const auto& [key, t] : tallies) {
    const size_t crashes =
        count_matching(t, [](const std::string& s) { return s.starts_with("crash"); });
    const size_t hangs = count_matching(t, [](const std::string& s) { return s == "hang"; });
    const size_t untyped = count_matching(t, [](const std::string& s) { return s == "untyped"; });
    const size_t other = count_matching(
        t, [](const std::string& s) { return s.starts_with("exit") || s.starts_with("harness"); });
    (key.second == kCodeVariant ? code_failures : failures) += crashes + hangs + untyped + other;
    std::printf("%-6s checksum %-10s runs %6zu  crashes %zu  hangs %zu  untyped %zu  other %zu\n",
                key.first.c_str(), key.second.c_str(), t.runs, crashes, hangs, untyped, other);
    for (const auto& [outcome, n] : t.outcomes) std::printf("    %-40s %zu\n", outcome.c_str(), n);
    for (const std::string& example : t.failure_examples) {
      std::printf("    failure: %s\n", example.c_str());
    }
    std::string examples = "[";
    for (const std::string& e : t.failure_examples) {
      examples += (examples.size() > 1 ? ",\"" : "\"") + json_escape(e) + "\"";
    }
    examples += "]";
    json += "{\"date\":\"" + o.date + "\",\"device\":\"" + json_escape(o.device) +
            "\",\"commit\":\"" + o.commit + "\",\"bench\":\"mutation_campaign\",\"package\":\"" +
            json_escape(o.package.filename().string()) +
            "\",\"package_bytes\":" + std::to_string(pristine.size()) +
            ",\"first_bytes\":" + std::to_string(std::min(o.first_bytes, pristine.size())) +
            ",\"stride\":" + std::to_string(o.stride) +
            ",\"random_mutants\":" + std::to_string(o.random_mutants) +
            ",\"seed\":" + std::to_string(o.seed) + ",\"target\":\"" + key.first +
            "\",\"checksum\":\"" + key.second + "\",\"runs\":" + std::to_string(t.runs) +
            ",\"crashes\":" + std::to_string(crashes) + ",\"hangs\":" + std::to_string(hangs) +
            ",\"untyped\":" + std::to_string(untyped) +
            ",\"other_failures\":" + std::to_string(other) +
            ",\"outcomes\":" + json_counts(t.outcomes) +
            ",\"failures_by_region\":" + json_counts(t.failures_by_region) +
            ",\"failure_examples\":" + examples + ",\"timeout_s\":" + std::to_string(o.timeout_s) +
            "}\n";
  }
  std::printf(
      "%zu failures in %.1f s (and %zu where a blob's code was changed with its hashes "
      "recomputed)\n",
      failures, seconds, code_failures);
  if (!o.results.empty()) {
    char seconds_text[32];
    std::snprintf(seconds_text, sizeof seconds_text, "%.1f", seconds);
    json += "{\"date\":\"" + o.date + "\",\"device\":\"" + json_escape(o.device) +
            "\",\"commit\":\"" + o.commit +
            "\",\"bench\":\"mutation_campaign_run\",\"mutants\":" + std::to_string(mutants.size()) +
            ",\"failures\":" + std::to_string(failures) +
            ",\"code_mutation_failures\":" + std::to_string(code_failures) +
            ",\"seconds\":" + seconds_text + ",\"complete\":true}\n";
    std::ofstream(o.results, std::ios::app) << json;
  }
  return failures == 0 ? 0 : 1;
}
