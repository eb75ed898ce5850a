// Whole-file reads and atomic writes: the one place the program reads or writes a whole file.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

// The file's bytes, or nullopt when it cannot be opened or read.
std::optional<std::string> read_file(const std::filesystem::path& path);

// Writes `content` so that a reader (or a crash) sees the old file or the new one, never half:
// a temporary file in the same folder (created if missing), fsync'd, renamed over the target,
// and the folder fsync'd.  Returns an explanation when it failed.
std::optional<std::string> write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace voice_broker
