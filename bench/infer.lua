-- wrk script of scripts/bench-batching and scripts/bench-hot-path: POSTs one inference request
-- and prints "RESULT requests/s p50-µs p99-µs errors". The body: the file $BODY_FILE (read once,
-- any bytes), else $BODY, else the iris example's single row. Content-Type $CONTENT_TYPE (default
-- application/json), and Inference-Header-Content-Length $HEADER_LENGTH when set (the binary
-- tensor extension).
wrk.method = "POST"
local body_file = os.getenv("BODY_FILE")
local body = os.getenv("BODY")
if body_file ~= nil and body_file ~= "" then
   local file = assert(io.open(body_file, "rb"))
   body = file:read("*a")
   file:close()
elseif body == nil or body == "" then
   body = '{"inputs":[{"name":"input-0","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}'
end
wrk.body = body
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
