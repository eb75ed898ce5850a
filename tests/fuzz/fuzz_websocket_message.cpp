// Fuzzes what a visitor's browser may send on the live channel (/api/session/ws): today only
// {"type":"heartbeat"} means anything, parsed in websocket_session::on_read.  That code is a
// private template of websocket_session.cpp, so this target runs the real server in-process
// (loopback, port 0, one I/O thread), joins, opens the WebSocket as a browser does, and sends
// each input as a client message; then a ping, and waits for the pong, so that the server has
// handled the message before the next input (a crash is pinned to the input that caused it).
//
// Input: byte 0 picks the framing (% 4: 0 one text frame, 1 one binary frame, 2 split in two
// fragments, 3 one frame then a close frame; bit 2 set: on a new connection, sent in the same
// segment as the upgrade request); the rest is the payload.  A payload that is not
// UTF-8 goes as binary (the server reads both the same way; Beast would close on invalid text,
// and a reconnect per input would slow the fuzzer down a hundredfold).
// Properties: the server never dies, and answers the ping within 5 s unless it closed the
// connection (a message over WS_MAX_MESSAGE_BYTES, invalid UTF-8, a close).
#include "fuzz_support.hpp"

#include "voice_broker/config.hpp"
#include "voice_broker/server.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory>

using namespace voice_broker;
using namespace voice_broker::fuzzing;

namespace {

struct live_server {
    scratch_dir dir;
    std::unique_ptr<server> srv;

    live_server() {
        // VB_FUZZ_LOG=debug shows the server's log (stdout) when a finding needs explaining.
        const char* level = std::getenv("VB_FUZZ_LOG");
        spdlog::set_level(level ? spdlog::level::from_str(level) : spdlog::level::err);
        dir.write("index.html", "<!doctype html>");
        config c;
        c.host = "127.0.0.1";
        c.port = 0;
        c.threads = 1;
        c.static_dir = dir.path().string();
        c.trusted_proxies.clear();
        c.session.max_queue_length = 1'000'000;  // every reconnect joins anew
        c.fair_use = {0, 0, 0, 0};               // from one address: no per-address limits
        srv = std::make_unique<server>(c);
        srv->start();
    }
};

live_server& the_server() {
    static live_server s;
    return s;
}

// A blocking loopback client with a receive deadline.
class client {
public:
    ~client() { disconnect(); }

    bool connected() const { return fd_ >= 0; }

    // `behind`: bytes sent in the same segment as the upgrade request (frames a client sends
    // before it has read the 101).
    void connect_and_open(std::string_view behind = {}) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(the_server().srv->port());
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        if (rc != 0 && errno == EINTR) {  // the connect goes on: wait until it is done
            pollfd p{fd_, POLLOUT, 0};
            while (::poll(&p, 1, 5000) < 0 && errno == EINTR) {
            }
            rc = 0;
        }
        if (rc != 0) violated("cannot connect to the server");
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

        stage_ = "joining";
        send_all("POST /api/session?action=join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
        const auto joined = read_http();
        const auto doc = nlohmann::json::parse(joined.substr(joined.find("\r\n\r\n") + 4), nullptr, false);
        if (doc.is_discarded() || !doc.contains("ticket")) violated("join failed", joined);
        stage_ = "opening the WebSocket";
        send_all("GET /api/session/ws?ticket=" + doc["ticket"].get<std::string>() +
                 " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 "Origin: http://127.0.0.1\r\n\r\n" + std::string(behind));
        const auto upgraded = read_http();
        if (upgraded.rfind("HTTP/1.1 101", 0) != 0) violated("the WebSocket upgrade failed", upgraded);
    }

    void disconnect() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        inbox_.clear();
    }

    void send_frame(std::uint8_t first_byte, std::string_view payload) { send_all(frame(first_byte, payload)); }
    void send_raw(std::string_view bytes) { send_all(bytes); }

    // One masked client frame.
    static std::string frame(std::uint8_t first_byte, std::string_view payload) {
        std::string frame(1, static_cast<char>(first_byte));
        const std::uint8_t masked = 0x80;
        if (payload.size() < 126) {
            frame += static_cast<char>(masked | payload.size());
        } else if (payload.size() < 65536) {
            frame += static_cast<char>(masked | 126);
            frame += static_cast<char>(payload.size() >> 8);
            frame += static_cast<char>(payload.size() & 0xff);
        } else {
            frame += static_cast<char>(masked | 127);
            for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>((payload.size() >> shift) & 0xff);
        }
        const char mask[4] = {0x37, 0x7a, 0x11, 0x5c};
        frame.append(mask, 4);
        for (std::size_t i = 0; i < payload.size(); ++i) frame += static_cast<char>(payload[i] ^ mask[i % 4]);
        return frame;
    }

    // Reads frames until a pong carrying `token`: true; false when the server closed.
    bool await_pong(std::string_view token) {
        stage_ = "waiting for the pong";
        for (;;) {
            while (inbox_.size() >= 2) {
                const auto b0 = static_cast<std::uint8_t>(inbox_[0]);
                std::size_t len = static_cast<std::uint8_t>(inbox_[1]) & 0x7f, head = 2;
                if (len == 126) {
                    if (inbox_.size() < 4) break;
                    len = (static_cast<std::uint8_t>(inbox_[2]) << 8) | static_cast<std::uint8_t>(inbox_[3]);
                    head = 4;
                } else if (len == 127) {
                    if (inbox_.size() < 10) break;
                    len = 0;
                    for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<std::uint8_t>(inbox_[i]);
                    head = 10;
                }
                if (inbox_.size() < head + len) break;
                const auto payload = inbox_.substr(head, len);
                inbox_.erase(0, head + len);
                const auto opcode = b0 & 0x0f;
                if (opcode == 0x8) return false;  // the server's close
                if (opcode == 0xA && payload == token) return true;
            }
            if (!receive()) return false;
        }
    }

private:
    void send_all(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // the server closed: the next read says so
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // One read, waiting at most 5 s: the server is always reading, so silence is a hang.
    // libFuzzer's -timeout alarm (SIGALRM) interrupts poll and recv: EINTR is retried.
    bool receive() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                violated("the server did not answer within 5 s", "while " + std::string(stage_) + "; unread: " + inbox_);
            }
            pollfd p{fd_, POLLIN, 0};
            const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
            if (ready < 0 && errno == EINTR) continue;
            if (ready != 1) continue;  // the deadline check above decides
            char buf[8192];
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            inbox_.append(buf, static_cast<std::size_t>(n));
            return true;
        }
    }

    std::string read_http() {
        while (inbox_.find("\r\n\r\n") == std::string::npos) {
            if (!receive()) violated("the server closed during the HTTP exchange", inbox_);
        }
        auto head_end = inbox_.find("\r\n\r\n") + 4;
        std::size_t length = 0;
        if (const auto at = inbox_.find("Content-Length: "); at != std::string::npos && at < head_end) {
            length = std::stoul(inbox_.substr(at + 16));
        }
        while (inbox_.size() < head_end + length) {
            if (!receive()) violated("the server closed during the HTTP body", inbox_);
        }
        auto message = inbox_.substr(0, head_end + length);
        inbox_.erase(0, head_end + length);
        return message;
    }

    int fd_ = -1;
    std::string inbox_;
    const char* stage_ = "";
};

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 9;
        if (n == 9 || i + n >= s.size()) return false;
        std::uint32_t cp = n == 0 ? c : n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc >> 6) != 0x2) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        const std::uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n + 1;
    }
    return true;
}

client& the_client() {
    static client c;
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    the_server();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    auto& c = the_client();
    const auto payload = as_text(data + 1, size - 1);
    const std::uint8_t opcode = data[0] % 4 == 1 || !valid_utf8(payload) ? 0x2 : 0x1;
    std::string frames;
    switch (data[0] % 4) {
    case 2:
        frames = client::frame(opcode, payload.substr(0, payload.size() / 2)) + client::frame(0x80, payload.substr(payload.size() / 2));
        break;
    case 3:
        frames = client::frame(0x80 | opcode, payload) + client::frame(0x88, "\x03\xe8");  // then a close, 1000
        break;
    default:
        frames = client::frame(0x80 | opcode, payload);
        break;
    }
    if (data[0] & 4) {
        // On a new connection, in the same segment as the upgrade request (a client that does
        // not wait for the 101): the server must read them after its handshake.
        c.disconnect();
        c.connect_and_open(frames);
    } else {
        if (!c.connected()) c.connect_and_open();
        c.send_raw(frames);
    }
    static std::uint64_t pings = 0;
    const auto token = "ping-" + std::to_string(++pings);
    c.send_frame(0x89, token);
    if (!c.await_pong(token)) c.disconnect();  // it closed: the next input opens a new channel
    return 0;
}
