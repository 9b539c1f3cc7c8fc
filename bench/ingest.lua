-- wrk script: POST /v1/batch with 50 Segment-spec events per request, every event id unique,
-- realistic properties and context (a page URL with a query, a user agent, some PII to scrub).
-- Usage: wrk -s bench/ingest.lua http://127.0.0.1:PORT -- WRITE_KEY
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  key = args[1]
  auth = "Basic " .. key  -- placeholder, replaced below
end

local b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function b64(data)
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d%d?%d?%d?%d?', function(x)
    if (#x < 6) then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

local names = { "Product Viewed", "Product Added", "Products Searched", "Checkout Started", "Order Completed" }

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, 50 do
    local id = string.format("w%d-r%d-e%d", tid, counter, i)
    local anon = string.format("anon-%d-%d", tid, (counter * 7 + i) % 5000)
    local props
    if i % 10 == 0 then
      props = '{"query":"contact me at jane.doe@example.com","page":2}'
    else
      props = string.format('{"product_id":"SKU-%d","price":%d.99,"currency":"EUR","position":%d}', i, i, i)
    end
    parts[#parts + 1] = string.format(
      '{"type":"track","event":"%s","anonymousId":"%s","messageId":"%s","timestamp":"2026-12-01T10:00:%02d.000Z","properties":%s,' ..
      '"context":{"page":{"url":"https://shop.example/products/SKU-%d?utm_source=news&utm_medium=email","path":"/products/SKU-%d","referrer":"https://www.google.com/","title":"Trail Runner"},' ..
      '"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36","locale":"en-US","ip":"203.0.113.9","library":{"name":"analytics.js","version":"5.2.0"}}}',
      names[(i % #names) + 1], anon, id, i % 60, props, i, i)
  end
  local body = '{"sentAt":"2026-12-01T10:01:00.000Z","batch":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/v1/batch", { ["Content-Type"] = "application/json", ["Authorization"] = "Basic " .. b64(key .. ":") }, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors_status=%d errors_other=%d p50_us=%d p90_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
