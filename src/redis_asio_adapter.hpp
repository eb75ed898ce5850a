// redis_asio_adapter: hiredis's event-loop hooks (addRead, delRead, addWrite, delWrite, cleanup)
// implemented on an Asio executor, the way hiredis's own libuv/libevent adapters do it for their
// loops.  The socket stays hiredis's: it is watched with stream_descriptor::async_wait and
// released, never closed, when hiredis cleans up (hiredis closes it itself).
//
// Owned by the hiredis context it is attached to (through ev.data) until cleanup; a wait still
// pending at cleanup keeps it alive until its handler has run (and then does nothing).  Every
// handler runs on the executor given to attach(), so it never races the context's owner.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <memory>

struct redisAsyncContext;

namespace voice_broker {

class redis_asio_adapter : public std::enable_shared_from_this<redis_asio_adapter> {
public:
    // Installs the hooks on `context` (before redisAsyncSetConnectCallback, which already asks to
    // write).  False when the socket cannot be watched: then free the context.
    static bool attach(redisAsyncContext* context, const boost::asio::any_io_executor& executor);

    ~redis_asio_adapter();
    redis_asio_adapter(const redis_asio_adapter&) = delete;
    redis_asio_adapter& operator=(const redis_asio_adapter&) = delete;

private:
    redis_asio_adapter(redisAsyncContext* context, const boost::asio::any_io_executor& executor);

    // The hooks hiredis calls, with ev.data (this adapter) as `privdata`.
    static void add_read(void* privdata);
    static void del_read(void* privdata);
    static void add_write(void* privdata);
    static void del_write(void* privdata);
    static void cleanup(void* privdata);

    void wait_readable();
    void wait_writable();
    void on_readable(const boost::system::error_code& ec);
    void on_writable(const boost::system::error_code& ec);

    redisAsyncContext* context_;  // null once hiredis has cleaned up
    boost::asio::posix::stream_descriptor descriptor_;
    // hiredis's "I want to read/write" (level-triggered, until the matching del*), and whether an
    // async_wait for it is outstanding.  Asio cannot cancel one direction alone, so a del* only
    // clears the wish and the outstanding wait, when it fires, does nothing.
    bool want_read_ = false;
    bool want_write_ = false;
    bool read_waiting_ = false;
    bool write_waiting_ = false;
    std::shared_ptr<redis_asio_adapter> owned_by_context_;  // dropped at cleanup
};

}  // namespace voice_broker
