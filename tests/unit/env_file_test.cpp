// Unit tests for parse_env_file: the .env dialect people actually write.
#include "voice_broker/env_file.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace voice_broker {
namespace {

using vars = std::map<std::string, std::string>;

TEST(env_file, plain_lines_comments_and_blank_lines) {
    EXPECT_EQ(parse_env_file("# a comment\n\nPORT=3000\n  # indented comment\nHOST=0.0.0.0\n"),
              (vars{{"PORT", "3000"}, {"HOST", "0.0.0.0"}}));
}

TEST(env_file, export_prefix_and_spaces_around_the_equals_sign) {
    EXPECT_EQ(parse_env_file("export PORT=3000\n  MAX_QUEUE_LENGTH = 7  \n"),
              (vars{{"PORT", "3000"}, {"MAX_QUEUE_LENGTH", "7"}}));
}

TEST(env_file, quotes_are_removed_and_keep_what_is_inside) {
    EXPECT_EQ(parse_env_file("A=\"two words\"\nB='single # not a comment'\nC=\"\"\n"),
              (vars{{"A", "two words"}, {"B", "single # not a comment"}, {"C", ""}}));
}

TEST(env_file, an_unquoted_value_may_carry_a_trailing_comment) {
    EXPECT_EQ(parse_env_file("PORT=3000 # the default\nURL=http://x/#anchor\n"),
              (vars{{"PORT", "3000"}, {"URL", "http://x/#anchor"}}));
}

TEST(env_file, windows_line_endings_and_a_missing_final_newline) {
    EXPECT_EQ(parse_env_file("A=1\r\nB=2"), (vars{{"A", "1"}, {"B", "2"}}));
}

TEST(env_file, lines_without_a_key_or_an_equals_sign_are_skipped) {
    EXPECT_EQ(parse_env_file("JUST_A_WORD\n=value\nOK=1\n"), (vars{{"OK", "1"}}));
}

TEST(env_file, the_value_keeps_later_equals_signs_and_the_last_line_wins) {
    EXPECT_EQ(parse_env_file("TOKEN=a=b==\nTOKEN=c=d\n"), (vars{{"TOKEN", "c=d"}}));
}

TEST(env_file, an_empty_value_is_kept_as_empty) {
    EXPECT_EQ(parse_env_file("OPENAI_API_KEY=\n"), (vars{{"OPENAI_API_KEY", ""}}));
}

}  // namespace
}  // namespace voice_broker
