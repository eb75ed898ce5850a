// static_files: the page, read from STATIC_DIR once at start-up (and on SIGHUP), with a gzip copy
// of each text file made then, never per request.  A request path is only ever looked up in
// this in-memory table, so no request can reach a file outside the root: traversal attempts,
// hidden files and symlinks out of the root are simply not in it.
//
// Versioned URLs: at load, every asset gets a version, a hash of its bytes (for an ES module,
// after its own imports were versioned, so a changed dependency changes its importers too), and
// the references in the HTML files (src, href) and the import specifiers in the modules are
// rewritten to "<url>?v=<version>".  Only that exact URL is served as immutable for a year; the
// bare URL or an older version gets the current bytes with no-cache, so a page from before a
// reload still works and nothing stale is pinned.  A query rather than hashed file names: the
// table keeps one key per file, and an old page's URLs never turn into 404s.
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
    bool revalidate = false;  // html: always revalidate (no-cache), never versioned
    std::string version;          // hex; empty for html
    std::string versioned_query;  // "v=<version>": the query of the URLs the page links to
    // The 200 answer's header lines, rendered at load: identity and gzip, for a bare or stale
    // URL (no-cache) and for the versioned one (immutable).
    std::shared_ptr<const std::string> head;
    std::shared_ptr<const std::string> gzip_head;
    std::shared_ptr<const std::string> immutable_head;
    std::shared_ptr<const std::string> immutable_gzip_head;

    bool is_versioned_request(std::string_view query) const {
        return !versioned_query.empty() && query == versioned_query;
    }
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

    // GET or HEAD of a file: 200, 304, 400 (malformed path) or 404.  The versioned URL of an
    // asset is cached as immutable; any other query of it, and html, must revalidate.
    http_response serve(const http_request& req) const;

    std::size_t file_count() const { return files_.size(); }
    const static_file* find(std::string_view clean_path) const;

    // Decodes and checks a request path; returns the table key ("index.html") or nullopt.
    static std::optional<std::string> clean_path(std::string_view raw_path);

private:
    std::unordered_map<std::string, static_file> files_;
};

std::string_view mime_type_for(std::string_view path);
inline constexpr std::string_view immutable_cache_control = "public, max-age=31536000, immutable";
std::string gzip_compress(std::string_view data);

}  // namespace voice_broker
