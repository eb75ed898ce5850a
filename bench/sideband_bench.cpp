// sideband_bench: what one sideband connection costs voice-broker, measured in-process with the
// real sideband_client (and, with --monitor, each call's session_calls deciding on every event).
// The anchor, sideband-anchor.mjs, does the same with Node's `ws` client; bench/sideband.sh runs
// both against the same fake OpenAI and prints the ratio.
//
//   sideband_bench --base https://127.0.0.1:PORT --ca cert.pem --key KEY --ids ids.txt
//                  [--rounds R] [--monitor]
//
// 1. RSS before any connection; 2. open one sideband per id and wait for all; RSS again: the
// difference / N is the memory per idle connection; 3. R rounds: send response.create on every
// connection and wait for each one's response.done; CPU time (utime+stime, getrusage) over the
// rounds / events received is the CPU per event.  Prints one JSON line.
#include "voice_broker/session_calls.hpp"
#include "voice_broker/sideband_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace net = boost::asio;
using namespace voice_broker;

namespace {

long rss_kb() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct options {
    std::string base;
    std::string ca;
    std::string key = "test-openai-key";
    std::string ids_file;
    int rounds = 5;
    bool monitor = false;
};

struct call_state {
    std::string id;
    std::shared_ptr<sideband_connection> connection;
    std::unique_ptr<session_calls> calls;  // --monitor
    bool open = false;
    int done_this_round = 0;
};

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i + 1 < argc || (i < argc && std::string(argv[i]) == "--monitor"); ++i) {
        const std::string a = argv[i];
        if (a == "--monitor") {
            o.monitor = true;
            continue;
        }
        const std::string v = argv[++i];
        if (a == "--base") o.base = v;
        else if (a == "--ca") o.ca = v;
        else if (a == "--key") o.key = v;
        else if (a == "--ids") o.ids_file = v;
        else if (a == "--rounds") o.rounds = std::stoi(v);
    }
    spdlog::set_level(spdlog::level::warn);
    std::vector<std::string> ids;
    {
        std::ifstream in(o.ids_file);
        for (std::string line; std::getline(in, line);) {
            if (!line.empty()) ids.push_back(line);
        }
    }
    if (o.base.empty() || ids.empty()) {
        std::cerr << "usage: sideband_bench --base URL --ids FILE [--ca PEM] [--key KEY] [--rounds R] [--monitor]\n";
        return 2;
    }

    net::io_context io;
    auto keep_running = net::make_work_guard(io);  // run_one_for must wait for work, not stop the context
    sideband_settings s;
    s.base_url = o.base;
    s.api_key = o.key;
    s.ca_bundle = o.ca;
    s.connect_timeout = std::chrono::seconds{30};
    auto made = sideband_client::create(io, s);
    if (auto* err = std::get_if<std::string>(&made)) {
        std::cerr << *err << "\n";
        return 1;
    }
    auto client = std::get<std::shared_ptr<sideband_client>>(made);

    call_monitor_settings ms;
    ms.instructions = "You are a friendly voice assistant. Keep answers short.";
    ms.wrap_up_before = std::chrono::seconds{0};
    ms.silence_timeout = std::chrono::seconds{30};
    const auto far = std::chrono::steady_clock::now() + std::chrono::hours{1};
    const auto prices = price_table::defaults();

    const long rss_base = rss_kb();

    std::vector<call_state> calls(ids.size());
    std::size_t open = 0, ended = 0, events = 0;
    bool failed = false;
    const auto executor = io.get_executor();
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto& c = calls[i];
        c.id = ids[i];
        if (o.monitor) {
            c.calls = std::make_unique<session_calls>(ms, prices, far, call_monitor::language::en);
            c.calls->add_call(c.id, std::chrono::steady_clock::now());
        }
        sideband_handlers h;
        h.on_open = [&, i] {
            calls[i].open = true;
            ++open;
            if (calls[i].calls) {
                calls[i].calls->sideband_opened(calls[i].id, std::chrono::steady_clock::now());
                for (auto& a : calls[i].calls->take_actions()) {
                    if (a.action.what == monitor_action::kind::send) calls[i].connection->send(a.action.event);
                }
            }
        };
        h.on_event = [&, i](nlohmann::json event) {
            ++events;
            auto& call = calls[i];
            if (call.calls) {
                call.calls->on_event(call.id, event, std::chrono::steady_clock::now());
                for (auto& a : call.calls->take_actions()) {
                    if (a.action.what == monitor_action::kind::send) call.connection->send(a.action.event);
                }
            }
            if (event.value("type", "") == "response.done") ++call.done_this_round;
        };
        h.on_end = [&](sideband_end_info why) {
            ++ended;
            if (why.what != sideband_end_info::kind::closed || why.close_code != 1000) {
                if (!failed) std::cerr << "a sideband ended: " << why.detail << " (" << why.http_status << "/" << why.close_code << ")\n";
                failed = true;
            }
        };
        c.connection = client->open(c.id, executor, std::move(h));
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    while (open + ended < calls.size() && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds{100});
    if (open < calls.size()) {
        std::cerr << "only " << open << " of " << calls.size() << " sidebands opened\n";
        return 1;
    }
    // Let the syncs (--monitor) and any first events settle, then measure the idle cost.
    const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds{1};
    while (std::chrono::steady_clock::now() < settle) io.run_one_for(std::chrono::milliseconds{50});
    const long rss_open = rss_kb();

    // Events: every connection asks for one response per round and waits for it.
    events = 0;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < o.rounds && !failed; ++r) {
        for (auto& c : calls) {
            c.done_this_round = 0;
            c.connection->send(R"({"type":"response.create"})");
        }
        const auto round_deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
        auto all_done = [&] {
            for (const auto& c : calls) {
                if (c.done_this_round < 1) return false;
            }
            return true;
        };
        while (!all_done() && !failed && std::chrono::steady_clock::now() < round_deadline) {
            io.run_one_for(std::chrono::milliseconds{100});
        }
    }
    const double cpu = cpu_seconds() - cpu0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const long rss_busy = rss_kb();

    for (auto& c : calls) c.connection->close();
    const auto close_deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (ended < calls.size() && std::chrono::steady_clock::now() < close_deadline) io.run_one_for(std::chrono::milliseconds{100});

    const auto n = static_cast<double>(calls.size());
    nlohmann::json out = {{"impl", o.monitor ? "voice-broker+monitor" : "voice-broker"},
                          {"connections", calls.size()},
                          {"rss_base_kb", rss_base},
                          {"rss_open_kb", rss_open},
                          {"rss_busy_kb", rss_busy},
                          {"kb_per_connection", static_cast<double>(rss_open - rss_base) / n},
                          {"events", events},
                          {"cpu_s", cpu},
                          {"wall_s", wall},
                          {"us_per_event", events ? cpu * 1e6 / static_cast<double>(events) : 0.0},
                          {"ok", !failed}};
    std::cout << out.dump() << std::endl;
    return failed ? 1 : 0;
}
