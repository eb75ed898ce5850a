// Whole-file reads (and, later, atomic writes): the one place the program reads a file into memory.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace voice_broker {

// The file's bytes, or nullopt when it cannot be opened or read.
std::optional<std::string> read_file(const std::filesystem::path& path);

}  // namespace voice_broker
