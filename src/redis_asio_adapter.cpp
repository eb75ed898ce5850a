#include "redis_asio_adapter.hpp"

#include <hiredis/async.h>

#include <fcntl.h>

namespace voice_broker {

namespace net = boost::asio;

bool redis_asio_adapter::attach(redisAsyncContext* context, const net::any_io_executor& executor) {
    if (context == nullptr || context->ev.data != nullptr) return false;
    const int fd = context->c.fd;
    // hiredis opens the socket without close-on-exec; a child process must not inherit it.
    ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);

    std::shared_ptr<redis_asio_adapter> adapter(new redis_asio_adapter(context, executor));
    boost::system::error_code ec;
    adapter->descriptor_.assign(fd, ec);
    if (ec) return false;
    adapter->owned_by_context_ = adapter;

    context->ev.data = adapter.get();
    context->ev.addRead = &redis_asio_adapter::add_read;
    context->ev.delRead = &redis_asio_adapter::del_read;
    context->ev.addWrite = &redis_asio_adapter::add_write;
    context->ev.delWrite = &redis_asio_adapter::del_write;
    context->ev.cleanup = &redis_asio_adapter::cleanup;
    return true;
}

redis_asio_adapter::redis_asio_adapter(redisAsyncContext* context, const net::any_io_executor& executor)
    : context_(context), descriptor_(executor) {}

redis_asio_adapter::~redis_asio_adapter() {
    // The descriptor belongs to hiredis: give it back instead of closing it.
    if (descriptor_.is_open()) descriptor_.release();
}

void redis_asio_adapter::add_read(void* privdata) {
    auto* self = static_cast<redis_asio_adapter*>(privdata);
    self->want_read_ = true;
    self->wait_readable();
}

void redis_asio_adapter::del_read(void* privdata) { static_cast<redis_asio_adapter*>(privdata)->want_read_ = false; }

void redis_asio_adapter::add_write(void* privdata) {
    auto* self = static_cast<redis_asio_adapter*>(privdata);
    self->want_write_ = true;
    self->wait_writable();
}

void redis_asio_adapter::del_write(void* privdata) {
    static_cast<redis_asio_adapter*>(privdata)->want_write_ = false;
}

void redis_asio_adapter::cleanup(void* privdata) {
    auto* self = static_cast<redis_asio_adapter*>(privdata);
    // hiredis frees the context (and closes the socket) right after this returns.
    self->context_ = nullptr;
    self->want_read_ = false;
    self->want_write_ = false;
    if (self->descriptor_.is_open()) self->descriptor_.release();  // outstanding waits end with operation_aborted
    // Keep the adapter alive to the end of this function; pending handlers hold their own reference.
    const auto keep = std::move(self->owned_by_context_);
}

void redis_asio_adapter::wait_readable() {
    if (read_waiting_ || context_ == nullptr) return;
    read_waiting_ = true;
    descriptor_.async_wait(net::posix::stream_descriptor::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
}

void redis_asio_adapter::wait_writable() {
    if (write_waiting_ || context_ == nullptr) return;
    write_waiting_ = true;
    descriptor_.async_wait(net::posix::stream_descriptor::wait_write,
                           [self = shared_from_this()](const boost::system::error_code& ec) { self->on_writable(ec); });
}

void redis_asio_adapter::on_readable(const boost::system::error_code& ec) {
    read_waiting_ = false;
    if (ec == net::error::operation_aborted || context_ == nullptr || !want_read_) return;
    // Any other error is for hiredis to find out when it reads.  It may free the context (and
    // call cleanup) inside this call.
    redisAsyncHandleRead(context_);
    if (context_ != nullptr && want_read_) wait_readable();
}

void redis_asio_adapter::on_writable(const boost::system::error_code& ec) {
    write_waiting_ = false;
    if (ec == net::error::operation_aborted || context_ == nullptr || !want_write_) return;
    redisAsyncHandleWrite(context_);
    if (context_ != nullptr && want_write_) wait_writable();
}

}  // namespace voice_broker
