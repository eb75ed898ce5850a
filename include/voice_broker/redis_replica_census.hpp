// redis_replica_census: how many replicas of the master the sentinels could promote now.  A
// durable write (WAIT) protects against a failover to a replica that lacks it; a failover can
// only pick a replica the sentinels consider fit (not subjectively or objectively down, not
// disconnected, priority not 0).  When there is none (after a failover in a one-replica layout,
// until the old master comes back as a replica), waiting for one would refuse every admission
// and protect nothing: no failover could lose the write.  The count comes from
// SENTINEL REPLICAS, asking the sentinels in turn; a replica the sentinels still list as fit is
// counted even if its link is broken, so the count errs on the side of waiting.
//
// Threading as redis_connection: one executor (the store's strand).
#pragma once

#include "voice_broker/redis_master_locator.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <system_error>

namespace voice_broker {

struct redis_reply;

// The replicas a SENTINEL REPLICAS answer lists as promotable; nullopt when the answer is not
// the list Sentinel gives (an array of flat field/value arrays).
std::optional<int> promotable_replicas(const redis_reply& answer);

class redis_replica_census : public std::enable_shared_from_this<redis_replica_census> {
public:
    using count_handler = std::function<void(std::error_code error, int promotable)>;

    static std::shared_ptr<redis_replica_census> create(const boost::asio::any_io_executor& executor,
                                                        redis_sentinel_settings settings);
    ~redis_replica_census();
    redis_replica_census(const redis_replica_census&) = delete;
    redis_replica_census& operator=(const redis_replica_census&) = delete;

    // Asks the sentinel that answered last, then the others in turn, each within the settings'
    // query_timeout.  Concurrent calls share one round.  The handler is posted; after close()
    // it gets redis_error::closed.
    void count(count_handler handler);
    void close();

private:
    class impl;
    explicit redis_replica_census(std::shared_ptr<impl> state);
    std::shared_ptr<impl> impl_;
};

}  // namespace voice_broker
