// Unit tests for token_usage, price_table and usd_amount: the usage of a response.done in exact
// dollars.  The usage objects are the fake OpenAI's (tests/fakes/fake-openai, DEFAULT_USAGE and
// TRANSCRIPTION_USAGE), which follow RealtimeResponse.usage of OpenAI's spec.
#include "voice_broker/price_table.hpp"
#include "voice_broker/token_usage.hpp"
#include "voice_broker/usd_amount.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace voice_broker {
namespace {

// The fake's DEFAULT_USAGE as response.done carries it: 120 text (64 cached) + 40 audio in,
// 12 text + 48 audio out.
const auto fake_default_usage = nlohmann::json::parse(R"({
  "total_tokens": 220, "input_tokens": 160, "output_tokens": 60,
  "input_token_details": {"text_tokens": 120, "audio_tokens": 40, "image_tokens": 0, "cached_tokens": 64,
                          "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0}},
  "output_token_details": {"text_tokens": 12, "audio_tokens": 48}})");

TEST(token_usage, splits_cached_from_uncached_tokens) {
    const auto u = token_usage::from_response_usage(fake_default_usage);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->text_input, 56u);
    EXPECT_EQ(u->cached_text_input, 64u);
    EXPECT_EQ(u->audio_input, 40u);
    EXPECT_EQ(u->cached_audio_input, 0u);
    EXPECT_EQ(u->text_output, 12u);
    EXPECT_EQ(u->audio_output, 48u);
    EXPECT_EQ(u->input_total(), 160u);
    EXPECT_EQ(u->output_total(), 60u);
}

TEST(token_usage, refuses_what_is_not_a_usage_object) {
    EXPECT_FALSE(token_usage::from_response_usage(nullptr));
    EXPECT_FALSE(token_usage::from_response_usage("usage"));
    EXPECT_FALSE(token_usage::from_response_usage({{"input_tokens", -1}}));
    EXPECT_FALSE(token_usage::from_response_usage({{"input_tokens", "12"}}));
    const auto empty = token_usage::from_response_usage(nlohmann::json::object());
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
}

TEST(token_usage, tokens_the_details_do_not_explain_count_as_audio) {
    // 200 input tokens, but the details only explain 100: the rest is priced as the dearest kind.
    const auto u = token_usage::from_response_usage(
        {{"input_tokens", 200}, {"output_tokens", 10}, {"input_token_details", {{"text_tokens", 100}}}});
    ASSERT_TRUE(u);
    EXPECT_EQ(u->text_input, 100u);
    EXPECT_EQ(u->audio_input, 100u);
    EXPECT_EQ(u->audio_output, 10u) << "output without details counts as audio";
}

TEST(token_usage, cached_tokens_never_exceed_their_kind) {
    const auto u = token_usage::from_response_usage(
        {{"input_tokens", 10},
         {"input_token_details",
          {{"text_tokens", 10}, {"cached_tokens", 50}, {"cached_tokens_details", {{"text_tokens", 50}}}}}});
    ASSERT_TRUE(u);
    EXPECT_EQ(u->cached_text_input, 10u);
    EXPECT_EQ(u->text_input, 0u);
}

TEST(token_usage, cached_tokens_without_the_split_count_as_text) {
    const auto u = token_usage::from_response_usage(
        {{"input_tokens", 100}, {"input_token_details", {{"text_tokens", 60}, {"audio_tokens", 40}, {"cached_tokens", 70}}}});
    ASSERT_TRUE(u);
    EXPECT_EQ(u->cached_text_input, 60u);
    EXPECT_EQ(u->cached_audio_input, 10u);
    EXPECT_EQ(u->audio_input, 30u);
}

TEST(token_usage, reads_the_transcription_usage) {
    const auto u = token_usage::from_transcription_usage(nlohmann::json::parse(
        R"({"type":"tokens","total_tokens":24,"input_tokens":16,"input_token_details":{"text_tokens":0,"audio_tokens":16},"output_tokens":8})"));
    ASSERT_TRUE(u);
    EXPECT_EQ(u->audio_input, 16u);
    EXPECT_EQ(u->text_output, 8u);
    EXPECT_FALSE(token_usage::from_transcription_usage({{"type", "duration"}, {"seconds", 3}}));
}

TEST(price_table, prices_the_fakes_default_usage_to_the_picodollar) {
    const auto table = price_table::defaults();
    const auto* realtime = table.find("gpt-realtime");
    ASSERT_NE(realtime, nullptr);
    const auto u = *token_usage::from_response_usage(fake_default_usage);
    // 56 x $4 + 64 x $0.40 + 40 x $32 + 12 x $16 + 48 x $64, per 1M tokens.
    EXPECT_EQ(realtime->cost(u).picodollars, 56LL * 4'000'000 + 64LL * 400'000 + 40LL * 32'000'000 + 12LL * 16'000'000 +
                                                 48LL * 64'000'000);
    EXPECT_EQ(realtime->cost(u).picodollars, 4'793'600'000LL);  // $0.0047936
    EXPECT_EQ(format_usd(realtime->cost(u), 7), "$0.0047936");

    const auto* mini = table.find("gpt-realtime-mini");
    ASSERT_NE(mini, nullptr);
    // 56 x $0.60 + 64 x $0.06 + 40 x $10 + 12 x $2.40 + 48 x $20
    EXPECT_EQ(mini->cost(u).picodollars, 56LL * 600'000 + 64LL * 60'000 + 40LL * 10'000'000 + 12LL * 2'400'000 + 48LL * 20'000'000);
}

TEST(price_table, sums_of_many_responses_stay_exact) {
    const auto table = price_table::defaults();
    const auto* realtime = table.find("gpt-realtime");
    const auto u = *token_usage::from_response_usage(fake_default_usage);
    usd_amount total;
    token_usage all;
    for (int i = 0; i < 1000; ++i) {
        total += realtime->cost(u);
        all += u;
    }
    EXPECT_EQ(total.picodollars, 1000 * 4'793'600'000LL);
    EXPECT_EQ(realtime->cost(all), total) << "pricing the sum equals summing the prices";
    EXPECT_EQ(format_usd(total, 4), "$4.7936");
}

TEST(price_table, finds_dated_snapshots_under_their_base_name) {
    const auto table = price_table::defaults();
    EXPECT_EQ(table.find("gpt-realtime-2025-08-28"), table.find("gpt-realtime"));
    EXPECT_EQ(table.find("gpt-realtime-mini-2025-10-06"), table.find("gpt-realtime-mini"));
    EXPECT_EQ(table.find("gpt-realtime-2025-8-28"), nullptr);
    EXPECT_EQ(table.find("gpt-4o-realtime-preview"), nullptr);
}

TEST(price_table, the_config_section_overrides_and_adds_models) {
    auto table = price_table::defaults();
    const auto section = nlohmann::json::parse(R"({
      "$comment": "USD per 1M tokens",
      "gpt-realtime": {"text_input": 5, "cached_text_input": 0.5, "text_output": 20, "audio_input": 40,
                       "cached_audio_input": 2.5, "audio_output": 80},
      "my-model": {"text_input": 0.000001, "cached_text_input": 0, "text_output": 0, "audio_input": 1,
                   "cached_audio_input": 0, "audio_output": 0, "image_input": 2}})");
    ASSERT_EQ(table.merge(section), std::nullopt);
    EXPECT_EQ(table.find("gpt-realtime")->audio_input, 40'000'000);
    EXPECT_EQ(table.find("gpt-realtime")->image_input, 40'000'000) << "no image price: priced as audio input";
    EXPECT_EQ(table.find("my-model")->text_input, 1);
    EXPECT_EQ(table.find("my-model")->image_input, 2'000'000);
    EXPECT_EQ(table.find("my-model")->cached_image_input, 2'000'000);
    EXPECT_NE(table.find("gpt-realtime-mini"), nullptr) << "models not named keep their built-in prices";
}

TEST(price_table, a_bad_section_is_refused_with_the_key_named_and_changes_nothing) {
    auto table = price_table::defaults();
    const auto before = table;
    auto err = table.merge(nlohmann::json::parse(R"({"gpt-realtime": {"text_input": 4}})"));
    ASSERT_TRUE(err);
    EXPECT_NE(err->find("PRICES.gpt-realtime needs cached_text_input"), std::string::npos) << *err;
    err = table.merge(nlohmann::json::parse(R"({"gpt-realtime": {"text_inptu": 4}})"));
    ASSERT_TRUE(err);
    EXPECT_NE(err->find("unknown key text_inptu"), std::string::npos) << *err;
    err = table.merge(nlohmann::json::parse(R"({"m": {"text_input": -1}})"));
    ASSERT_TRUE(err);
    EXPECT_NE(err->find("PRICES.m.text_input"), std::string::npos) << *err;
    err = table.merge(nlohmann::json::parse(R"({"m": {"text_input": 0.0000001}})"));
    ASSERT_TRUE(err) << "more than 6 decimals cannot be exact";
    err = table.merge(nlohmann::json::parse(R"({"m": "cheap"})"));
    ASSERT_TRUE(err);
    EXPECT_EQ(table, before);
}

TEST(usd_amount, formats_rounded_dollars) {
    EXPECT_EQ(format_usd(usd_amount::from_dollars(1.5), 2), "$1.50");
    EXPECT_EQ(format_usd(usd_amount{4'999'999'999}, 2), "$0.00");
    EXPECT_EQ(format_usd(usd_amount{5'000'000'000}, 2), "$0.01");
    EXPECT_EQ(format_usd(usd_amount{-1'500'000'000'000}, 1), "-$1.5");
    EXPECT_EQ(format_usd(usd_amount{123}, 12), "$0.000000000123");
    EXPECT_EQ(format_usd(usd_amount::from_dollars(12.34), 0), "$12");
    EXPECT_EQ(usd_amount::from_dollars(0.06).picodollars, 60'000'000'000LL);
}

}  // namespace
}  // namespace voice_broker
