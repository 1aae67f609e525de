-- wrk script for the subscribe load test (benches/subscribe.rs runs it).
-- Every request subscribes a new address, from a new client address in the
-- X-Forwarded-For header (the server is started trusting that header), as
-- a crowd of supporters signing up from a campaign page would.

dofile("benches/load/report.lua")

local counter = 0
local run = os.getenv("LOAD_RUN") or tostring(os.time())

function init(args)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["Accept"] = "application/json"
    status_counts = {}
end

function request()
    counter = counter + 1
    local n = id * 100000000 + counter
    -- 10.x.y.z with the /24 changing on every request (x fastest, then y),
    -- so the crowd comes from many networks and the server's per-address
    -- and per-network sign-up limits (left at their defaults) are not what
    -- is measured. wrk's LuaJIT has no integer division, hence math.floor.
    local ip = string.format("10.%d.%d.%d", n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256)
    wrk.headers["X-Forwarded-For"] = ip
    local body = string.format(
        "email=load-%s-%d-%d%%40example.org&name=Supporter+%d&lists=updates&consent=on&source=https%%3A%%2F%%2Fcampaign.example%%2Fjoin",
        run, id, counter, counter)
    return wrk.format(nil, "/subscribe", nil, body)
end
