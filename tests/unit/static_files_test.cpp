// Unit tests for static_files: the in-memory table of the page, conditional and compressed
// answers, and above all that nothing outside the root (or hidden inside it) is ever served.
#include "voice_broker/static_files.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>
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

http_request get(std::string path, std::vector<std::pair<std::string, std::string>> headers = {}) {
    http_request req;
    req.method = "GET";
    req.target = path;
    req.path = std::move(path);
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

TEST_F(static_files_test, other_files_may_be_cached) {
    const auto res = files->serve(get("/logo.png"));
    EXPECT_EQ(res.status, 200u);
    EXPECT_EQ(res.header("Content-Type"), "image/png");
    EXPECT_EQ(res.header("Cache-Control"), "public, max-age=3600");
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
