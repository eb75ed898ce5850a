#include "voice_broker/static_files.hpp"

#include "asset_versions.hpp"

#include "voice_broker/api_response.hpp"
#include "voice_broker/ascii.hpp"
#include "voice_broker/file_io.hpp"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <vector>

namespace voice_broker {

namespace fs = std::filesystem;

std::string_view mime_type_for(std::string_view path) {
    static const std::pair<std::string_view, std::string_view> table[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".webmanifest", "application/manifest+json; charset=utf-8"},
        {".map", "application/json; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".avif", "image/avif"},
        {".ico", "image/x-icon"},
        {".woff", "font/woff"},
        {".woff2", "font/woff2"},
        {".mp3", "audio/mpeg"},
        {".ogg", "audio/ogg"},
        {".wav", "audio/wav"},
        {".webm", "audio/webm"},
        {".wasm", "application/wasm"},
    };
    const auto dot = path.rfind('.');
    if (dot == std::string_view::npos) return "application/octet-stream";
    const auto ext = path.substr(dot);
    for (const auto& [e, type] : table) {
        if (iequals_ascii(ext, e)) return type;
    }
    return "application/octet-stream";
}

namespace {

bool compressible(std::string_view type) {
    return type.rfind("text/", 0) == 0 || type.find("json") != std::string_view::npos ||
           type.find("javascript") != std::string_view::npos || type == "image/svg+xml" ||
           type == "image/x-icon" || type == "application/wasm";
}

std::string strong_etag(std::string_view data, std::string_view suffix) {
    return "\"" + sha256_hex(data, 12) + std::string(suffix) + "\"";
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
    bool match = false;
    for_each_list_item(if_none_match, ',', [&](std::string_view item) {
        if (item.rfind("W/", 0) == 0) item.remove_prefix(2);  // weak comparison, as RFC 9110 asks for If-None-Match
        match = match || item == "*" || item == etag;
    });
    return match;
}

// RFC 9110 12.5.3: an explicit "gzip" entry decides by its q-value; "*" only speaks for codings
// not listed.
bool accepts_gzip(std::string_view accept_encoding) {
    std::optional<bool> explicit_gzip, wildcard;
    for_each_list_item(accept_encoding, ',', [&](std::string_view item) {
        const auto semi = item.find(';');
        auto coding = item.substr(0, semi);
        while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
        bool refused = false;  // q=0 (or 0.0, 0.000) refuses the coding
        if (semi != std::string_view::npos) {
            const auto params = item.substr(semi + 1);
            const auto q = params.find("q=");
            refused = q != std::string_view::npos && q + 2 < params.size() && params[q + 2] == '0' &&
                      params.substr(q + 2).find_first_of("123456789") == std::string_view::npos;
        }
        if (coding == "gzip") explicit_gzip = !refused;
        else if (coding == "*") wildcard = !refused;
    });
    return explicit_gzip.value_or(wildcard.value_or(false));
}

std::string_view cache_control(bool versioned) {
    return versioned ? immutable_cache_control : "no-cache";
}

// Content-Length is not here: the writer adds it (HEAD and 200 share these lines).
std::string render_head(const static_file& file, bool gzip, bool versioned) {
    std::string head;
    head.append("Content-Type: ").append(file.content_type).append("\r\n");
    head.append("ETag: ").append(gzip ? file.gzip_etag : file.etag).append("\r\n");
    head.append("Cache-Control: ").append(cache_control(versioned)).append("\r\n");
    if (file.gzipped) head.append("Vary: Accept-Encoding\r\n");
    if (gzip) head.append("Content-Encoding: gzip\r\n");
    return head;
}

}  // namespace

std::string gzip_compress(std::string_view data) {
    z_stream zs{};
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("zlib deflateInit2 failed");
    }
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) throw std::runtime_error("zlib deflate failed");
    return out;
}

namespace {

// One file ready to serve: its ETags, its gzip copy when that is smaller, and its response
// heads rendered once (plain, gzip, and the immutable ones for a versioned URL).
static_file prepare(std::string content, std::string content_type, std::string version) {
    static_file file;
    file.content = std::make_shared<const std::string>(std::move(content));
    file.content_type = std::move(content_type);
    file.etag = strong_etag(*file.content, "");
    file.revalidate = is_html(file.content_type);
    if (!file.revalidate) {
        file.version = std::move(version);
        file.versioned_query = "v=" + file.version;
    }
    if (compressible(file.content_type) && file.content->size() >= 256) {
        auto gz = gzip_compress(*file.content);
        if (gz.size() < file.content->size()) {
            file.gzip_etag = strong_etag(*file.content, "-gz");
            file.gzipped = std::make_shared<const std::string>(std::move(gz));
        }
    }
    auto rendered = [&file](bool gzip, bool versioned) {
        return std::make_shared<const std::string>(render_head(file, gzip, versioned));
    };
    file.head = rendered(false, false);
    if (file.gzipped) file.gzip_head = rendered(true, false);
    if (!file.versioned_query.empty()) {
        file.immutable_head = rendered(false, true);
        if (file.gzipped) file.immutable_gzip_head = rendered(true, true);
    }
    return file;
}

}  // namespace

std::shared_ptr<const static_files> static_files::load(const std::string& root, static_limits limits) {
    std::error_code ec;
    const auto canonical_root = fs::canonical(root, ec);
    if (ec || !fs::is_directory(canonical_root)) {
        throw std::runtime_error("STATIC_DIR " + root + " is not a readable folder");
    }
    auto result = std::make_shared<static_files>();
    std::vector<loaded_file> loaded;  // read first: versions need every file
    std::size_t total = 0;
    fs::recursive_directory_iterator it(canonical_root, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        const auto& path = it->path();
        const auto name = path.filename().string();
        if (!name.empty() && name.front() == '.') {  // hidden files and folders are never served
            if (it->is_directory()) it.disable_recursion_pending();
            continue;
        }
        if (it->is_symlink()) {
            // A link is served only when its target stays inside the root.
            const auto target = fs::canonical(path, ec);
            if (ec) {
                ec.clear();
                continue;
            }
            const auto rel = target.lexically_relative(canonical_root);
            const bool hidden_target = std::any_of(rel.begin(), rel.end(), [](const fs::path& part) {
                const auto name = part.native();
                return !name.empty() && name.front() == '.';  // also ".." (outside the root)
            });
            if (rel.empty() || hidden_target) {
                if (it->is_directory()) it.disable_recursion_pending();
                continue;
            }
            if (fs::is_directory(target)) {
                it.disable_recursion_pending();  // no cycles through linked folders
                continue;
            }
        }
        if (!it->is_regular_file()) continue;
        const auto size = it->file_size(ec);
        if (ec || size > limits.max_file_bytes) {
            ec.clear();
            continue;
        }
        if (total + size > limits.max_total_bytes || loaded.size() >= limits.max_files) {
            throw std::runtime_error("STATIC_DIR " + root + " holds more than the server keeps in memory");
        }
        auto bytes = read_file(path);
        if (!bytes) continue;
        auto rel = path.lexically_relative(canonical_root).generic_string();
        auto type = std::string(mime_type_for(rel));
        loaded.push_back({std::move(rel), std::move(*bytes), std::move(type)});
        total += size;
    }
    if (ec) throw std::runtime_error("cannot read STATIC_DIR " + root + ": " + ec.message());

    auto versions = assign_versions(loaded);
    for (std::size_t i = 0; i < loaded.size(); ++i) {
        auto file = prepare(std::move(loaded[i].content), std::move(loaded[i].content_type), std::move(versions[i]));
        result->files_.emplace(std::move(loaded[i].key), std::move(file));
    }
    return result;
}

std::optional<std::string> static_files::clean_path(std::string_view raw_path) {
    if (raw_path.empty() || raw_path.front() != '/') return std::nullopt;
    auto decoded = percent_decode(raw_path, false);
    if (!decoded) return std::nullopt;
    std::string out;
    std::string_view rest = std::string_view(*decoded).substr(1);
    for (char c : *decoded) {
        if (c == '\0' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return std::nullopt;
    }
    while (true) {
        const auto slash = rest.find('/');
        const auto segment = rest.substr(0, slash);
        if (segment == "." || segment == "..") return std::nullopt;
        if (!segment.empty() && segment.front() == '.') return std::nullopt;  // hidden
        if (segment.empty() && slash != std::string_view::npos) return std::nullopt;  // "//"
        if (!out.empty() && !segment.empty()) out += '/';
        out += segment;
        if (slash == std::string_view::npos) break;
        rest = rest.substr(slash + 1);
        if (rest.empty()) {  // trailing slash: the folder's index
            out += out.empty() ? "index.html" : "/index.html";
            return out;
        }
    }
    if (out.empty()) out = "index.html";
    return out;
}

const static_file* static_files::find(std::string_view clean) const {
    auto it = files_.find(std::string(clean));
    return it == files_.end() ? nullptr : &it->second;
}

http_response static_files::serve(const http_request& req) const {
    const auto key = clean_path(req.path);
    if (!key) return api_error(400, "bad_path", "The path is not valid.");
    const auto* file = find(*key);
    if (!file) return api_error(404, "not_found", "No such page or file.");

    const bool gzip = file->gzipped && accepts_gzip(req.header("accept-encoding"));
    const bool versioned = file->is_versioned_request(req.query);
    const auto& etag = gzip ? file->gzip_etag : file->etag;

    http_response res;
    if (etag_matches(req.header("if-none-match"), etag)) {
        res.set_header("ETag", etag);
        res.set_header("Cache-Control", std::string(cache_control(versioned)));
        if (file->gzipped) res.set_header("Vary", "Accept-Encoding");
        res.status = 304;
        res.omit_body = true;
        return res;
    }
    if (versioned) res.prepared_head = gzip ? file->immutable_gzip_head : file->immutable_head;
    else res.prepared_head = gzip ? file->gzip_head : file->head;
    res.shared_body = gzip ? file->gzipped : file->content;
    return res;
}

}  // namespace voice_broker
