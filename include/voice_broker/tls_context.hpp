// tls_context: the server's TLS settings in one place: TLS 1.2 minimum, 1.3 on, modern AEAD
// cipher suites only, no compression or renegotiation.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace voice_broker {

// Throws std::runtime_error naming what is wrong (unreadable file, key does not match).
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const std::string& certificate_pem,
                                                                   const std::string& private_key_pem);

}  // namespace voice_broker
