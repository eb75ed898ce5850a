// The entry points between the I/O translation units, so that each heavy Beast template is
// compiled once: the server starts HTTP sessions, an HTTP session hands an upgraded
// connection over to a WebSocket session.  Each session reads its connection from the first
// byte (TLS detection only peeks).
#pragma once

#include "counted_connection.hpp"
#include "server_context.hpp"
#include "tls_socket.hpp"
#include "voice_broker/net.hpp"

#include <memory>
#include <string>

namespace voice_broker {

// `plain_on_tls_port`: the connection spoke plain HTTP where TLS is served; it only gets a redirect.
void run_plain_http(tcp_socket socket, std::shared_ptr<server_context> ctx, counted_connection count, bool plain_on_tls_port);
void run_tls_http(tls_socket stream, std::shared_ptr<server_context> ctx, counted_connection count);

// The live channel, after the router accepted a WebSocket upgrade for a visitor.
struct websocket_handover {
    http::request<http::string_body> upgrade;
    std::string ticket;  // the visitor's; for the console's channel, its login id (empty: the header token)
    std::string client_address;
    std::string request_id;
    // Set when bytes arrived behind the request (frames sent at once): the request's bytes and
    // them, for the handshake to read first.
    std::string raw_bytes;
    bool admin = false;  // the operator's console, not a visitor
};
void run_websocket(tcp_socket socket, websocket_handover handover, std::shared_ptr<server_context> ctx, counted_connection count);
void run_websocket(tls_socket stream, websocket_handover handover, std::shared_ptr<server_context> ctx, counted_connection count);

}  // namespace voice_broker
