-- wrk script for the organiser's subscriber list under load
-- (benches/subscribe.rs runs it beside the subscribe load). It cycles
-- through the list's usual views: first page, by list and status, an
-- address search, a date filter and a later page (keyset cursor).

dofile("benches/load/report.lua")

local paths = {}
local next_path = 0

function init(args)
    wrk.headers["Cookie"] = os.getenv("ADMIN_COOKIE") or ""
    for p in string.gmatch(os.getenv("ADMIN_PATHS") or "/admin/subscribers", "[^|]+") do
        table.insert(paths, p)
    end
    status_counts = {}
end

function request()
    next_path = next_path % #paths + 1
    return wrk.format("GET", paths[next_path])
end
