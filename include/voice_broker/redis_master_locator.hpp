// redis_master_locator: where the Redis master is, according to Sentinel, and a signal when it
// moves.  Following the Sentinel client guidelines: the sentinels are asked in turn
// (SENTINEL get-master-addr-by-name), the first that answers moves to the front of the list; the
// connection then checks with ROLE that the node really is a master.  One sentinel at a time is
// watched for +switch-master (if it goes away, the next one is); after that watch reconnects, the
// master is asked for again, since a switch may have happened meanwhile.
//
// Give it to redis_client_options::sentinel: connections and subscribers then locate the master
// on every (re)connect and reconnect when it moves.  Threading as redis_connection (the same
// executor as the connections that use it).
#pragma once

#include "voice_broker/redis_endpoint.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

// Forward-declared to keep Asio out of this header; a caller passing a strand or an
// io_context's executor includes <boost/asio/any_io_executor.hpp> (net.hpp does) for the conversion.
namespace boost::asio {
class any_io_executor;
}

namespace voice_broker {

struct redis_sentinel_settings {
    std::vector<redis_endpoint> sentinels;  // REDIS_SENTINELS
    std::string master_name = "mymaster";   // REDIS_SENTINEL_MASTER
    std::string username;                   // sentinel ACL user; usually empty
    std::string password;                   // REDIS_SENTINEL_PASSWORD; secret
    // One sentinel's connect + answer; the next sentinel is asked after it.
    std::chrono::milliseconds query_timeout{500};
    // Back-off before watching the next sentinel when the watched one is unreachable.
    std::chrono::milliseconds watch_retry_min{100};
    std::chrono::milliseconds watch_retry_max{2000};
};

class redis_master_locator : public std::enable_shared_from_this<redis_master_locator> {
public:
    using locate_handler = std::function<void(std::error_code error, redis_endpoint master)>;
    using master_observer = std::function<void(const redis_endpoint& master)>;

    static std::shared_ptr<redis_master_locator> create(const boost::asio::any_io_executor& executor,
                                                        redis_sentinel_settings settings);
    ~redis_master_locator();
    redis_master_locator(const redis_master_locator&) = delete;
    redis_master_locator& operator=(const redis_master_locator&) = delete;

    // Starts watching for +switch-master.  locate() works without it (a one-off check).
    void start();
    void close();

    // Asks the sentinels in turn; concurrent calls share one round.  The error is
    // redis_error::no_master with last_error() saying what each sentinel answered.
    void locate(locate_handler handler);

    // Called (posted) when the master moved: +switch-master for our master name, or a different
    // answer after the watch came back.
    int add_master_observer(master_observer observer);
    void remove_master_observer(int id);

    std::optional<redis_endpoint> last_known_master() const;
    std::string last_error() const;
    const redis_sentinel_settings& settings() const;

private:
    class impl;
    explicit redis_master_locator(std::shared_ptr<impl> state);
    std::shared_ptr<impl> impl_;
};

}  // namespace voice_broker
