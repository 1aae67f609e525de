-- What both load scripts report: status codes per thread, and one JSON
-- line (WRK_JSON …) the harness parses. wrk runs with the repository as
-- its working directory, so the scripts load this with dofile.

local threads = {}

function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

function response(status, headers, body)
    status_counts[status] = (status_counts[status] or 0) + 1
end

function done(summary, latency, requests)
    -- One JSON line the harness parses; latencies in microseconds.
    local codes = {}
    for _, t in ipairs(threads) do
        local c = t:get("status_counts")
        for k, v in pairs(c) do
            codes[k] = (codes[k] or 0) + v
        end
    end
    local parts = {}
    for k, v in pairs(codes) do
        table.insert(parts, string.format('"%d":%d', k, v))
    end
    io.write(string.format(
        'WRK_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
        '"timeouts":%d,"status_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"codes":{%s}}\n',
        summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
        summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, table.concat(parts, ",")))
end
