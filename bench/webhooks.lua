-- The wrk script of bench/webhooks.ts: POSTs one signed body with a unique delivery id per
-- request, counts the answers by status and keeps the row id of every 202, then writes the run's
-- figures as one JSON object. Arguments (after `--`): body file, headers file (one
-- "name<TAB>value" per line), delivery-id header, delivery-id prefix, answered-ids file.

local body, headers, delivery_header, prefix
local sent = 0
-- Globals, so done() (which runs in wrk's main Lua state) reads each thread's with thread:get().
statuses = {}
answered = {}
ids_file = nil

local threads = {}
function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

local function read(path)
  local file = assert(io.open(path, "rb"))
  local content = file:read("*a")
  file:close()
  return content
end

function init(args)
  body = read(args[1])
  headers = {}
  for line in read(args[2]):gmatch("[^\n]+") do
    local name, value = line:match("^([^\t]+)\t(.*)$")
    headers[name] = value
  end
  delivery_header, prefix, ids_file = args[3], args[4], args[5]
end

function request()
  sent = sent + 1
  headers[delivery_header] = prefix .. "-" .. thread_number .. "-" .. sent
  return wrk.format("POST", nil, headers, body)
end

function response(status, _, answer)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    local id = answer:match('"id":"([%x%-]+)"')
    if id then answered[#answered + 1] = id end
  end
end

function done(summary, latency)
  local counts, ids = {}, {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%d":%d', status, count)
    end
    for _, id in ipairs(thread:get("answered")) do ids[#ids + 1] = id end
  end
  local out = assert(io.open(threads[1]:get("ids_file"), "w"))
  out:write(table.concat(ids, "\n"))
  out:close()
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationSeconds":%.6f,"p50":%.3f,"p99":%.3f,"max":%.3f,"errors":%d,"timeouts":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors.connect + errors.read + errors.write, errors.timeout, table.concat(counts, ",")))
end
