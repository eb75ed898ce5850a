// Self-signed certificates, made with OpenSSL: for TLS_SELF_SIGNED and for the tests (which
// never commit a key).
#pragma once

#include <string>
#include <vector>

namespace voice_broker {

struct pem_pair {
    std::string certificate;
    std::string private_key;
};

// An ECDSA P-256 certificate valid for `days`, with the given names as subjectAltName
// (IP addresses become IP entries, the rest DNS).  Throws std::runtime_error on failure.
pem_pair make_self_signed_certificate(const std::vector<std::string>& names, int days = 30);

}  // namespace voice_broker
