-- redis_store_admin.lua: the operator's operations of the Redis store's script (see
-- redis_store.lua for the setup and the rules they use; redis_store_operations.lua runs them).

