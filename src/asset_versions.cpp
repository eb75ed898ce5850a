#include "asset_versions.hpp"

#include "voice_broker/ascii.hpp"
#include "voice_broker/static_files.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <utility>

namespace voice_broker {

bool is_html(std::string_view content_type) { return content_type.rfind("text/html", 0) == 0; }

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

namespace {

bool is_javascript(std::string_view content_type) {
    return content_type.find("javascript") != std::string_view::npos;
}

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
            if (to_lower_ascii(html[at + i]) != word[i]) return false;
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

}  // namespace

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

}  // namespace voice_broker
