// Small helpers shared by the libFuzzer targets in this folder: splitting an input into
// readable fields (so that the seed corpus stays plain text), a temporary folder, and a check
// that aborts (libFuzzer then keeps the input as a crash reproducer).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace voice_broker::fuzzing {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// The input cut at each `separator`, into at most `max_fields` fields (the last takes the rest).
inline std::vector<std::string_view> split(std::string_view input, std::string_view separator, std::size_t max_fields) {
    std::vector<std::string_view> fields;
    while (fields.size() + 1 < max_fields) {
        const auto at = input.find(separator);
        if (at == std::string_view::npos) break;
        fields.push_back(input.substr(0, at));
        input.remove_prefix(at + separator.size());
    }
    fields.push_back(input);
    return fields;
}

inline std::string_view field(const std::vector<std::string_view>& fields, std::size_t i) {
    return i < fields.size() ? fields[i] : std::string_view{};
}

// A property the code under test broke: print it and abort, so the input is kept as crash-*.
[[noreturn]] inline void violated(const char* what, std::string_view detail = {}) {
    std::fprintf(stderr, "\n*** fuzz property violated: %s\n%.*s\n", what, static_cast<int>(std::min<std::size_t>(detail.size(), 4000)),
                 detail.data());
    std::abort();
}

#define FUZZ_CHECK(condition, detail)                                          \
    do {                                                                       \
        if (!(condition)) ::voice_broker::fuzzing::violated(#condition, detail); \
    } while (false)

// True when VB_FUZZ_KNOWN (comma-separated) names this open finding: a long exploratory run may
// step over a bug already reported (tests/fuzz/findings/) to look for others.  Never set in CI.
inline bool tolerated(std::string_view finding) {
    const char* known = std::getenv("VB_FUZZ_KNOWN");
    if (known == nullptr) return false;
    std::string_view list = known;
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (list.substr(0, comma) == finding) return true;
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return false;
}

// A folder under TMPDIR for the life of the process, removed at exit.
class scratch_dir {
public:
    scratch_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "vb-fuzz-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) std::abort();
        path_ = pattern;
    }
    ~scratch_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }
    void write(const std::string& relative, std::string_view content) const {
        const auto p = path_ / relative;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary | std::ios::trunc).write(content.data(), static_cast<std::streamsize>(content.size()));
    }
    void remove(const std::string& relative) const {
        std::error_code ignored;
        std::filesystem::remove(path_ / relative, ignored);
    }

private:
    std::filesystem::path path_;
};

}  // namespace voice_broker::fuzzing
