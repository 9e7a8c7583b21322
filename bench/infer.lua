-- wrk script: POST one single-row inference request; print figures for scripts/bench-batching.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- The body: $BODY when set (scripts/bench-batching's other models), else the iris example's row.
local body = os.getenv("BODY")
if body == nil or body == "" then
   body = '{"inputs":[{"name":"input-0","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}'
end
wrk.body = body

function done(summary, latency, requests)
   local errors = summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout
   io.write(string.format("RESULT %.0f %.0f %.0f %d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), errors))
end
