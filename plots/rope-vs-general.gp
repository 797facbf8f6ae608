# rope-vs-general: claim C12, from `polyrope sweep rope-vs-general --out F.csv`: on factorised
# RoPE, the low-rank path's C(d+g,g) features against the FFT path's C(2d+g,g) Toeplitz terms
# (theory curves through lgamma), and the wall time of both paths. d is the shade of each
# algorithm's colour.
# Run by `polyrope plot F.csv`, or: gnuplot -e "csv='F.csv'; out='F'; d_values='2 4'" rope-vs-general.gp
# series: d
load ARG0[1:strlen(ARG0) - strlen("rope-vs-general.gp")]."style.gp"
sel(dv) = (strcol("d") eq dv && strcol("status") eq "ok")
binom(m, k) = exp(lgamma(m + k + 1) - lgamma(m + 1) - lgamma(k + 1))
nd = words(d_values)
dv(i) = word(d_values, i)
K = nd + 1
do for [t in "png pdf"] {
  eval fig_term(t, 2, 1.8, K)
  set output out.".".t
  eval fig_multi(t, 2, 1.8, K)
  set logscale y 10
  set format y "10^{%L}"
  eval fig_axes
  set xlabel "polynomial degree g" offset 0, 0.3
  set xtics 1
  set ylabel "count"
  set title "C12: low-rank features and FFT-path Toeplitz terms"
  set samples 200
  unset key
  plot for [i=1:nd] csv using (sel(dv(i)) ? column("degree_lowrank") : NaN):(column("features")) \
         with points pt algo_pt("lowrank") lc rgb algo_shade("lowrank", i, nd) notitle, \
       for [i=1:nd] csv using (sel(dv(i)) ? column("degree_fft") : NaN):(column("terms")) \
         with points pt algo_pt("fft") lc rgb algo_shade("fft", i, nd) notitle, \
       for [i=1:nd] binom(dv(i) + 0, x) with lines dt 2 lc rgb algo_shade("lowrank", i, nd) notitle, \
       for [i=1:nd] binom(2 * dv(i), x) with lines dt 2 lc rgb algo_shade("fft", i, nd) notitle
  set logscale x 2
  set xtics autofreq
  set format x "2^{%L}"
  set xlabel "sequence length n (tokens)" offset 0, 0.3
  set ylabel "forward time (s)"
  set title "time of the two paths on the same RoPE problem"
  eval fig_key(t, 2, 1.8, K)
  plot for [i=1:nd] csv using (sel(dv(i)) ? column("n") : NaN):(column("lowrank_time_s")) \
         with points pt algo_pt("lowrank") lc rgb algo_shade("lowrank", i, nd) title sprintf("low-rank, d = %s", dv(i)), \
       for [i=1:nd] csv using (sel(dv(i)) ? column("n") : NaN):(column("fft_time_s")) \
         with points pt algo_pt("fft") lc rgb algo_shade("fft", i, nd) title sprintf("FFT, d = %s", dv(i)), \
       keyentry with lines dt 2 lc rgb algo_rgb("lowrank") title "C12: C(d+g, g) features", \
       keyentry with lines dt 2 lc rgb algo_rgb("fft") title "C12: C(2d+g, g) terms"
  unset multiplot
  set output
}
