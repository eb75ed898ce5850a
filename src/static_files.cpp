#include "voice_broker/static_files.hpp"

#include "voice_broker/api_response.hpp"

#include <openssl/sha.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
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
        if (ext.size() == e.size() && std::equal(ext.begin(), ext.end(), e.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == b;
            })) {
            return type;
        }
    }
    return "application/octet-stream";
}

namespace {

bool compressible(std::string_view type) {
    return type.rfind("text/", 0) == 0 || type.find("json") != std::string_view::npos ||
           type.find("javascript") != std::string_view::npos || type == "image/svg+xml" ||
           type == "image/x-icon" || type == "application/wasm";
}

// The first `bytes` bytes of the SHA-256 of data, in hex.
std::string sha256_hex(std::string_view data, int bytes) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < bytes; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
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

// ---- versioned URLs ------------------------------------------------------------------------

bool is_html(std::string_view content_type) {
    return content_type.rfind("text/html", 0) == 0;
}

bool is_javascript(std::string_view content_type) {
    return content_type.find("javascript") != std::string_view::npos;
}

// A file as read from disk, before its references are versioned.
struct loaded_file {
    std::string key;  // "js/api.js"
    std::string content;
    std::string content_type;
};

// One URL in a file that names another file of the table: the bytes [begin, end) of `content`.
struct reference {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t target = 0;  // index into the loaded files
};

using key_index = std::unordered_map<std::string, std::size_t>;

// The table key that a same-origin URL written in `from_key` names, or nullopt: URLs with a
// scheme, "//host", a query or a fragment, and anything that leaves the root, are left alone.
std::optional<std::size_t> resolve(std::string_view url, std::string_view from_key, const key_index& keys) {
    if (url.empty() || url.find_first_of("?#:\\") != std::string_view::npos || url.rfind("//", 0) == 0) {
        return std::nullopt;
    }
    std::vector<std::string_view> parts;
    auto split_into = [&parts](std::string_view path) {
        while (!path.empty()) {
            const auto slash = path.find('/');
            parts.push_back(path.substr(0, slash));
            path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
        }
    };
    if (url.front() != '/') {
        const auto slash = from_key.rfind('/');
        if (slash != std::string_view::npos) split_into(from_key.substr(0, slash));
    }
    const bool folder = url.back() == '/';
    split_into(url);
    std::vector<std::string_view> resolved;
    for (const auto part : parts) {
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (resolved.empty()) return std::nullopt;  // above the root
            resolved.pop_back();
            continue;
        }
        resolved.push_back(part);
    }
    std::string path;
    for (const auto part : resolved) path.append("/").append(part);
    if (folder || path.empty()) path += '/';
    const auto key = static_files::clean_path(path);  // decodes, and refuses hidden names
    if (!key) return std::nullopt;
    const auto it = keys.find(*key);
    if (it == keys.end()) return std::nullopt;
    return it->second;
}

bool identifier_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '.';
}

// Whether `word` stands at `at` as a whole word (a keyword, not part of a name or a member).
bool word_at(std::string_view text, std::size_t at, std::string_view word) {
    if (text.compare(at, word.size(), word) != 0) return false;
    if (at > 0 && identifier_char(text[at - 1])) return false;
    const auto after = at + word.size();
    return after >= text.size() || !identifier_char(text[after]);
}

std::size_t skip_spaces(std::string_view text, std::size_t at) {
    while (at < text.size() && std::isspace(static_cast<unsigned char>(text[at]))) ++at;
    return at;
}

// The quoted string starting at `at` (a quote there): its inside as [begin, end), or nullopt.
std::optional<std::pair<std::size_t, std::size_t>> quoted_at(std::string_view text, std::size_t at) {
    if (at >= text.size() || (text[at] != '"' && text[at] != '\'')) return std::nullopt;
    const auto close = text.find(text[at], at + 1);
    if (close == std::string_view::npos) return std::nullopt;
    const auto inside = text.substr(at + 1, close - at - 1);
    if (inside.find_first_of("\\\n") != std::string_view::npos) return std::nullopt;
    return std::pair{at + 1, close};
}

// ES-module specifiers: `import "x"`, `import("x")`, and `from "x"` (import ... from, export
// ... from).  A word match in a comment or a string is possible, and harmless: only a literal
// that names a file of the table is ever rewritten, and then to a URL of that same file.
std::vector<std::pair<std::size_t, std::size_t>> module_specifiers(std::string_view js) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    for (std::size_t at = 0; at < js.size(); ++at) {
        const char c = js[at];
        if (c != 'i' && c != 'f') continue;
        std::size_t next;
        if (word_at(js, at, "import")) {
            next = skip_spaces(js, at + 6);
            if (next < js.size() && js[next] == '(') next = skip_spaces(js, next + 1);
        } else if (word_at(js, at, "from")) {
            next = skip_spaces(js, at + 4);
        } else {
            continue;
        }
        if (const auto literal = quoted_at(js, next)) {
            out.push_back(*literal);
            at = literal->second;
        }
    }
    return out;
}

// HTML attribute values: src="x" and href="x" (quoted, any case), e.g. the page's script,
// stylesheet and icon.
std::vector<std::pair<std::size_t, std::size_t>> html_urls(std::string_view html) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    auto lower_equals = [&html](std::size_t at, std::string_view word) {
        if (at + word.size() > html.size()) return false;
        for (std::size_t i = 0; i < word.size(); ++i) {
            if (std::tolower(static_cast<unsigned char>(html[at + i])) != word[i]) return false;
        }
        return true;
    };
    for (std::size_t at = 1; at < html.size(); ++at) {
        if (!std::isspace(static_cast<unsigned char>(html[at - 1]))) continue;
        std::size_t after;
        if (lower_equals(at, "src")) after = at + 3;
        else if (lower_equals(at, "href")) after = at + 4;
        else continue;
        after = skip_spaces(html, after);
        if (after >= html.size() || html[after] != '=') continue;
        if (const auto literal = quoted_at(html, skip_spaces(html, after + 1))) {
            out.push_back(*literal);
            at = literal->second;
        }
    }
    return out;
}

// The references of one file to other (non-html) files of the table, in file order.
std::vector<reference> references_of(const loaded_file& file, const std::vector<loaded_file>& files, const key_index& keys) {
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    if (is_html(file.content_type)) spans = html_urls(file.content);
    else if (is_javascript(file.content_type)) spans = module_specifiers(file.content);
    std::vector<reference> out;
    for (const auto& [begin, end] : spans) {
        const auto url = std::string_view(file.content).substr(begin, end - begin);
        // A module specifier is a URL only when relative or absolute; "lodash" is a bare name.
        if (is_javascript(file.content_type) && url.rfind("./", 0) != 0 && url.rfind("../", 0) != 0 && url.rfind('/', 0) != 0) {
            continue;
        }
        const auto target = resolve(url, file.key, keys);
        if (target && !is_html(files[*target].content_type)) out.push_back({begin, end, *target});
    }
    return out;
}

std::string with_versions(const loaded_file& file, const std::vector<reference>& refs, const std::vector<std::string>& versions) {
    std::string out;
    out.reserve(file.content.size() + refs.size() * 24);
    std::size_t copied = 0;
    for (const auto& ref : refs) {
        out.append(file.content, copied, ref.end - copied).append("?v=").append(versions[ref.target]);
        copied = ref.end;
    }
    out.append(file.content, copied);
    return out;
}

// Tarjan's strongly connected components, without recursion (an import chain can be long).
// Components come out dependencies first: each after every component it references.
std::vector<std::vector<std::size_t>> components_dependencies_first(const std::vector<std::vector<reference>>& refs) {
    constexpr auto unvisited = static_cast<std::size_t>(-1);
    const auto n = refs.size();
    std::vector<std::size_t> index(n, unvisited), low(n, 0);
    std::vector<bool> on_stack(n, false);
    std::vector<std::size_t> stack;
    std::vector<std::pair<std::size_t, std::size_t>> calls;  // (node, next reference to follow)
    std::vector<std::vector<std::size_t>> out;
    std::size_t counter = 0;
    auto visit = [&](std::size_t node) {
        index[node] = low[node] = counter++;
        stack.push_back(node);
        on_stack[node] = true;
        calls.emplace_back(node, 0);
    };
    for (std::size_t root = 0; root < n; ++root) {
        if (index[root] != unvisited) continue;
        visit(root);
        while (!calls.empty()) {
            const auto node = calls.back().first;
            const auto next = calls.back().second;
            if (next < refs[node].size()) {
                calls.back().second++;
                const auto target = refs[node][next].target;
                if (index[target] == unvisited) visit(target);
                else if (on_stack[target]) low[node] = std::min(low[node], index[target]);
                continue;
            }
            calls.pop_back();
            if (!calls.empty()) low[calls.back().first] = std::min(low[calls.back().first], low[node]);
            if (low[node] != index[node]) continue;
            auto& component = out.emplace_back();
            std::size_t member;
            do {
                member = stack.back();
                stack.pop_back();
                on_stack[member] = false;
                component.push_back(member);
            } while (member != node);
        }
    }
    return out;
}

// Gives every non-html file its version and rewrites the references in every file.  A file that
// imports nothing, or whose imports form no cycle, is versioned by the hash of its final bytes.
// Modules that import each other in a cycle share one version: the hash of all their original
// bytes and of the versions of what they import from outside the cycle.
std::vector<std::string> assign_versions(std::vector<loaded_file>& files) {
    key_index keys;
    for (std::size_t i = 0; i < files.size(); ++i) keys.emplace(files[i].key, i);
    std::vector<std::vector<reference>> refs(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) refs[i] = references_of(files[i], files, keys);

    std::vector<std::string> versions(files.size());
    std::vector<std::string> rewritten(files.size());
    std::vector<bool> done(files.size(), false);
    for (auto& component : components_dependencies_first(refs)) {
        const bool cycle = component.size() > 1 ||
                           std::any_of(refs[component[0]].begin(), refs[component[0]].end(),
                                       [&](const reference& ref) { return ref.target == component[0]; });
        if (!cycle) {
            const auto i = component[0];
            rewritten[i] = with_versions(files[i], refs[i], versions);
            done[i] = true;
            if (!is_html(files[i].content_type)) versions[i] = sha256_hex(rewritten[i], 8);
            continue;
        }
        std::sort(component.begin(), component.end(), [&](auto a, auto b) { return files[a].key < files[b].key; });
        std::string basis;
        for (const auto i : component) {
            basis.append(files[i].key).append(1, '\0').append(files[i].content).append(1, '\0');
            for (const auto& ref : refs[i]) {
                if (done[ref.target]) basis.append(files[ref.target].key).append(1, '\0').append(versions[ref.target]);
            }
        }
        const auto version = sha256_hex(basis, 8);
        for (const auto i : component) versions[i] = version;
        for (const auto i : component) {
            rewritten[i] = with_versions(files[i], refs[i], versions);
            done[i] = true;
        }
    }
    for (std::size_t i = 0; i < files.size(); ++i) files[i].content = std::move(rewritten[i]);
    return versions;
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
        std::ifstream in(path, std::ios::binary);
        if (!in) continue;
        std::ostringstream buf;
        buf << in.rdbuf();
        auto rel = path.lexically_relative(canonical_root).generic_string();
        auto type = std::string(mime_type_for(rel));
        loaded.push_back({std::move(rel), std::move(buf).str(), std::move(type)});
        total += size;
    }
    if (ec) throw std::runtime_error("cannot read STATIC_DIR " + root + ": " + ec.message());

    auto versions = assign_versions(loaded);
    for (std::size_t i = 0; i < loaded.size(); ++i) {
        static_file file;
        file.content = std::make_shared<const std::string>(std::move(loaded[i].content));
        file.content_type = std::move(loaded[i].content_type);
        file.etag = strong_etag(*file.content, "");
        file.revalidate = is_html(file.content_type);
        if (!file.revalidate) {
            file.version = std::move(versions[i]);
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
    res.omit_body = req.method == "HEAD";
    return res;
}

}  // namespace voice_broker
