#include "voice_broker/file_io.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

namespace voice_broker {

std::optional<std::string> read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return std::move(out).str();
}

namespace {

std::string errno_text(const char* what, const std::filesystem::path& path) {
    return std::string(what) + " " + path.string() + ": " + std::strerror(errno);
}

// Closes the descriptor when it goes out of scope.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

std::optional<std::string> write_file_atomically(const std::filesystem::path& path, std::string_view content) {
    const auto folder = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    if (ec) return "cannot create " + folder.string() + ": " + ec.message();

    std::random_device entropy;
    // Built piecewise: GCC 12 warns (-Wrestrict, a false positive) on "." + string in Release.
    std::string name(1, '.');
    name += path.filename().string();
    name += ".tmp-";
    name += std::to_string(::getpid());
    name += '-';
    name += std::to_string(entropy());
    const auto temp = folder / name;
    {
        fd_guard file{::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
        if (file.fd < 0) return errno_text("cannot create", temp);
        std::size_t written = 0;
        while (written < content.size()) {
            const auto n = ::write(file.fd, content.data() + written, content.size() - written);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                auto err = errno_text("cannot write", temp);
                std::filesystem::remove(temp, ec);
                return err;
            }
            written += static_cast<std::size_t>(n);
        }
        if (::fsync(file.fd) != 0) {
            auto err = errno_text("cannot fsync", temp);
            std::filesystem::remove(temp, ec);
            return err;
        }
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        auto err = errno_text("cannot rename onto", path);
        std::filesystem::remove(temp, ec);
        return err;
    }
    // The rename itself is durable only once the folder's entry is on disk.
    fd_guard dir{::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (dir.fd >= 0) ::fsync(dir.fd);
    return std::nullopt;
}

}  // namespace voice_broker
