-- bench.lua: the wrk script of every bench row, ceilings included, so the
-- client does the same work per request whatever it measures.
--
--   wrk -t N -c N ... -s bench.lua URL -- MODE EXPECT [ARG...]
--
-- MODE and its ARGs:
--   get PATH          GET PATH
--   get304 PATH ETAG  GET PATH with If-None-Match: ETAG
--   post PREFIX       POST /users, a fresh username PREFIX-THREAD-N each
--   post409 NAME      POST /users of NAME, which exists
--   put TARGETS       thread i PUTs, with If-Match, the user on line i+1
--                     of the file TARGETS ("name etag"), following the
--                     ETag each answer carries
--   patch TARGETS     the same with a merge patch
--   delete TARGETS    thread i DELETEs, with If-Match, the users listed
--                     in the file TARGETS.i ("name etag"), one by one
--   random COUNT      GET /users/uNNNNNNN, a random one of u0000001 to
--                     COUNT
-- EXPECT is the only status a correct answer may carry.
--
-- Run with as many threads as connections: each Lua state then owns one
-- connection, so response() always answers this state's last request(),
-- and a thread can follow what its own requests changed.
--
-- done() prints, for the harness:
--   bench-result requests=R duration_us=D p50_us=P p99_us=Q ...
--   bench-status STATUS COUNT       one line per status seen

local threads = {}

function setup(thread)
	thread:set("tid", #threads)
	table.insert(threads, thread)
end

counts = {}
exhausted = 0
local mode, expect, fixed, prefix, targets, name, etag
local counter = 0
local pos = 0
local randmax = 0
local headers = {}

local function read_targets(path)
	local list = {}
	local f = assert(io.open(path, "r"))
	for line in f:lines() do
		local n, e = line:match("^(%S+) (%S+)$")
		if n then
			table.insert(list, { n, e })
		end
	end
	f:close()
	return list
end

function init(args)
	mode = args[1]
	expect = tonumber(args[2])
	local host = wrk.headers["Host"]
	if mode == "get" then
		fixed = wrk.format("GET", args[3], { Host = host })
	elseif mode == "get304" then
		fixed = wrk.format("GET", args[3],
		    { Host = host, ["If-None-Match"] = args[4] })
	elseif mode == "post" then
		prefix = args[3] .. "-" .. tid .. "-"
		headers = { Host = host, ["Content-Type"] = "application/json" }
	elseif mode == "post409" then
		fixed = wrk.format("POST", "/users",
		    { Host = host, ["Content-Type"] = "application/json" },
		    string.format('{"username":"%s"}', args[3]))
	elseif mode == "put" or mode == "patch" then
		local t = read_targets(args[3])[tid + 1]
		assert(t, "no target for thread " .. tid)
		name, etag = t[1], t[2]
		headers = { Host = host, ["Content-Type"] = mode == "put" and
		    "application/json" or "application/merge-patch+json" }
	elseif mode == "delete" then
		targets = read_targets(args[3] .. "." .. tid)
		headers = { Host = host }
	elseif mode == "random" then
		randmax = tonumber(args[3])
		math.randomseed(tid * 7919 + 17)
	else
		error("unknown mode " .. tostring(mode))
	end
end

function request()
	if fixed then
		return fixed
	end
	counter = counter + 1
	if mode == "post" then
		local n = prefix .. counter
		return wrk.format("POST", "/users", headers, string.format(
		    '{"username":"%s","email":"%s@example.org",' ..
		    '"display_name":"Bench user %d"}', n, n, counter))
	elseif mode == "put" then
		headers["If-Match"] = etag
		return wrk.format("PUT", "/users/" .. name, headers,
		    string.format('{"username":"%s","email":"%s@example.org",' ..
		    '"display_name":"Put %d"}', name, name, counter))
	elseif mode == "patch" then
		headers["If-Match"] = etag
		return wrk.format("PATCH", "/users/" .. name, headers,
		    string.format('{"display_name":"Patch %d"}', counter))
	elseif mode == "delete" then
		-- Out of victims: the repeated delete answers 404, which the
		-- harness reports, never a figure.
		if pos < #targets then
			pos = pos + 1
		else
			exhausted = exhausted + 1
		end
		local t = targets[pos] or { "bench-no-victim", '"0"' }
		headers["If-Match"] = t[2]
		return wrk.format("DELETE", "/users/" .. t[1], headers)
	else
		return wrk.format("GET", string.format("/users/u%07d",
		    math.random(randmax)), { Host = wrk.headers["Host"] })
	end
end

local function header(hs, want)
	local v = hs[want]
	if v then
		return v
	end
	want = want:lower()
	for k, val in pairs(hs) do
		if k:lower() == want then
			return val
		end
	end
end

function response(status, hs, body)
	counts[status] = (counts[status] or 0) + 1
	if mode == "put" or mode == "patch" then
		if status == 200 then
			etag = header(hs, "ETag") or etag
		elseif status == 412 then
			-- Counted as a wrong answer all the same; following the
			-- current version keeps one lost answer from becoming a
			-- storm that hides what else went wrong.
			local v = body and body:match('"current_version":"(%d+)"')
			if v then
				etag = '"' .. v .. '"'
			end
		end
	end
end

function done(summary, latency, requests)
	local all, out = {}, 0
	for _, t in ipairs(threads) do
		for status, n in pairs(t:get("counts")) do
			all[status] = (all[status] or 0) + n
		end
		out = out + (t:get("exhausted") or 0)
	end
	local e = summary.errors
	io.write(string.format("bench-result requests=%d duration_us=%d " ..
	    "p50_us=%d p99_us=%d mean_us=%.1f connect=%d read=%d write=%d " ..
	    "timeout=%d exhausted=%d\n", summary.requests, summary.duration,
	    latency:percentile(50), latency:percentile(99), latency.mean,
	    e.connect, e.read, e.write, e.timeout, out))
	for status, n in pairs(all) do
		io.write(string.format("bench-status %d %d\n", status, n))
	end
end
