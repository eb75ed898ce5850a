// Namespace aliases for Asio and Beast, in one place.  Included only by the translation units
// that do I/O; the domain core (session_broker, router, config) never includes it.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace voice_broker {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

// Every connection runs on one I/O thread's own io_context, so its handlers never race and need
// no strand: the executor is the context's own, a concrete type (no type erasure per operation).
using io_executor = net::io_context::executor_type;
using tcp_socket = net::basic_stream_socket<tcp, io_executor>;
}  // namespace voice_broker
