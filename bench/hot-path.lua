-- wrk script of scripts/bench-hot-path: POSTs the body in $BODY_FILE (read once, any bytes) with
-- Content-Type $CONTENT_TYPE, and Inference-Header-Content-Length $HEADER_LENGTH when set (the
-- binary tensor extension); prints "RESULT requests/s p50-µs p99-µs errors".
wrk.method = "POST"
local file = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE is not set"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
local header_length = os.getenv("HEADER_LENGTH")
if header_length ~= nil and header_length ~= "" then
   wrk.headers["Inference-Header-Content-Length"] = header_length
end

function done(summary, latency, requests)
   local errors = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
   io.write(string.format("RESULT %.0f %.0f %.0f %d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), errors))
end
