-- wrk script for bench/run.sh: one machine-readable line with the exact totals of the run, and
-- one with its latency percentiles (µs; the scale cell's p99).
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"WRKRESULT requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
		summary.requests, summary.bytes, summary.duration,
		e.connect, e.read, e.write, e.status, e.timeout))
	io.write(string.format("WRKLATENCY p50_us=%d p99_us=%d max_us=%d\n",
		latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
