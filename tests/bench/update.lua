-- update.lua: wrk script, PUTs without a precondition to a user the bench
-- made, under require_preconditions = off, so each request is one
-- compare-and-swap transaction with an fsync.
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
local counter = 0

request = function()
	counter = counter + 1
	local body = string.format(
	    '{"username":"bench-put","display_name":"n%d"}', counter)
	return wrk.format(nil, "/users/bench-put", nil, body)
end
