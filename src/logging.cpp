#include "voice_broker/logging.hpp"

#include "voice_broker/buffered_log_sink.hpp"
#include "voice_broker/http_message.hpp"
#include "voice_broker/time.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace voice_broker {

namespace {

class line_formatter final : public spdlog::formatter {
public:
    line_formatter(log_format style, std::vector<std::string> secrets) : style_(style), secrets_(std::move(secrets)) {
        std::erase_if(secrets_, [](const std::string& s) { return s.size() < 4; });
    }

    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        // Runs on the thread that logs (an I/O thread for the access log): no copy of the line
        // unless a secret has to be masked in it.
        std::string_view text(msg.payload.data(), msg.payload.size());
        std::string masked;
        for (const auto& secret : secrets_) {
            if (text.find(secret) == std::string_view::npos) continue;
            if (masked.empty()) masked.assign(text);
            static constexpr std::string_view mask = "[redacted]";
            // Continue after the mask: a secret that occurs inside the mask itself must not loop.
            for (auto pos = masked.find(secret); pos != std::string::npos; pos = masked.find(secret, pos + mask.size())) {
                masked.replace(pos, secret.size(), mask);
            }
            text = masked;
        }
        const auto when = format_iso8601(msg.time);
        const auto level = spdlog::level::to_string_view(msg.level);
        if (style_ == log_format::json) {
            nlohmann::json doc = {{"time", when}, {"level", std::string_view(level.data(), level.size())}, {"msg", text}};
            const auto line = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            dest.append(line.data(), line.data() + line.size());
        } else {
            dest.append(when.data(), when.data() + when.size());
            dest.push_back(' ');
            dest.append(level.data(), level.data() + level.size());
            dest.push_back(' ');
            dest.append(text.data(), text.data() + text.size());
        }
        dest.push_back('\n');
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<line_formatter>(style_, secrets_);
    }

private:
    log_format style_;
    std::vector<std::string> secrets_;
};

// What the destination behind buffered_log_sink gets: batches of finished lines, written as they are.
class verbatim_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<verbatim_formatter>(); }
};

// The sink of the logger setup_logging installed last, for log_lines_dropped() (the logger owns
// it, not this).
std::mutex current_sink_mutex;
std::weak_ptr<buffered_log_sink> current_sink;

}  // namespace

void setup_logging(log_format style, const std::string& level, std::vector<std::string> secrets,
                   std::shared_ptr<spdlog::sinks::sink> sink) {
    if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(std::make_unique<verbatim_formatter>());
    // Lines are written in batches by buffered_log_sink's own thread: a thread that logs (an I/O
    // thread writing the access log) never writes, flushes or waits for the output itself.
    auto buffered = std::make_shared<buffered_log_sink>(sink, buffered_log_sink::limits{});
    auto logger = std::make_shared<spdlog::logger>("voice-broker", buffered);
    logger->set_formatter(std::make_unique<line_formatter>(style, std::move(secrets)));
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::off);  // buffered_log_sink hands warnings over at once itself
    {
        std::lock_guard lock(current_sink_mutex);
        current_sink = buffered;
    }
    spdlog::set_default_logger(logger);
}

void flush_logs() {
    if (auto logger = spdlog::default_logger()) logger->flush();
}

std::uint64_t log_lines_dropped() {
    std::lock_guard lock(current_sink_mutex);
    const auto sink = current_sink.lock();
    return sink ? sink->dropped() : 0;
}

std::string redact_query(std::string_view target) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::string(target);
    std::string out(target.substr(0, q + 1));
    std::string_view rest = target.substr(q + 1);
    bool first = true;
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (!first) out += '&';
        first = false;
        const auto eq = pair.find('=');
        const auto key = pair.substr(0, eq);
        // The name as the server reads it: "%74icket" is "ticket" too.
        const auto name = percent_decode(key, true).value_or(std::string(key));
        if (name == "ticket" || name == "token" || name == "key") {
            out += key;
            out += "=[redacted]";
        } else {
            out += pair;
        }
    }
    return out;
}

}  // namespace voice_broker
