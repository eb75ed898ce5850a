// static_files: the page, read from STATIC_DIR once at start-up (and on SIGHUP), with a gzip copy
// of each text file made then, never per request.  A request path is only ever looked up in
// this in-memory table, so no request can reach a file outside the root: traversal attempts,
// hidden files and symlinks out of the root are simply not in it.
#pragma once

#include "voice_broker/http_message.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace voice_broker {

struct static_file {
    std::shared_ptr<const std::string> content;
    std::shared_ptr<const std::string> gzipped;  // null when not worth compressing
    std::string content_type;
    std::string etag;       // strong, of the identity bytes
    std::string gzip_etag;  // of the gzip bytes
    bool revalidate = false;  // html: always revalidate (no-cache)
    // The 200 answer's header lines, rendered at load: identity and gzip.
    std::shared_ptr<const std::string> head;
    std::shared_ptr<const std::string> gzip_head;
};

struct static_limits {
    std::size_t max_file_bytes = 16 * 1024 * 1024;
    std::size_t max_total_bytes = 128 * 1024 * 1024;
    std::size_t max_files = 10000;
};

class static_files {
public:
    // Loads every regular, non-hidden file below `root`.  Throws std::runtime_error with a
    // clear message when the folder cannot be read.
    static std::shared_ptr<const static_files> load(const std::string& root, static_limits limits = {});

    // GET or HEAD of a file: 200, 304, 400 (malformed path) or 404.
    http_response serve(const http_request& req) const;

    std::size_t file_count() const { return files_.size(); }
    const static_file* find(std::string_view clean_path) const;

    // Decodes and checks a request path; returns the table key ("index.html") or nullopt.
    static std::optional<std::string> clean_path(std::string_view raw_path);

private:
    std::unordered_map<std::string, static_file> files_;
};

std::string_view mime_type_for(std::string_view path);
std::string gzip_compress(std::string_view data);

}  // namespace voice_broker
