#include "io_errors.hpp"

#include <boost/beast/websocket/error.hpp>
#include <spdlog/spdlog.h>

namespace voice_broker {

bool is_ordinary_end(const error_code& ec) {
    return ec == net::error::operation_aborted || ec == beast::error::timeout || ec == net::error::eof ||
           ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == net::error::not_connected ||
           ec == net::ssl::error::stream_truncated || ec == beast::http::error::end_of_stream ||
           ec == net::error::bad_descriptor || ec == beast::websocket::error::closed;
}

void log_io_error(const error_code& ec, const char* what, std::uint64_t connection_id) {
    if (is_ordinary_end(ec)) {
        spdlog::debug("connection {}: {}: {}", connection_id, what, ec.message());
        return;
    }
    spdlog::info("connection {}: {}: {}", connection_id, what, ec.message());
}

}  // namespace voice_broker
