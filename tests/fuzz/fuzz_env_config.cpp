// Fuzzes the settings loader: parse_env_file, and load_config over a working folder holding
// .env, .env.local and config/session-limits.json, plus command-line flags.
//
// Input: sections separated by a line "@@@@": .env, .env.local, the JSON config file, then the
// command-line arguments one per line.  An absent section is an absent file.
// Properties: the parser yields trimmed, non-empty keys without '=' and values without a line
// break; load_config never throws; an error is one non-empty line.
#include "fuzz_support.hpp"

#include "voice_broker/config.hpp"
#include "voice_broker/env_file.hpp"

#include <variant>

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

const scratch_dir& work_dir() {
    static scratch_dir dir;
    return dir;
}

void check_env_parse(std::string_view text) {
    const auto vars = parse_env_file(std::string(text));
    for (const auto& [key, value] : vars) {
        const std::string detail = "key: " + key + "\nvalue: " + value;
        FUZZ_CHECK(!key.empty() && key.find('=') == std::string::npos, detail);
        FUZZ_CHECK(key.find_first_of("\n") == std::string::npos && value.find('\n') == std::string::npos, detail);
        for (char edge : {key.front(), key.back()}) FUZZ_CHECK(edge != ' ' && edge != '\t' && edge != '\r', detail);
    }
}

// A path in a setting is opened and read whole: a device would block (/dev/stdin) or never end
// (/dev/zero).  Those are the operator's own choice, not an input an attacker controls.
bool names_a_device(std::string_view input) {
    for (std::string_view dangerous : {"/dev", "/proc", "/sys"}) {
        if (input.find(dangerous) != std::string_view::npos) return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    work_dir();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = as_text(data, size);
    check_env_parse(input);
    if (names_a_device(input)) return -1;  // -1: not added to the corpus

    const auto sections = split(input, "\n@@@@\n", 4);
    const auto& dir = work_dir();
    const char* files[] = {".env", ".env.local", "config/session-limits.json"};
    for (std::size_t i = 0; i < 3; ++i) {
        if (i < sections.size()) dir.write(files[i], sections[i]);
        else dir.remove(files[i]);
    }
    load_request request;
    request.working_dir = dir.path().string();
    request.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    if (sections.size() > 3) {
        for (const auto arg : split(sections[3], "\n", 64)) request.args.emplace_back(arg);
    }

    // An exception here is a crash: main() does not catch (fixed finding:
    // findings/fuzz_env_config/config-file-name-too-long).
    const auto loaded = load_config(request);
    if (const auto* err = std::get_if<config_error>(&loaded)) {
        FUZZ_CHECK(!err->message.empty(), input);
        FUZZ_CHECK(err->message.find('\n') == std::string::npos, err->message);
    }
    return 0;
}
