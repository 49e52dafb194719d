# The report's chart. Called by bench/run.sh:
#   gnuplot -e "peers='F1'; hs='F2'; hw='F3'; out='F.png'; subtitle='...'" bench/chart.gp
# peers: "label" edged/nginx haproxy/nginx;  hs, hw: "key type" edged nginx haproxy reference
# (NaN: missing)
set terminal pngcairo size 1400,1000 font "sans,10" noenhanced
set output out
set multiplot title "mtls-edge benchmark ".subtitle." (one core each for the server and for the load)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside top center horizontal
set yrange [0:*]
set ytics nomirror
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb "black" lw 1.5 dt 2 front

set origin 0, 0.42
set size 1, 0.55
set xtics rotate by -35 scale 0 nomirror
set rmargin 12  # room for the last rotated labels
set title "Ratio to nginx in the same run  (req/s, MB/s, hs/s, failures/s: higher is better;  CPU and MiB: lower is better)"
set ylabel "x nginx"
plot peers using 2:xtic(1) title "mtls-edged / nginx" lc rgb "#1f77b4", \
     '' using 3 title "HAProxy / nginx" lc rgb "#ff7f0e"

set rmargin -1
set xtics norotate scale 0 nomirror
set ylabel "ratio"
set origin 0, 0
set size 0.5, 0.42
set yrange [0:1.05]
set title "Handshakes/s / limit from openssl speed (1 = the hardware limit)"
plot hs using 2:xtic(1) title "mtls-edged" lc rgb "#1f77b4", \
     '' using 3 title "nginx" lc rgb "#2ca02c", \
     '' using 4 title "HAProxy" lc rgb "#ff7f0e", \
     '' using 5 title "OpenSSL reference server" lc rgb "#7f7f7f"

set origin 0.5, 0
set size 0.5, 0.42
set yrange [0:*]
set title "Server CPU per handshake / openssl speed floor (1 = the floor)"
plot hw using 2:xtic(1) title "mtls-edged" lc rgb "#1f77b4", \
     '' using 3 title "nginx" lc rgb "#2ca02c", \
     '' using 4 title "HAProxy" lc rgb "#ff7f0e", \
     '' using 5 title "OpenSSL reference server" lc rgb "#7f7f7f"
unset multiplot
