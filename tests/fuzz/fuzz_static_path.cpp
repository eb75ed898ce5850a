// Fuzzes request-path resolution for static files: percent_decode, static_files::clean_path and
// static_files::serve over a small site that has a hidden file, a nested folder and a secret
// next to the root.
//
// Input: lines "path\naccept-encoding\nif-none-match\nmethod".
// Properties: a cleaned path is a relative key with no empty, ".", ".." or hidden segment and no
// control byte or backslash; cleaning is stable; decoding inverts percent-encoding; serve answers
// 200/304 only with a file of the site (never the secret), 400/404 as JSON otherwise.
#include "fuzz_support.hpp"

#include "voice_broker/http_message.hpp"
#include "voice_broker/static_files.hpp"

#include <nlohmann/json.hpp>

#include <memory>

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

struct site {
    scratch_dir dir;
    std::shared_ptr<const static_files> files;

    site() {
        dir.write("outside-secret.txt", "SECRET-OUTSIDE-THE-ROOT");
        dir.write("root/index.html", "<!doctype html><title>voice</title>" + std::string(400, 'x'));
        dir.write("root/app.js", "console.log('voice');" + std::string(400, ';'));
        dir.write("root/styles.css", "body{margin:0}");
        dir.write("root/.env", "SECRET-HIDDEN-FILE");
        dir.write("root/sub/index.html", "<p>sub</p>");
        dir.write("root/sub/a b+c%.txt", "odd name");
        files = static_files::load((dir.path() / "root").string());
    }
};

site& the_site() {
    static site s;
    return s;
}

std::string percent_encode_all(std::string_view in) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : in) {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

void check_clean_key(std::string_view raw, const std::string& key) {
    const std::string detail = "raw: " + std::string(raw) + "\nkey: " + key;
    FUZZ_CHECK(!key.empty() && key.front() != '/', detail);
    for (char c : key) {
        FUZZ_CHECK(c != '\0' && c != '\\' && static_cast<unsigned char>(c) >= 0x20, detail);
    }
    std::string_view rest = key;
    while (true) {
        const auto slash = rest.find('/');
        const auto segment = rest.substr(0, slash);
        FUZZ_CHECK(!segment.empty() && segment.front() != '.', detail);  // also "." and ".."
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    // Stable: the key, asked for again (escaped so that '%' stays itself), names itself.
    const auto again = static_files::clean_path("/" + percent_encode_all(key));
    FUZZ_CHECK(again && *again == key, detail);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    the_site();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = as_text(data, size);
    const auto fields = split(input, "\n", 4);
    const auto raw_path = field(fields, 0);

    // percent_decode: never longer than its input; the inverse of escaping every byte.
    for (bool plus : {false, true}) {
        if (const auto decoded = percent_decode(raw_path, plus)) FUZZ_CHECK(decoded->size() <= raw_path.size(), raw_path);
    }
    const auto round_trip = percent_decode(percent_encode_all(raw_path), true);
    FUZZ_CHECK(round_trip && *round_trip == raw_path, raw_path);

    const auto key = static_files::clean_path(raw_path);
    if (key) check_clean_key(raw_path, *key);

    http_request req;
    req.method = field(fields, 3).empty() ? "GET" : std::string(field(fields, 3));
    req.target = std::string(raw_path);
    req.path = req.target.substr(0, req.target.find('?'));
    req.headers = {{"accept-encoding", std::string(field(fields, 1))}, {"if-none-match", std::string(field(fields, 2))}};
    const auto& files = *the_site().files;
    const auto res = files.serve(req);
    const auto body = res.body_view();
    FUZZ_CHECK(body.find("SECRET") == std::string_view::npos, req.target);
    switch (res.status) {
    case 200:
    case 304: {
        const auto served = static_files::clean_path(req.path);
        FUZZ_CHECK(served && files.find(*served) != nullptr, req.target);
        FUZZ_CHECK(!res.header("ETag").empty(), req.target);
        break;
    }
    case 400:
    case 404: {
        const auto doc = nlohmann::json::parse(body, nullptr, false);
        FUZZ_CHECK(doc.is_object() && doc["error"]["code"].is_string(), std::string(body));
        break;
    }
    default:
        violated("serve answered an unexpected status", req.target);
    }
    return 0;
}
