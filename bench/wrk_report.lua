-- wrk's report for bench/web.py: one JSON line with the run's requests, time, latency
-- percentiles (microseconds) and errors (non-2xx/3xx answers, connect, read, write, timeout).
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    errors.status + errors.connect + errors.read + errors.write + errors.timeout))
end
