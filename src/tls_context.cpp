#include "voice_broker/tls_context.hpp"

#include <stdexcept>

namespace voice_broker {

namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_server_tls_context(const std::string& certificate_pem,
                                                      const std::string& private_key_pem) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression | ssl::context::single_dh_use);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // TLS 1.2: forward-secret AEAD suites only.  TLS 1.3 suites are all modern; keep the defaults.
    if (SSL_CTX_set_cipher_list(native, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
        throw std::runtime_error("cannot set the TLS cipher list");
    }
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
    boost::system::error_code ec;
    ctx->use_certificate_chain(boost::asio::buffer(certificate_pem), ec);
    if (ec) throw std::runtime_error("the TLS certificate is not a valid PEM chain: " + ec.message());
    ctx->use_private_key(boost::asio::buffer(private_key_pem), ssl::context::pem, ec);
    if (ec) throw std::runtime_error("the TLS private key is not a valid PEM key: " + ec.message());
    if (SSL_CTX_check_private_key(native) != 1) {
        throw std::runtime_error("the TLS private key does not match the certificate");
    }
    return ctx;
}

}  // namespace voice_broker
