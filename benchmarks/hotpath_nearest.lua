-- wrk script of bench_hotpath.py: the 5 nearest stations to random points in central/suburban Shanghai (the box of
-- nearest_random.lua); 1,000 points drawn once per wrk thread with a fixed seed, then requested in turn.
math.randomseed(20261125)
local requests = nil
local count = 1000
local turn = 0

request = function()
  if requests == nil then  -- built on first use, so headers given with -H are in every request
    requests = {}
    for i = 1, count do
      local lon = 121.20 + math.random() * 0.60
      local lat = 30.95 + math.random() * 0.45
      requests[i] = wrk.format("GET", string.format("/api/nearest?lon=%.6f&lat=%.6f&layer=stations&k=5", lon, lat))
    end
  end
  turn = turn % count + 1
  return requests[turn]
end
