-- wrk script: every request asks for the 5 nearest stations to a random point in central/suburban Shanghai.
math.randomseed(20261125)
request = function()
  local lon = 121.20 + math.random() * 0.60
  local lat = 30.95 + math.random() * 0.45
  return wrk.format("GET", string.format("/api/nearest?lon=%.6f&lat=%.6f&k=5", lon, lat))
end
