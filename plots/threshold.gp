# threshold: claims C10 and F1, from `polyrope sweep threshold --out F.csv`: with d = 2⌈log2(n)/4⌉,
# eps = 1/n and general W, the cost exponent, time and double's missing bits against B/√(ln n);
# the FFT path runs while its terms stay under a budget. n is the shade of each algorithm's colour.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; n_values='256 1024'" threshold.gp
# series: n
load ARG0[1:strlen(ARG0) - strlen("threshold.gp")]."style.gp"
sel(nv) = (strcol("n") eq nv && strcol("status") eq "ok")
nn = words(n_values)
nv(i) = word(n_values, i)
K = nn + 1
do for [t in "png pdf"] {
  eval fig_term(t, 3, 1.5, K)
  set output out.".".t
  eval fig_multi(t, 3, 1.5, K)
  eval fig_axes
  set xlabel "B_s = B / √(ln n)   (d = 2⌈log_2 n/4⌉, ε = 1/n, general W)" offset 0, 0.3
  set ylabel "ln(C(s+g,g)(d+1)) / ln n"
  set title "C10: FFT-path cost n^{1+exponent}; above 1 it loses to n^2"
  unset key
  plot for [i=1:nn] csv using (sel(nv(i)) && isfin(column("exponent")) ? column("Bs") : NaN):(column("exponent")) \
         with linespoints pt algo_pt("fft") dt i lc rgb algo_shade("fft", i, nn) notitle, \
       1 with lines lw 1.2 dt 3 lc rgb "#000000" notitle
  set logscale y 10
  set format y "10^{%L}"
  set ylabel "forward time (s)"
  set title "C10: time; FFT path while its terms ≤ 20000"
  plot for [i=1:nn] csv using (sel(nv(i)) && column("ran") == 1 ? column("Bs") : NaN):(column("time_s")) \
         with linespoints pt algo_pt("fft") dt i lc rgb algo_shade("fft", i, nn) notitle, \
       for [i=1:nn] csv using (sel(nv(i)) ? column("Bs") : NaN):(column("dense_time_s")) \
         with linespoints pt algo_pt("dense") dt i lc rgb algo_shade("dense", i, nn) notitle
  unset logscale y
  set format y "%g"
  set xlabel "R = max|M| bound from the data" offset 0, 0.3
  set ylabel "bits double lacks: log_2(floor / u)"
  set title "F1: a-priori floor of the expansion"
  eval fig_key(t, 3, 1.5, K)
  set key maxcols 2
  plot for [i=1:nn] csv using (sel(nv(i)) && isfin(column("lost_bits")) ? column("R") : NaN):(column("lost_bits")) \
         with linespoints pt algo_pt("fft") dt i lc rgb algo_shade("fft", i, nn) title sprintf("FFT, n = %s", nv(i)), \
       for [i=1:nn] keyentry with linespoints pt algo_pt("dense") dt i lc rgb algo_shade("dense", i, nn) title sprintf("dense, n = %s", nv(i)), \
       2 * x / log(2) with lines @theory title "F1 theory: 2R / ln 2", \
       keyentry with lines lw 1.2 dt 3 lc rgb "#000000" title "C10: exponent 1 (n^2)"
  unset multiplot
  set output
}
