# threshold: claims C10 and F1, from `polyrope sweep threshold --out F.csv`: with d = 2⌈log2(n)/4⌉,
# eps = 1/n and general W, the degree, term count, cost exponent, time and double's missing bits
# against B/√(ln n); the FFT path runs while its terms stay under a budget.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; n_values='256 1024'" threshold.gp
# series: n
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
sel(nv) = (strcol("n") eq nv && strcol("status") eq "ok")
nn = words(n_values)
do for [t in "png pdf"] {
  if (t eq "png") { set terminal pngcairo size 1500,480 enhanced font ",10" } \
  else { set terminal pdfcairo size 15in,4.8in enhanced font ",10" }
  set output out.".".t
  set multiplot layout 1,3 title "The bounded-entry threshold: d = 2⌈log_2 n/4⌉, ε = 1/n, general W, B = Bs·√(ln n)"
  set grid
  set key top left box opaque
  set xlabel "Bs = B / √(ln n)"
  set arrow 1 from 1, graph 0 to 1, graph 1 nohead dt 3 lc "gray"
  set ylabel "cost exponent ln(C(s+g,g)·(d+1)) / ln n"
  set title "C10: FFT-path cost n^{1+exponent}; above 1 it loses to n^2"
  set yrange [0:*]
  plot for [i=1:nn] csv using "Bs":(sel(word(n_values, i)) ? column("exponent") : NaN) \
         with linespoints pt 7 lc i title sprintf("n = %s", word(n_values, i)), \
       1 with lines lw 1.5 dt 2 lc "black" title "exponent 1 (quadratic)"
  set autoscale y
  set logscale y 10
  set format y "10^{%L}"
  set ylabel "forward wall time (s)"
  # headroom above the data for the legend
  set offsets 0, 0, graph 0.8, 0
  set title "C10: time; FFT path (filled) only while terms ≤ 20000, dense (open)"
  plot for [i=1:nn] csv using "Bs":(sel(word(n_values, i)) && column("ran") == 1 ? column("time_s") : NaN) \
         with linespoints pt 7 lc i title sprintf("FFT, n = %s", word(n_values, i)), \
       for [i=1:nn] csv using "Bs":(sel(word(n_values, i)) ? column("dense_time_s") : NaN) \
         with linespoints pt 6 dt 2 lc i title sprintf("dense, n = %s", word(n_values, i))
  unset logscale y
  set offsets 0, 0, 0, 0
  set format y "%g"
  unset arrow 1
  set xlabel "R = max |M| bound from the data (score units)"
  set ylabel "bits double lacks: log_2(floor / u)"
  set title "F1: a-priori floor of the expansion against 2R/ln 2"
  plot for [i=1:nn] csv using "R":(sel(word(n_values, i)) ? column("lost_bits") : NaN) \
         with points pt 7 lc i title sprintf("n = %s", word(n_values, i)), \
       2 * x / log(2) with lines lw 1.5 dt 2 lc "black" title "theory 2R/ln 2"
  unset multiplot
  set output
}
