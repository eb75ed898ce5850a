// request_framing: the RFC 9112 rules on a request head, from the facts the HTTP session gathers
// (parsed_head.hpp).  The transfer-encoding-mismatch finding (tests/fuzz/findings) in facts: a
// Transfer-Encoding that ends in chunked on paper but that the parser did not read as chunked.
#include "voice_broker/request_framing.hpp"

#include <gtest/gtest.h>

using namespace voice_broker;

namespace {

request_head_facts with_transfer_encoding(std::string value, std::size_t fields, bool read_as_chunked) {
    request_head_facts facts;
    facts.host_fields = 1;
    facts.transfer_encoding = std::move(value);
    facts.transfer_encoding_fields = fields;
    facts.read_as_chunked = read_as_chunked;
    return facts;
}

}  // namespace

TEST(request_framing, a_plain_head_passes) {
    request_head_facts facts;
    facts.host_fields = 1;
    EXPECT_EQ(framing_problem(facts), std::nullopt);
    facts.has_content_length = true;
    EXPECT_EQ(framing_problem(facts), std::nullopt);
}

TEST(request_framing, host_rules) {
    request_head_facts facts;
    EXPECT_EQ(framing_problem(facts), "no Host header");
    facts.version = 10;
    EXPECT_EQ(framing_problem(facts), std::nullopt);  // HTTP/1.0 may leave it out
    facts.host_fields = 2;
    EXPECT_EQ(framing_problem(facts), "more than one Host header");
}

// The fuzz finding content-length-list: "Content-Length: 0000000,000000" was let through.
TEST(request_framing, a_content_length_that_is_not_one_number_is_refused) {
    request_head_facts facts;
    facts.host_fields = 1;
    facts.has_content_length = true;
    facts.content_length_plain = false;
    EXPECT_EQ(framing_problem(facts), "a Content-Length that is not one decimal number");
}

TEST(request_framing, chunked_read_as_chunked_passes) {
    EXPECT_EQ(framing_problem(with_transfer_encoding("chunked", 1, true)), std::nullopt);
    EXPECT_EQ(framing_problem(with_transfer_encoding("gzip, chunked", 1, true)), std::nullopt);
    EXPECT_EQ(framing_problem(with_transfer_encoding("gzip, chunked", 2, true)), std::nullopt);  // two fields, joined
    EXPECT_EQ(framing_problem(with_transfer_encoding("CHUNKED", 1, true)), std::nullopt);
}

TEST(request_framing, a_last_coding_other_than_chunked_is_refused) {
    EXPECT_EQ(framing_problem(with_transfer_encoding("gzip", 1, false)), "a Transfer-Encoding that does not end in chunked");
    EXPECT_EQ(framing_problem(with_transfer_encoding("chunked, gzip", 1, false)), "a Transfer-Encoding that does not end in chunked");
    // transfer-encoding-mismatch-2: an empty field, then "gzip": the joined list ends in gzip.
    EXPECT_EQ(framing_problem(with_transfer_encoding(", gzip", 2, false)), "a Transfer-Encoding that does not end in chunked");
}

// The finding: the list ends in chunked, but the parser stopped reading it early, so it reads no
// body and the body's bytes would be served as the next request.
TEST(request_framing, chunked_the_parser_did_not_read_is_refused) {
    const std::string_view cannot_read = "a Transfer-Encoding this server cannot read";
    EXPECT_EQ(framing_problem(with_transfer_encoding("gzip;q=1, chunked", 1, false)), cannot_read);  // -1
    EXPECT_EQ(framing_problem(with_transfer_encoding("gzi\xe1p, chunked", 1, false)), cannot_read);  // -3
    EXPECT_EQ(framing_problem(with_transfer_encoding("chunked", 1, false)), cannot_read);
}

TEST(request_framing, a_transfer_encoding_naming_no_coding_is_refused) {
    const std::string_view cannot_read = "a Transfer-Encoding this server cannot read";
    EXPECT_EQ(framing_problem(with_transfer_encoding("", 1, false)), cannot_read);
    EXPECT_EQ(framing_problem(with_transfer_encoding(" , ", 2, false)), cannot_read);
    // Even were the parser to claim chunked, an empty list names no coding.
    EXPECT_EQ(framing_problem(with_transfer_encoding("", 1, true)), cannot_read);
}

TEST(request_framing, transfer_encoding_with_content_length_is_refused) {
    auto facts = with_transfer_encoding("chunked", 1, true);
    facts.has_content_length = true;
    EXPECT_EQ(framing_problem(facts), "both Transfer-Encoding and Content-Length");
}

TEST(request_framing, origin_form_of_an_absolute_target) {
    EXPECT_EQ(origin_form("http://host:80/a?b"), "/a?b");
    EXPECT_EQ(origin_form("https://host"), "/");
    EXPECT_EQ(origin_form("/plain"), "/plain");
}
