-- create.lua: wrk script, every request POSTs a user with a fresh name.
local counter = 0
local prefix = tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
	counter = counter + 1
	local body = string.format('{"username":"b%s-%d"}', prefix, counter)
	return wrk.format(nil, "/users", nil, body)
end
