// Whole-file reads and atomic writes: the one place the program reads or replaces a file.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace voice_broker {

// The file's bytes, or nullopt when it cannot be opened or read.
std::optional<std::string> read_file(const std::filesystem::path& path);

// Replaces `path` with `content` so that a reader (or a crash at any moment) sees either the old
// file or the new one, never a mix: a temporary file in the same folder, fsync, rename over the
// old one, fsync of the folder.  Makes the folder if it is missing.  The error, or nothing.
std::optional<std::string> write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace voice_broker
