-- create.lua: wrk script, every request POSTs a user with a fresh name.
-- Each wrk thread has its own Lua state: setup() numbers them so their
-- names never collide.
local threads = 0
function setup(thread)
	thread:set("tid", threads)
	threads = threads + 1
end

local counter = 0
local stamp = tostring(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
	counter = counter + 1
	local body = string.format('{"username":"b%s-%d-%d"}', stamp, tid,
	    counter)
	return wrk.format(nil, "/users", nil, body)
end
