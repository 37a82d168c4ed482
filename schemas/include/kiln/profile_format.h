// The .kprof profile (docs/profile.md): per graph, each distinct tuple of
// symbol values its calls bound, with a call count. The runtime writes
// profiles (KILN_PROFILE_OUT) and the generator reads them (--profile);
// neither may link the other, so the format lives here, header-only, next to
// the package schema, the other contract between them.
//
// Every byte of what the runtime uses ends up in it, and it has a size
// budget (README, Benchmarks): so a line is kept as its canonical text, its
// key, rather than as parsed fields, strings are built by appending, and
// errors are built out of line. Only the generator decodes keys (decode()).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/support/hex.h"
#include "kiln/support/identifier.h"

namespace kiln::profile {

inline constexpr std::string_view kHeader = "kiln-profile 1";
inline constexpr std::string_view kMagic = "kiln-profile";
// The largest profile a reader accepts: a line is some 100 bytes, so this is
// millions of recorded shapes, far more than the 64 a graph's build uses.
inline constexpr uint64_t kMaxFileBytes = uint64_t{256} << 20;

// GraphEntry.structure_hash, written as 32 hex digits, hi first (as the
// compiler's Hash128::hex() shows it).
struct StructureHash {
  uint64_t hi = 0;
  uint64_t lo = 0;
  friend bool operator==(const StructureHash&, const StructureHash&) = default;
};

namespace detail {

[[gnu::noinline]] inline std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

inline void append_number(std::string& out, uint64_t value) {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, static_cast<size_t>(r.ptr - digits));
}

// Decimal digits only (no sign, no blanks), in [min, max]. By hand rather
// than std::from_chars, whose tables and other bases the runtime would carry.
inline bool parse_decimal(std::string_view s, uint64_t min, uint64_t max, uint64_t& out) {
  if (s.empty()) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (out > (max - digit) / 10) return false;
    out = out * 10 + digit;
  }
  return out >= min;
}

}  // namespace detail

// A malformed profile: where, what the format expects there, and what the
// file has.
class FormatError : public std::runtime_error {
 public:
  FormatError(const std::string& source, size_t line, const std::string& expected,
              const std::string& got)
      : std::runtime_error(detail::join(
            {"kiln: ", source, ":", std::to_string(line), ": expected ", expected, ", got ", got})),
        source_(source),
        line_(line),
        expected_(expected),
        got_(got) {}
  const std::string& source() const noexcept { return source_; }
  size_t line() const noexcept { return line_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& got() const noexcept { return got_; }

 private:
  std::string source_;
  size_t line_;
  std::string expected_;
  std::string got_;
};

// Graph and symbol names are C identifiers (the graph API enforces it), so a
// line splits on blanks and '='.
inline bool is_name(std::string_view s) { return support::is_c_identifier(s); }

inline void append_hash(std::string& out, const StructureHash& h) {
  support::append_hex16(out, h.hi);
  support::append_hex16(out, h.lo);
}

// The key of a line: "<graph> <structure hash>", then " <symbol>=<value>"
// per symbol in symbol-name order; the caller appends the values in that
// order with append_value().
inline std::string key_prefix(std::string_view graph, const StructureHash& structure) {
  std::string key(graph);
  key += ' ';
  append_hash(key, structure);
  return key;
}
inline void append_value(std::string& key, std::string_view symbol, int64_t value) {
  key += ' ';
  key.append(symbol);
  key += '=';
  detail::append_number(key, static_cast<uint64_t>(value));
}

// One line of a profile: its key (graph, structure and values, canonical)
// and its call count.
struct Line {
  std::string key;
  uint64_t count = 0;
  size_t line = 0;  // where it was first read; 0 when recorded
};

// Lines sorted by key, one per key: the order a profile is written in, so
// equal profiles are equal bytes.
class Profile {
 public:
  // A key already here adds its count (saturating); the first line number
  // read is kept.
  void add(std::string key, uint64_t count, size_t line = 0) {
    auto at = std::lower_bound(lines_.begin(), lines_.end(), key,
                               [](const Line& l, const std::string& k) { return l.key < k; });
    if (at != lines_.end() && at->key == key) {
      combine(*at, count, line);
      return;
    }
    lines_.insert(at, Line{std::move(key), count, line});
  }
  // Linear: both are sorted, so one pass takes every line of `other` (a
  // line per add() would cost a vector insert each: quadratic).
  void merge(const Profile& other) {
    std::vector<Line> merged;
    merged.reserve(lines_.size() + other.lines_.size());
    auto mine = lines_.begin();
    for (const Line& theirs : other.lines_) {
      while (mine != lines_.end() && mine->key < theirs.key) merged.push_back(std::move(*mine++));
      if (mine != lines_.end() && mine->key == theirs.key) {
        merged.push_back(std::move(*mine++));
        combine(merged.back(), theirs.count, theirs.line);
      } else {
        merged.push_back(theirs);
      }
    }
    std::move(mine, lines_.end(), std::back_inserter(merged));
    lines_ = std::move(merged);
  }
  // Lines in any order, with repeats: sorted once and repeats combined, as
  // add() would one by one (the first line number read is kept), in
  // O(n log n).
  static Profile from_lines(std::vector<Line> lines) {
    std::stable_sort(lines.begin(), lines.end(),
                     [](const Line& a, const Line& b) { return a.key < b.key; });
    Profile profile;
    for (Line& l : lines) {
      if (!profile.lines_.empty() && profile.lines_.back().key == l.key) {
        combine(profile.lines_.back(), l.count, l.line);
      } else {
        profile.lines_.push_back(std::move(l));
      }
    }
    return profile;
  }
  const std::vector<Line>& lines() const { return lines_; }
  bool empty() const { return lines_.empty(); }

 private:
  // Adds a repeat's count (saturating); keeps the first line number read.
  static void combine(Line& into, uint64_t count, size_t line) {
    into.count = into.count > UINT64_MAX - count ? UINT64_MAX : into.count + count;
    if (into.line == 0) into.line = line;
  }

  std::vector<Line> lines_;
};

// The header line, then "<key> <count>" per line.
inline std::string serialize(const Profile& profile) {
  std::string out(kHeader);
  out += '\n';
  for (const Line& l : profile.lines()) {
    out.append(l.key);
    out += ' ';
    detail::append_number(out, l.count);
    out += '\n';
  }
  return out;
}

// Parses a whole file; `source` names it in errors. No bytes at all is an
// empty profile (so a build can name a profile before anything recorded
// one); otherwise the first line is the header, and every line, the last
// included, ends with a newline. Lines in any order cost O(n log n). Blank lines and lines
// starting with '#' are skipped (a rewrite drops them). Each line is
//   <graph> <structure hash> [<symbol>=<value> ...] <count>
// Throws FormatError.
inline Profile parse(std::string_view text, const std::string& source) {
  std::vector<Line> lines;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t eol = text.find('\n');
    // Every line the runtime writes ends with a newline: a last line without
    // one is a file cut short, whose count may have lost digits.
    if (eol == std::string_view::npos) {
      throw FormatError(source, number, "a line ended by a newline (the file may be cut short)",
                        detail::join({"'", text.substr(0, 60), text.size() > 60 ? "...'" : "'"}));
    }
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto fail = [&](std::string_view expected, std::string_view got) {
      constexpr size_t kShown = 60;
      throw FormatError(
          source, number, std::string(expected),
          detail::join({"'", got.substr(0, kShown), got.size() > kShown ? "...'" : "'"}));
    };
    if (number == 1) {
      if (line != kHeader) {
        fail(line.starts_with(kMagic)
                 ? "'kiln-profile 1' (a newer Kiln may have written this profile)"
                 : "'kiln-profile 1'",
             line);
      }
      continue;
    }
    std::vector<std::string_view> fields;
    for (size_t at = 0; (at = line.find_first_not_of(" \t", at)) != std::string_view::npos;) {
      const size_t end = std::min(line.find_first_of(" \t", at), line.size());
      fields.push_back(line.substr(at, end - at));
      at = end;
    }
    if (fields.empty() || fields[0][0] == '#') continue;
    if (fields.size() < 3) fail("'<graph> <structure hash> [<symbol>=<value> ...] <count>'", line);
    if (!is_name(fields[0])) fail("a graph name (a C identifier)", fields[0]);
    if (fields[1].size() != 32 || !support::is_lower_hex(fields[1])) {
      fail("a structure hash of 32 lowercase hex digits", fields[1]);
    }
    // Values by symbol name (insertion sort: a graph has a few symbols).
    std::vector<std::pair<std::string_view, int64_t>> values;
    for (size_t f = 2; f + 1 < fields.size(); ++f) {
      const size_t eq = fields[f].find('=');
      const std::string_view name = fields[f].substr(0, eq);
      if (eq == std::string_view::npos || !is_name(name)) {
        fail("'<symbol>=<value>' with a symbol name (a C identifier)", fields[f]);
      }
      uint64_t value = 0;
      if (!detail::parse_decimal(fields[f].substr(eq + 1), 0, INT64_MAX, value)) {
        fail(detail::join({"a size (0 to 9223372036854775807) for symbol '", name, "'"}),
             fields[f].substr(eq + 1));
      }
      size_t at = values.size();
      while (at > 0 && name < values[at - 1].first) --at;
      if (at > 0 && values[at - 1].first == name) {
        throw FormatError(source, number, "each symbol once", detail::join({"'", name, "' twice"}));
      }
      values.insert(values.begin() + static_cast<std::ptrdiff_t>(at),
                    {name, static_cast<int64_t>(value)});
    }
    uint64_t count = 0;
    if (!detail::parse_decimal(fields.back(), 1, UINT64_MAX, count)) {
      fail("a call count (1 to 18446744073709551615) as the last field", fields.back());
    }
    std::string key(fields[0]);
    key += ' ';
    key.append(fields[1]);
    for (const auto& [name, value] : values) append_value(key, name, value);
    lines.push_back(Line{std::move(key), count, number});
  }
  return Profile::from_lines(std::move(lines));
}

// A line's key, decoded. For the generator: the runtime never needs it.
struct Entry {
  std::string graph;
  StructureHash structure;
  std::vector<std::pair<std::string, int64_t>> values;  // by symbol name
  uint64_t count = 0;
  size_t line = 0;
};

// `line` must come from a Profile (its key was checked when it was added).
inline Entry decode(const Line& line) {
  Entry e;
  e.count = line.count;
  e.line = line.line;
  std::string_view rest = line.key;
  const auto next = [&] {
    const size_t space = rest.find(' ');
    const std::string_view field = rest.substr(0, space);
    rest.remove_prefix(space == std::string_view::npos ? rest.size() : space + 1);
    return field;
  };
  e.graph = next();
  const std::string_view hash = next();
  std::from_chars(hash.data(), hash.data() + 16, e.structure.hi, 16);
  std::from_chars(hash.data() + 16, hash.data() + 32, e.structure.lo, 16);
  while (!rest.empty()) {
    const std::string_view pair = next();
    const size_t eq = pair.find('=');
    uint64_t value = 0;
    detail::parse_decimal(pair.substr(eq + 1), 0, INT64_MAX, value);
    e.values.emplace_back(std::string(pair.substr(0, eq)), static_cast<int64_t>(value));
  }
  return e;
}

}  // namespace kiln::profile
