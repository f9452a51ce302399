-- serve_http.lua: wrk script for tests/bench/serve_http.sh. Typing-style POST /v1/suggest: every
-- prefix of every line of SENTENCES, one character longer each time, as {"text":"<prefix>","k":5}.
-- A wrk thread's connections are TYPISTS typists taking turns (wrk does not say which connection
-- asks, so request i goes to typist i mod TYPISTS); typist g starts at prefix (g * 7919) mod the
-- number of prefixes, so connections type different sentences at once. done() prints the figures
-- as "key value..." lines for the shell.
--   wrk -t 1 -c 64 -d 30s -s serve_http.lua URL -- SENTENCES TYPISTS
local reqs, pos, turn, n = {}, {}, 0, 0
local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

function init(args)
   local file, typists = args[1], tonumber(args[2])
   for line in io.lines(file) do
      for p = 1, #line do
         n = n + 1
         reqs[n] = wrk.format("POST", "/v1/suggest", {["Content-Type"] = "application/json"},
                              '{"text":"' .. line:sub(1, p) .. '","k":5}')
      end
   end
   for j = 0, typists - 1 do
      pos[j] = ((tid * typists + j) * 7919) % n
   end
   ntyp = typists
end

function request()
   local j = turn % ntyp
   turn = turn + 1
   local r = reqs[pos[j] + 1]
   pos[j] = (pos[j] + 1) % n
   return r
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("requests %d\nduration_us %d\n", summary.requests, summary.duration))
   io.write(string.format("latency_us %d %d %d %d %.0f\n", latency:percentile(50), latency:percentile(90),
                          latency:percentile(99), latency.max, latency.mean))
   io.write(string.format("errors %d %d %d %d %d\n", e.connect, e.read, e.write, e.status, e.timeout))
end
