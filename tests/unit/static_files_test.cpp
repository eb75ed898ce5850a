// Unit tests for static_files: the in-memory table of the page, conditional and compressed
// answers, and above all that nothing outside the root (or hidden inside it) is ever served.
#include "voice_broker/static_files.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace voice_broker {
namespace {

using voice_broker::testing::temp_dir;

constexpr const char* secret_marker = "TOP-SECRET-NEXT-TO-THE-ROOT";

std::string repeat(std::string_view text, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) out += text;
    return out;
}

// inflate() of a gzip stream; empty on any error.
std::string gunzip(std::string_view data) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return {};
    std::string out(data.size() * 20 + 1024, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    inflateEnd(&zs);
    return rc == Z_STREAM_END ? out : std::string{};
}

http_request get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    http_request req;
    req.method = "GET";
    req.target = target;
    const auto question = target.find('?');
    req.path = target.substr(0, question);
    if (question != std::string::npos) req.query = target.substr(question + 1);
    req.headers = std::move(headers);
    return req;
}

class static_files_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir = new temp_dir;
        index_html = "<!doctype html><title>voice</title>" + repeat("<p>Talk to the assistant.</p>\n", 40);
        app_js = repeat("console.log('voice broker client');\n", 30);
        dir->write("secret.txt", secret_marker);
        dir->write("site/index.html", index_html);
        dir->write("site/app.js", app_js);
        dir->write("site/styles.css", "body{margin:0}");  // too small to be worth compressing
        dir->write("site/logo.png", repeat(std::string("\x89PNG\r\n\x1a\n", 8), 64));
        dir->write("site/data.json", "{\"a\":1}");
        dir->write("site/sub/index.html", "<p>sub</p>");
        dir->write("site/sub/page.txt", "page");
        dir->write("site/a b.txt", "space");
        dir->write("site/.env", std::string("OPENAI_API_KEY=") + secret_marker);
        dir->write("site/.git/config", secret_marker);
        dir->write("site/.hidden-dir/file.txt", secret_marker);
        dir->write("site/huge.txt", std::string(2048, 'x'));
        namespace fs = std::filesystem;
        fs::create_symlink(dir->path() / "secret.txt", dir->path() / "site/secret-link.txt");
        fs::create_symlink("/etc/passwd", dir->path() / "site/passwd");
        fs::create_symlink(dir->path(), dir->path() / "site/parent");
        fs::create_symlink(dir->path() / "site/sub/page.txt", dir->path() / "site/page-link.txt");
        fs::create_symlink(dir->path() / "site/sub", dir->path() / "site/sub-link");
        static_limits limits;
        limits.max_file_bytes = 1500;  // huge.txt is left out
        holder = new std::shared_ptr<const static_files>(static_files::load((dir->path() / "site").string(), limits));
        files = holder->get();
    }
    static void TearDownTestSuite() {
        delete holder;
        delete dir;
    }

    static inline temp_dir* dir = nullptr;
    static inline std::shared_ptr<const static_files>* holder = nullptr;
    static inline const static_files* files = nullptr;
    static inline std::string index_html, app_js;
};

// --- paths ------------------------------------------------------------------------------------

TEST(static_files_clean_path, maps_request_paths_to_table_keys) {
    EXPECT_EQ(static_files::clean_path("/"), "index.html");
    EXPECT_EQ(static_files::clean_path("/app.js"), "app.js");
    EXPECT_EQ(static_files::clean_path("/sub/"), "sub/index.html");
    EXPECT_EQ(static_files::clean_path("/sub/page.txt"), "sub/page.txt");
    EXPECT_EQ(static_files::clean_path("/a%20b.txt"), "a b.txt");
    EXPECT_EQ(static_files::clean_path("/a+b.txt"), "a+b.txt") << "a plus is not a space in a path";
}

TEST(static_files_clean_path, refuses_what_could_leave_the_root_or_reveal_hidden_files) {
    for (const char* bad : {"", "app.js", "/..", "/../x", "/a/../b", "/./a", "/a/.", "//a", "/a//b", "/.env", "/a/.git/x",
                            "/a\\b", "/a%5cb", "/a%00", "/a%0a", "/%zz", "/%2", "/..%2fx", "/%2e%2e/x"}) {
        EXPECT_FALSE(static_files::clean_path(bad).has_value()) << bad;
    }
}

TEST(static_files_mime, common_types_and_a_safe_fallback) {
    EXPECT_EQ(mime_type_for("index.html"), "text/html; charset=utf-8");
    EXPECT_EQ(mime_type_for("app.js"), "text/javascript; charset=utf-8");
    EXPECT_EQ(mime_type_for("mod.mjs"), "text/javascript; charset=utf-8");
    EXPECT_EQ(mime_type_for("styles.css"), "text/css; charset=utf-8");
    EXPECT_EQ(mime_type_for("data.json"), "application/json; charset=utf-8");
    EXPECT_EQ(mime_type_for("site.webmanifest"), "application/manifest+json; charset=utf-8");
    EXPECT_EQ(mime_type_for("favicon.svg"), "image/svg+xml");
    EXPECT_EQ(mime_type_for("logo.png"), "image/png");
    EXPECT_EQ(mime_type_for("LOGO.PNG"), "image/png");
    EXPECT_EQ(mime_type_for("photo.jpeg"), "image/jpeg");
    EXPECT_EQ(mime_type_for("font.woff2"), "font/woff2");
    EXPECT_EQ(mime_type_for("worklet.wasm"), "application/wasm");
    EXPECT_EQ(mime_type_for("chime.mp3"), "audio/mpeg");
    EXPECT_EQ(mime_type_for("README"), "application/octet-stream");
    EXPECT_EQ(mime_type_for("archive.tar.gz"), "application/octet-stream");
    EXPECT_EQ(mime_type_for("dir.v2/file"), "application/octet-stream");
}

TEST(static_files_gzip, compresses_so_that_inflate_gives_the_input_back) {
    const auto input = repeat("the quick brown fox ", 100);
    const auto packed = gzip_compress(input);
    ASSERT_GE(packed.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(packed[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(packed[1]), 0x8b);
    EXPECT_LT(packed.size(), input.size());
    EXPECT_EQ(gunzip(packed), input);
    EXPECT_EQ(gunzip(gzip_compress("")), "");
}

// --- serving ------------------------------------------------------------------------------------

TEST_F(static_files_test, loads_regular_visible_files_and_links_that_stay_inside) {
    EXPECT_NE(files->find("index.html"), nullptr);
    EXPECT_NE(files->find("sub/page.txt"), nullptr);
    EXPECT_NE(files->find("page-link.txt"), nullptr) << "a link to a file inside the root is served";
    EXPECT_EQ(files->find(".env"), nullptr);
    EXPECT_EQ(files->find(".git/config"), nullptr);
    EXPECT_EQ(files->find(".hidden-dir/file.txt"), nullptr);
    EXPECT_EQ(files->find("secret-link.txt"), nullptr);
    EXPECT_EQ(files->find("passwd"), nullptr);
    EXPECT_EQ(files->find("parent/secret.txt"), nullptr);
    EXPECT_EQ(files->find("huge.txt"), nullptr) << "larger than max_file_bytes";
    EXPECT_EQ(files->file_count(), 9u);
}

TEST_F(static_files_test, serves_the_index_for_the_root_with_no_cache) {
    const auto res = files->serve(get("/"));
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(res.body_view(), index_html);
    EXPECT_EQ(res.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(res.header("Cache-Control"), "no-cache");
    EXPECT_FALSE(res.header("ETag").empty());
    EXPECT_TRUE(res.header("Content-Encoding").empty());
    EXPECT_FALSE(res.omit_body);
}

// Only a versioned URL may be cached for long (see the versions tests below): the bare URL
// of an asset revalidates, so a reload of STATIC_DIR is seen at once.
TEST_F(static_files_test, bare_asset_urls_revalidate) {
    const auto res = files->serve(get("/logo.png"));
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(res.header("Content-Type"), "image/png");
    EXPECT_EQ(res.header("Cache-Control"), "no-cache");
    EXPECT_EQ(files->serve(get("/sub/")).body_view(), "<p>sub</p>");
    EXPECT_EQ(files->serve(get("/a%20b.txt")).body_view(), "space");
}

TEST_F(static_files_test, a_missing_file_is_404_with_the_error_shape) {
    const auto res = files->serve(get("/nope.js"));
    EXPECT_EQ(res.status, 404u);
    EXPECT_NE(res.body_view().find(R"("code":"not_found")"), std::string_view::npos) << res.body_view();
    EXPECT_EQ(files->serve(get("/a/../b")).status, 400u);
}

TEST_F(static_files_test, head_gets_the_get_answer_whose_body_the_router_then_omits) {
    http_request req = get("/app.js");
    req.method = "HEAD";
    const auto res = files->serve(req);
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(res.body_view().size(), app_js.size()) << "the length is still known";
    EXPECT_EQ(res.header("ETag"), files->serve(get("/app.js")).header("ETag"));
}

TEST_F(static_files_test, a_matching_etag_gives_304_without_a_body) {
    const auto etag = std::string(files->serve(get("/app.js")).header("ETag"));
    ASSERT_EQ(etag.front(), '"');
    for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*"), " " + etag + " "}) {
        const auto res = files->serve(get("/app.js", {{"if-none-match", inm}}));
        EXPECT_EQ(res.status, 304u) << inm;
        EXPECT_TRUE(res.omit_body) << inm;
        EXPECT_EQ(res.header("ETag"), etag) << inm;
    }
    EXPECT_EQ(files->serve(get("/app.js", {{"if-none-match", "\"stale\""}})).status, 200u);
    EXPECT_EQ(files->serve(get("/app.js", {{"if-none-match", etag.substr(0, etag.size() - 2) + "\""}})).status, 200u);
}

TEST_F(static_files_test, etags_differ_between_files) {
    EXPECT_NE(files->serve(get("/app.js")).header("ETag"), files->serve(get("/")).header("ETag"));
}

TEST_F(static_files_test, gzip_is_served_when_accepted_and_decompresses_to_the_file) {
    const auto plain = files->serve(get("/app.js"));
    const auto packed = files->serve(get("/app.js", {{"accept-encoding", "gzip, deflate, br"}}));
    EXPECT_EQ(packed.status, 200u);
    EXPECT_EQ(packed.header("Content-Encoding"), "gzip");
    EXPECT_EQ(packed.header("Vary"), "Accept-Encoding");
    EXPECT_EQ(plain.header("Vary"), "Accept-Encoding") << "caches must know the answer depends on it";
    EXPECT_EQ(packed.header("Content-Type"), plain.header("Content-Type"));
    EXPECT_NE(packed.header("ETag"), plain.header("ETag")) << "different bytes need a different ETag";
    EXPECT_LT(packed.body_view().size(), plain.body_view().size());
    EXPECT_EQ(gunzip(packed.body_view()), app_js);

    const auto revalidated = files->serve(
        get("/app.js", {{"accept-encoding", "gzip"}, {"if-none-match", std::string(packed.header("ETag"))}}));
    EXPECT_EQ(revalidated.status, 304u);
}

TEST_F(static_files_test, gzip_is_not_served_when_refused_or_not_offered) {
    for (const char* ae : {"", "identity", "br", "gzip;q=0", "gzip; q=0", "gzip;q=0.0", "deflate, gzip;q=0.000"}) {
        const auto res = files->serve(get("/app.js", {{"accept-encoding", ae}}));
        EXPECT_TRUE(res.header("Content-Encoding").empty()) << "Accept-Encoding: " << ae;
        EXPECT_EQ(res.body_view(), app_js) << "Accept-Encoding: " << ae;
    }
    for (const char* ae : {"*", "gzip;q=0.5", "br;q=1, gzip;q=0.1"}) {
        EXPECT_EQ(files->serve(get("/app.js", {{"accept-encoding", ae}})).header("Content-Encoding"), "gzip") << ae;
    }
}

// RFC 9110 12.5.3: "*" only speaks for codings not listed, so an explicit gzip;q=0 still refuses.
TEST_F(static_files_test, an_explicit_gzip_refusal_wins_over_a_wildcard) {
    const auto res = files->serve(get("/app.js", {{"accept-encoding", "gzip;q=0, *"}}));
    EXPECT_TRUE(res.header("Content-Encoding").empty());
}

TEST_F(static_files_test, small_and_binary_files_have_no_gzip_copy) {
    for (const char* path : {"/styles.css", "/logo.png"}) {
        const auto res = files->serve(get(path, {{"accept-encoding", "gzip"}}));
        EXPECT_EQ(res.status, 200u) << path;
        EXPECT_TRUE(res.header("Content-Encoding").empty()) << path;
        EXPECT_TRUE(res.header("Vary").empty()) << path;
    }
}

// --- traversal ----------------------------------------------------------------------------------

TEST_F(static_files_test, no_traversal_attempt_reaches_a_file_outside_the_root_or_a_hidden_one) {
    std::ifstream passwd_in("/etc/passwd");
    std::stringstream passwd;
    passwd << passwd_in.rdbuf();
    const std::vector<std::string> attempts = {
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/sub/..%2F..%2Fsecret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..\\secret.txt",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/index.html%00.txt",
        "/..%00/secret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/./index.html",
        "/sub/./page.txt",
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/.hidden-dir/file.txt",
        "/passwd",
        "/secret-link.txt",
        "/parent/secret.txt",
        "/parent/site/index.html",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%ae%c0%ae%c0%afsecret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "/%uff0e%uff0e/secret.txt",
        "/..;/secret.txt",
        "/....//secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%5c%2e%2e%5csecret.txt",
        "/..",
    };
    ASSERT_GE(attempts.size(), 15u);
    for (const auto& path : attempts) {
        for (const char* method : {"GET", "HEAD"}) {
            auto req = get(path, {{"accept-encoding", "gzip"}});
            req.method = method;
            const auto res = files->serve(req);
            EXPECT_TRUE(res.status == 400 || res.status == 404) << method << " " << path << " -> " << res.status;
            const auto body = res.body_view();
            EXPECT_EQ(body.find(secret_marker), std::string_view::npos) << path;
            if (!passwd.str().empty()) {
                EXPECT_EQ(body.find(passwd.str().substr(0, 16)), std::string_view::npos) << path;
            }
            EXPECT_NE(body.find("\"error\""), std::string_view::npos) << path;
        }
    }
    // The same table does serve what it should: the refusals above are not a broken server.
    EXPECT_EQ(files->serve(get("/sub/page.txt")).status, 200u);
    EXPECT_EQ(files->serve(get("/page-link.txt")).body_view(), "page");
}

// --- versioned URLs -----------------------------------------------------------------------------

std::string sha256_prefix_hex(std::string_view data) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 8; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

std::string body_of(const static_files& files, const std::string& target) {
    return std::string(files.serve(get(target)).body_view());
}

std::string version_of(const static_files& files, std::string_view key) {
    const auto* file = files.find(key);
    return file ? file->version : "(missing " + std::string(key) + ")";
}

// A small page: index.html -> app.js -> js/dep.js -> js/leaf.js, and app.js -> js/other.js.
void write_page(const temp_dir& dir) {
    dir.write("site/index.html",
              "<!doctype html><link rel=\"stylesheet\" href=\"styles.css\"><link rel=icon HREF='img/logo.svg'>"
              "<script type=\"module\" src=\"app.js\"></script><a href=\"#main\">skip</a>"
              "<img src=\"/img/logo.svg\" alt=\"\"><a href=\"https://example.com/app.js\">x</a>"
              "<script src=\"missing.js\"></script><a href=\"sub/\">sub</a>");
    dir.write("site/styles.css", "body{margin:0}");
    dir.write("site/img/logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    dir.write("site/app.js", "import { dep } from './js/dep.js';\nimport './js/other.js';\ndep();\n");
    dir.write("site/js/dep.js", "import { leaf } from \"./leaf.js\";\nexport const dep = () => leaf();\n");
    dir.write("site/js/leaf.js", "export const leaf = () => 1;\n");
    dir.write("site/js/other.js", "console.log('other');\n");
    dir.write("site/sub/index.html", "<script type=module src=\"../app.js\"></script><script src=\"./../js/leaf.js\"></script>");
}

TEST(static_files_versions, the_page_links_every_asset_by_a_hash_of_its_bytes) {
    temp_dir dir;
    write_page(dir);
    const auto files = static_files::load((dir / "site").string());
    for (const char* key : {"styles.css", "img/logo.svg", "app.js", "js/dep.js", "js/leaf.js", "js/other.js"}) {
        const auto version = version_of(*files, key);
        EXPECT_EQ(version.size(), 16u) << key;
        EXPECT_EQ(version, sha256_prefix_hex(body_of(*files, std::string("/") + key))) << key << ": the hash of the served bytes";
        EXPECT_EQ(files->find(key)->versioned_query, "v=" + version) << key;
    }
    EXPECT_TRUE(files->find("index.html")->version.empty()) << "html is never versioned: it always revalidates";

    const auto v = [&](const char* key) { return version_of(*files, key); };
    EXPECT_EQ(body_of(*files, "/"),
              "<!doctype html><link rel=\"stylesheet\" href=\"styles.css?v=" + v("styles.css") +
                  "\"><link rel=icon HREF='img/logo.svg?v=" + v("img/logo.svg") +
                  "'><script type=\"module\" src=\"app.js?v=" + v("app.js") +
                  "\"></script><a href=\"#main\">skip</a><img src=\"/img/logo.svg?v=" + v("img/logo.svg") +
                  "\" alt=\"\"><a href=\"https://example.com/app.js\">x</a><script src=\"missing.js\"></script>"
                  "<a href=\"sub/\">sub</a>")
        << "fragments, other hosts, missing files and pages are left alone";
    EXPECT_EQ(body_of(*files, "/sub/"), "<script type=module src=\"../app.js?v=" + v("app.js") +
                                            "\"></script><script src=\"./../js/leaf.js?v=" + v("js/leaf.js") + "\"></script>")
        << "relative to the page's own folder";
    EXPECT_EQ(body_of(*files, "/app.js"), "import { dep } from './js/dep.js?v=" + v("js/dep.js") + "';\nimport './js/other.js?v=" +
                                              v("js/other.js") + "';\ndep();\n");
    EXPECT_EQ(body_of(*files, "/js/dep.js"),
              "import { leaf } from \"./leaf.js?v=" + v("js/leaf.js") + "\";\nexport const dep = () => leaf();\n");
}

TEST(static_files_versions, module_specifiers_are_versioned_in_every_form_and_nothing_else) {
    temp_dir dir;
    dir.write("site/lib/a.js", "export const a = 1;\n");
    dir.write("site/c.js", "export const c = 1;\n");
    const std::string source =
        "import a from './a.js';\n"
        "import{a as b}from\"./a.js\";\n"
        "import './a.js';\n"
        "export * from '../c.js';\n"
        "export { c } from \"/c.js\";\n"
        "const later = import('./a.js');\n"
        "const spaced = import ( \"../c.js\" );\n"
        "import 'lodash';\n"
        "import x from 'https://cdn.example/a.js';\n"
        "import y from './a.js?raw';\n"
        "const url = new URL('./a.js', import.meta.url);\n"
        "const chars = Array.from('./a.js');\n"
        "const important = 1; const fromage = './a.js';\n"
        "const note = 'see Array.from \"./a.js\" and reimport \"./a.js\"';\n"
        "import z from './missing.js';\n";
    dir.write("site/lib/main.js", source);
    const auto files = static_files::load((dir / "site").string());
    const auto a = "?v=" + version_of(*files, "lib/a.js");
    const auto c = "?v=" + version_of(*files, "c.js");
    EXPECT_EQ(body_of(*files, "/lib/main.js"),
              "import a from './a.js" + a + "';\n"
              "import{a as b}from\"./a.js" + a + "\";\n"
              "import './a.js" + a + "';\n"
              "export * from '../c.js" + c + "';\n"
              "export { c } from \"/c.js" + c + "\";\n"
              "const later = import('./a.js" + a + "');\n"
              "const spaced = import ( \"../c.js" + c + "\" );\n"
              "import 'lodash';\n"
              "import x from 'https://cdn.example/a.js';\n"
              "import y from './a.js?raw';\n"
              "const url = new URL('./a.js', import.meta.url);\n"
              "const chars = Array.from('./a.js');\n"
              "const important = 1; const fromage = './a.js';\n"
              "const note = 'see Array.from \"./a.js\" and reimport \"./a.js\"';\n"
              "import z from './missing.js';\n");
}

TEST(static_files_versions, a_changed_file_changes_its_url_and_the_urls_of_all_that_import_it) {
    temp_dir dir;
    write_page(dir);
    const auto before = static_files::load((dir / "site").string());
    dir.write("site/js/leaf.js", "export const leaf = () => 2;\n");
    const auto after = static_files::load((dir / "site").string());  // as SIGHUP does

    for (const char* key : {"js/leaf.js", "js/dep.js", "app.js"}) {
        EXPECT_NE(version_of(*before, key), version_of(*after, key)) << key << " imports the changed file, directly or not";
    }
    for (const char* key : {"js/other.js", "styles.css", "img/logo.svg"}) {
        EXPECT_EQ(version_of(*before, key), version_of(*after, key)) << key << " is unchanged, and keeps its URL";
    }
    const auto index = body_of(*after, "/");
    EXPECT_NE(index.find("app.js?v=" + version_of(*after, "app.js")), std::string::npos) << index;
    EXPECT_EQ(index.find("app.js?v=" + version_of(*before, "app.js")), std::string::npos) << index;

    // Loading the same bytes again gives the same URLs: a restart keeps the browsers' caches.
    const auto again = static_files::load((dir / "site").string());
    EXPECT_EQ(body_of(*again, "/"), index);
}

TEST(static_files_versions, only_the_current_version_is_served_as_immutable) {
    temp_dir dir;
    write_page(dir);
    const auto old_version = version_of(*static_files::load((dir / "site").string()), "app.js");
    dir.write("site/app.js", "import { dep } from './js/dep.js';\ndep();\n" + repeat("// a longer file, worth compressing\n", 20));
    const auto files = static_files::load((dir / "site").string());
    const auto current = version_of(*files, "app.js");
    ASSERT_NE(current, old_version);

    for (const char* encoding : {"", "gzip"}) {
        const auto fresh = files->serve(get("/app.js?v=" + current, {{"accept-encoding", encoding}}));
        EXPECT_EQ(fresh.status, 200u);
        EXPECT_EQ(fresh.header("Cache-Control"), "public, max-age=31536000, immutable") << encoding;
        EXPECT_EQ(fresh.header("Content-Encoding"), encoding) << "the versioned URL is compressed all the same";
    }
    // The previous version, no version, or the version with something more: the current bytes,
    // but never pinned in a cache for a year.
    for (const auto& target : {"/app.js?v=" + old_version, std::string("/app.js"), "/app.js?v=" + current + "&x=1",
                               "/app.js?v=" + current.substr(0, 8), std::string("/app.js?v=")}) {
        const auto res = files->serve(get(target));
        EXPECT_EQ(res.status, 200u) << target;
        EXPECT_EQ(res.header("Cache-Control"), "no-cache") << target;
        EXPECT_EQ(res.body_view(), body_of(*files, "/app.js")) << target;
    }
    const auto etag = std::string(files->serve(get("/app.js")).header("ETag"));
    const auto revalidated = files->serve(get("/app.js?v=" + current, {{"if-none-match", etag}}));
    EXPECT_EQ(revalidated.status, 304u);
    EXPECT_EQ(revalidated.header("Cache-Control"), "public, max-age=31536000, immutable");
    EXPECT_EQ(files->serve(get("/app.js?v=" + old_version, {{"if-none-match", etag}})).header("Cache-Control"), "no-cache");
    EXPECT_EQ(files->serve(get("/?v=" + current)).header("Cache-Control"), "no-cache") << "html always revalidates";
}

TEST(static_files_versions, modules_in_an_import_cycle_share_a_version_that_still_changes) {
    temp_dir dir;
    dir.write("site/index.html", "<script type=module src=\"a.js\"></script>");
    dir.write("site/a.js", "import './b.js';\nexport const a = 1;\n");
    dir.write("site/b.js", "import { a } from './a.js';\nimport './leaf.js';\n");
    dir.write("site/self.js", "import './self.js';\n");
    dir.write("site/leaf.js", "export {};\n");
    const auto before = static_files::load((dir / "site").string());
    EXPECT_EQ(version_of(*before, "a.js"), version_of(*before, "b.js"));
    EXPECT_EQ(version_of(*before, "a.js").size(), 16u);
    EXPECT_EQ(body_of(*before, "/b.js"), "import { a } from './a.js?v=" + version_of(*before, "a.js") +
                                             "';\nimport './leaf.js?v=" + version_of(*before, "leaf.js") + "';\n");
    EXPECT_EQ(body_of(*before, "/self.js"), "import './self.js?v=" + version_of(*before, "self.js") + "';\n");

    dir.write("site/leaf.js", "export const leaf = 2;\n");
    const auto after = static_files::load((dir / "site").string());
    EXPECT_NE(version_of(*before, "a.js"), version_of(*after, "a.js")) << "a dependency outside the cycle changed";
    dir.write("site/b.js", "import { a } from './a.js';\nimport './leaf.js';\n// changed\n");
    const auto changed = static_files::load((dir / "site").string());
    EXPECT_NE(version_of(*after, "a.js"), version_of(*changed, "a.js")) << "a member of the cycle changed";
}

TEST(static_files_versions, references_never_reach_outside_the_root_or_a_hidden_file) {
    temp_dir dir;
    dir.write("secret.js", secret_marker);
    dir.write("site/.env", secret_marker);
    dir.write("site/.hidden/x.js", secret_marker);
    dir.write("site/ok.js", "export {};\n");
    const std::string page =
        "<script src=\"../secret.js\"></script><script src=\"/../secret.js\"></script>"
        "<script src=\"sub/../../secret.js\"></script><script src=\"%2e%2e/secret.js\"></script>"
        "<link href=\"/.env\"><script src=\".hidden/x.js\"></script><script src=\"./.hidden/x.js\"></script>"
        "<script src=\"ok.js\"></script>";
    dir.write("site/index.html", page);
    dir.write("site/main.js", "import '../secret.js';\nimport './.hidden/x.js';\nimport '/.env';\n");
    const auto files = static_files::load((dir / "site").string());
    EXPECT_EQ(files->file_count(), 3u) << "index.html, ok.js, main.js";
    std::string expected = page;
    expected.replace(expected.find("ok.js") + 5, 0, "?v=" + version_of(*files, "ok.js"));
    EXPECT_EQ(body_of(*files, "/"), expected) << "only ok.js is a file of the table";
    EXPECT_EQ(body_of(*files, "/main.js"), "import '../secret.js';\nimport './.hidden/x.js';\nimport '/.env';\n");
    for (const char* target : {"/../secret.js?v=1", "/.env?v=1", "/.hidden/x.js?v=1"}) {
        const auto res = files->serve(get(target));
        EXPECT_TRUE(res.status == 400 || res.status == 404) << target;
        EXPECT_EQ(res.body_view().find(secret_marker), std::string_view::npos) << target;
    }
}

// --- loading ------------------------------------------------------------------------------------

TEST(static_files_load, a_missing_or_non_folder_root_is_a_clear_error) {
    temp_dir dir;
    const auto file = dir.write("not-a-folder", "x");
    EXPECT_THROW(static_files::load((dir / "missing").string()), std::runtime_error);
    EXPECT_THROW(static_files::load(file.string()), std::runtime_error);
    try {
        static_files::load((dir / "missing").string());
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
    }
}

TEST(static_files_load, too_many_files_is_an_error_not_a_silent_cut) {
    temp_dir dir;
    for (int i = 0; i < 5; ++i) dir.write("site/f" + std::to_string(i) + ".txt", "x");
    static_limits limits;
    limits.max_files = 4;
    EXPECT_THROW(static_files::load((dir / "site").string(), limits), std::runtime_error);
    limits.max_files = 5;
    EXPECT_EQ(static_files::load((dir / "site").string(), limits)->file_count(), 5u);
    limits.max_total_bytes = 4;
    EXPECT_THROW(static_files::load((dir / "site").string(), limits), std::runtime_error);
}

TEST(static_files_load, an_empty_folder_serves_404_for_the_index) {
    temp_dir dir;
    std::filesystem::create_directory(dir / "site");
    const auto files = static_files::load((dir / "site").string());
    EXPECT_EQ(files->file_count(), 0u);
    EXPECT_EQ(files->serve(get("/")).status, 404u);
}

}  // namespace
}  // namespace voice_broker
