// Unit tests for the response writer: the bytes of a status line and header block.
#include "voice_broker/response_head.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace voice_broker {
namespace {

std::string head_of(const http_response& res, std::size_t body, head_options o = {"Server: t\r\n", "rid1", true, 11}) {
    std::string out;
    write_response_head(out, res, body, o);
    return out;
}

TEST(response_head, status_line_fixed_lines_length_and_request_id) {
    http_response res;
    res.set_header("Content-Type", "application/json");
    const auto h = head_of(res, 42);
    EXPECT_EQ(h.rfind("HTTP/1.1 200 OK\r\nDate: ", 0), 0u) << h;
    EXPECT_NE(h.find("\r\nServer: t\r\nContent-Type: application/json\r\nContent-Length: 42\r\nX-Request-Id: rid1\r\n\r\n"),
              std::string::npos)
        << h;
    EXPECT_EQ(h.find("Connection:"), std::string::npos) << "HTTP/1.1 keep-alive is the default";
    EXPECT_EQ(h.substr(h.size() - 4), "\r\n\r\n");
}

TEST(response_head, date_is_an_imf_fixdate) {
    const auto line = std::string(date_line());
    EXPECT_TRUE(std::regex_match(line, std::regex("Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d\\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \\d{4} \\d\\d:\\d\\d:\\d\\d GMT\r\n")))
        << line;
}

TEST(response_head, prepared_lines_come_before_dynamic_ones) {
    http_response res;
    res.prepared_head = std::make_shared<const std::string>("Content-Type: text/html\r\nETag: \"x\"\r\n");
    res.set_header("X-Extra", "1");
    const auto h = head_of(res, 5);
    EXPECT_NE(h.find("Content-Type: text/html\r\nETag: \"x\"\r\nX-Extra: 1\r\nContent-Length: 5\r\n"), std::string::npos) << h;
    EXPECT_EQ(res.header("etag"), "\"x\"") << "header() sees prepared lines too";
    EXPECT_EQ(res.header("content-type"), "text/html");
    EXPECT_EQ(res.header("vary"), "");
}

TEST(response_head, no_length_on_304_and_204_but_on_head_answers) {
    http_response not_modified;
    not_modified.status = 304;
    EXPECT_EQ(head_of(not_modified, 100).find("Content-Length"), std::string::npos);
    EXPECT_EQ(head_of(not_modified, 100).rfind("HTTP/1.1 304 Not Modified\r\n", 0), 0u);
    http_response empty;
    empty.status = 204;
    EXPECT_EQ(head_of(empty, 0).find("Content-Length"), std::string::npos);
    http_response head_answer;
    head_answer.omit_body = true;
    EXPECT_NE(head_of(head_answer, 2137).find("Content-Length: 2137\r\n"), std::string::npos)
        << "HEAD says the length the GET would send";
}

TEST(response_head, connection_header_only_when_it_differs_from_the_default) {
    http_response res;
    EXPECT_NE(head_of(res, 0, {"", "r", false, 11}).find("Connection: close\r\n"), std::string::npos);
    EXPECT_NE(head_of(res, 0, {"", "r", true, 10}).find("Connection: keep-alive\r\n"), std::string::npos);
    EXPECT_NE(head_of(res, 0, {"", "r", false, 10}).find("Connection: close\r\n"), std::string::npos);
}

TEST(response_head, header_injection_is_dropped_not_written) {
    http_response res;
    res.set_header("Location", "https://x/\r\nSet-Cookie: evil=1");
    res.set_header("X-Ok", "fine");
    const auto h = head_of(res, 0);
    EXPECT_EQ(h.find("evil"), std::string::npos) << h;
    EXPECT_EQ(h.find("Location"), std::string::npos);
    EXPECT_NE(h.find("X-Ok: fine\r\n"), std::string::npos);
}

TEST(response_head, every_status_we_send_has_its_reason) {
    for (unsigned s : {101u, 200u, 204u, 304u, 308u, 400u, 401u, 403u, 404u, 405u, 409u, 413u, 415u, 426u, 429u, 431u,
                       500u, 502u, 503u, 504u}) {
        EXPECT_NE(reason_phrase(s), "Unknown") << s;
    }
    http_response odd;
    odd.status = 299;
    EXPECT_EQ(head_of(odd, 0).rfind("HTTP/1.1 299 Unknown\r\n", 0), 0u);
}

}  // namespace
}  // namespace voice_broker
