// Randomness from OpenSSL's CSPRNG, the one source of it in the program.
#pragma once

#include <cstddef>
#include <string>

namespace voice_broker {

// Fills `out` with `n` random bytes; throws std::runtime_error if the generator fails.
void random_bytes(unsigned char* out, std::size_t n);

// `bytes` random bytes as 2 * bytes lower-case hex digits; for seeds and other non-secret ids.
std::string random_hex(std::size_t bytes);

}  // namespace voice_broker
