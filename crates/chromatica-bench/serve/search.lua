-- wrk script for `chromatica serve`: every request a different random
-- colour query (1-3 colours, random weights, k 50), seeded per thread.
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
init = function(args)
  math.randomseed(seed * 7919)
end
request = function()
  local n = math.random(1, 3)
  local colors, weights = {}, {}
  for i = 1, n do
    colors[i] = string.format("%06x", math.random(0, 0xffffff))
    weights[i] = string.format("%.2f", 0.05 + math.random() * 0.95)
  end
  return wrk.format("GET", "/search?colors=" .. table.concat(colors, "%2C") .. "&weights=" .. table.concat(weights, "%2C") .. "&k=50")
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK {\"requests\":%d,\"seconds\":%.3f,\"rps\":%.1f,\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
