-- wrk script for bench/run.sh: one machine-readable line with the exact totals of the run.
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"WRKRESULT requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
		summary.requests, summary.bytes, summary.duration,
		e.connect, e.read, e.write, e.status, e.timeout))
end
