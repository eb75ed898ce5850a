// tls_detector: one port for TLS and plain HTTP.  It peeks at a new connection's first byte (a TLS
// handshake record starts with 0x16) without consuming it, then starts the TLS session, or a
// plain one that only redirects to https.  A client that says nothing within
// TLS_HANDSHAKE_TIMEOUT_SECONDS is dropped.
#pragma once

#include "session_entry_points.hpp"

#include <memory>

namespace voice_broker {

void detect_tls(tcp_socket socket, std::shared_ptr<ssl::context> tls, std::shared_ptr<server_context> ctx,
                counted_connection count);

}  // namespace voice_broker
